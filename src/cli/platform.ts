/**
 * Platform commands that read and steer a running Ferry through its control-plane API (ControlClient only):
 * get, describe, rollout, traffic, scale, delete, logs, events, models, token. Each parses its arguments,
 * makes one or a few API calls and prints a table or, with -o json, the API's JSON as it came.
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { ControlClient, DeploymentView, TokenRole, TrafficEntry } from '../control/index.ts';
import { FerryError } from '../core/errors.ts';
import { connect } from './context.ts';
import {
  deploymentsTable,
  describeText,
  eventsTable,
  formatLogLine,
  modelsTable,
  parseDurationFlag,
  parseIntFlag,
  parseTrafficArgs,
  progressLine,
  replicasTable,
  revisionProblem,
  revisionsTable,
  rolloutLine,
  rolloutOutcome,
  table,
  tokensTable,
  trafficSummary,
  UsageError,
} from './format.ts';
import { action, asRun, cliCommand, EXIT_USAGE } from './output.ts';

// ---------------------------------------------------------------------------------------------- shared

export interface ConnectionFlags {
  api?: string;
  token?: string;
  tenant?: string;
}

export interface OutputFlags extends ConnectionFlags {
  output: 'table' | 'json';
}

/** Adds --api and --token (the token is read, never printed). */
export function withConnection(command: Command): Command {
  return command
    .option('--api <url>', 'control-plane API URL (FERRY_API_URL, else the `ferry up` context)')
    .option('--token <token>', 'API token (FERRY_TOKEN, else the `ferry up` context)')
    .option('--tenant <name>', "act in this tenant (FERRY_TENANT; default: the token's own)");
}

/** Adds --api, --token and -o/--output table|json. */
export function withOutput(command: Command): Command {
  return withConnection(command).addOption(
    new Option('-o, --output <format>', 'table, or json: the API response as is')
      .choices(['table', 'json'])
      .default('table'),
  );
}

/** A commander option parser over a pure one: a UsageError prints `error: ...` and exits 2. */
export function flag<T>(parse: (value: string, previous: T) => T): (value: string, previous: T) => T {
  return (value, previous) => {
    try {
      return parse(value, previous);
    } catch (error) {
      if (error instanceof UsageError) {
        process.stderr.write(`error: ${error.message}\n`);
        process.exit(EXIT_USAGE);
      }
      throw error;
    }
  };
}

/** action() of output.ts, plus: a UsageError raised while running exits 2. */
export function run<A extends unknown[]>(body: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return action(async (...args: A) => {
    try {
      await body(...args);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      process.stderr.write(`error: ${error.message}\n`);
      process.exitCode = EXIT_USAGE;
    }
  });
}

/**
 * What a command prints for people. Messages from the platform name commands as `ferry <command>`; they are
 * said as this user runs the CLI (asRun). JSON (printJson) goes out as the API sent it.
 */
export const out = (text: string): void => {
  const said = asRun(text);
  process.stdout.write(said.endsWith('\n') ? said : `${said}\n`);
};
export const say = (line: string): void => {
  process.stderr.write(`${asRun(line)}\n`);
};

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res) => {
    const timer = setTimeout(res, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      res();
    });
  });

/** What a poll of a deployment makes of one view: a line to show, and whether it is over (or why it failed). */
interface Judged {
  line: string;
  done?: boolean;
  error?: FerryError;
}

/**
 * Reads a deployment every 500 ms until `judge` says it is done (resolves with the view) or failed (throws its
 * error), printing a line whenever it changes; past `timeoutMs`, throws `late(line, view)`.
 */
async function pollDeployment(
  client: ControlClient,
  name: string,
  timeoutMs: number,
  judge: (view: DeploymentView) => Judged,
  late: (line: string, view: DeploymentView) => FerryError,
  progress: (line: string) => void,
): Promise<DeploymentView> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const view = await client.getDeployment(name);
    const { line, done, error } = judge(view);
    if (line !== last) progress(line);
    last = line;
    if (error) throw error;
    if (done) return view;
    if (Date.now() >= deadline) throw late(line, view);
    await sleep(Math.min(500, Math.max(0, deadline - Date.now())));
  }
}

/**
 * Waits until revision `target` of a deployment is done per `outcome`, printing progress. Failed ->
 * FerryError with the revision's problem (or the rollout's message); over `timeoutMs` ->
 * FERRY_DEADLINE_EXCEEDED with the last status and crash.
 */
export function waitFor(
  client: ControlClient,
  name: string,
  target: number,
  timeoutMs: number,
  outcome: (view: DeploymentView) => 'waiting' | 'done' | 'failed',
  progress: (line: string) => void = say,
): Promise<DeploymentView> {
  const judge = (view: DeploymentView): Judged => {
    const line = progressLine(view, target);
    const state = outcome(view);
    if (state !== 'failed') return { line, done: state === 'done' };
    const problem = revisionProblem(view, target);
    return {
      line,
      error: new FerryError(
        'FERRY_CONFLICT',
        problem
          ? `Revision ${target} of ${name} ${problem.fatal ? 'failed' : 'cannot start'} (${problem.reason}): ${problem.message}`
          : `The rollout of ${name} to revision ${target} failed: ${view.rollout?.message ?? line}`,
        {
          hint:
            problem?.reason === 'SecretMissing'
              ? `Set the secret (${cliCommand()} secrets set <name>); the replicas start then. ${cliCommand()} describe ${name} shows the state.`
              : `See why: ${cliCommand()} describe ${name}; ${cliCommand()} logs ${name} --revision ${target}`,
        },
      ),
    };
  };
  const late = (line: string, view: DeploymentView) => {
    const crash = view.lastCrash
      ? `; last crash of ${view.lastCrash.replica} (exit ${view.lastCrash.exitCode ?? '?'}):\n${view.lastCrash.logTail.map((l) => `  | ${l}`).join('\n')}`
      : '';
    return new FerryError(
      'FERRY_DEADLINE_EXCEEDED',
      `Gave up waiting for ${name} revision ${target} after ${Math.round(timeoutMs / 1000)} s: ${line}${crash}`,
      {
        hint: `It may still finish: ${cliCommand()} rollout status ${name} --watch. Raise --timeout, or look at ${cliCommand()} describe ${name}.`,
      },
    );
  };
  return pollDeployment(client, name, timeoutMs, judge, late, progress);
}

/** Waits until the split asked for is in effect; it was cancelled (a revision failed) -> FerryError. */
function waitForSplit(
  client: ControlClient,
  name: string,
  entries: TrafficEntry[],
  timeoutMs: number,
): Promise<DeploymentView> {
  const asked = trafficSummary(entries);
  const judge = (view: DeploymentView): Judged => {
    const waiting = view.revisionStatus
      .filter((r) => entries.some((e) => e.revision === r.revision && e.percent > 0))
      .map((r) => `r${r.revision} ${r.ready}/${r.desired} ready${r.problem ? ` (${r.problem.reason})` : ''}`)
      .join(', ');
    const line = `moving to ${asked}: ${waiting}`;
    if (view.trafficTarget) return { line };
    if (trafficSummary(view.traffic) === asked) return { line, done: true };
    const failed = view.revisionStatus.find(
      (r) => r.problem?.fatal && entries.some((e) => e.revision === r.revision),
    );
    return {
      line,
      error: new FerryError(
        'FERRY_CONFLICT',
        `The split ${asked} of ${name} was not applied${failed ? `: revision ${failed.revision} failed (${failed.problem!.reason}): ${failed.problem!.message}` : ''}; traffic stays ${trafficSummary(view.traffic)}`,
        { hint: `See ${cliCommand()} describe ${name} and ${cliCommand()} events --deployment ${name}.` },
      ),
    };
  };
  const late = (line: string) =>
    new FerryError('FERRY_DEADLINE_EXCEEDED', `Gave up waiting for the split ${asked} of ${name}: ${line}`, {
      hint: `It still moves once the revisions are ready: ${cliCommand()} describe ${name}.`,
    });
  return pollDeployment(client, name, timeoutMs, judge, late, say);
}

// ---------------------------------------------------------------------------------------------- commands

export function registerPlatform(program: Command): void {
  registerGet(program);
  registerDescribe(program);
  registerRollout(program);
  registerTraffic(program);
  registerScaleDelete(program);
  registerLogs(program);
  registerEvents(program);
  registerModels(program);
  registerTokens(program);
}

const GET_KINDS = ['deployments', 'models', 'revisions', 'replicas', 'tokens'] as const;
const KIND_ALIASES: Record<string, (typeof GET_KINDS)[number]> = {
  deployments: 'deployments',
  deployment: 'deployments',
  deploy: 'deployments',
  models: 'models',
  model: 'models',
  revisions: 'revisions',
  revision: 'revisions',
  replicas: 'replicas',
  replica: 'replicas',
  tokens: 'tokens',
  token: 'tokens',
};

function registerGet(program: Command): void {
  withOutput(
    program
      .command('get')
      .description('list deployments (default), models, tokens, or the revisions or replicas of a deployment')
      .argument('[kind]', `${GET_KINDS.join(', ')}`, 'deployments')
      .argument('[deployment]', 'for revisions and replicas: the deployment'),
  ).action(
    run(async (kindArg: string, deployment: string | undefined, opts: OutputFlags) => {
      const kind = KIND_ALIASES[kindArg];
      if (!kind) throw new UsageError(`ferry get: unknown kind "${kindArg}"; use ${GET_KINDS.join(', ')}`);
      const needsDeployment = kind === 'revisions' || kind === 'replicas';
      if (needsDeployment && !deployment) throw new UsageError(`ferry get ${kind} needs a deployment name`);
      if (!needsDeployment && deployment)
        throw new UsageError(`ferry get ${kind} takes no name (got "${deployment}")`);
      const client = connect(opts);
      const json = opts.output === 'json';
      const now = Date.now();
      switch (kind) {
        case 'deployments': {
          const list = await client.listDeployments();
          if (json) return printJson(list);
          return out(
            list.length === 0
              ? `No deployments. Create one: ${cliCommand()} deploy <dir>`
              : deploymentsTable(list, now),
          );
        }
        case 'models': {
          const list = await client.listModels();
          if (json) return printJson(list);
          return out(list.length === 0 ? 'No models.' : modelsTable(list, now));
        }
        case 'tokens': {
          const list = await client.listTokens();
          if (json) return printJson(list);
          return out(list.length === 0 ? 'No tokens.' : tokensTable(list, now));
        }
        case 'revisions': {
          const name = deployment as string;
          const [revisions, traffic] = await Promise.all([client.revisions(name), client.getTraffic(name)]);
          if (json) return printJson(revisions);
          return out(revisionsTable(revisions, traffic, now));
        }
        case 'replicas': {
          const list = await client.replicas(deployment as string);
          if (json) return printJson(list);
          return out(
            list.length === 0 ? `No replicas of ${deployment} are running.` : replicasTable(list, now),
          );
        }
      }
    }),
  );
}

function registerDescribe(program: Command): void {
  withOutput(
    program
      .command('describe')
      .description('show everything about a deployment: spec, revisions, traffic, rollout, replicas, events')
      .argument('<deployment>'),
  ).action(
    run(async (name: string, opts: OutputFlags) => {
      const view = await connect(opts).getDeployment(name);
      if (opts.output === 'json') return printJson(view);
      out(describeText(view, Date.now()));
    }),
  );
}

function registerRollout(program: Command): void {
  const rollout = program
    .command('rollout')
    .description('see and steer the rollout of a new revision: status, promote, abort, undo');

  withOutput(
    rollout
      .command('status')
      .description('one line on the rollout and what it waits for; --watch follows it until it ends')
      .argument('<deployment>')
      .option('-w, --watch', 'follow until it succeeds (exit 0) or is aborted (exit 1)')
      .option('--timeout <duration>', 'with --watch: give up after this long (exit 1)', '10m'),
  ).action(
    run(async (name: string, opts: OutputFlags & { watch?: boolean; timeout: string }) => {
      const client = connect(opts);
      if (opts.watch) {
        const timeoutMs = parseDurationFlag('--timeout', opts.timeout);
        const first = await client.getDeployment(name);
        const target = first.rollout?.to ?? first.revision;
        const view = await waitFor(client, name, target, timeoutMs, (v) => rolloutOutcome(v, target), out);
        if (opts.output === 'json') return printJson(view.rollout);
        return out(view.rollout ? view.rollout.message : `revision ${target} serves all traffic`);
      }
      const r = await client.rollout(name);
      if (opts.output === 'json') return printJson(r);
      if (!r) {
        const traffic = await client.getTraffic(name);
        return out(`no rollout: ${trafficSummary(traffic)}`);
      }
      out(`${rolloutLine(r)}\n  ${r.message}`);
    }),
  );

  withOutput(
    rollout
      .command('promote')
      .description('skip the current pause of a canary (or a rolling step) and go on')
      .argument('<deployment>'),
  ).action(
    run(async (name: string, opts: OutputFlags) => {
      const r = await connect(opts).promote(name);
      if (opts.output === 'json') return printJson(r);
      out(`promoted: ${rolloutLine(r)}\n  ${r.message}`);
    }),
  );

  withOutput(
    rollout
      .command('abort')
      .description('stop the rollout: traffic goes back to the revision it started from')
      .argument('<deployment>'),
  ).action(
    run(async (name: string, opts: OutputFlags) => {
      const r = await connect(opts).abort(name);
      if (opts.output === 'json') return printJson(r);
      out(`aborting: ${rolloutLine(r)}\n  ${r.message}`);
    }),
  );

  withOutput(
    rollout
      .command('undo')
      .description('roll out an earlier revision (default: the one before the serving one)')
      .argument('<deployment>')
      .option(
        '--to <revision>',
        'revision number to go back to',
        flag((v) => parseIntFlag('--to', v.replace(/^r/, ''), 1, Number.MAX_SAFE_INTEGER)),
      ),
  ).action(
    run(async (name: string, opts: OutputFlags & { to?: number }) => {
      const r = await connect(opts).undo(name, opts.to);
      if (opts.output === 'json') return printJson(r);
      out(`undo: ${rolloutLine(r)}\n  ${r.message}`);
    }),
  );
}

function registerTraffic(program: Command): void {
  withOutput(
    program
      .command('traffic')
      .description('show the traffic split of a deployment, or set it: ferry traffic iris r2=90 r3=10')
      .argument('<deployment>')
      .argument('[split...]', 'revision=percent entries that sum to 100, e.g. r2=90 r3=10')
      .option(
        '--shadow <revision=percent>',
        'mirror a percent of requests to a revision, answers discarded (repeatable)',
        collect,
      )
      .option('--wait', 'wait until the split is in effect (exit 1 if it cannot be)')
      .addOption(
        new Option('--timeout <duration>', 'with --wait: give up after this long')
          .argParser(flag((v) => parseDurationFlag('--timeout', v)))
          .default(120_000, '120s'),
      ),
  ).action(
    run(
      async (
        name: string,
        split: string[],
        opts: OutputFlags & { shadow?: string[]; wait?: boolean; timeout: number },
      ) => {
        const shadow = opts.shadow ?? [];
        const client = connect(opts);
        if (split.length === 0 && shadow.length === 0) {
          const traffic = await client.getTraffic(name);
          if (opts.output === 'json') return printJson(traffic);
          return out(
            table(
              ['REVISION', 'PERCENT', 'SHADOW'],
              [...traffic]
                .sort((a, b) => a.revision - b.revision)
                .map((t) => [`r${t.revision}`, `${t.percent}%`, t.shadow ? `${t.shadow}%` : '-']),
            ),
          );
        }
        let entries = parseTrafficArgs(split, shadow);
        if (split.length === 0) {
          // Only --shadow: keep the live split as it is.
          const current = await client.getTraffic(name);
          const shadows = new Map(entries.map((e) => [e.revision, e.shadow]));
          entries = current.map((t) => {
            const { shadow: _old, ...live } = t;
            const s = shadows.get(t.revision);
            shadows.delete(t.revision);
            return s === undefined ? live : { ...live, shadow: s };
          });
          for (const [revision, s] of shadows) entries.push({ revision, percent: 0, shadow: s as number });
        }
        let view = await client.setTraffic(name, entries);
        if (view.trafficTarget && opts.wait) view = await waitForSplit(client, name, entries, opts.timeout);
        if (opts.output === 'json') return printJson(view);
        if (view.trafficTarget)
          out(
            `traffic of ${name}: ${trafficSummary(view.traffic)} for now; ${trafficSummary(view.trafficTarget.entries)} follows once its revisions have ready replicas (they are starting; ${cliCommand()} describe ${name} shows them)`,
          );
        else out(`traffic of ${name}: ${trafficSummary(view.traffic)}`);
      },
    ),
  );
}

function registerScaleDelete(program: Command): void {
  withOutput(
    program
      .command('scale')
      .description('set the number of replicas (same revision, no rollout)')
      .argument('<deployment>')
      .argument('<replicas>', 'replica count, 0 to 1000'),
  ).action(
    run(async (name: string, replicasArg: string, opts: OutputFlags) => {
      const replicas = parseIntFlag('<replicas>', replicasArg, 0, 1000);
      const view = await connect(opts).scale(name, replicas);
      if (opts.output === 'json') return printJson(view);
      // Every revision with live traffic runs this many; say which ones serve, not the newest revision.
      out(
        `${name} scaled to ${view.replicas} replica(s) per serving revision (${trafficSummary(view.traffic)})`,
      );
      if (view.replicas === 0)
        say(
          `warning: requests to ${name} now get 503 FERRY_NO_READY_REPLICA until it is scaled up again; to start replicas on demand, use ferry autoscale ${name} --min 0`,
        );
    }),
  );

  withConnection(
    program
      .command('delete')
      .description('delete a deployment: its replicas are drained and removed; its models stay')
      .argument('<deployment>'),
  ).action(
    run(async (name: string, opts: ConnectionFlags) => {
      await connect(opts).deleteDeployment(name);
      out(`deleted deployment ${name}`);
    }),
  );
}

function registerLogs(program: Command): void {
  withConnection(
    program
      .command('logs')
      .description('print the logs of the replicas of a deployment; -f follows until Ctrl+C')
      .argument('<deployment>')
      .option('-f, --follow', 'keep printing new lines until Ctrl+C')
      .option(
        '--revision <n>',
        'only this revision',
        flag((v) => parseIntFlag('--revision', v.replace(/^r/, ''), 1, Number.MAX_SAFE_INTEGER)),
      )
      .option(
        '--tail <n>',
        'last N lines per replica (default 200)',
        flag((v) => parseIntFlag('--tail', v, 0, 100_000)),
      ),
  ).action(
    run(
      async (
        name: string,
        opts: ConnectionFlags & { follow?: boolean; revision?: number; tail?: number },
      ) => {
        const client = connect(opts);
        const query = {
          ...(opts.revision === undefined ? {} : { revision: opts.revision }),
          ...(opts.tail === undefined ? {} : { tail: opts.tail }),
        };
        if (!opts.follow) {
          for (const line of await client.logs(name, query)) out(formatLogLine(line));
          return;
        }
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          for await (const line of client.followLogs(name, query, stop.signal)) out(formatLogLine(line));
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        if (!stop.signal.aborted)
          say(`the log stream of ${name} ended (deployment deleted or Ferry stopped)`);
      },
    ),
  );
}

function registerEvents(program: Command): void {
  withOutput(
    program
      .command('events')
      .description('recent events of the platform, oldest first: AGE TYPE REASON DEPLOYMENT MESSAGE')
      .option('--deployment <name>', 'only this deployment')
      .option(
        '--limit <n>',
        'at most this many (1 to 1000; default: the server default)',
        flag((v) => parseIntFlag('--limit', v, 1, 1000)),
      ),
  ).action(
    run(async (opts: OutputFlags & { deployment?: string; limit?: number }) => {
      const events = await connect(opts).events({
        ...(opts.deployment ? { deployment: opts.deployment } : {}),
        ...(opts.limit === undefined ? {} : { limit: opts.limit }),
      });
      if (opts.output === 'json') return printJson(events);
      out(events.length === 0 ? 'No events.' : eventsTable(events, Date.now()));
    }),
  );
}

function registerModels(program: Command): void {
  const models = program.command('models').description('models, their versions and aliases');

  withOutput(models.command('list').description('list models (same as ferry get models)')).action(
    run(async (opts: OutputFlags) => {
      const list = await connect(opts).listModels();
      if (opts.output === 'json') return printJson(list);
      out(list.length === 0 ? 'No models.' : modelsTable(list, Date.now()));
    }),
  );

  withOutput(
    models
      .command('add-version')
      .description('register a version of a model from an image or a directory (creates the model if new)')
      .argument('<model>')
      .argument('<version>')
      .option('--image <ref>', 'image reference, ideally pinned by digest (docker runtime)')
      .option('--dir <dir>', 'model directory on this machine (process runtime)'),
  ).action(
    run(async (model: string, version: string, opts: OutputFlags & { image?: string; dir?: string }) => {
      if ((opts.image === undefined) === (opts.dir === undefined)) {
        throw new UsageError('ferry models add-version needs exactly one of --image <ref> or --dir <dir>');
      }
      const client = connect(opts);
      await ensureModel(client, model);
      let artifact: string | undefined;
      if (opts.dir) {
        const { uploadModelDir } = await import('./upload.ts');
        const uploaded = await uploadModelDir(client, resolve(opts.dir), say);
        await uploaded.cleanup();
        artifact = uploaded.digest;
      }
      const added = await client.addVersion(model, {
        version,
        ...(opts.image ? { image: opts.image } : {}),
        ...(artifact ? { artifact } : {}),
      });
      if (opts.output === 'json') return printJson(added);
      out(`added ${model} version ${added.version} (${added.image ?? `artifact ${added.artifact}`})`);
    }),
  );

  withOutput(
    models
      .command('alias')
      .description('point an alias (e.g. stable) at a version; deployments following it roll out')
      .argument('<model>')
      .argument('<alias>')
      .argument('<version>'),
  ).action(
    run(async (model: string, alias: string, version: string, opts: OutputFlags) => {
      const result = await connect(opts).setAlias(model, alias, version);
      if (opts.output === 'json') return printJson(result);
      const moved = result.updated.map((u) => `${u.deployment} (r${u.revision})`);
      out(`${model} ${alias} -> ${version}${moved.length > 0 ? `; rolling out: ${moved.join(', ')}` : ''}`);
    }),
  );
}

/** A 404 of the API: no such deployment, model or version. */
export function isNotFound(error: unknown): boolean {
  return (
    error instanceof FerryError &&
    (error.code === 'FERRY_NOT_FOUND' ||
      error.code === 'FERRY_MODEL_NOT_FOUND' ||
      error.code === 'FERRY_VERSION_NOT_FOUND')
  );
}

/** Creates the model unless it exists. Returns true when it was created. */
export async function ensureModel(client: ControlClient, model: string): Promise<boolean> {
  try {
    await client.getModel(model);
    return false;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  try {
    await client.createModel(model);
    return true;
  } catch (error) {
    // Someone else created it in between: fine.
    if (error instanceof FerryError && error.code === 'FERRY_CONFLICT') return false;
    throw error;
  }
}

// Written out rather than imported: the CLI loads the control plane's modules only when a command needs them.
const ROLES: readonly TokenRole[] = [
  'viewer',
  'deployer',
  'admin',
  'platform-admin',
  'invoker',
  'gateway',
  'metrics',
];

/** `10` or `10/s`, with an optional burst: the gateway's limit for an invoker token. */
function parseRate(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(value.trim());
  const n = m ? Number(m[1]) : Number.NaN;
  if (!(n > 0))
    throw new UsageError(`--rate ${JSON.stringify(value)}: give requests per second, e.g. 50 or 50/s`);
  return n;
}

function registerTokens(program: Command): void {
  const token = program.command('token').description('API tokens: create (shown once), list, revoke');

  withOutput(
    token
      .command('create')
      .description('create a token; it is printed once, only its hash is kept')
      .argument('<name>')
      .addOption(
        new Option(
          '--role <role>',
          "viewer (read), deployer (deploy and steer), admin (also tokens), platform-admin (every tenant), invoker (call models at the gateway), gateway (a gateway's own: reads the route file on Swarm), metrics (Prometheus's: scrape targets and metrics)",
        )
          .choices(ROLES)
          .makeOptionMandatory(),
      )
      .option(
        '--expires <duration>',
        'it stops working after this long, e.g. 30d, 12h (default: never)',
        flag((v) => parseDurationFlag('--expires', v)),
      )
      .option('--deployment <name>', 'invoker: a key for this one deployment only')
      .option(
        '--rate <n>',
        'invoker: requests per second the gateway lets through (429 beyond)',
        flag((v) => parseRate(v)),
      )
      .option(
        '--burst <n>',
        'invoker: requests at once after a quiet spell (default: --rate, at least 1)',
        flag((v) => parseIntFlag('--burst', v, 1, 1_000_000)),
      ),
  ).action(
    run(
      async (
        name: string,
        opts: OutputFlags & {
          role: TokenRole;
          expires?: number;
          deployment?: string;
          rate?: number;
          burst?: number;
        },
      ) => {
        if (opts.burst !== undefined && opts.rate === undefined) throw new UsageError('--burst needs --rate');
        const created = await connect(opts).createToken(name, opts.role, {
          ...(opts.expires === undefined
            ? {}
            : { expiresInSeconds: Math.max(1, Math.ceil(opts.expires / 1000)) }),
          ...(opts.deployment === undefined ? {} : { deployment: opts.deployment }),
          ...(opts.rate === undefined
            ? {}
            : {
                rateLimit: { perSecond: opts.rate, burst: opts.burst ?? Math.max(1, Math.ceil(opts.rate)) },
              }),
        });
        if (opts.output === 'json') return printJson(created);
        out(created.token);
        const scope = created.deployment ? `, deployment ${created.deployment}` : '';
        say(
          `token ${created.name} (${created.role}, tenant ${created.tenant}${scope}) created; it is shown only now. ${
            created.role === 'invoker'
              ? 'Send it to the gateway as Authorization: Bearer <token>.'
              : created.role === 'gateway'
                ? 'Give it to the gateway as --token-file (on Swarm a secret); it reads GET /v1/gateway/routes and nothing else.'
                : created.role === 'metrics'
                  ? 'Give it to Prometheus as a credentials_file (ferry prometheus-config); it reads metrics and scrape targets and nothing else.'
                  : 'Use it with --token or FERRY_TOKEN.'
          }`,
        );
      },
    ),
  );

  withOutput(token.command('list').description('list tokens (names and roles, never the tokens)')).action(
    run(async (opts: OutputFlags) => {
      const list = await connect(opts).listTokens();
      if (opts.output === 'json') return printJson(list);
      out(list.length === 0 ? 'No tokens.' : tokensTable(list, Date.now()));
    }),
  );

  withConnection(
    token.command('revoke').description('revoke a token: it stops working at once').argument('<name>'),
  ).action(
    run(async (name: string, opts: ConnectionFlags) => {
      await connect(opts).deleteToken(name);
      out(`revoked token ${name}`);
    }),
  );
}
