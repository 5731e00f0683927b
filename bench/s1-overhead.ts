/**
 * S1: HTTP and protocol overhead on a trivial model (y = x + x on FP32 [1,4]), OIP JSON, closed loop.
 * Side by side, one after the other on the same machine: the node:http floor (fixed response),
 * the FastAPI + uvicorn baseline (numpy), and Ferry serving the ONNX add model.
 * Goals: Ferry rps >= 0.8x floor and >= 3x FastAPI.
 */
import { cpuUsPerRequest, log, measure, setupPinning } from './lib/measure.ts';
import { writeModelDir } from './lib/modeldir.ts';
import { tinyAdd } from './lib/models.ts';
import { checkInfer } from './lib/oip.ts';
import { numberFlag, parseOptions } from './lib/options.ts';
import { diff, printGoals, printTable, ratio, saveResults } from './lib/report.ts';
import {
  ensureFastApi,
  type Server,
  startFastApi,
  startFerry,
  startFloor,
  withServer,
} from './lib/servers.ts';

const USAGE = `S1 overhead: Ferry vs node:http floor vs FastAPI on a trivial model (OIP JSON).
usage: node --import tsx bench/s1-overhead.ts [options]
  --connections <n>   concurrent connections, default 50
  --skip <list>       comma-separated servers to leave out: floor,fastapi,ferry`;

const { common, values } = parseOptions(USAGE, { connections: { type: 'string' }, skip: { type: 'string' } });
const connections = numberFlag(values, 'connections', 50, 1, 1024);
const skip = new Set(
  String(values.skip ?? '')
    .split(',')
    .filter(Boolean),
);
await setupPinning(common);

const model = tinyAdd();
const BODY = `{"inputs":[{"name":"${model.input}","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`;
const HEADERS = { 'content-type': 'application/json' };
const EXPECTED = [2, 4, 6, 8];

const modelDir = await writeModelDir({ name: model.name, bytes: model.bytes, threads: common.threads });
// The configuration a user would run for throughput: dynamic batching, no added delay.
const batchedDir = await writeModelDir({
  name: model.name,
  bytes: model.bytes,
  threads: common.threads,
  batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
});
const failures: Record<string, string> = {};

const fastapiProblem = skip.has('fastapi') ? null : ensureFastApi();
if (fastapiProblem) failures.fastapi = fastapiProblem;

const candidates: { name: string; start: () => Promise<Server> }[] = [
  { name: 'floor', start: () => startFloor(common) },
  { name: 'fastapi', start: () => startFastApi(common) },
  { name: 'ferry', start: () => startFerry(common, modelDir.dir) },
  { name: 'ferry-batching', start: () => startFerry(common, batchedDir.dir) },
];

const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
log(
  `S1 overhead: ${connections} connections, ${common.durationS} s per server (+${common.warmupS} s warm-up)`,
);
try {
  for (const c of candidates) {
    if (skip.has(c.name) || failures[c.name]) continue;
    try {
      results[c.name] = await withServer(c.start, async (s) => {
        const url = `${s.baseUrl}/v2/models/${model.name}/infer`;
        await checkInfer(url, { body: Buffer.from(BODY), headers: HEADERS }, model.output, EXPECTED);
        return measure(
          c.name,
          { url, method: 'POST', body: BODY, headers: HEADERS, connections, cpuPids: [s.proc.pid] },
          common,
        );
      });
    } catch (e) {
      failures[c.name] = (e as Error).message;
      log(`  ${c.name}: FAILED\n${(e as Error).message.replace(/^/gm, '    ')}`);
    }
  }
} finally {
  await modelDir.cleanup();
  await batchedDir.cleanup();
}

const floorCpu = cpuUsPerRequest(results.floor);
printTable(
  `S1 overhead: trivial add model, OIP JSON, c=${connections}, ${common.durationS} s`,
  [
    { key: 'server', title: 'server' },
    { key: 'rps', title: 'rps', digits: 0 },
    { key: 'p50', title: 'p50 ms', digits: 3 },
    { key: 'p99', title: 'p99 ms', digits: 3 },
    { key: 'non2xx', title: 'non-2xx', digits: 0 },
    { key: 'errors', title: 'errors', digits: 0 },
    { key: 'cpu', title: 'cpu us/req', digits: 1 },
    { key: 'note', title: 'note' },
  ],
  candidates.map(({ name }) => {
    const r = results[name];
    const note = skip.has(name) ? 'skipped' : failures[name] ? 'failed (see log above)' : '';
    return r
      ? {
          server: name,
          rps: r.rps,
          p50: r.p50Ms,
          p99: r.p99Ms,
          non2xx: r.non2xx,
          errors: r.errors,
          cpu: cpuUsPerRequest(r),
          note,
        }
      : { server: name, note };
  }),
);

const goals = printGoals([
  { name: 'ferry/floor rps', value: ratio(results.ferry?.rps, results.floor?.rps), op: '>=', target: 0.8 },
  { name: 'ferry/fastapi rps', value: ratio(results.ferry?.rps, results.fastapi?.rps), op: '>=', target: 3 },
  {
    name: 'ferry-batching/floor rps',
    value: ratio(results['ferry-batching']?.rps, results.floor?.rps),
    op: '>=',
    target: 0.8,
  },
  {
    name: 'ferry-batching/fastapi rps',
    value: ratio(results['ferry-batching']?.rps, results.fastapi?.rps),
    op: '>=',
    target: 3,
  },
  {
    name: 'ferry cpu above floor',
    value: diff(cpuUsPerRequest(results.ferry), floorCpu),
    op: '<=',
    target: 25,
    unit: ' us',
    detail: 'server CPU per request minus the floor (research target)',
  },
  {
    name: 'fastapi/floor rps',
    value: ratio(results.fastapi?.rps, results.floor?.rps),
    op: 'info',
    detail: 'the Python baseline against the floor',
  },
]);

saveResults('s1-overhead', {
  options: { ...common, connections },
  modelYaml: modelDir.yaml,
  results,
  failures,
  goals,
});
process.exitCode = Object.keys(failures).length > 0 ? 1 : 0;
