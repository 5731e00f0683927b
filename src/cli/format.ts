/**
 * Pure helpers of the platform commands: parsing flag values (durations, sizes, CPU, env pairs, traffic
 * splits, canary steps) and formatting what the control-plane API returns (tables, ages, traffic, rollouts,
 * log lines). No I/O; a bad value throws a UsageError naming the flag or token, which the command turns into
 * exit code 2.
 */

import { phasesLine } from '../control/cold-start.ts';
import type {
  AuditEntry,
  AuditVerification,
  EventRecord,
  ModelRecord,
  SecretRecord,
  StoredRevision,
  TokenRecord,
  TrafficEntry,
} from '../control/index.ts';
import type {
  DeploymentView,
  DescribeView,
  LogLine,
  ReplicaView,
  RevisionProblem,
  RolloutView,
  StrategyInput,
} from '../control/views.ts';
import { parseDuration } from '../spec/duration.ts';
import { parseCpu } from '../spec/quantity.ts';

/** A value on the command line that is not allowed; the CLI prints it and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const reason = (error: unknown) => {
  const e = error as { message?: string; hint?: string };
  return `${e.message ?? String(error)}${e.hint ? `; ${e.hint}` : ''}`;
};

// ---------------------------------------------------------------------------------------------- parsing

/** "30s", "5m", "500ms", "1m30s" -> milliseconds (> 0 unless `allowZero`). */
export function parseDurationFlag(flag: string, text: string, allowZero = false): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (error) {
    throw new UsageError(`${flag}: ${reason(error)}`);
  }
  if (ms === 0 && !allowZero) throw new UsageError(`${flag}: must be longer than 0, got "${text}"`);
  return ms;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  ki: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * A size as `docker run --memory` takes it: a number and a unit b, k, m, g, t (powers of 1024, any case,
 * "Mi"/"MiB" too), e.g. 512m, 2g, 1.5G. A bare number is bytes.
 */
export function parseSizeFlag(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)$/.exec(text.trim());
  const factor = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    throw new UsageError(
      `${flag}: "${text}" is not a size; use a number with a unit b, k, m, g or t (1024s), e.g. 512m or 2g`,
    );
  }
  const bytes = Math.round(Number(match[1]) * factor);
  if (bytes <= 0 || !Number.isSafeInteger(bytes)) {
    throw new UsageError(`${flag}: "${text}" must be more than 0 bytes and at most 8 PiB`);
  }
  return bytes;
}

/** CPU cores: "2", "0.5", "500m". */
export function parseCpuFlag(flag: string, text: string): number {
  try {
    return parseCpu(text);
  } catch (error) {
    throw new UsageError(`${flag}: ${reason(error)}`);
  }
}

/** A whole number in [min, max]. */
export function parseIntFlag(flag: string, text: string, min: number, max: number): number {
  const n = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/** `K=V` pairs (the value may contain "="; it may be empty) into an object; later keys win. */
export function parseEnvPairs(flag: string, pairs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq === -1 ? pair : pair.slice(0, eq);
    if (eq === -1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new UsageError(
        `${flag} "${pair}": write NAME=value, where NAME is letters, digits and "_" not starting with a digit`,
      );
    }
    env[key] = pair.slice(eq + 1);
  }
  return env;
}

/** "10,50,100" (+ a pause for every step, else each step waits for `ferry rollout promote`) -> a canary. */
export function parseCanary(flag: string, text: string, pauseMs?: number): StrategyInput {
  const parts = text.split(',').map((p) => p.trim());
  const steps: Array<{ percent: number; pauseMs?: number }> = [];
  let previous = 0;
  for (const part of parts) {
    const percent = /^\d+$/.test(part) ? Number(part) : Number.NaN;
    if (!Number.isInteger(percent) || percent < 1 || percent > 100) {
      throw new UsageError(`${flag} "${text}": step "${part}" is not a whole percent from 1 to 100`);
    }
    if (percent <= previous) {
      throw new UsageError(`${flag} "${text}": steps must rise (${percent} follows ${previous})`);
    }
    previous = percent;
    steps.push(pauseMs === undefined ? { percent } : { percent, pauseMs });
  }
  return { kind: 'canary', steps };
}

/**
 * `r2=90 r3=10` (or `2=90`) for live traffic, plus `r3=20` entries of --shadow (percent of requests mirrored).
 * Checks the syntax only; the server checks that revisions exist and live shares sum to 100.
 */
export function parseTrafficArgs(live: readonly string[], shadow: readonly string[] = []): TrafficEntry[] {
  const entries = new Map<number, TrafficEntry>();
  const parse = (token: string, what: string) => {
    const match = /^r?(\d+)=(\d+)%?$/.exec(token.trim());
    if (!match) {
      throw new UsageError(
        `${what} "${token}" is not <revision>=<percent>; write e.g. r2=90 r3=10${what === '--shadow' ? ' (--shadow r3=20)' : ''}`,
      );
    }
    const revision = Number(match[1]);
    const percent = Number(match[2]);
    if (revision < 1) throw new UsageError(`${what} "${token}": revisions start at 1`);
    if (percent > 100) throw new UsageError(`${what} "${token}": the percent must be from 0 to 100`);
    return { revision, percent };
  };
  for (const token of live) {
    const { revision, percent } = parse(token, 'traffic');
    if (entries.has(revision)) {
      throw new UsageError(`traffic "${token}": revision ${revision} is given twice`);
    }
    entries.set(revision, { revision, percent });
  }
  for (const token of shadow) {
    const { revision, percent } = parse(token, '--shadow');
    const entry = entries.get(revision);
    if (entry?.shadow !== undefined)
      throw new UsageError(`--shadow "${token}": revision ${revision} is given twice`);
    entries.set(revision, { ...(entry ?? { revision, percent: 0 }), shadow: percent });
  }
  return [...entries.values()];
}

// ---------------------------------------------------------------------------------------------- formatting

/** Columns padded to their widest cell, two spaces apart, no trailing spaces. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** Age the kubectl way: 45s, 12m, 3h, 5d (two units while short: 2m30s, 5h12m). */
export function age(since: number, now: number): string {
  const s = Math.max(0, Math.floor((now - since) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 10) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** "r2 90% r3 10%" (largest share first), plus "r3 shadow 20%"; "-" when empty. */
export function trafficSummary(traffic: readonly TrafficEntry[]): string {
  const live = traffic
    .filter((t) => t.percent > 0)
    .sort((a, b) => b.percent - a.percent || a.revision - b.revision)
    .map((t) => `r${t.revision} ${t.percent}%`);
  const shadow = traffic
    .filter((t) => (t.shadow ?? 0) > 0)
    .sort((a, b) => a.revision - b.revision)
    .map((t) => `r${t.revision} shadow ${t.shadow}%`);
  const all = [...live, ...shadow];
  return all.length === 0 ? '-' : all.join(' ');
}

/** "ready/desired" over all replicas of the deployment. */
export function readySummary(view: Pick<DeploymentView, 'replicas' | 'replicaStatus'>): string {
  const ready = view.replicaStatus.filter((r) => r.state === 'ready').length;
  return `${ready}/${view.replicas}`;
}

function strategyName(strategy: StrategyInput): string {
  return strategy.kind === 'canary'
    ? `canary ${strategy.steps.map((s) => s.percent).join(',')}`
    : `rolling${strategy.maxSurge === undefined ? '' : ` (max surge ${strategy.maxSurge})`}`;
}

/** Short form for tables: "r1->r2 50% paused"; "-" when none is running (a finished one is not shown). */
export function rolloutCell(rollout: RolloutView | null): string {
  if (!rollout || rollout.phase === 'succeeded' || rollout.phase === 'aborted') return '-';
  return `r${rollout.from}->r${rollout.to} ${rollout.percent}% ${rollout.phase}`;
}

/** One line: "rollout r1 -> r2 (canary 10,50,100, step 2/3): paused at 50%". */
export function rolloutLine(rollout: RolloutView): string {
  const step =
    rollout.strategy.kind === 'canary'
      ? `, step ${Math.min(rollout.step + 1, rollout.strategy.steps.length)}/${rollout.strategy.steps.length}`
      : '';
  const where =
    rollout.phase === 'succeeded' || rollout.phase === 'aborted'
      ? rollout.phase
      : `${rollout.phase} at ${rollout.percent}%`;
  return `rollout r${rollout.from} -> r${rollout.to} (${strategyName(rollout.strategy)}${step}): ${where}`;
}

export function strategySummary(strategy: StrategyInput): string {
  if (strategy.kind === 'rolling') return strategyName(strategy);
  const steps = strategy.steps
    .map((s) => `${s.percent}%${s.pauseMs === undefined ? ' (promote)' : ` (${formatMs(s.pauseMs)})`}`)
    .join(' -> ');
  return `canary ${steps}`;
}

/** 30000 -> "30s", 90000 -> "1m30s", 500 -> "500ms". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number(s.toFixed(3))}s`;
  const m = Math.floor(s / 60);
  const rest = Number((s - m * 60).toFixed(3));
  return rest === 0 ? `${m}m` : `${m}m${rest}s`;
}

/** Bytes in binary units: 536870912 -> "512Mi". */
export function formatSize(bytes: number | null): string {
  if (bytes === null) return 'unlimited';
  for (const [unit, factor] of [
    ['Ti', 1024 ** 4],
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ] as const) {
    if (bytes >= factor) {
      const n = bytes / factor;
      return `${Number.isInteger(n) ? n : n.toFixed(1)}${unit}`;
    }
  }
  return `${bytes}B`;
}

export function deploymentsTable(views: readonly DeploymentView[], now: number): string {
  const status = (d: DeploymentView) => {
    // A failed revision that is wanted, or the newest one (whose rollout it aborted), is the status to see.
    const failed = (d.revisionStatus ?? []).find(
      (s) => s.problem?.fatal && (s.desired > 0 || s.percent > 0 || s.revision === d.revision),
    );
    if (failed) return `r${failed.revision} failed: ${failed.problem!.reason}`;
    // The newest revision's rollout was aborted (the reason is kept with the rollout, across restarts).
    if (d.rollout?.phase === 'aborted' && d.rollout.to === d.revision) return `r${d.revision} aborted`;
    return rolloutCell(d.rollout);
  };
  return table(
    ['NAME', 'MODEL', 'VERSION', 'REVISION', 'READY', 'TRAFFIC', 'ACCESS', 'STATUS', 'AGE'],
    views.map((d) => [
      d.name,
      d.model,
      d.versionRef,
      `r${d.revision}`,
      readySummary(d),
      trafficSummary(d.traffic),
      d.public ? 'public' : 'private',
      status(d),
      age(d.createdAt, now),
    ]),
  );
}

export function modelsTable(models: readonly ModelRecord[], now: number): string {
  return table(
    ['NAME', 'VERSIONS', 'LATEST', 'ALIASES', 'AGE'],
    models.map((m) => {
      const latest = [...m.versions].sort((a, b) => b.createdAt - a.createdAt)[0];
      const aliases = Object.entries(m.aliases)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([alias, version]) => `${alias}=${version}`);
      return [
        m.name,
        String(m.versions.length),
        latest?.version ?? '-',
        aliases.length === 0 ? '-' : aliases.join(','),
        age(m.createdAt, now),
      ];
    }),
  );
}

/** Where a revision's replicas come from: its image, else its artifact directory. */
/** The image, else the artifact (by digest when the directory is in the platform's artifact store). */
export function artifactOf(spec: { image: string | null; artifactDir: string | null }): string {
  if (spec.image) return spec.image;
  if (!spec.artifactDir) return '-';
  const digest = /sha256[/\\]([0-9a-f]{64})$/.exec(spec.artifactDir);
  return digest ? `artifact sha256:${digest[1]}` : `dir:${spec.artifactDir}`;
}

/** Image IDs and digests cut to 12 hex for tables: sha256:21983112ca7d, reg/iris@sha256:0123456789ab. */
export function shortImage(ref: string): string {
  return ref.replace(/sha256:([0-9a-f]{12})[0-9a-f]{52}/g, 'sha256:$1');
}

export function revisionsTable(
  revisions: readonly StoredRevision[],
  traffic: readonly TrafficEntry[],
  now: number,
): string {
  return table(
    ['REVISION', 'VERSION', 'SPEC-HASH', 'TRAFFIC', 'ARTIFACT', 'AGE'],
    [...revisions]
      .sort((a, b) => b.number - a.number)
      .map((r) => {
        const t = traffic.filter((e) => e.revision === r.number);
        return [
          `r${r.number}`,
          r.versionRef === r.spec.version ? r.spec.version : `${r.spec.version} (${r.versionRef})`,
          r.specHash.slice(0, 12),
          t.length === 0 ? '-' : trafficSummary(t),
          shortImage(artifactOf(r.spec)),
          age(r.createdAt, now),
        ];
      }),
  );
}

/** Replicas; a NODE column when they run on several machines (swarm). */
export function replicasTable(replicas: readonly ReplicaView[], now: number): string {
  const nodes = replicas.some((r) => r.node !== undefined);
  return table(
    ['NAME', 'REVISION', 'STATE', ...(nodes ? ['NODE'] : []), 'RESTARTS', 'EXIT', 'URL', 'AGE'],
    [...replicas]
      .sort((a, b) => a.revision - b.revision || a.index - b.index)
      .map((r) => [
        r.name,
        `r${r.revision}`,
        r.state,
        ...(nodes ? [r.node ?? '-'] : []),
        String(r.restarts),
        r.exitCode === undefined ? '-' : String(r.exitCode),
        r.url || '-',
        age(r.startedAt, now),
      ]),
  );
}

export function tokensTable(tokens: readonly TokenRecord[], now: number): string {
  return table(
    ['NAME', 'ROLE', 'SCOPE', 'EXPIRES', 'AGE'],
    tokens.map((t) => [
      t.name,
      t.role,
      t.deployment === null ? (t.role === 'invoker' ? 'all deployments' : '-') : `deployment ${t.deployment}`,
      t.expiresAt === null ? 'never' : t.expiresAt <= now ? 'expired' : `in ${age(now, t.expiresAt)}`,
      age(t.createdAt, now),
    ]),
  );
}

/** Audit records, oldest first: SEQ TIME ACTOR ACTION OBJECT OUTCOME SOURCE REQUEST. */
export function auditTable(records: readonly AuditEntry[]): string {
  return table(
    ['SEQ', 'TIME', 'TENANT', 'ACTOR', 'ACTION', 'OBJECT', 'OUTCOME', 'SOURCE', 'REQUEST'],
    [...records]
      .sort((a, b) => a.seq - b.seq)
      .map((r) => [
        String(r.seq),
        r.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
        r.tenant,
        r.role === undefined ? r.actor : `${r.actor} (${r.role})`,
        r.action,
        r.object,
        r.outcome === 'allowed'
          ? `allowed ${r.status ?? ''}`.trimEnd()
          : `${r.outcome} ${r.status ?? ''}${r.code ? ` ${r.code}` : ''}`,
        r.source,
        r.requestId,
      ]),
  );
}

/** What `ferry audit --verify` prints: the verdict first, then the heads. */
export function auditVerifyText(check: AuditVerification): string {
  const lines: string[] = [];
  if (check.ok) lines.push(`audit log intact: ${check.checked} records checked`);
  else
    lines.push(
      `audit log BROKEN at record ${check.brokenAt?.seq}: ${check.brokenAt?.reason ?? 'no reason given'}`,
      `records 1 to ${check.checked} are intact`,
    );
  lines.push(`head: record ${check.head.seq} ${check.head.hash}`);
  lines.push(
    check.kept
      ? `kept beside the database: record ${check.kept.seq} ${check.kept.hash}`
      : 'kept beside the database: none',
  );
  if (check.warning) lines.push(`warning: ${check.warning}`);
  return `${lines.join('\n')}\n`;
}

/** Names and ages only: the API never returns a value. */
export function secretsTable(secrets: readonly SecretRecord[], now: number): string {
  return table(
    ['NAME', 'VERSION', 'CREATED', 'UPDATED'],
    [...secrets]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((s) => [s.name, String(s.version), age(s.createdAt, now), age(s.updatedAt, now)]),
  );
}

export function eventsTable(events: readonly EventRecord[], now: number): string {
  return table(
    ['AGE', 'TYPE', 'REASON', 'DEPLOYMENT', 'MESSAGE'],
    [...events]
      .sort((a, b) => a.at - b.at || a.id - b.id)
      .map((e) => [age(e.at, now), e.type, e.reason, e.deployment ?? '-', e.message]),
  );
}

/** `[r2 iris-2-0] line`; a stderr line is marked `[r2 iris-2-0 stderr]`. */
export function formatLogLine(line: LogLine): string {
  return `[r${line.revision} ${line.replica}${line.stream === 'stderr' ? ' stderr' : ''}] ${line.line}`;
}

/** Status of a deployment as one line while waiting: "r2: 1/2 ready; rollout r1 -> r2 ...: progressing at 50%". */
export function progressLine(view: DeploymentView, target: number): string {
  const want = view.replicas;
  const ready = view.replicaStatus.filter((r) => r.revision === target && r.state === 'ready').length;
  const parts = [`r${target}: ${ready}/${want} ready`];
  if (view.rollout && view.rollout.to === target) parts.push(rolloutLine(view.rollout));
  const problem = revisionProblem(view, target);
  if (problem) parts.push(`${problem.reason}: ${problem.message}`);
  const crash = view.conditions.find((c) => c.type === 'Ready' && c.reason === 'CrashLoopBackOff');
  if (crash && !problem) parts.push(crash.message);
  return parts.join('; ');
}

/** What keeps revision `revision` from serving, if anything. */
export function revisionProblem(view: DeploymentView, revision: number): RevisionProblem | null {
  return view.revisionStatus?.find((r) => r.revision === revision)?.problem ?? null;
}

export type WaitOutcome = 'waiting' | 'done' | 'failed';

/**
 * Whether revision `target` of a deployment is done rolling out: its rollout succeeded (or, with no rollout
 * towards it, all its replicas are ready), or failed: its rollout was aborted.
 */
export function rolloutOutcome(view: DeploymentView, target: number): WaitOutcome {
  // A revision that failed, or waits for something only a person can do (a secret), will not get there.
  const problem = revisionProblem(view, target);
  if (problem && (problem.fatal || problem.reason === 'SecretMissing')) return 'failed';
  const rollout = view.rollout;
  if (rollout && rollout.to === target) {
    if (rollout.phase === 'aborted') return 'failed';
    if (rollout.phase !== 'succeeded') return 'waiting';
  }
  const ready = view.replicaStatus.filter((r) => r.revision === target && r.state === 'ready').length;
  const serving = view.traffic.some((t) => t.revision === target && t.percent === 100);
  return ready >= view.replicas && (serving || view.replicas === 0) ? 'done' : 'waiting';
}

/** `ferry describe`: everything the API says about one deployment, in sections. */
export function describeText(view: DescribeView, now: number): string {
  const out: string[] = [];
  const field = (label: string, value: string) => out.push(`${`${label}:`.padEnd(12)} ${value}`);
  const indent = (text: string) =>
    text
      .trimEnd()
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n');
  const current = view.revisions.find((r) => r.number === view.revision);
  const ready = view.replicaStatus.filter((r) => r.state === 'ready').length;
  field('Name', view.name);
  field('Model', view.model);
  field(
    'Version',
    current && current.spec.version !== view.versionRef
      ? `${view.versionRef} (now ${current.spec.version})`
      : view.versionRef,
  );
  field('Revision', `r${view.revision}${current ? ` (spec ${current.specHash.slice(0, 12)})` : ''}`);
  if (current) field('Artifact', artifactOf(current.spec));
  field('Replicas', `${view.replicas} desired, ${ready} ready, ${view.replicaStatus.length} running`);
  // What replicas of the newest revision get: the deployment's settings over its ferry.yaml over defaults.
  const effective = current?.spec ?? {
    resources: view.resources,
    env: view.env,
    secretRefs: view.secretRefs,
  };
  const r = effective.resources;
  field(
    'Resources',
    `cpu ${r.cpu === null ? 'unlimited' : r.cpu}, memory ${formatSize(r.memoryBytes)}${r.gpu > 0 ? `, gpu ${r.gpu}` : ''} per replica (${
      view.runtime === 'process'
        ? 'process runtime: not enforced; threads follow the cpu limit'
        : 'enforced by the Docker engine'
    })`,
  );
  const env = Object.entries(effective.env).sort(([a], [b]) => a.localeCompare(b));
  field('Env', env.length === 0 ? '-' : env.map(([k, v]) => `${k}=${v}`).join(' '));
  field('Secrets', effective.secretRefs.length === 0 ? '-' : [...effective.secretRefs].sort().join(', '));
  field('Serving', Object.keys(view.serving).length === 0 ? 'defaults' : JSON.stringify(view.serving));
  field('Strategy', strategySummary(view.strategy));
  field('Endpoint', view.endpoint);
  field(
    'Access',
    view.public
      ? 'public (anyone who reaches the gateway)'
      : 'private (an invoker token of the tenant, or a key of this deployment)',
  );
  if (view.tenant !== undefined && view.tenant !== 'default') field('Tenant', view.tenant);
  if (view.scaling)
    field(
      'Autoscaling',
      `${scalingSummary(view.scaling)}; holds up to ${view.scaling.maxHeld} requests ${view.scaling.maxHeldWaitMs / 1000} s for a replica (ferry events shows each decision)`,
    );
  const limits = (view.revisionStatus ?? []).filter((s) => s.replicaLimit !== null && s.percent > 0);
  if (view.scaling && limits.length > 0)
    field(
      'Replica limit',
      `${limits.map((s) => `r${s.revision} ${s.replicaLimit}`).join(', ')} requests at once (as its replicas report; the gateway holds more rather than have them shed)`,
    );
  field('Created', `${new Date(view.createdAt).toISOString()} (${age(view.createdAt, now)} ago)`);
  field('Updated', `${new Date(view.updatedAt).toISOString()} (${age(view.updatedAt, now)} ago)`);
  out.push('', `Traffic: ${trafficSummary(view.traffic)}`);
  if (view.trafficTarget)
    out.push(
      `  asked for ${age(view.trafficTarget.requestedAt, now)} ago: ${trafficSummary(view.trafficTarget.entries)}; it moves once those revisions have ready replicas`,
    );
  if (view.rollout) {
    out.push(`Rollout: ${rolloutLine(view.rollout).replace(/^rollout /, '')}`);
    out.push(`  ${view.rollout.message}`);
    out.push(
      `  started ${age(view.rollout.startedAt, now)} ago, updated ${age(view.rollout.updatedAt, now)} ago`,
    );
  } else {
    out.push('Rollout: none');
  }
  out.push('', 'Revisions:', indent(revisionsTable(view.revisions, view.traffic, now)));
  const problems = (view.revisionStatus ?? []).filter((s) => s.problem !== null);
  for (const s of problems)
    out.push(
      `  r${s.revision} ${s.problem!.fatal ? 'FAILED' : 'waiting'} (${s.problem!.reason}, ${age(s.problem!.since, now)} ago): ${s.problem!.message}`,
    );
  out.push(
    '',
    'Replicas:',
    view.replicaStatus.length === 0 ? '  none' : indent(replicasTable(view.replicaStatus, now)),
  );
  out.push(
    '',
    'Conditions:',
    view.conditions.length === 0
      ? '  none'
      : indent(
          table(
            ['TYPE', 'STATUS', 'REASON', 'SINCE', 'MESSAGE'],
            view.conditions.map((c) => [c.type, c.status, c.reason, age(c.since, now), c.message]),
          ),
        ),
  );
  if (view.lastCrash) {
    const c = view.lastCrash;
    out.push(
      '',
      `Last crash: ${c.replica} (r${c.revision}) exited ${c.exitCode === undefined ? 'with an unknown code' : `with code ${c.exitCode}`} ${age(c.at, now)} ago`,
      ...c.logTail.map((l) => `  | ${l}`),
    );
  }
  const cold = view.lastColdStart;
  if (cold) {
    out.push(
      '',
      `Last cold start: r${cold.revision} (${cold.replica}) ${age(cold.at, now)} ago: held requests released ${(cold.totalMs / 1000).toFixed(2)} s after the decision to start it from zero (${cold.held} held)`,
      `  ${phasesLine(cold)}`,
    );
  } else {
    // Since a restart of the control plane only its event is left.
    const event = view.events
      .filter((e) => e.reason === 'ColdStart')
      .sort((a, b) => b.at - a.at || b.id - a.id)[0];
    if (event) out.push('', `Last cold start: ${age(event.at, now)} ago: ${event.message}`);
  }
  const events = [...view.events].sort((a, b) => a.at - b.at || a.id - b.id).slice(-20);
  out.push('', 'Events:', events.length === 0 ? '  none' : indent(eventsTable(events, now)));
  return `${out.join('\n')}\n`;
}

/** "0-4 replicas on concurrency, target derived at 70%, to zero after 30 s idle". */
export function scalingSummary(sc: NonNullable<DeploymentView['scaling']>): string {
  return `${sc.minReplicas}-${sc.maxReplicas} replicas on ${sc.metric}, target ${sc.target ?? 'derived'} at ${Math.round(sc.targetUtilization * 100)}%${sc.minReplicas === 0 ? `, to zero after ${sc.scaleToZeroGraceMs / 1000} s idle` : ''}`;
}
