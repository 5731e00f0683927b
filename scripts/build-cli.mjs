#!/usr/bin/env node
// Compiles the CLI (src/cli/main.ts) to plain JavaScript in dist/cli/, so that `ferry` starts without tsx:
// esbuild bundles our sources with code splitting (each command's heavy modules land in chunks loaded only
// when it runs). npm packages are bundled into the chunks as well (one file to compile instead of hundreds
// to resolve and load through the ES module loader: `ferry serve` listened about 100 ms sooner), except
// EXTERNAL: packages with native code or files they find beside themselves, which load from node_modules.
// CommonJS packages get a require() (the banner) for the Node built-ins they require.
//   node scripts/build-cli.mjs     build now (scripts/ensure-deps.mjs runs it; bin/ferry.js does when stale)
//
// The inference worker that `ferry serve` starts in its worker threads (src/server/worker/inference-worker.ts
// and the backends) is compiled too, first, to dist/cli/worker-<hash>.js; the CLI build is told its name
// (define FERRY_COMPILED_WORKER, read by src/server/worker/worker-url.ts), so the worker runs without tsx as
// well. Content-named, like the chunks: a server started by an earlier build keeps starting its own worker.
//
// dist/cli/build.json lists every source file that went into the build (CLI and worker) with its size and
// mtime, a bundled npm package as its package.json (npm install rewrites it); the build is stale when one of
// them changed or is gone (a file new to the build can only come in through an edit of one of them).
// bin/ferry.js checks that on every start: one small JSON read and a stat per file (about 200).
//
// `import.meta.url` keeps meaning the source file's URL (src/...), not the chunk's: code that finds files
// beside itself (the worker bootstrap, examples/, bin/ferry.js, the image bundler's entries) works unchanged.
//
// Writes are atomic and safe with concurrent builders: chunks are content-named and written once (temp file,
// then rename), main.js and build.json last. Chunks of earlier builds stay a day for processes still running.
// Plain JavaScript on purpose: bin/ferry.js imports it before anything is compiled.
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(ROOT, 'dist', 'cli');
export const ENTRY = join(OUT_DIR, 'main.js');
const MANIFEST = join(OUT_DIR, 'build.json');
const SOURCE = 'src/cli/main.ts';
const WORKER_SOURCE = 'src/server/worker/inference-worker.ts';
/** The module that picks the worker's URL; FERRY_COMPILED_WORKER is relative to it. */
const WORKER_URL_SOURCE = 'src/server/worker/worker-url.ts';
/** Bumped when the build's options change, so that older builds count as stale. */
const BUILD_FORMAT = 3;
/**
 * npm packages left out of the bundle: native addons (onnxruntime-node, better-sqlite3; dockerode's ssh2 has an
 * optional one), esbuild (runs its binary) and tsx (loader hooks it registers by file URL).
 */
const EXTERNAL = [
  'onnxruntime-node',
  'onnxruntime-common',
  'better-sqlite3',
  'dockerode',
  'esbuild',
  'tsx',
  'tsx/*',
];
/** A top-level require() in every output file, for bundled CommonJS (esbuild's shim calls it if defined). */
const REQUIRE_BANNER = [
  "import { createRequire as __ferryCreateRequire } from 'node:module';",
  'const require = __ferryCreateRequire(import.meta.url);',
].join('\n');
const KEEP_OLD_CHUNKS_MS = 24 * 60 * 60 * 1000;

/** True when dist/cli holds a build of the current sources (made from this directory). */
export function isFresh() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch {
    return false;
  }
  if (manifest.format !== BUILD_FORMAT || manifest.root !== ROOT) return false;
  for (const [file, size, mtimeMs] of manifest.inputs) {
    let stat;
    try {
      stat = statSync(join(ROOT, file));
    } catch {
      return false;
    }
    if (stat.size !== size || stat.mtimeMs !== mtimeMs) return false;
  }
  return true;
}

/**
 * Rewrites `import.meta.url` in a source file to the URL of that file (computed from the chunk's own URL, so
 * the build stays relocatable with its checkout). Only for files that mention import.meta; strings and
 * comments are left alone (esbuild's define replaces expressions only).
 */
function sourceUrlPlugin(esbuild) {
  return {
    name: 'ferry-source-url',
    setup(build) {
      build.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
        const text = await readFile(args.path, 'utf8');
        if (!text.includes('import.meta')) return undefined;
        const { code } = await esbuild.transform(text, {
          loader: 'ts',
          format: 'esm',
          target: 'node20',
          sourcefile: args.path,
          tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } },
          define: { 'import.meta.url': '__ferrySourceUrl' },
        });
        const fromChunk = relative(OUT_DIR, args.path).split(sep).join('/');
        return {
          contents: `const __ferrySourceUrl = new URL(${JSON.stringify(fromChunk)}, import.meta.url).href;\n${code}`,
          loader: 'js',
          resolveDir: dirname(args.path),
        };
      });
    },
  };
}

function writeAtomically(path, contents) {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

/** Builds dist/cli from the sources. Returns what was written, for the caller to report. */
export async function buildCli() {
  const esbuild = await import('esbuild');
  const started = Date.now();
  const options = {
    absWorkingDir: ROOT,
    outdir: OUT_DIR,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    banner: { js: REQUIRE_BANNER },
    chunkNames: 'chunk-[hash]',
    write: false,
    metafile: true,
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [sourceUrlPlugin(esbuild)],
  };
  // The worker first: the CLI's build needs the name of its entry.
  const worker = await esbuild.build({
    ...options,
    entryPoints: { worker: WORKER_SOURCE },
    entryNames: '[name]-[hash]',
  });
  const workerEntry = Object.entries(worker.metafile.outputs).find(
    ([, output]) => output.entryPoint === WORKER_SOURCE,
  )?.[0];
  if (!workerEntry) throw new Error(`esbuild wrote no entry for ${WORKER_SOURCE}`);
  const fromWorkerUrl = relative(dirname(join(ROOT, WORKER_URL_SOURCE)), join(ROOT, workerEntry));
  const cli = await esbuild.build({
    ...options,
    entryPoints: { main: SOURCE },
    entryNames: '[name]',
    define: { FERRY_COMPILED_WORKER: JSON.stringify(fromWorkerUrl.split(sep).join('/')) },
  });
  mkdirSync(OUT_DIR, { recursive: true });
  const written = new Set();
  let entry;
  for (const file of [...worker.outputFiles, ...cli.outputFiles]) {
    if (written.has(file.path)) continue;
    written.add(file.path);
    if (file.path === ENTRY) {
      entry = file;
      continue;
    }
    // Content-named: an existing file of that name already has these bytes (touched: it is in use again).
    if (existsQuietly(file.path)) utimesSync(file.path, new Date(), new Date());
    else writeAtomically(file.path, file.contents);
  }
  if (!entry) throw new Error(`esbuild wrote no ${relative(ROOT, ENTRY)}`);
  writeAtomically(ENTRY, entry.contents);
  // Every input with its size and mtime; one modified since the build started gets mtime 0 (stale at once).
  // A bundled npm package counts as its package.json (npm install rewrites it), not as every file in it.
  const sources = new Set(
    [...Object.keys(worker.metafile.inputs), ...Object.keys(cli.metafile.inputs)].map((file) => {
      const pkg = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(file.split(sep).join('/'));
      return pkg ? `${pkg[1]}/package.json` : file;
    }),
  );
  const inputs = [...sources].map((file) => {
    const stat = statSync(join(ROOT, file));
    return [file.split(sep).join('/'), stat.size, stat.mtimeMs >= started ? 0 : stat.mtimeMs];
  });
  writeAtomically(MANIFEST, `${JSON.stringify({ format: BUILD_FORMAT, root: ROOT, inputs })}\n`);
  written.add(MANIFEST);
  pruneOldChunks(written);
  return { files: written.size, inputs: inputs.length, ms: Date.now() - started };
}

function existsQuietly(path) {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes chunks of earlier builds once they are a day old (a long-running `ferry up` may still load them). */
function pruneOldChunks(keep) {
  const now = Date.now();
  for (const name of readdirSync(OUT_DIR)) {
    const path = join(OUT_DIR, name);
    if (keep.has(path)) continue;
    try {
      const age = now - statSync(path).mtimeMs;
      // A .tmp file is another build's write in progress, unless it is old (a build that was killed).
      if (age > (name.endsWith('.tmp') ? 10 * 60 * 1000 : KEEP_OLD_CHUNKS_MS)) unlinkSync(path);
    } catch {
      // removed by a concurrent build
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { files, inputs, ms } = await buildCli();
  console.error(`[ferry setup] built the CLI: ${inputs} sources -> ${files} files in dist/cli (${ms} ms)`);
}
