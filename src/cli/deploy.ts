/**
 * `ferry deploy <dir|image>`: registers a model version (from a directory with ferry.yaml, or an image), then
 * creates the deployment or updates it (a new revision that rolls out with the deployment's strategy).
 * On the docker runtime a directory is built into an image first (as `ferry build` does) and loaded into the
 * engine; on the process runtime the version points at the directory itself. Talks to the platform only
 * through ControlClient.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { type Command, Option } from 'commander';
import type {
  ControlClient,
  DeployInput,
  DeploymentView,
  ModelVersion,
  StrategyInput,
  UpdateInput,
} from '../control/index.ts';
import { FerryError } from '../core/errors.ts';
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
  env?: string[];
  cpus?: number;
  memory?: number;
  base?: string;
  wait?: boolean;
  timeout: number;
}

/** Directories never part of a model's content hash (besides dot-directories). */
const SKIPPED_DIRS = new Set(['node_modules']);

/**
 * A version name from a directory's content: the first 12 hex of sha256 over its files in sorted order,
 * each as relative path (with "/"), NUL, size, NUL, bytes. node_modules and dot-directories are skipped;
 * only regular files count (symbolic links are followed). Same files -> same version.
 */
export async function hashDirectory(dir: string): Promise<string> {
  const root = resolve(dir);
  const files: string[] = [];
  const walk = async (at: string) => {
    const entries = await readdir(at, { withFileTypes: true });
    for (const entry of entries) {
      const path = join(at, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const s = await stat(path).catch(() => undefined);
        isDir = s?.isDirectory() ?? false;
        isFile = s?.isFile() ?? false;
      }
      if (isDir) {
        if (entry.name.startsWith('.') || SKIPPED_DIRS.has(entry.name)) continue;
        await walk(path);
      } else if (isFile) {
        files.push(relative(root, path).split(sep).join('/'));
      }
    }
  };
  await walk(root);
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256');
  for (const file of files) {
    const bytes = await readFile(join(root, file));
    hash.update(`${file}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex').slice(0, 12);
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
}): StrategyInput | undefined {
  if (flags.canary !== undefined && flags.maxSurge !== undefined) {
    throw new UsageError('--canary and --max-surge do not go together: a rollout is a canary or rolling');
  }
  if (flags.pause !== undefined && flags.canary === undefined) {
    throw new UsageError(
      '--pause is the wait between canary steps; give --canary too (e.g. --canary 10,50,100)',
    );
  }
  if (flags.canary !== undefined) return parseCanary('--canary', flags.canary, flags.pause);
  if (flags.maxSurge !== undefined) return { kind: 'rolling', maxSurge: flags.maxSurge };
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
        'replica count (default 1 for a new deployment; kept on update)',
        flag((v) => parseIntFlag('--replicas', v, 0, 1000)),
      )
      .option('--canary <steps>', 'canary rollout: percents of traffic per step, e.g. 10,50,100')
      .option(
        '--pause <duration>',
        'canary: wait this long at each step (default: wait for ferry rollout promote)',
        flag((v) => parseDurationFlag('--pause', v, true)),
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
        '--cpus <cores>',
        'CPU limit per replica, e.g. 1, 0.5, 500m',
        flag((v) => parseCpuFlag('--cpus', v)),
      )
      .option(
        '--memory <size>',
        'memory limit per replica, e.g. 512m, 2g',
        flag((v) => parseSizeFlag('--memory', v)),
      )
      .option('--base <ref>', 'docker runtime: base image for the build (see ferry build)')
      .option('--wait', 'wait until the new revision serves all traffic (exit 1 if aborted or timed out)')
      .addOption(
        new Option('--timeout <duration>', 'with --wait: give up after this long')
          .argParser(flag((v) => parseDurationFlag('--timeout', v)))
          .default(120_000, '120s'),
      ),
  ).action(
    run(async (target: string, flags: DeployFlags) => {
      const env = flags.env ? parseEnvPairs('--env', flags.env) : undefined;
      const strategy = strategyFromFlags(flags);
      const client = connect(flags);
      const result = await deploy(
        client,
        target,
        { ...flags, ...(env ? { envVars: env } : {}), strategy },
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
  cpus?: number;
  memory?: number;
  strategy?: StrategyInput | undefined;
  base?: string;
}

export interface DeployResult {
  model: string;
  version: string;
  /** The version existed with the same artifact and was reused. */
  reusedVersion: boolean;
  createdModel: boolean;
  artifact: string;
  created: boolean;
  /** A new revision was made (always true for a new deployment). */
  newRevision: boolean;
  previousRevision?: number;
  view: DeploymentView;
  /** A ready-to-run curl for the endpoint. */
  curl: string;
}

/** Registers the version and creates or updates the deployment. `say` gets progress lines. */
export async function deploy(
  client: ControlClient,
  target: string,
  opts: DeployOptions,
  progress: (line: string) => void,
): Promise<DeployResult> {
  const fromDir = isDirectoryTarget(target);
  let loaded: LoadedSpec | undefined;
  if (fromDir) loaded = await (await import('../spec/index.ts')).loadSpec(target);
  else if (!opts.model) {
    throw new UsageError(
      `deploying the image ${target} needs --model <name> (and --name, default the model name)`,
    );
  }
  const model = opts.model ?? (loaded as LoadedSpec).spec.model.name;
  const name = opts.name ?? model;
  const version = opts.version ?? (loaded ? await hashDirectory(loaded.dir) : imageVersion(target));
  const createdModel = await ensureModel(client, model);
  const existing = (await client.getModel(model)).versions.find((v) => v.version === version);

  let artifact: { image?: string; artifactDir?: string };
  let reusedVersion = false;
  if (!loaded) {
    artifact = { image: target };
  } else {
    const info = await client.info();
    if (info.runtime === 'process') {
      artifact = { artifactDir: loaded.dir };
    } else {
      artifact = await dockerImage(loaded, model, version, existing, opts.base, progress);
    }
  }
  if (existing) {
    if (!sameArtifact(existing, artifact)) {
      throw new FerryError(
        'FERRY_CONFLICT',
        `${model} version ${version} already exists with ${describeArtifact(existing)}, not ${describeArtifact(artifact)}`,
        {
          hint: opts.version
            ? 'Versions are immutable: pick another --version.'
            : 'Versions are immutable: pass --version to name a new one.',
        },
      );
    }
    reusedVersion = true;
    progress(`${model} version ${version} is already registered; reusing it`);
  } else {
    await client.addVersion(model, {
      version,
      ...artifact,
      metadata: {
        source: fromDir ? (loaded as LoadedSpec).dir : target,
        ...(loaded ? { specVersion: loaded.spec.model.version } : {}),
      },
    });
    progress(`registered ${model} version ${version} (${describeArtifact(artifact)})`);
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
  let view: DeploymentView;
  if (!current) {
    const input: DeployInput = {
      name,
      model,
      version,
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
      ...(resources ? { resources } : {}),
      ...(opts.envVars ? { env: opts.envVars } : {}),
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
    };
    view = await client.deploy(input);
  } else {
    const patch: UpdateInput = {
      ...(current.model === model ? {} : { model }),
      version,
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
      ...(resources ? { resources } : {}),
      ...(opts.envVars ? { env: opts.envVars } : {}),
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
    };
    view = await client.update(name, patch);
  }
  return {
    model,
    version,
    reusedVersion,
    createdModel,
    artifact: describeArtifact(artifact),
    created: current === undefined,
    newRevision: current === undefined || view.revision !== current.revision,
    ...(current ? { previousRevision: current.revision } : {}),
    view,
    curl: curlFor(view.endpoint, loaded),
  };
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

/** Builds the directory into an image on the engine, unless the existing version's image is still there. */
async function dockerImage(
  loaded: LoadedSpec,
  model: string,
  version: string,
  existing: ModelVersion | undefined,
  base: string | undefined,
  progress: (line: string) => void,
): Promise<{ image: string }> {
  const { buildImage, createEngine, formatBytes, loadIntoEngine } = await import('../image/index.ts');
  const engine = createEngine();
  if (existing?.image && (await engine.inspectImage(existing.image))) {
    return { image: existing.image };
  }
  const tag = `${model}:${version}`;
  progress(`building ${tag} from ${loaded.dir}`);
  const built = await buildImage({ dir: loaded.dir, ...(base ? { base } : {}), onProgress: progress });
  const info = await loadIntoEngine(engine, built.image, tag);
  progress(`loaded ${tag} into the Docker engine (${formatBytes(info.size)}), image ${info.id.slice(0, 19)}`);
  // The image ID pins the exact content, whatever happens to the tag later.
  return { image: info.id };
}

function sameArtifact(v: ModelVersion, a: { image?: string; artifactDir?: string }): boolean {
  return (v.image ?? undefined) === a.image && (v.artifactDir ?? undefined) === a.artifactDir;
}

function describeArtifact(a: { image?: string | null; artifactDir?: string | null }): string {
  return a.image ? `image ${a.image}` : `directory ${a.artifactDir}`;
}

/** A curl that works: the model's sample request when it has one, else a placeholder body. */
export function curlFor(endpoint: string, loaded: LoadedSpec | undefined): string {
  const head = `curl -s -X POST ${endpoint} -H 'content-type: application/json'`;
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
  const lines = [
    `model       ${r.model}${r.createdModel ? ' (new)' : ''}`,
    `version     ${r.version}${r.reusedVersion ? ' (unchanged, reused)' : ' (new)'}  ${r.artifact}`,
  ];
  if (r.created) {
    lines.push(`deployment  ${v.name} created: revision r${v.revision}, ${v.replicas} replica(s) starting`);
  } else if (!r.newRevision) {
    lines.push(
      `deployment  ${v.name} unchanged: revision r${v.revision} already runs this spec (${v.replicas} replica(s))`,
    );
  } else if (v.rollout && v.rollout.to === v.revision) {
    lines.push(
      `deployment  ${v.name} updated: revision r${v.revision} rolls out from r${v.rollout.from} (${v.strategy.kind})`,
      `            follow it: ${cliCommand()} rollout status ${v.name} --watch`,
    );
  } else {
    lines.push(`deployment  ${v.name} updated: revision r${v.revision} (previous r${r.previousRevision})`);
  }
  lines.push(`endpoint    ${v.endpoint}`, `try         ${r.curl}`);
  out(lines.join('\n'));
}
