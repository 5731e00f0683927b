/**
 * `ferry build`: ferry.yaml -> OCI image, assembled without a daemon. The steps: read the spec, get the
 * base image's layers, bundle the server, compile the handler, install the model's npm dependencies,
 * plan the layers (pure), build each layer (reproducible tar+gzip), assemble config and manifest.
 * Outputs (engine, OCI layout, archive, registry) are separate functions, so one build can go anywhere.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FerryError, isFerryError } from '../core/errors.ts';
import { FERRY_VERSION } from '../core/version.ts';
import { loadSpec } from '../spec/index.ts';
import type { LoadedSpec } from '../spec/types.ts';
import { defaultBaseTag, ferryBase } from './base.ts';
import { bundleServer, compileHandler, onnxRuntimeFiles, sha256File } from './bundle.ts';
import { cachedLayer } from './layer-cache.ts';
import { installedDependencies, installModelDependencies } from './npm-deps.ts';
import { assembleImage, buildLayer, epochToCreated, readOciLayout, sourceDateEpoch } from './oci/index.ts';
import type { Image, ImageConfig, Layer } from './oci/types.ts';
import { compiledHandlerPath, type ImagePlan, type PlanInput, planImage, weightFiles } from './plan.ts';
import { parseImageRef, RegistryClient, resolveCredentials } from './registry/index.ts';

export { FERRY_VERSION };
/** The public default, when `ferry base` has not made a local base for this host's Node (see chooseBase). */
export const DEFAULT_BASE = 'node:20-bookworm-slim';

export interface BuildImageOptions {
  /** Model directory (with ferry.yaml). */
  dir: string;
  /** Base image: `oci:<dir>`, a name `ferry base` made (found in the local base cache), or a registry ref. */
  base?: string;
  onProgress?: (line: string) => void;
  /**
   * Where staged files (bundle, compiled handler, npm dependencies) go. Given: the caller owns it and removes
   * it (needed when the plan's files are used after the build, as --eject and --dockerfile do). Default: a
   * temporary directory removed when the build ends.
   */
  stagingDir?: string;
  /** Reuse layers and npm installs from earlier builds ($FERRY_HOME/cache). Default true. */
  cache?: boolean;
  /**
   * `dir` is a model artifact (src/image/artifact.ts): its handler is compiled already and its node_modules
   * installed; they go into the image as they are (nothing is compiled or installed again).
   */
  prepared?: boolean;
  /**
   * When the image says it was created (seconds since the epoch) if SOURCE_DATE_EPOCH and git say nothing:
   * the platform gives a version's registration time, so its images do not claim 1970.
   */
  createdAt?: number;
}

/** An image Ferry assembled on a base, as the outputs (engine, layout, archive, registry) and summaries take it. */
export interface BuiltImage {
  image: Image;
  /** Default reference. */
  tag: string;
  baseRef: string;
  baseLayers: number;
  /** Compressed bytes of Ferry's own layers (on top of the base). */
  addedBytes: number;
  /** Compressed bytes of each of Ferry's layers, by the plan's step name. */
  layerSizes: Array<{ name: string; compressed: number }>;
}

export interface BuildImageResult extends BuiltImage {
  plan: ImagePlan;
  source: LoadedSpec;
  /** Default reference: <model name>:<version>. */
  tag: string;
}

/** Where `ferry base` keeps base images as OCI layouts: $FERRY_HOME/bases/<name>, default ~/.ferry. */
export function baseCacheDir(tag: string, env: NodeJS.ProcessEnv = process.env): string {
  const home = env.FERRY_HOME ?? join(homedir(), '.ferry');
  return join(home, 'bases', tag.replace(/[^a-zA-Z0-9._-]/g, '_'));
}

/**
 * The base image `ferry base` makes from this host's Node runtime (nothing downloaded), built into the base
 * cache on first use. Returns its tag, for `buildImage({ base })`: what demos and tests build on offline.
 */
export async function hostBase(onProgress?: (line: string) => void): Promise<string> {
  const tag = defaultBaseTag(process.version);
  const dir = baseCacheDir(tag);
  if (existsSync(join(dir, 'index.json'))) return tag;
  onProgress?.(`building the base image ${tag} from this host's Node runtime (once)`);
  await ferryBase({ ociDir: dir, tag, ...(onProgress ? { onProgress } : {}) });
  return tag;
}

/** Where the base of a build came from: --base, build.base in ferry.yaml, the cache of `ferry base`, or the default. */
export type BaseSource = 'option' | 'spec' | 'local' | 'default';

/**
 * The base image of a build (pure): `--base`, else `build.base`, else the base `ferry base` made for this host's
 * Node when it is in the base cache (`localBase`), else the public default. The note says which, for progress.
 */
export function chooseBase(input: {
  option?: string | undefined;
  spec: string | null;
  localBase?: string | undefined;
}): { ref: string; source: BaseSource; note: string } {
  if (input.option !== undefined)
    return { ref: input.option, source: 'option', note: `base ${input.option}` };
  if (input.spec !== null)
    return { ref: input.spec, source: 'spec', note: `base ${input.spec} (build.base in ferry.yaml)` };
  if (input.localBase !== undefined) {
    return {
      ref: input.localBase,
      source: 'local',
      note: `base ${input.localBase} (made by ferry base; --base picks another)`,
    };
  }
  return {
    ref: DEFAULT_BASE,
    source: 'default',
    note: `base ${DEFAULT_BASE} (the public default; \`ferry base\` makes a local one from this host's Node)`,
  };
}

/** The base `ferry base` made for this host's Node, when it is in the base cache. */
export function localHostBase(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const tag = defaultBaseTag(process.version);
  return existsSync(join(baseCacheDir(tag, env), 'index.json')) ? tag : undefined;
}

/**
 * The image's times in seconds (pure). `created` (what `docker images` shows): SOURCE_DATE_EPOCH, else the time
 * of the model directory's last git commit, else the epoch; the same commit gives the same time, so builds stay
 * reproducible. Layer mtimes: SOURCE_DATE_EPOCH, else the epoch, not the commit, so that a new commit changes
 * the config and not every layer (cached and already-pushed layers stay valid).
 */
export function imageTimes(
  sourceDateEpoch: number | undefined,
  commitTime: number | undefined,
): { created: number; mtime: number } {
  return { created: sourceDateEpoch ?? commitTime ?? 0, mtime: sourceDateEpoch ?? 0 };
}

export async function buildImage(options: BuildImageOptions): Promise<BuildImageResult> {
  const log = options.onProgress ?? (() => undefined);
  const source = await loadSpec(options.dir);
  const { spec } = source;
  const chosen = chooseBase({ option: options.base, spec: spec.build.base, localBase: localHostBase() });
  const baseRef = chosen.ref;
  const git = gitFacts(source.dir);
  const times = imageTimes(
    process.env.SOURCE_DATE_EPOCH ? sourceDateEpoch() : undefined,
    git.commitTime ?? options.createdAt,
  );
  const staging = options.stagingDir ?? (await mkdtemp(join(tmpdir(), 'ferry-build-')));
  try {
    log(chosen.note);
    const base = await resolveBase(baseRef, chosen.source);

    log('bundling the server');
    const server = await bundleServer({ outDir: join(staging, 'server') });
    const model = await modelPlanInputs(source, staging, log, {
      cache: options.cache !== false,
      prepared: options.prepared === true,
    });
    const plan = planImage({
      ...model,
      serverFiles: server.files,
      onnxFiles: onnxRuntimeFiles(),
      ferryVersion: FERRY_VERSION,
      ...(git.revision ? { revision: git.revision } : {}),
      ...(git.source ? { source: git.source } : {}),
      created: epochToCreated(times.created),
      baseRef,
    });

    const layers: Layer[] = [];
    const { mtime } = times;
    for (const [i, step] of plan.layers.entries()) {
      const { layer, cached } =
        options.cache === false
          ? { layer: await buildLayer(step.entries, step.name, { mtime }), cached: false }
          : await cachedLayer(step.entries, step.name, mtime);
      layers.push(layer);
      log(
        `layer ${i + 1}/${plan.layers.length} ${step.name}: ${formatBytes(layer.size)} compressed (${layer.digest.slice(7, 19)})${cached ? ', cached' : ''}`,
      );
    }
    const image = assembleImage({
      base,
      layers,
      config: {
        architecture: 'amd64',
        os: 'linux',
        created: epochToCreated(times.created),
        config: { ...plan.config, Env: mergeEnv(base?.config.config.Env ?? [], plan.config.Env) },
      },
    });
    return {
      image,
      plan,
      source,
      tag: `${spec.model.name}:${spec.model.version}`,
      baseRef,
      baseLayers: base?.layers.length ?? 0,
      addedBytes: layers.reduce((n, l) => n + l.size, 0),
      layerSizes: layers.map((l, i) => ({ name: plan.layers[i]!.name, compressed: l.size })),
    };
  } finally {
    if (options.stagingDir === undefined) await rm(staging, { recursive: true, force: true });
  }
}

/**
 * The model's part of an image plan's input, made from its directory: the handler compiled, the npm
 * dependencies installed, the weights hashed (or, for a prepared artifact, taken as they are). Shared by
 * buildImage and prepareArtifact (artifact.ts), so an artifact holds exactly the image's model directory.
 */
export async function modelPlanInputs(
  source: LoadedSpec,
  staging: string,
  log: (line: string) => void,
  opts: { cache: boolean; prepared: boolean },
): Promise<
  Pick<PlanInput, 'spec' | 'specText' | 'modelDir' | 'modelFiles' | 'handlerCompiled' | 'npmDependencies'>
> {
  const { spec } = source;
  let handlerCompiled: { path: string; file: string } | undefined;
  if (spec.model.format === 'handler' && opts.prepared) {
    handlerCompiled = { path: spec.model.file, file: join(source.dir, spec.model.file) };
  } else if (spec.model.format === 'handler') {
    log(`compiling the handler ${spec.model.file}`);
    handlerCompiled = await compileHandler({
      modelDir: source.dir,
      file: spec.model.file,
      outDir: join(staging, 'handler'),
      outPath: compiledHandlerPath(spec),
    });
  }
  const deps = opts.prepared
    ? { files: await installedDependencies(source.dir) }
    : await installModelDependencies(spec, source.dir, join(staging, 'deps'), log, opts.cache);
  const modelFiles = await Promise.all(
    weightFiles(spec).map(async (path) => {
      const file = join(source.dir, path);
      return { path, size: (await stat(file)).size, sha256: await sha256File(file) };
    }),
  );
  return {
    spec,
    specText: await readFile(source.file, 'utf8'),
    modelDir: source.dir,
    modelFiles,
    ...(handlerCompiled ? { handlerCompiled } : {}),
    npmDependencies: deps?.files ?? null,
  };
}

/** The base's Env first, then Ferry's (a later NAME= replaces an earlier one). */
export function mergeEnv(base: string[], ours: string[]): string[] {
  const byName = new Map<string, string>();
  for (const entry of [...base, ...ours]) byName.set(entry.split('=')[0]!, entry);
  return [...byName.values()];
}

/** The layers and config of a base: an OCI layout (`oci:<dir>`), a base `ferry base` made, or a registry's. */
export async function resolveBase(
  ref: string,
  chosenBy: BaseSource,
): Promise<{ layers: Layer[]; config: ImageConfig }> {
  if (ref.startsWith('oci:')) return readOciLayout(resolve(ref.slice(4)));
  const cached = baseCacheDir(ref);
  if (existsSync(join(cached, 'index.json'))) return readOciLayout(cached, ref);
  const parsed = parseImageRef(ref);
  try {
    const { credentials } = resolveCredentials(parsed.registry);
    const client = new RegistryClient(parsed.registry, credentials ? { credentials } : {});
    return await client.pullImage(parsed.repository, parsed.reference);
  } catch (error) {
    throw new FerryError(
      'FERRY_CONNECTION_FAILED',
      `cannot get the base image ${ref}: ${isFerryError(error) ? error.message : String(error)}`,
      { hint: baseUnavailableHint(chosenBy) },
    );
  }
}

/** What to do when the base cannot be pulled, by how it was chosen (pure). */
export function baseUnavailableHint(chosenBy: BaseSource): string {
  return chosenBy === 'default'
    ? "Offline or air-gapped? Run `ferry base` once (it builds a base from this host's Node, nothing downloaded); builds without --base then use it."
    : 'Check the reference and the registry. Offline or air-gapped? Build a base locally with `ferry base`, then pass --base <the name it prints> (or set build.base in ferry.yaml).';
}

/**
 * Facts from git: the commit and its time (seconds), and where the source lives (FERRY_SOURCE, else the origin
 * remote; `sourceFromEnv: false` for Ferry's own source, which FERRY_SOURCE, a model's, does not name). Empty
 * outside a git repository.
 */
export function gitFacts(
  dir: string,
  options: { sourceFromEnv?: boolean } = {},
): { source?: string; revision?: string; commitTime?: number } {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', ['-C', dir, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return '';
    }
  };
  const revision = git(['rev-parse', 'HEAD']);
  // CI systems know the canonical URL better than a clone's remote (which may be a local path).
  const where =
    (options.sourceFromEnv !== false ? process.env.FERRY_SOURCE : undefined) ??
    git(['remote', 'get-url', 'origin']);
  const time = revision ? git(['log', '-1', '--format=%ct']) : '';
  return {
    ...(revision ? { revision } : {}),
    ...(where ? { source: where } : {}),
    ...(/^\d+$/.test(time) ? { commitTime: Number(time) } : {}),
  };
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}
