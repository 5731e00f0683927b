/**
 * Startup: how long a model server takes from spawn to the first 2xx of `GET /v2/health/ready`, side by side
 * in one run, taking turns (floor, ferry serve, image server, floor, ...):
 * - floor: a node:http server that answers 200 at once (no Node server is ready sooner);
 * - `node bin/ferry.js serve examples/iris` (the compiled CLI);
 * - the image's server: server.mjs + worker.mjs as src/image/bundle.ts bundles them, laid out in a temporary
 *   directory with onnxruntime-node beside them (as in /app), run with FERRY_MODEL_DIR=examples/iris.
 * Phases come from the server's own log (pino times, ms): spawn to 'Server listening', the model's load
 * ('model version ready', its `seconds`: worker start + session creation), spawn to 'server ready'.
 * Reference: onnxruntime's InferenceSession.create of the same model with Ferry's session options, in this
 * process (the first create of the process, and warm ones). Also the server's CPU time when it was ready.
 * Goal (issue 9): ready in <= 300 ms + the model's session creation, for both servers (medians).
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { buildCli, isFresh } from '../scripts/build-cli.mjs';
import { bundleServer, onnxRuntimeFiles } from '../src/image/bundle.ts';
import { processCpuMs } from './lib/cpu.mjs';
import { log } from './lib/measure.ts';
import { numberFlag, parseOptions, REPO_ROOT } from './lib/options.ts';
import { freePort, startProcess } from './lib/process.ts';
import { printGoals, printTable, saveResults } from './lib/report.ts';

const USAGE = `Startup: spawn to the first 2xx of /v2/health/ready, ferry serve and the image's server vs a floor.
usage: node --import tsx bench/startup.ts [options]
  --runs <n>          timed starts of each server, default 10 (after 2 untimed ones)
  --model <dir>       model directory, default examples/iris
  --skip <list>       leave out some of floor,serve,image
  --poll <ms>         pause between readiness probes, default 5
  --compare <bin>     also time another checkout's bin/ferry.js serve (e.g. the commit before a change), in turn
  (of the common options --ferry and --ready-timeout apply)`;

const { common, values } = parseOptions(USAGE, {
  runs: { type: 'string' },
  model: { type: 'string' },
  skip: { type: 'string' },
  poll: { type: 'string' },
  compare: { type: 'string' },
});
const runs = Math.round(numberFlag(values, 'runs', 10, 1, 200));
const pollMs = numberFlag(values, 'poll', 5, 1, 1000);
const modelDir = join(REPO_ROOT, typeof values.model === 'string' ? values.model : 'examples/iris');
const compareBin = typeof values.compare === 'string' ? resolve(values.compare) : null;
const skip = new Set(typeof values.skip === 'string' ? values.skip.split(',').map((s) => s.trim()) : []);
for (const s of skip)
  if (!['floor', 'serve', 'image'].includes(s)) {
    process.stderr.write(`bench: --skip takes floor, serve, image; got "${s}"\n`);
    process.exit(2);
  }
const BUDGET_MS = 300;
const node = process.execPath;

if (!skip.has('serve') && !isFresh()) {
  log('building the CLI first (dist/cli is missing or stale), so that no timed run pays for it');
  await buildCli();
}

const work = mkdtempSync(join(tmpdir(), 'ferry-bench-startup-'));
process.once('exit', () => rmSync(work, { recursive: true, force: true }));

// The image's /app: server.mjs, worker.mjs and onnxruntime-node's Linux x64 files, outside the repository.
const app = join(work, 'app');
if (!skip.has('image')) {
  log('bundling the image server (src/image/bundle.ts) into a temporary /app');
  await bundleServer({ outDir: app });
  for (const f of onnxRuntimeFiles()) {
    mkdirSync(dirname(join(app, f.path)), { recursive: true });
    cpSync(f.file, join(app, f.path));
  }
}

const FLOOR = `require('node:http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, '127.0.0.1')`;

interface Case {
  name: string;
  /** Whether the server logs Ferry's phases. */
  ferry: boolean;
  command(port: number): { args: string[]; env: NodeJS.ProcessEnv; cwd?: string };
}

const baseEnv: NodeJS.ProcessEnv = { ...process.env, FERRY_LOG_LEVEL: 'info' };
const allCases: Case[] = [
  {
    name: 'floor',
    ferry: false,
    command: (port) => ({ args: ['-e', FLOOR], env: { ...baseEnv, PORT: String(port) } }),
  },
  {
    name: 'serve',
    ferry: true,
    command: (port) => ({
      args: [common.ferryBin, 'serve', modelDir, '--host', '127.0.0.1', '--port', String(port)],
      env: baseEnv,
    }),
  },
  {
    name: 'compare',
    ferry: true,
    command: (port) => ({
      args: [compareBin ?? '', 'serve', modelDir, '--host', '127.0.0.1', '--port', String(port)],
      env: baseEnv,
    }),
  },
  {
    name: 'image',
    ferry: true,
    command: (port) => ({
      args: ['server.mjs'],
      cwd: app,
      env: { ...baseEnv, FERRY_MODEL_DIR: modelDir, FERRY_HOST: '127.0.0.1', FERRY_PORT: String(port) },
    }),
  },
];
const cases = allCases.filter((c) => !skip.has(c.name) && (c.name !== 'compare' || compareBin !== null));
const TITLES: Record<string, string> = {
  floor: 'node:http floor',
  serve: 'ferry serve (compiled CLI)',
  compare: `ferry serve (${compareBin === null ? '' : relative(REPO_ROOT, compareBin)})`,
  image: "image's server.mjs",
};

interface Run {
  /** spawn to the first 2xx of /v2/health/ready, ms (this process's clock). */
  total: number;
  /** spawn to the log's 'Server listening' / 'server ready', ms (log times have ms resolution). */
  listening: number | null;
  serverReady: number | null;
  /** The model's load as the server logs it ('model version ready', seconds): worker start + session. */
  load: number | null;
  /** CPU time (user + system, all threads) of the server when it was ready, ms (10 ms ticks). */
  cpu: number | null;
}

function logTime(lines: Array<Record<string, unknown>>, test: (msg: string) => boolean): number | null {
  const line = lines.find((l) => typeof l.msg === 'string' && test(l.msg));
  return typeof line?.time === 'string' ? Date.parse(line.time) : null;
}

async function once(c: Case): Promise<Run> {
  const port = await freePort();
  const { args, env, cwd } = c.command(port);
  const wall0 = Date.now();
  const t0 = performance.now();
  const server = await startProcess({
    name: c.name,
    command: node,
    args,
    env,
    ...(cwd ? { cwd } : {}),
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    readyTimeoutMs: common.readyTimeoutS * 1000,
    pollMs,
  });
  const total = performance.now() - t0;
  const cpu = processCpuMs(server.pid);
  await server.stop();
  if (!c.ferry) return { total, listening: null, serverReady: null, load: null, cpu };
  const lines = server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const at = (test: (msg: string) => boolean) => {
    const t = logTime(lines, test);
    return t === null ? null : t - wall0;
  };
  const loaded = lines.find((l) => l.msg === 'model version ready');
  if (!loaded) throw new Error(`${c.name}: no 'model version ready' in its log:\n${server.output()}`);
  return {
    total,
    listening: at((m) => m.startsWith('Server listening')),
    serverReady: at((m) => m === 'server ready'),
    load: typeof loaded.seconds === 'number' ? loaded.seconds * 1000 : null,
    cpu,
  };
}

// Reference: InferenceSession.create of the same model in this process, with Ferry's session options and the
// thread count Ferry picks for one worker on this machine.
const threads = availableParallelism();
const modelFile = join(modelDir, 'model.onnx');
let t = performance.now();
const { sessionOptions } = await import('../src/server/backends/onnx-tensors.ts');
const ort = await import('onnxruntime-node');
const ortImport = performance.now() - t;
t = performance.now();
await (await ort.InferenceSession.create(modelFile, sessionOptions(threads))).release();
const coldCreate = performance.now() - t;

const results = new Map<string, Run[]>(cases.map((c) => [c.name, []]));
const warmCreates: number[] = [];
log(`startup: ${cases.map((c) => c.name).join(', ')} x ${runs} runs, taking turns (model ${modelDir})`);
for (let i = -2; i < runs; i++) {
  for (const c of cases) {
    const r = await once(c);
    if (i >= 0) results.get(c.name)?.push(r);
  }
  t = performance.now();
  await (await ort.InferenceSession.create(modelFile, sessionOptions(threads))).release();
  if (i >= 0) warmCreates.push(performance.now() - t);
  if (i >= 0) log(`  run ${i + 1}/${runs}`);
}

const median = (xs: Array<number | null>): number | null => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};
const stat = (name: string, key: keyof Run) => median((results.get(name) ?? []).map((r) => r[key]));
const floorTotal = stat('floor', 'total');
const createRef = coldCreate;

printTable(
  `Startup: spawn to the first 2xx of /v2/health/ready, medians of ${runs} runs, ms`,
  [
    { key: 'server', title: 'server' },
    { key: 'listening', title: 'listening', digits: 0 },
    { key: 'load', title: 'model load', digits: 0 },
    { key: 'serverReady', title: "'server ready'", digits: 0 },
    { key: 'total', title: 'ready (2xx)', digits: 0 },
    { key: 'min', title: 'min', digits: 0 },
    { key: 'max', title: 'max', digits: 0 },
    { key: 'above', title: 'above floor', digits: 0 },
    { key: 'cpu', title: 'CPU ms', digits: 0 },
  ],
  cases.map((c) => {
    const totals = (results.get(c.name) ?? []).map((r) => r.total);
    const total = stat(c.name, 'total');
    return {
      server: TITLES[c.name],
      listening: stat(c.name, 'listening'),
      load: stat(c.name, 'load'),
      serverReady: stat(c.name, 'serverReady'),
      total,
      min: Math.min(...totals),
      max: Math.max(...totals),
      above: c.name !== 'floor' && total !== null && floorTotal !== null ? total - floorTotal : null,
      cpu: stat(c.name, 'cpu'),
    };
  }),
);
printTable(
  `Reference: InferenceSession.create(${modelFile.slice(REPO_ROOT.length + 1)}) in this process, ${threads} intra-op threads, ms`,
  [
    { key: 'what', title: 'what' },
    { key: 'ms', title: 'ms', digits: 1 },
  ],
  [
    { what: "import onnxruntime-node (and Ferry's onnx-tensors.ts)", ms: ortImport },
    { what: 'first create of the process (the reference)', ms: coldCreate },
    { what: `create again (median of ${warmCreates.length})`, ms: median(warmCreates) },
  ],
);

const goals = printGoals([
  ...cases
    .filter((c) => c.ferry && c.name !== 'compare')
    .map((c) => ({
      name: `${TITLES[c.name]}: ready`,
      value: stat(c.name, 'total'),
      op: '<=' as const,
      target: Math.round(BUDGET_MS + createRef),
      unit: ' ms',
      detail: `${BUDGET_MS} ms + the session's creation (${createRef.toFixed(1)} ms, first create in this process)`,
    })),
  ...(compareBin === null
    ? []
    : [
        {
          name: `${TITLES.compare}: ready`,
          value: stat('compare', 'total'),
          op: 'info' as const,
          unit: ' ms',
          detail: 'the other checkout, for comparison',
        },
      ]),
  {
    name: 'floor: ready',
    value: floorTotal,
    op: 'info',
    unit: ' ms',
    detail: 'a node:http server: Node start, listen, first answer',
  },
]);

saveResults('startup', {
  options: { runs, pollMs, model: modelDir, threads, skip: [...skip], ferryBin: common.ferryBin, compareBin },
  reference: { ortImportMs: ortImport, coldCreateMs: coldCreate, warmCreatesMs: warmCreates },
  runs: Object.fromEntries(results),
  goals,
});
