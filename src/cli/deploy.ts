/**
 * `ferry deploy <dir|image>`: registers a model version (from a directory with ferry.yaml, or an image), then
 * creates the deployment or updates it (a new revision that rolls out with the deployment's strategy).
 * On the docker runtime a directory is built into an image first (as `ferry build` does) and loaded into the
 * engine; on the process runtime the version points at the directory itself. Talks to the platform only
 * through ControlClient.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import type {
  ControlClient,
  DeployInput,
  DeploymentView,
  JsonValue,
  ModelVersion,
  StrategyInput,
  UpdateInput,
} from '../control/index.ts';
import { FerryError } from '../core/errors.ts';
import type { PreparedArtifact } from '../image/artifact.ts';
import type { LoadedSpec } from '../spec/index.ts';
import { connect } from './context.ts';
import {
  parseCanary,
  parseCpuFlag,
  parseDurationFlag,
  parseEnvPairs,
  parseIntFlag,
  parseSizeFlag,
  rolloutOutcome,
  scalingSummary,
  shortImage,
  strategySummary,
  trafficSummary,
  UsageError,
} from './format.ts';
import { cliCommand } from './output.ts';
import {
  type ConnectionFlags,
  ensureModel,
  flag,
  isNotFound,
  out,
  run,
  say,
  waitFor,
  withConnection,
} from './platform.ts';

interface DeployFlags extends ConnectionFlags {
  name?: string;
  model?: string;
  version?: string;
  replicas?: number;
  canary?: string;
  pause?: number;
  maxSurge?: number;
  rolling?: boolean;
  env?: string[];
  serving?: string;
  cpus?: number;
  memory?: number;
  base?: string;
  public?: boolean;
  private?: boolean;
  wait?: boolean;
  timeout: number;
}

/** True when the argument names a directory here; false for an image reference; else a clear error. */
export function isDirectoryTarget(target: string): boolean {
  if (existsSync(target)) return true;
  if (target.startsWith('.') || target.startsWith('/') || target.startsWith('~') || target.endsWith('/')) {
    throw new FerryError('FERRY_FILE_NOT_FOUND', `${target} does not exist`, {
      hint: 'Give a model directory (with ferry.yaml) or an image reference like registry:5000/iris:1.',
    });
  }
  return false;
}

export function strategyFromFlags(flags: {
  canary?: string;
  pause?: number;
  maxSurge?: number;
  rolling?: boolean;
}): StrategyInput | undefined {
  if (flags.canary !== undefined && (flags.maxSurge !== undefined || flags.rolling)) {
    throw new UsageError(
      `--canary and ${flags.rolling ? '--rolling' : '--max-surge'} do not go together: a rollout is a canary or rolling`,
    );
  }
  if (flags.pause !== undefined && flags.canary === undefined) {
    throw new UsageError(
      '--pause is the wait between canary steps; give --canary too (e.g. --canary 10,50,100)',
    );
  }
  if (flags.canary !== undefined) return parseCanary('--canary', flags.canary, flags.pause);
  if (flags.maxSurge !== undefined) return { kind: 'rolling', maxSurge: flags.maxSurge };
  if (flags.rolling) return { kind: 'rolling' };
  return undefined;
}

export function registerDeploy(program: Command): void {
  withConnection(
    program
      .command('deploy')
      .description(
        'register a model version from a directory (ferry.yaml) or an image, and deploy it: create the deployment or roll out a new revision',
      )
      .argument('<target>', 'model directory with ferry.yaml, or an image reference')
      .option('--name <name>', 'deployment name (default: the model name)')
      .option('--model <name>', 'model name (default: the name in ferry.yaml; required for an image)')
      .option('--version <version>', 'model version (default: a hash of the directory content)')
      .option(
        '--replicas <n>',
        "replica count (default 1 for a new deployment, or ferry.yaml's scaling.initialScale; kept on update)",
        flag((v) => parseIntFlag('--replicas', v, 0, 1000)),
      )
      .option('--canary <steps>', 'canary rollout: percents of traffic per step, e.g. 10,50,100')
      .option(
        '--pause <duration>',
        'canary: wait this long at each step (default: wait for ferry rollout promote)',
        flag((v) => parseDurationFlag('--pause', v, true)),
      )
      .option(
        '--rolling',
        "roll out replica by replica (the default strategy); use it to leave a deployment's canary strategy",
      )
      .option(
        '--max-surge <n>',
        'rolling rollout: extra replicas started at a time',
        flag((v) => parseIntFlag('--max-surge', v, 1, 1000)),
      )
      .option(
        '--env <K=V>',
        'environment variable of the replicas (repeatable; replaces the deployment env)',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option(
        '--serving <json>',
        `serving options merged over ferry.yaml's serving section, e.g. '{"batching":{"maxBatchSize":32}}' (replaces the deployment's)`,
      )
      .option(
        '--cpus <cores>',
        "CPU limit per replica, e.g. 1, 0.5, 500m (default: ferry.yaml's resources.cpu, else 1)",
        flag((v) => parseCpuFlag('--cpus', v)),
      )
      .option(
        '--memory <size>',
        'memory limit per replica, e.g. 512m, 2g',
        flag((v) => parseSizeFlag('--memory', v)),
      )
      .option(
        '--base <ref>',
        "docker runtime: base image the platform builds the model's image on (default: build.base, else this host's ferry base)",
      )
      .option(
        '--public',
        'anyone who reaches the gateway may call it (default for a new deployment: private)',
      )
      .option('--private', 'callers need an invoker token or a key of this deployment (the default)')
      .option('--wait', 'wait until the new revision serves all traffic (exit 1 if aborted or timed out)')
      .addOption(
        new Option('--timeout <duration>', 'with --wait: give up after this long')
          .argParser(flag((v) => parseDurationFlag('--timeout', v)))
          .default(120_000, '120s'),
      ),
  ).action(
    run(async (target: string, flags: DeployFlags) => {
      if (flags.public && flags.private) throw new UsageError('--public and --private exclude each other');
      const env = flags.env ? parseEnvPairs('--env', flags.env) : undefined;
      const strategy = strategyFromFlags(flags);
      let serving: Record<string, unknown> | undefined;
      if (flags.serving !== undefined) {
        const { parseServingOverrides } = await import('../spec/index.ts');
        const parsed = parseServingOverrides(flags.serving, '--serving');
        if ('problem' in parsed) throw new UsageError(parsed.problem);
        serving = parsed.value;
      }
      const client = connect(flags);
      const result = await deploy(
        client,
        target,
        {
          ...flags,
          serving,
          ...(env ? { envVars: env } : {}),
          strategy,
          ...(flags.public ? { public: true } : flags.private ? { public: false } : {}),
        },
        say,
      );
      printResult(result);
      if (flags.wait) {
        await waitFor(
          client,
          result.view.name,
          result.view.revision,
          flags.timeout,
          (view) => rolloutOutcome(view, result.view.revision),
          say,
        );
        out(`${result.view.name} r${result.view.revision} serves all traffic`);
      }
    }),
  );
}

export interface DeployOptions {
  name?: string;
  model?: string;
  version?: string;
  replicas?: number;
  envVars?: Record<string, string>;
  /** Serving overrides (checked JSON), replacing the deployment's. */
  serving?: Record<string, unknown> | undefined;
  cpus?: number;
  memory?: number;
  strategy?: StrategyInput | undefined;
  base?: string;
  /** Callable without a token; left out: a new deployment is private, an existing one keeps its access. */
  public?: boolean;
}

export interface DeployResult {
  model: string;
  /** The version's name on the platform (default: the artifact's digest, 12 hex). */
  version: string;
  /** model.version in ferry.yaml: what the model reports as model_version in its answers. */
  specVersion?: string;
  /** The version existed with the same content and was reused. */
  reusedVersion: boolean;
  createdModel: boolean;
  /** What the version pins: the artifact digest (a directory), or the image. */
  artifact: string;
  created: boolean;
  /** A new revision was made (always true for a new deployment). */
  newRevision: boolean;
  /** Autoscaling was set by this deploy (the version's ferry.yaml `scaling:`, docs/autoscaling.md). */
  scalingSet: boolean;
  view: DeploymentView;
  /** Secrets the new revision needs that are not set: its replicas wait for them. */
  unsetSecrets: string[];
  /** A ready-to-run curl for the endpoint. */
  curl: string;
}

/**
 * Registers the version and creates or updates the deployment. `progress` gets progress lines.
 *
 * A directory is sent to the platform as an artifact (its content, compiled, with its dependencies; see
 * upload.ts), so the version pins what was deployed, not a path: later edits of the directory change nothing
 * that runs until the next deploy. Its default version name is the artifact's digest (12 hex).
 */
export async function deploy(
  client: ControlClient,
  target: string,
  opts: DeployOptions,
  progress: (line: string) => void,
): Promise<DeployResult> {
  const fromDir = isDirectoryTarget(target);
  if (!fromDir && !opts.model) {
    throw new UsageError(
      `deploying the image ${target} needs --model <name> (and --name, default the model name)`,
    );
  }
  // Packing an artifact needs the spec and image modules: loaded only now, so other commands start fast.
  const { formatBytes, uploadModelDir } = await import('./upload.ts');
  const uploaded: PreparedArtifact | undefined = fromDir
    ? await uploadModelDir(client, target, progress)
    : undefined;
  try {
    const loaded = uploaded?.source;
    const model = opts.model ?? (loaded as LoadedSpec).spec.model.name;
    const name = opts.name ?? model;
    const version =
      opts.version ??
      (uploaded ? uploaded.digest.slice('sha256:'.length, 'sha256:'.length + 12) : imageVersion(target));
    const createdModel = await ensureModel(client, model);
    // --version may name an alias (`stable`): the deployment then follows it, when it points at this content.
    const record = await client.getModel(model);
    const alias = record.aliases[version];
    const existing = record.versions.find((v) => v.version === (alias ?? version));
    const named = alias === undefined ? `version ${version}` : `version ${alias} (alias ${version})`;

    let reusedVersion = false;
    /** The image as the platform pinned it (by digest), for an image deploy. */
    let pinnedImage = existing?.image ?? undefined;
    if (existing) {
      const same = uploaded
        ? existing.artifact === uploaded.digest
        : existing.image === target || imageMatches(existing.image, target);
      if (!same) {
        throw new FerryError(
          'FERRY_CONFLICT',
          `${model} ${named} already exists with other content (${describeVersion(existing)})`,
          {
            hint:
              alias !== undefined
                ? `To move the alias to this content: deploy it with --version <new name>, then ferry models alias ${model} ${version} <new name>.`
                : opts.version
                  ? 'Versions are immutable: pick another --version.'
                  : 'Versions are immutable: pass --version to name a new one.',
          },
        );
      }
      reusedVersion = true;
      progress(`${model} ${named} is already registered with this content; reusing it`);
    } else {
      // The docker runtime builds the image of an artifact itself (on this host's `ferry base` unless --base
      // or build.base says otherwise), so the same version runs on either runtime.
      const added: ModelVersion = await client.addVersion(model, {
        version,
        ...(fromDir ? {} : { image: target }),
        ...(uploaded ? { artifact: uploaded.digest } : {}),
        metadata: {
          source: fromDir ? (loaded as LoadedSpec).dir : target,
          ...(opts.base === undefined ? {} : { base: opts.base }),
        },
      });
      pinnedImage = added.image ?? undefined;
      progress(`registered ${model} version ${version} (${describeVersion(added)})`);
    }

    const resources =
      opts.cpus !== undefined || opts.memory !== undefined
        ? {
            ...(opts.cpus === undefined ? {} : { cpu: opts.cpus }),
            ...(opts.memory === undefined ? {} : { memoryBytes: opts.memory }),
          }
        : undefined;
    let current: DeploymentView | undefined;
    try {
      current = await client.getDeployment(name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    // What the flags set; what they leave out keeps the deployment's value (or the defaults, for a new one).
    const asked = {
      version,
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
      ...(resources ? { resources } : {}),
      ...(opts.envVars ? { env: opts.envVars } : {}),
      ...(opts.serving ? { serving: opts.serving as Record<string, JsonValue> } : {}),
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
      ...(opts.public === undefined ? {} : { public: opts.public }),
    };
    const view: DeploymentView = current
      ? await client.update(name, {
          ...(current.model === model ? {} : { model }),
          ...asked,
        } satisfies UpdateInput)
      : await client.deploy({ name, model, ...asked } satisfies DeployInput);
    // Secrets the revision needs (from ferry.yaml or the deployment) that are not set: said now, not found later.
    const revision = (await client.revisions(name)).find((r) => r.number === view.revision);
    const needed = revision?.spec.secretRefs ?? [];
    const set = new Set(needed.length === 0 ? [] : (await client.listSecrets()).map((s) => s.name));
    const unsetSecrets = needed.filter((s) => !set.has(s));
    return {
      model,
      version,
      reusedVersion,
      createdModel,
      artifact: uploaded
        ? `artifact ${shortImage(uploaded.digest)} (${uploaded.files} file(s), ${formatBytes(uploaded.bytes)})`
        : `image ${pinnedImage ?? target}`,
      ...(loaded ? { specVersion: loaded.spec.model.version } : {}),
      created: current === undefined,
      newRevision: current === undefined || view.revision !== current.revision,
      scalingSet:
        view.scaling !== null &&
        (current === undefined || JSON.stringify(current.scaling) !== JSON.stringify(view.scaling)),
      view,
      unsetSecrets,
      curl: curlFor(view.endpoint, loaded, !view.public),
    };
  } finally {
    await uploaded?.cleanup();
  }
}

/** For an image given by reference: its tag, else its digest's first 12 hex, else "latest". */
export function imageVersion(ref: string): string {
  const at = ref.indexOf('@');
  if (at !== -1)
    return ref
      .slice(at + 1)
      .replace(/^sha256:/, '')
      .slice(0, 12);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const tag = colon > slash ? ref.slice(colon + 1) : 'latest';
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(tag) ? tag : 'latest';
}

/** An image version matches a reference when it is that reference pinned (`ref@sha256:...`). */
function imageMatches(pinned: string | null, ref: string): boolean {
  if (!pinned) return false;
  const at = pinned.indexOf('@');
  const repo = at === -1 ? pinned : pinned.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return repo === (colon > slash ? ref.slice(0, colon) : ref) || pinned === ref;
}

function describeVersion(v: ModelVersion): string {
  const parts = [
    ...(v.artifact ? [`artifact ${shortImage(v.artifact)}`] : []),
    ...(v.image ? [`image ${shortImage(v.image)}`] : []),
  ];
  return parts.join(', ') || 'nothing';
}

/** A curl that works: the model's sample request when it has one, else a placeholder body. */
export function curlFor(
  endpoint: string,
  loaded: LoadedSpec | undefined,
  needsKey = false,
  key = '$FERRY_KEY',
): string {
  const auth = needsKey ? ` -H "authorization: Bearer ${key}"` : '';
  const head = `curl -s -X POST ${endpoint} -H 'content-type: application/json'${auth}`;
  if (loaded) {
    const first = loaded.spec.examples[0]?.name;
    const sample = [...(first ? [`requests/${first}.json`] : []), 'requests/sample.json', 'request.json']
      .map((f) => join(loaded.dir, f))
      .find((f) => existsSync(f));
    if (sample) return `${head} -d @${sample}`;
    const example = loaded.spec.examples[0]?.request;
    if (example !== undefined) {
      const text = JSON.stringify(example);
      if (text.length <= 400) return `${head} -d '${text.replaceAll("'", "'\\''")}'`;
    }
  }
  return `${head} -d '{"inputs":[...]}'`;
}

function printResult(r: DeployResult): void {
  const v = r.view;
  const ferry = cliCommand();
  const reports =
    r.specVersion === undefined ? '' : `; the model reports model_version "${r.specVersion}" (ferry.yaml)`;
  const lines = [
    `model       ${r.model}${r.createdModel ? ' (new)' : ''}`,
    `version     ${r.version} (${r.reusedVersion ? 'already registered' : 'new'}): ${r.artifact}${reports}`,
  ];
  const ready = v.replicaStatus.filter((x) => x.revision === v.revision && x.state === 'ready').length;
  const rollingOut =
    v.rollout &&
    v.rollout.to === v.revision &&
    v.rollout.phase !== 'succeeded' &&
    v.rollout.phase !== 'aborted';
  const strategy = `${strategySummary(v.strategy)}${v.strategy.kind === 'canary' ? "; the deployment's strategy, --rolling changes it" : ''}`;
  if (r.created) {
    lines.push(
      `deployment  ${v.name} created: revision r${v.revision}, ${v.replicas === 0 && v.scaling ? 'at zero replicas: the first request starts one' : `${v.replicas} replica(s) starting`}`,
    );
  } else if (r.newRevision && rollingOut) {
    lines.push(
      `deployment  ${v.name} updated: revision r${v.revision} rolls out from r${v.rollout!.from} (${strategy})`,
    );
  } else if (r.newRevision) {
    lines.push(
      `deployment  ${v.name} updated: revision r${v.revision} takes the traffic (${trafficSummary(v.traffic)})`,
    );
  } else if (rollingOut) {
    lines.push(
      `deployment  ${v.name}: revision r${v.revision} already has this spec but did not serve; it rolls out again from r${v.rollout!.from} (${strategy})`,
    );
  } else {
    lines.push(
      `deployment  ${v.name} unchanged: revision r${v.revision} already serves this spec (${trafficSummary(v.traffic)}; ${ready}/${v.replicas} ready)`,
    );
  }
  if (rollingOut) lines.push(`            follow it: ${ferry} rollout status ${v.name} --watch`);
  if (r.scalingSet && v.scaling) lines.push(`autoscale   ${scalingSummary(v.scaling)} (ferry.yaml scaling:)`);
  for (const secret of r.unsetSecrets)
    lines.push(
      `warning     secret ${secret} is not set: replicas of r${v.revision} wait for it; set it with: ${ferry} secrets set ${secret} (value from stdin)`,
    );
  lines.push(`endpoint    ${v.endpoint}`);
  if (v.public) lines.push('access      public: anyone who reaches the gateway may call it');
  else
    lines.push(
      `access      private: callers send an invoker token; make a key for it with`,
      `            export FERRY_KEY=$(${ferry} token create ${v.name}-key --role invoker --deployment ${v.name}${v.tenant === 'default' ? '' : ` --tenant ${v.tenant}`})`,
    );
  lines.push(`try         ${r.curl}`);
  out(lines.join('\n'));
}
