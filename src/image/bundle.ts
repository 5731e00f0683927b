/**
 * What runs inside an image, made at build time: the model server bundled into one ESM file (no tsx, no
 * TypeScript and no npm install at run time), the inference worker bundled beside it, user handlers compiled
 * to .mjs, and only the parts of onnxruntime-node that Linux x64 loads; for the gateway image, `ferry gateway`
 * bundled into one ESM file with every package it uses (bundleGateway).
 *
 * Reproducible: esbuild is deterministic for the same sources and options; the output has no timestamps and
 * no absolute paths (esbuild's "// path" comments are relative to `absWorkingDir`, fixed below), and the
 * files are written with fixed modes. Paths in the returned lists are '/'-separated and relative to /app
 * (server files, onnxruntime) or to the model directory (compiled handler).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildOptions, BuildResult, Plugin } from 'esbuild';
import { FerryError } from '../core/errors.ts';
import type { PlanFile } from './plan.ts';

/** A file for the image: `path` inside the image (relative, '/'-separated), `file` on the host (absolute). */
export type HostFile = PlanFile;

/** The repository root (the directory holding src/ and node_modules/). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVER_ENTRY = fileURLToPath(new URL('../server/entry.ts', import.meta.url));
const WORKER_ENTRY = fileURLToPath(new URL('../server/worker/inference-worker.ts', import.meta.url));
/** The gateway image's entry: `ferry gateway` alone (a build-time input, like the server's entry: not imported). */
const GATEWAY_ENTRY = fileURLToPath(new URL('../cli/gateway-entry.ts', import.meta.url));
/** The gateway bundle's name in the image, under /app. */
export const GATEWAY_FILE = 'gateway.mjs';

/** Name of the bundled worker, beside server.mjs; worker/worker-url.ts finds it through the FERRY_BUNDLED_WORKER define. */
const WORKER_FILE = 'worker.mjs';

/**
 * CommonJS dependencies (fastify, pino, ...) call require() for Node built-ins; an ESM bundle has no
 * `require`, so give it one. `__ferry` names avoid clashes with bundled code.
 */
const ESM_REQUIRE_BANNER = [
  "import { createRequire as __ferryCreateRequire } from 'node:module';",
  'const require = __ferryCreateRequire(import.meta.url);',
].join('\n');

const COMMON: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  write: false,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'silent',
  banner: { js: ESM_REQUIRE_BANNER },
  // Paths in the bundle's comments are as seen from the project (node_modules/...), not where a symlinked
  // node_modules really lives, so the bytes do not depend on how dependencies were installed.
  preserveSymlinks: true,
};

async function esbuild(): Promise<typeof import('esbuild')> {
  try {
    return await import('esbuild');
  } catch (error) {
    throw new FerryError('FERRY_INTERNAL', `esbuild cannot be loaded: ${(error as Error).message}`, {
      hint: 'esbuild is installed with tsx; run "npm install" in the Ferry directory',
    });
  }
}

function buildFailed(what: string, error: unknown): FerryError {
  const errors = (error as { errors?: Array<{ text: string; location?: { file: string; line: number } }> })
    .errors;
  const detail =
    errors && errors.length > 0
      ? errors
          .map((e) => (e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text))
          .join('\n')
      : (error as Error).message;
  return new FerryError('FERRY_MODEL_LOAD_FAILED', `cannot compile ${what}:\n${detail}`, { cause: error });
}

async function writeOutput(result: BuildResult, outFile: string): Promise<void> {
  const output = result.outputFiles?.[0];
  if (output === undefined)
    throw new FerryError('FERRY_INTERNAL', `esbuild produced no output for ${outFile}`);
  await mkdir(dirname(outFile), { recursive: true });
  await writeFile(outFile, output.contents, { mode: 0o644 });
}

/**
 * Bundles the model server (src/server/entry.ts) into `<outDir>/server.mjs` and the inference worker into
 * `<outDir>/worker.mjs`. npm packages are bundled in, except onnxruntime-node (native; shipped as files, see
 * onnxRuntimeFiles) and tsx (only needed for .ts handlers, which images do not have: they are compiled).
 */
export async function bundleServer(options: { outDir: string }): Promise<{ files: HostFile[] }> {
  const files: HostFile[] = [];
  for (const [name, entry] of [
    ['server.mjs', SERVER_ENTRY],
    [WORKER_FILE, WORKER_ENTRY],
  ] as const) {
    const file = join(options.outDir, name);
    await bundleEntry(`the model server (${name})`, entry, file, {
      external: ['onnxruntime-node', 'onnxruntime-common', 'tsx', 'tsx/*'],
      define: { FERRY_BUNDLED_WORKER: JSON.stringify(`./${WORKER_FILE}`) },
    });
    files.push({ path: name, file });
  }
  return { files };
}

/**
 * Bundles `ferry gateway` alone (src/cli/gateway-entry.ts) into `<outDir>/gateway.mjs`: one file with every
 * npm package it uses (commander, pino, prom-client) and nothing external, so it runs with node alone (no
 * node_modules beside it). A package it cannot bundle (a native addon) fails the build here, not at run time.
 */
export async function bundleGateway(options: { outDir: string }): Promise<HostFile> {
  const file = join(options.outDir, GATEWAY_FILE);
  await bundleEntry(`the gateway (${GATEWAY_FILE})`, GATEWAY_ENTRY, file, {});
  return { path: GATEWAY_FILE, file };
}

/**
 * OpenTelemetry's packages (tracing, src/core/tracing.ts) by their ES module builds: their CommonJS `main`, which
 * esbuild picks for platform node, cannot be tree-shaken, and pulled in all of semantic-conventions and the
 * metrics SDK (about 700 KB more per bundle instead of about 330 KB). Packages with an `exports` map need
 * nothing: imported from ES modules they resolve to their ES builds already.
 */
const OTEL_ESM: Plugin = {
  name: 'ferry-otel-esm',
  setup(build) {
    build.onResolve({ filter: /^@opentelemetry\/[^/]+$/ }, (args) => {
      // Node's lookup (node_modules upwards), without following symlinks (COMMON.preserveSymlinks).
      for (let dir = args.resolveDir || ROOT; ; dir = dirname(dir)) {
        const manifest = join(dir, 'node_modules', args.path, 'package.json');
        if (existsSync(manifest)) {
          const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { module?: string; exports?: unknown };
          if (pkg.exports !== undefined || pkg.module === undefined) return undefined;
          return { path: join(dirname(manifest), pkg.module) };
        }
        if (dirname(dir) === dir) return undefined;
      }
    });
  },
};

async function bundleEntry(
  what: string,
  entry: string,
  file: string,
  options: Pick<BuildOptions, 'external' | 'define'>,
): Promise<void> {
  const { build } = await esbuild();
  let result: BuildResult;
  try {
    result = await build({
      ...COMMON,
      ...options,
      plugins: [OTEL_ESM],
      absWorkingDir: ROOT,
      entryPoints: [relative(ROOT, entry).split(sep).join('/')],
      outfile: basename(file),
    });
  } catch (error) {
    throw buildFailed(what, error);
  }
  await writeOutput(result, file);
}

/**
 * Compiles a handler module (.ts/.mts/.js/.mjs) to one ESM file: its relative imports (its own helpers, and
 * anything it imports by path such as Ferry's error type) are bundled in; npm packages stay external and are
 * resolved at run time from the model's node_modules (the npm dependencies layer).
 * `outPath` is where the compiled module goes, relative to the model directory (see compiledHandlerPath).
 */
export async function compileHandler(options: {
  modelDir: string;
  /** model.file, relative to modelDir. */
  file: string;
  outDir: string;
  outPath: string;
}): Promise<HostFile> {
  const { build } = await esbuild();
  let result: BuildResult;
  try {
    result = await build({
      ...COMMON,
      // Handlers may import ../../src/core/errors.ts (examples do); paths in comments stay relative.
      absWorkingDir: options.modelDir,
      entryPoints: [options.file],
      outfile: options.outPath,
      packages: 'external',
      // No require() banner: npm packages stay external imports, and a handler may declare its own
      // `const require = createRequire(import.meta.url)`, which the banner would clash with.
      banner: {},
    });
  } catch (error) {
    throw buildFailed(`handler ${options.file} in ${options.modelDir}`, error);
  }
  const file = join(options.outDir, options.outPath);
  await writeOutput(result, file);
  return { path: options.outPath, file };
}

// ---------------------------------------------------------------------------------------------------------
// onnxruntime-node: only what Linux x64 loads at run time.

/** Directory of an installed package, found from `from` the way Node resolves it. */
function packageDir(name: string, from: string): string {
  const require = createRequire(join(from, 'noop.js'));
  let dir = dirname(require.resolve(name));
  while (dirname(dir) !== dir) {
    try {
      const pkg = require(join(dir, 'package.json')) as { name?: string };
      if (pkg.name === name) return dir;
    } catch {
      // not here; go up
    }
    dir = dirname(dir);
  }
  throw new FerryError('FERRY_INTERNAL', `cannot find the package directory of ${name}`);
}

function walk(dir: string): string[] {
  const entries = readdirSync(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(path));
    else if (e.isFile()) out.push(path);
  }
  return out;
}

/** Where onnxruntime-node and the onnxruntime-common it loads are installed with this Ferry. */
export function onnxRuntimePackageDirs(): Record<'onnxruntime-node' | 'onnxruntime-common', string> {
  const ortDir = packageDir('onnxruntime-node', ROOT);
  return { 'onnxruntime-node': ortDir, 'onnxruntime-common': packageDir('onnxruntime-common', ortDir) };
}

/** JavaScript, and nested package.json files (dist/cjs/package.json says "type": "commonjs"). */
const RUNTIME_JS = /(\.(c|m)?js|\/package\.json)$/;

/**
 * The files of onnxruntime-node (and onnxruntime-common) that Linux x64 needs at run time, relative to /app:
 * package.json, the dist JavaScript (no .d.ts, no source maps; CommonJS only for onnxruntime-common) and
 * bin/napi-v<N>/linux/x64 (the binding and libonnxruntime). Other platforms' binaries, install scripts and TypeScript sources are left out.
 */
export function onnxRuntimeFiles(): HostFile[] {
  const ortDir = packageDir('onnxruntime-node', ROOT);
  const commonDir = packageDir('onnxruntime-common', ortDir);
  const files: HostFile[] = [];
  const add = (pkg: string, pkgDir: string, file: string) =>
    files.push({ path: `node_modules/${pkg}/${relative(pkgDir, file).split(sep).join('/')}`, file });

  add('onnxruntime-node', ortDir, join(ortDir, 'package.json'));
  for (const f of walk(join(ortDir, 'dist'))) if (RUNTIME_JS.test(f)) add('onnxruntime-node', ortDir, f);
  const napi = readdirSync(join(ortDir, 'bin')).filter((d) => d.startsWith('napi-v'));
  for (const version of napi) {
    const platformDir = join(ortDir, 'bin', version, 'linux', 'x64');
    if (statSync(platformDir, { throwIfNoEntry: false })?.isDirectory())
      for (const f of walk(platformDir)) add('onnxruntime-node', ortDir, f);
  }
  if (!files.some((f) => f.path.endsWith('/onnxruntime_binding.node'))) {
    throw new FerryError('FERRY_INTERNAL', `onnxruntime-node in ${ortDir} has no Linux x64 binding`, {
      hint: 'reinstall onnxruntime-node (npm install) on a machine that can fetch its binaries',
    });
  }
  add('onnxruntime-common', commonDir, join(commonDir, 'package.json'));
  // onnxruntime-node require()s onnxruntime-common: only its CommonJS build is loaded.
  const cjs = join(commonDir, 'dist', 'cjs');
  const commonDist = statSync(cjs, { throwIfNoEntry: false })?.isDirectory() ? cjs : join(commonDir, 'dist');
  for (const f of walk(commonDist)) if (RUNTIME_JS.test(f)) add('onnxruntime-common', commonDir, f);
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

let serverId: Promise<string> | undefined;

/**
 * What identifies the model server this Ferry puts in an image: sha256 of its bundle (server and worker) and of
 * onnxruntime's package.json files (their versions). An image built from an artifact by another Ferry (an older
 * server that may not speak to this control plane) has another id. Bundled once per process (~0.2 s), into a
 * temporary directory that is removed.
 */
export function modelServerId(): Promise<string> {
  serverId ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-server-id-'));
    try {
      const { files } = await bundleServer({ outDir: dir });
      const hash = createHash('sha256');
      const dirs = onnxRuntimePackageDirs();
      for (const file of [
        ...files.map((f) => f.file),
        ...Object.values(dirs).map((d) => join(d, 'package.json')),
      ])
        hash.update(await readFile(file)).update('\0');
      return hash.digest('hex');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  serverId.catch(() => {
    serverId = undefined; // a failed bundle is tried again next time
  });
  return serverId;
}

/** sha256 (hex) of a file's contents. */
export async function sha256File(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}
