/**
 * One deployment: its state, the rollout as a timeline with promote / abort / undo, the traffic split with an
 * editor, its replicas and where they run, its revisions, and its latest events. Kept live by the stream (the
 * list's view of it and its events); the revisions are read again when a new one appears.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, describeError, get } from '../api.ts';
import { Title } from '../app.tsx';
import { Badge, ErrorBox, Loading } from '../components.tsx';
import { ago, dateTime, health, readyOf, rolloutUnderWay, split, time } from '../format.ts';
import { putDeployment, refresh, useLive } from '../live.ts';
import { Link } from '../router.tsx';
import { announce } from '../status.tsx';
import type {
  DeploymentView,
  DescribeView,
  EventRecord,
  Model,
  Revision,
  Rollout,
  Strategy,
} from '../types.ts';

export function DeploymentPage({ name, canWrite }: { name: string; canWrite: boolean }) {
  const live = useLive();
  const [described, setDescribed] = useState<DescribeView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const fromList = live.deployments?.find((d) => d.name === name);
  const newest = fromList?.revision ?? 0;

  useEffect(() => {
    let gone = false;
    get<DescribeView>(`/v1/deployments/${encodeURIComponent(name)}`).then(
      (d) => {
        if (gone) return;
        setDescribed(d);
        setError(null);
      },
      (e) => {
        if (!gone) setError(describeError(e));
      },
    );
    return () => {
      gone = true;
    };
  }, [name, newest]);

  if (error && !described)
    return (
      <section aria-labelledby="page-title">
        <Title>{name}</Title>
        <ErrorBox error={error} title="Could not read this deployment" />
        <p>
          <Link href="/">Back to the deployments</Link>
        </p>
      </section>
    );
  if (!described) return <Loading what={name} />;
  const view: DeploymentView = fromList ?? described;
  const events = mergeEvents(
    described.events,
    live.events.filter((e) => e.deployment === name),
  );
  const h = health(view);
  return (
    <section aria-labelledby="page-title" data-testid="deployment">
      <p class="crumbs">
        <Link href="/">Deployments</Link> / <span>{name}</span>
      </p>
      <div class="title-row">
        <Title>{name}</Title>
        <Badge tone={h.tone}>{h.text}</Badge>
        <nav aria-label={`${name} views`} class="subnav">
          <Link href={`/deployments/${encodeURIComponent(name)}/charts`}>Charts</Link>
          <Link href={`/deployments/${encodeURIComponent(name)}/logs`}>Logs</Link>
        </nav>
      </div>
      <dl class="facts">
        <div>
          <dt>Model</dt>
          <dd>
            {view.model}@{view.versionRef}
          </dd>
        </div>
        <div>
          <dt>Revision</dt>
          <dd>r{view.revision}</dd>
        </div>
        <div>
          <dt>Replicas ready</dt>
          <dd data-testid="ready">{readyOf(view)}</dd>
        </div>
        <div>
          <dt>Traffic</dt>
          <dd data-testid="traffic-now">{split(view.traffic)}</dd>
        </div>
        <div>
          <dt>Autoscaling</dt>
          <dd>{view.scaling ? 'on' : 'off (fixed count)'}</dd>
        </div>
        <div>
          <dt>Endpoint</dt>
          <dd>
            <code>{view.endpoint}</code> {view.public ? '(public)' : '(private: needs a key)'}
          </dd>
        </div>
      </dl>
      <RolloutPanel view={view} revisions={described.revisions} events={events} canWrite={canWrite} />
      <TrafficPanel view={view} revisions={described.revisions} canWrite={canWrite} />
      {canWrite && <NewRevisionPanel view={view} />}
      <ReplicasPanel view={view} canWrite={canWrite} />
      <RevisionsPanel view={view} revisions={described.revisions} />
      <ConditionsPanel view={view} />
      <section aria-labelledby="events-title">
        <h2 id="events-title">Latest events</h2>
        <EventList events={events.slice(0, 15)} />
        <p>
          <Link href="/events">All events</Link>
        </p>
      </section>
    </section>
  );
}

function mergeEvents(a: EventRecord[], b: EventRecord[]): EventRecord[] {
  const byId = new Map<number, EventRecord>();
  for (const e of [...a, ...b]) byId.set(e.id, e);
  return [...byId.values()].sort((x, y) => y.id - x.id);
}

export function EventList({ events }: { events: EventRecord[] }) {
  if (events.length === 0) return <p class="muted">No events.</p>;
  return (
    <ul class="events">
      {events.map((e) => (
        <li key={e.id} class={e.type === 'Warning' ? 'warning' : undefined}>
          <time dateTime={new Date(e.at).toISOString()}>{dateTime(e.at)}</time>{' '}
          {e.type === 'Warning' && <Badge tone="bad">Warning</Badge>} <strong>{e.reason}</strong> {e.message}
        </li>
      ))}
    </ul>
  );
}

// ------------------------------------------------------------------------------------------------ rollout

const TIMELINE_REASON = /^(Rollout|Traffic|Revision(Created|Failed)|DeploymentCreated|Undo)/;

function RolloutPanel(props: {
  view: DeploymentView;
  revisions: Revision[];
  events: EventRecord[];
  canWrite: boolean;
}) {
  const { view, canWrite } = props;
  const rollout = view.rollout;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const active = rolloutUnderWay(view);
  const earlier = props.revisions
    .filter((r) => r.number !== view.revision)
    .map((r) => r.number)
    .reverse();
  const [undoTo, setUndoTo] = useState<string>('');
  const steps = props.events
    .filter((e) => TIMELINE_REASON.test(e.reason))
    .slice(0, 20)
    .reverse();

  const act = async (what: string, path: string, body?: unknown) => {
    setBusy(true);
    setError(null);
    try {
      const result = await api<Rollout>(
        'POST',
        `/v1/deployments/${encodeURIComponent(view.name)}/rollout/${path}`,
        body,
      );
      announce(`${what}: ${result.message || `${result.phase}, r${result.from} to r${result.to}`}`);
      void refresh();
    } catch (e) {
      setError(describeError(e));
      announce(`${what} refused: ${describeError(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="rollout-title" class="panel">
      <h2 id="rollout-title">Rollout</h2>
      {rollout ? (
        <div class="rollout" data-testid="rollout">
          <p>
            <Badge tone={rollout.phase === 'succeeded' ? 'ok' : rollout.phase === 'aborted' ? 'bad' : 'info'}>
              {rollout.phase}
            </Badge>{' '}
            {active ? 'Rolling out' : 'Last rollout:'} r{rollout.from} → r{rollout.to} (
            {rollout.strategy.kind}), started {ago(rollout.startedAt)}. {rollout.message}
          </p>
          <div class="progress">
            <span id="rollout-progress-label">Traffic on r{rollout.to}</span>
            <div
              class="bar"
              role="progressbar"
              aria-labelledby="rollout-progress-label"
              aria-valuemin={0}
              aria-valuemax={100}
              aria-valuenow={rollout.percent}
              aria-valuetext={`${rollout.percent}% on revision ${rollout.to}`}
            >
              <span class="fill" style={{ width: `${rollout.percent}%` }} />
            </div>
            <span>{rollout.percent}%</span>
          </div>
          {rollout.strategy.kind === 'canary' && (
            <ol class="steps" aria-label="Canary steps">
              {rollout.strategy.steps.map((s, i) => {
                const state =
                  rollout.phase === 'succeeded' || i < rollout.step
                    ? 'done'
                    : i === rollout.step
                      ? 'current'
                      : 'next';
                return (
                  <li key={i} class={state} aria-current={state === 'current' ? 'step' : undefined}>
                    {s.percent}%
                    {s.pauseMs === undefined
                      ? ' (waits for promote)'
                      : ` (pause ${Math.round(s.pauseMs / 1000)} s)`}{' '}
                    <span class="sr-only">{state}</span>
                  </li>
                );
              })}
              <li class={rollout.phase === 'succeeded' ? 'done' : 'next'}>100%</li>
            </ol>
          )}
        </div>
      ) : (
        <p class="muted">No rollout has run since this control plane started.</p>
      )}
      <h3>Timeline</h3>
      {steps.length === 0 ? (
        <p class="muted">Nothing yet.</p>
      ) : (
        <ol class="timeline" data-testid="timeline">
          {steps.map((e) => (
            <li key={e.id} class={e.type === 'Warning' ? 'warning' : undefined}>
              <time dateTime={new Date(e.at).toISOString()}>{time(e.at)}</time>
              <span class="what">
                <strong>{e.reason}</strong> {e.message}
              </span>
            </li>
          ))}
        </ol>
      )}
      {canWrite && (
        <fieldset class="actions">
          <legend class="sr-only">Rollout actions</legend>
          <button
            type="button"
            disabled={busy || rollout?.phase !== 'paused'}
            onClick={() => act('Promote', 'promote')}
            aria-describedby="promote-help"
          >
            Promote
          </button>
          <button
            type="button"
            class="danger"
            disabled={busy || !active}
            onClick={() => act('Abort', 'abort')}
          >
            Abort
          </button>
          <span class="undo">
            <label for="undo-to">Undo to</label>
            <select
              id="undo-to"
              value={undoTo}
              onChange={(e) => setUndoTo((e.target as HTMLSelectElement).value)}
            >
              <option value="">the revision before</option>
              {earlier.map((n) => (
                <option key={n} value={String(n)}>
                  r{n}
                </option>
              ))}
            </select>
            <button
              type="button"
              disabled={busy || active || earlier.length === 0}
              onClick={() => act('Undo', 'undo', undoTo === '' ? {} : { revision: Number(undoTo) })}
            >
              Undo
            </button>
          </span>
          <p id="promote-help" class="muted">
            Promote goes on past a paused canary step; abort moves all traffic back to r
            {rollout?.from ?? view.revision}; undo rolls out an earlier revision's spec as a new revision.
          </p>
        </fieldset>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

// ------------------------------------------------------------------------------------------------ traffic

function TrafficPanel(props: { view: DeploymentView; revisions: Revision[]; canWrite: boolean }) {
  const { view, canWrite } = props;
  const current = new Map(view.traffic.map((t) => [t.revision, t.percent]));
  // Revisions offered: those with traffic, the newest, and the last few.
  const offered = [
    ...new Set([
      ...view.traffic.map((t) => t.revision),
      ...props.revisions.map((r) => r.number).slice(-4),
      view.revision,
    ]),
  ].sort((a, b) => a - b);
  const key = `${offered.join(',')}|${view.traffic.map((t) => `${t.revision}:${t.percent}`).join(',')}`;
  const [weights, setWeights] = useState<Record<number, string>>({});
  const [base, setBase] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (base !== key) {
    setBase(key);
    setWeights(Object.fromEntries(offered.map((r) => [r, String(current.get(r) ?? 0)])));
  }
  const values = offered.map((r) => ({ revision: r, text: weights[r] ?? '0' }));
  const invalid = values.filter((v) => !/^\d{1,3}$/.test(v.text.trim()) || Number(v.text) > 100);
  const sum = values.reduce((s, v) => s + (Number(v.text) || 0), 0);
  const problem =
    invalid.length > 0
      ? `Each weight is a whole number from 0 to 100 (check r${invalid.map((v) => v.revision).join(', r')}).`
      : sum !== 100
        ? `The weights add up to ${sum}%, not 100%.`
        : null;
  const rollingOut = rolloutUnderWay(view);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (problem) return;
    setBusy(true);
    setError(null);
    const traffic = values
      .map((v) => ({ revision: v.revision, percent: Number(v.text) }))
      .filter((t) => t.percent > 0);
    try {
      const updated = await api<DeploymentView>(
        'PUT',
        `/v1/deployments/${encodeURIComponent(view.name)}/traffic`,
        {
          traffic,
        },
      );
      putDeployment(updated);
      void refresh();
      announce(
        `Traffic set: ${split(traffic)}${updated.trafficTarget ? ' (waits for the revisions to be ready)' : ''}`,
      );
    } catch (err) {
      setError(describeError(err));
      announce(`Traffic change refused: ${describeError(err)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="traffic-title" class="panel">
      <h2 id="traffic-title">Traffic split</h2>
      <p>
        Now: <strong>{split(view.traffic)}</strong>
        {view.trafficTarget && (
          <>
            {' '}
            · asked for <strong data-testid="traffic-target">{split(view.trafficTarget.entries)}</strong>,
            waiting for its revisions' replicas
          </>
        )}
      </p>
      {canWrite && (
        <form onSubmit={submit} class="traffic" aria-describedby="traffic-help" data-testid="traffic-form">
          <fieldset disabled={busy}>
            <legend>Weights per revision (%)</legend>
            {values.map((v) => (
              <span class="weight" key={v.revision}>
                <label for={`weight-r${v.revision}`}>r{v.revision}</label>
                <input
                  id={`weight-r${v.revision}`}
                  type="number"
                  inputMode="numeric"
                  min={0}
                  max={100}
                  step={1}
                  value={v.text}
                  aria-invalid={invalid.includes(v) ? true : undefined}
                  onInput={(e) =>
                    setWeights({ ...weights, [v.revision]: (e.target as HTMLInputElement).value })
                  }
                />
              </span>
            ))}
            <output aria-live="polite" class={problem ? 'invalid' : 'valid'} data-testid="traffic-sum">
              {problem ?? `Total 100%`}
            </output>
            <button type="submit" disabled={problem !== null || rollingOut}>
              Apply split
            </button>
          </fieldset>
          <p id="traffic-help" class="muted">
            {rollingOut
              ? 'A rollout is in progress: promote or abort it before setting the split by hand.'
              : 'Weights must add up to 100. A revision without ready replicas gets them first; the split moves when they are ready.'}
          </p>
        </form>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

// ------------------------------------------------------------------------------------------------ replicas

function ReplicasPanel({ view, canWrite }: { view: DeploymentView; canWrite: boolean }) {
  const replicas = [...view.replicaStatus].sort((a, b) => (a.name < b.name ? -1 : 1));
  const [count, setCount] = useState(String(view.replicas));
  const [base, setBase] = useState(view.replicas);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (base !== view.replicas) {
    setBase(view.replicas);
    setCount(String(view.replicas));
  }
  const valid = /^\d{1,4}$/.test(count.trim()) && Number(count) <= 1000;
  const scale = async (e: Event) => {
    e.preventDefault();
    if (!valid) return;
    setBusy(true);
    setError(null);
    try {
      const updated = await api<DeploymentView>(
        'PUT',
        `/v1/deployments/${encodeURIComponent(view.name)}/replicas`,
        {
          replicas: Number(count),
        },
      );
      putDeployment(updated);
      void refresh();
      announce(`Scaled ${view.name} to ${updated.replicas} replica(s)`);
    } catch (err) {
      setError(describeError(err));
      announce(`Scale refused: ${describeError(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="replicas-title" class="panel">
      <h2 id="replicas-title">Replicas</h2>
      {canWrite && (
        <form class="toolbar" onSubmit={scale} data-testid="scale-form">
          <label for="replica-count">Replicas wanted</label>
          <input
            id="replica-count"
            type="number"
            inputMode="numeric"
            min={0}
            max={1000}
            step={1}
            value={count}
            aria-invalid={valid ? undefined : true}
            aria-describedby="scale-help"
            onInput={(e) => setCount((e.target as HTMLInputElement).value)}
          />
          <button type="submit" disabled={busy || !valid || Number(count) === view.replicas}>
            Scale
          </button>
          <span id="scale-help" class="muted">
            {view.scaling
              ? 'Autoscaled: the autoscaler moves it again within its bounds.'
              : 'Same revision, no rollout.'}
          </span>
        </form>
      )}
      <ErrorBox error={error} />
      {replicas.length === 0 ? (
        <p class="muted">No replicas run{view.replicas === 0 ? ' (scaled to zero)' : ''}.</p>
      ) : (
        <table class="list" data-testid="replicas">
          <thead>
            <tr>
              <th scope="col">Replica</th>
              <th scope="col">Revision</th>
              <th scope="col">State</th>
              <th scope="col">Runs on</th>
              <th scope="col">Restarts</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {replicas.map((r) => (
              <tr key={r.id}>
                <th scope="row">{r.name}</th>
                <td>r{r.revision}</td>
                <td>
                  <Badge tone={r.state === 'ready' ? 'ok' : r.state === 'starting' ? 'warn' : 'bad'}>
                    {r.state}
                  </Badge>
                  {r.exitCode !== undefined && ` (exit ${r.exitCode})`}
                </td>
                <td>{r.node ?? `this machine (${view.runtime})`}</td>
                <td>{r.restarts}</td>
                <td>{ago(r.startedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {view.lastCrash && (
        <details>
          <summary>
            Last crash: {view.lastCrash.replica} (r{view.lastCrash.revision}) exit{' '}
            {view.lastCrash.exitCode ?? '?'}, {ago(view.lastCrash.at)}
          </summary>
          <pre>{view.lastCrash.logTail.join('\n')}</pre>
        </details>
      )}
    </section>
  );
}

function RevisionsPanel({ view, revisions }: { view: DeploymentView; revisions: Revision[] }) {
  const status = new Map(view.revisionStatus.map((s) => [s.revision, s]));
  return (
    <section aria-labelledby="revisions-title" class="panel">
      <h2 id="revisions-title">Revisions</h2>
      <table class="list">
        <thead>
          <tr>
            <th scope="col">Revision</th>
            <th scope="col">Version</th>
            <th scope="col">Traffic</th>
            <th scope="col">Replicas (ready/wanted)</th>
            <th scope="col">Problem</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {[...revisions].reverse().map((r) => {
            const s = status.get(r.number);
            return (
              <tr key={r.number}>
                <th scope="row">
                  r{r.number}
                  {r.number === view.revision && ' (newest)'}
                </th>
                <td>
                  {r.spec.model}@{r.spec.version}
                </td>
                <td>{s ? `${s.percent}%` : '0%'}</td>
                <td>{s ? `${s.ready}/${s.desired}` : '0/0'}</td>
                <td>{s?.problem ? `${s.problem.reason}: ${s.problem.message}` : '—'}</td>
                <td>{dateTime(r.createdAt)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

function ConditionsPanel({ view }: { view: DeploymentView }) {
  if (view.conditions.length === 0) return null;
  return (
    <section aria-labelledby="conditions-title" class="panel">
      <h2 id="conditions-title">Conditions</h2>
      <ul class="conditions">
        {view.conditions.map((c) => (
          <li key={c.type}>
            <Badge tone={c.status === 'True' ? 'ok' : c.status === 'False' ? 'warn' : 'info'}>
              {c.type}: {c.status}
            </Badge>{' '}
            {c.reason} — {c.message} <span class="muted">(since {ago(c.since)})</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

// ------------------------------------------------------------------------------------------------ new revision

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A new revision, rolled out: another version of the model and/or one environment variable set, with the rolling
 * strategy or a canary whose steps each wait for promote (PATCH /v1/deployments/{name}).
 */
function NewRevisionPanel({ view }: { view: DeploymentView }) {
  const [versions, setVersions] = useState<string[]>([]);
  const [version, setVersion] = useState(view.versionRef);
  const [envName, setEnvName] = useState('');
  const [envValue, setEnvValue] = useState('');
  const [kind, setKind] = useState<'rolling' | 'canary'>('canary');
  const [steps, setSteps] = useState('20, 50');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    get<Model>(`/v1/models/${encodeURIComponent(view.model)}`).then(
      (m) => setVersions([...Object.keys(m.aliases), ...m.versions.map((v) => v.version)]),
      () => setVersions([view.versionRef]),
    );
  }, [view.model]);
  const percents = steps
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const problem =
    envName !== '' && !ENV_NAME.test(envName)
      ? 'A variable name is letters, digits and _, not starting with a digit.'
      : kind === 'canary' &&
          (percents.length === 0 || percents.some((p) => !/^\d{1,3}$/.test(p) || +p < 1 || +p > 100))
        ? 'Canary steps are percentages from 1 to 100, separated by commas.'
        : version === view.versionRef && (envName === '' || view.env[envName] === envValue)
          ? 'Pick another version or set a variable: the same spec makes no new revision.'
          : null;
  const rollingOut = rolloutUnderWay(view);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (problem) return;
    setBusy(true);
    setError(null);
    const strategy: Strategy =
      kind === 'rolling'
        ? { kind: 'rolling' }
        : { kind: 'canary', steps: percents.map((p) => ({ percent: Number(p) })) };
    try {
      const updated = await api<DeploymentView>('PATCH', `/v1/deployments/${encodeURIComponent(view.name)}`, {
        ...(version === view.versionRef ? {} : { version }),
        ...(envName === '' ? {} : { env: { ...view.env, [envName]: envValue } }),
        strategy,
      });
      putDeployment(updated);
      void refresh();
      announce(`Rolling out revision ${updated.revision} (${kind})`);
    } catch (err) {
      setError(describeError(err));
      announce(`Roll-out refused: ${describeError(err)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="new-revision-title" class="panel">
      <h2 id="new-revision-title">Roll out a new revision</h2>
      <form class="new-revision" onSubmit={submit} data-testid="new-revision">
        <fieldset disabled={busy}>
          <legend class="sr-only">What changes, and how it rolls out</legend>
          <span class="field">
            <label for="nr-version">Version</label>
            <select
              id="nr-version"
              value={version}
              onChange={(e) => setVersion((e.target as HTMLSelectElement).value)}
            >
              {[...new Set([view.versionRef, ...versions])].map((v) => (
                <option key={v} value={v}>
                  {v}
                  {v === view.versionRef ? ' (now)' : ''}
                </option>
              ))}
            </select>
          </span>
          <span class="field">
            <label for="nr-env-name">Set variable</label>
            <input
              id="nr-env-name"
              placeholder="NAME"
              value={envName}
              spellcheck={false}
              onInput={(e) => setEnvName((e.target as HTMLInputElement).value.trim())}
            />
          </span>
          <span class="field">
            <label for="nr-env-value">to</label>
            <input
              id="nr-env-value"
              value={envValue}
              onInput={(e) => setEnvValue((e.target as HTMLInputElement).value)}
            />
          </span>
          <span class="field">
            <label for="nr-strategy">Strategy</label>
            <select
              id="nr-strategy"
              value={kind}
              onChange={(e) => setKind((e.target as HTMLSelectElement).value as 'rolling' | 'canary')}
            >
              <option value="canary">canary</option>
              <option value="rolling">rolling</option>
            </select>
          </span>
          {kind === 'canary' && (
            <span class="field">
              <label for="nr-steps">Canary steps (%)</label>
              <input
                id="nr-steps"
                value={steps}
                aria-describedby="nr-help"
                onInput={(e) => setSteps((e.target as HTMLInputElement).value)}
              />
            </span>
          )}
          <button type="submit" disabled={problem !== null || rollingOut}>
            Roll out
          </button>
        </fieldset>
        <p id="nr-help" class={problem ? 'muted invalid' : 'muted'} aria-live="polite">
          {rollingOut
            ? 'A rollout is in progress: promote or abort it first.'
            : (problem ??
              (kind === 'canary'
                ? 'Each canary step waits for Promote; Abort goes back.'
                : 'Replica by replica.'))}
        </p>
      </form>
      <ErrorBox error={error} />
    </section>
  );
}
