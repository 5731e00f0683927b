#!/usr/bin/env node
// Builds the dashboard (web/, Preact + Vite: web/vite.config.ts) into dist/web, which the control plane serves
// at /ui/ (src/control/api/ui.ts).
//   node scripts/build-web.mjs     build now (scripts/ensure-deps.mjs, scripts/test.mjs and bin/ferry.js for
//                                  `ferry up` / `ferry ui` run it when the build is missing or stale)
//
// dist/web-build.json (beside the output, not in it: the API serves dist/web) lists every file under web/
// with its size and mtime, and the package.json of each npm package the build takes in; the build is stale when
// one of them changed, went or came (a new file under web/ counts: the directory is listed again).
// The build is written to a temporary directory and moved into place, so a running control plane never serves
// a half-written dist/web; concurrent builders each make their own and the last one in wins (same bytes).
// Plain JavaScript on purpose: it runs before anything is compiled, and needs only vite when it builds.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_DIR = join(ROOT, 'web');
export const WEB_OUT_DIR = join(ROOT, 'dist', 'web');
const MANIFEST = join(ROOT, 'dist', 'web-build.json');
const BUILD_FORMAT = 1;
/** npm packages that go into the bundle or make it: a new version means a new build. */
const PACKAGES = ['preact', 'uplot', 'eventsource-parser', 'vite', '@preact/preset-vite'];

function webFiles(dir = WEB_DIR) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : webFiles(path);
    return entry.isFile() ? [relative(ROOT, path).split(sep).join('/')] : [];
  });
}

function inputs() {
  const files = [
    ...webFiles(),
    'scripts/build-web.mjs',
    ...PACKAGES.map((p) => `node_modules/${p}/package.json`),
  ];
  return files.map((file) => {
    const stat = statSync(join(ROOT, file));
    return [file, stat.size, stat.mtimeMs];
  });
}

/** True when dist/web holds a build of the current web/ sources (made from this directory). */
export function isWebFresh() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(MANIFEST, 'utf8'));
    statSync(join(WEB_OUT_DIR, 'index.html'));
  } catch {
    return false;
  }
  if (manifest.format !== BUILD_FORMAT || manifest.root !== ROOT) return false;
  let now;
  try {
    now = inputs();
  } catch {
    return false;
  }
  return JSON.stringify(now) === JSON.stringify(manifest.inputs);
}

/** Builds dist/web from web/. Returns what was written, for the caller to report. */
export async function buildWeb() {
  const started = Date.now();
  const before = inputs();
  const { build } = await import('vite');
  const tmp = join(ROOT, 'dist', `web.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  mkdirSync(dirname(tmp), { recursive: true });
  try {
    await build({
      configFile: join(WEB_DIR, 'vite.config.ts'),
      build: { outDir: tmp, emptyOutDir: true },
      logLevel: 'warn',
    });
    const old = `${tmp}.old`;
    try {
      renameSync(WEB_OUT_DIR, old);
    } catch {
      // none yet
    }
    try {
      renameSync(tmp, WEB_OUT_DIR);
    } catch {
      // A concurrent builder moved its build in between: it is the same build.
    }
    rmSync(old, { recursive: true, force: true });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const files = readdirSync(join(WEB_OUT_DIR, 'assets')).length + 1;
  // An input changed while building: leave the manifest stale so that the next check builds again.
  const after = inputs();
  const manifestInputs = JSON.stringify(after) === JSON.stringify(before) ? after : [];
  const tmpManifest = `${MANIFEST}.${process.pid}.tmp`;
  writeFileSync(
    tmpManifest,
    `${JSON.stringify({ format: BUILD_FORMAT, root: ROOT, inputs: manifestInputs })}\n`,
  );
  renameSync(tmpManifest, MANIFEST);
  return { files, inputs: after.length, ms: Date.now() - started };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { files, inputs: count, ms } = await buildWeb();
  console.error(
    `[ferry setup] built the dashboard: ${count} sources -> ${files} files in dist/web (${ms} ms)`,
  );
}
