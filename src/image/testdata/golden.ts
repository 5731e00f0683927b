/**
 * Golden files for the image tests: compare a rendering with testdata/<name>, or rewrite it when
 * UPDATE_GOLDEN=1 (then review the diff: it is the change in what goes into images).
 *
 *   UPDATE_GOLDEN=1 node --import tsx --test src/image/plan.test.ts src/image/dockerfile.test.ts
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSpec } from '../../spec/index.ts';
import { sha256File } from '../bundle.ts';
import type { ImagePlan, PlanFile, PlanInput } from '../plan.ts';
import { compiledHandlerPath, weightFiles } from '../plan.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../../..');

export function checkGolden(name: string, actual: string): void {
  const file = join(here, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(file, 'utf8');
  } catch {
    assert.fail(`golden file ${file} is missing; run the test with UPDATE_GOLDEN=1 to write it`);
  }
  assert.equal(
    actual,
    expected,
    `${name} changed; if intended, rerun with UPDATE_GOLDEN=1 and review the diff`,
  );
}

/** Host paths under the repository shown as <repo>/..., so goldens do not depend on where the clone is. */
export function showPath(file: string): string {
  return file.startsWith(`${REPO}/`) ? `<repo>/${file.slice(REPO.length + 1)}` : file;
}

/**
 * The plan as JSON, one line per layer entry: "<type> <mode> <uid>:<gid> <path>[ <- <source>]". File sources
 * are host paths; inline contents are shown in full under `inline`.
 */
export function renderPlan(plan: ImagePlan): string {
  const layers = plan.layers.map((l) => {
    const inline: Record<string, string> = {};
    const entries = l.entries.map((e) => {
      const mode = e.type === 'symlink' ? '' : `0${(e.mode ?? 0).toString(8)} `;
      const head = `${e.type} ${mode}${e.uid ?? '-'}:${e.gid ?? '-'} ${e.path}`;
      if (e.type === 'dir') return head;
      if (e.type === 'symlink') return `${head} -> ${e.target}`;
      if (e.source instanceof Uint8Array) {
        inline[e.path] = new TextDecoder().decode(e.source);
        return `${head} <- inline`;
      }
      return `${head} <- ${showPath(e.source.file)}`;
    });
    return Object.keys(inline).length > 0
      ? { name: l.name, why: l.why, entries, inline }
      : { name: l.name, why: l.why, entries };
  });
  return `${JSON.stringify({ layers, config: plan.config }, null, 2)}\n`;
}

/** Fixed build-side inputs: the bundles and npm dependencies are named by path only (the plan reads nothing). */
const SERVER_FILES: PlanFile[] = [
  { path: 'server.mjs', file: '/build/server/server.mjs' },
  { path: 'worker.mjs', file: '/build/server/worker.mjs' },
];
const ONNX_FILES: PlanFile[] = [
  'node_modules/onnxruntime-common/dist/cjs/index.js',
  'node_modules/onnxruntime-common/dist/cjs/package.json',
  'node_modules/onnxruntime-common/package.json',
  'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
  'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
  'node_modules/onnxruntime-node/dist/index.js',
  'node_modules/onnxruntime-node/package.json',
].map((path) => ({ path, file: `/build/runtime/${path}` }));

/** PlanInput for an example model: the real spec and weight digests, fixed build-side values. */
export async function exampleInput(example: 'iris' | 'ocr'): Promise<PlanInput> {
  const loaded = await loadSpec(join(REPO, 'examples', example));
  const modelFiles = await Promise.all(
    weightFiles(loaded.spec).map(async (path) => {
      const file = join(loaded.dir, path);
      return { path, size: statSync(file).size, sha256: await sha256File(file) };
    }),
  );
  const input: PlanInput = {
    spec: loaded.spec,
    specText: readFileSync(loaded.file, 'utf8'),
    modelDir: loaded.dir,
    modelFiles,
    serverFiles: SERVER_FILES,
    onnxFiles: ONNX_FILES,
    npmDependencies: null,
    ferryVersion: '0.1.0',
    source: 'https://git.example.com/models/ferry.git',
    revision: '0123456789abcdef0123456789abcdef01234567',
    created: '1970-01-01T00:00:00Z',
    baseRef: 'localhost:5000/ferry/base:node20',
  };
  if (loaded.spec.model.format === 'handler') {
    const path = compiledHandlerPath(loaded.spec);
    input.handlerCompiled = { path, file: `/build/handler/${path}` };
    input.npmDependencies = Object.keys(loaded.spec.build.dependencies)
      .sort()
      .flatMap((name) => [
        { path: `node_modules/${name}/package.json`, file: `/build/deps/node_modules/${name}/package.json` },
        { path: `node_modules/${name}/index.js`, file: `/build/deps/node_modules/${name}/index.js` },
      ]);
  }
  return input;
}
