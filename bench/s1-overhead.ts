/**
 * S1: HTTP and protocol overhead on a trivial model (y = x + x on FP32 [1,4]), OIP JSON, closed loop.
 * Side by side, one after the other on the same machine: the node:http floor (fixed response), the Python
 * servers a user would otherwise write or run (FastAPI + uvicorn, Flask + gunicorn, KServe's model server when
 * installed), and Ferry: with the default settings on the add model with a dynamic batch dimension [N,4]
 * (no serving.batching section), and unbatched (the add model with a fixed shape [1,4], batching: false).
 * Goals (issue 9): ferry >= 3x FastAPI, >= 0.8x floor, >= 5x KServe; ferry-unbatched >= 1.5x FastAPI with
 * CPU per request <= floor + 50 us.
 */
import { cpuUsPerRequest, log, measure, setupPinning } from './lib/measure.ts';
import { writeModelDir } from './lib/modeldir.ts';
import { tinyAdd, tinyAddFixed } from './lib/models.ts';
import { checkInfer } from './lib/oip.ts';
import { numberFlag, parseOptions } from './lib/options.ts';
import { diff, printGoals, printTable, ratio, saveResults } from './lib/report.ts';
import {
  ensureFastApi,
  ensureFlask,
  kserveAvailable,
  type Server,
  startFastApi,
  startFerry,
  startFlask,
  startFloor,
  startKserve,
  withServer,
} from './lib/servers.ts';

const SERVERS = [
  'floor',
  'fastapi',
  'flask',
  'kserve',
  'ferry',
  'ferry-unbatched',
  'ferry-batching',
] as const;
type ServerName = (typeof SERVERS)[number];

const USAGE = `S1 overhead: Ferry vs node:http floor vs FastAPI, Flask and KServe on a trivial model (OIP JSON).
usage: node --import tsx bench/s1-overhead.ts [options]
  --connections <n>   concurrent connections, default 50
  --skip <list>       comma-separated servers to leave out: ${SERVERS.join(',')}`;

const { common, values } = parseOptions(USAGE, { connections: { type: 'string' }, skip: { type: 'string' } });
const connections = numberFlag(values, 'connections', 50, 1, 1024);
const skip = new Set(
  String(values.skip ?? '')
    .split(',')
    .filter(Boolean),
);
for (const name of skip) {
  if (!(SERVERS as readonly string[]).includes(name)) {
    process.stderr.write(`bench: --skip: unknown server "${name}" (one of ${SERVERS.join(', ')})\n`);
    process.exit(2);
  }
}
await setupPinning(common);

const model = tinyAdd();
const fixed = tinyAddFixed();
const BODY = `{"inputs":[{"name":"${model.input}","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`;
const HEADERS = { 'content-type': 'application/json' };
const EXPECTED = [2, 4, 6, 8];
/** KServe's Python server measured on this kind of machine before (issue 9); shown for context only. */
const KSERVE_REFERENCE =
  'KServe v0.14.1 ~2,200 req/s on this machine kind (measured before, not in this run)';

// The defaults a user gets: a dynamic first dimension and no serving.batching section.
const defaultDir = await writeModelDir({ name: model.name, bytes: model.bytes, threads: common.threads });
// No batch dimension (fixed [1,4]) and batching explicitly off.
const unbatchedDir = await writeModelDir({
  name: fixed.name,
  bytes: fixed.bytes,
  threads: common.threads,
  batching: false,
});
// Batching explicitly on, no added delay: what the default should match.
const batchedDir = await writeModelDir({
  name: model.name,
  bytes: model.bytes,
  threads: common.threads,
  batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
});
/** Sides that failed (to install, start, answer correctly): the exit code is 1. */
const failures: Record<string, string> = {};
/** Sides that cannot run on this machine by design (KServe not installed): n/a, not a failure. */
const unavailable: Record<string, string> = {};

if (!skip.has('fastapi')) {
  const problem = ensureFastApi();
  if (problem) failures.fastapi = problem;
}
if (!skip.has('flask')) {
  const problem = ensureFlask();
  if (problem) failures.flask = problem;
}
if (!skip.has('kserve')) {
  const problem = kserveAvailable();
  if (problem) {
    unavailable.kserve = problem;
    log(`  kserve: n/a: ${problem}`);
  }
}

const candidates: { name: ServerName; what: string; start: () => Promise<Server> }[] = [
  { name: 'floor', what: 'node:http, fixed response', start: () => startFloor(common) },
  { name: 'fastapi', what: 'FastAPI + uvicorn, numpy', start: () => startFastApi(common) },
  { name: 'flask', what: 'Flask + gunicorn gthread, numpy', start: () => startFlask(common) },
  { name: 'kserve', what: "KServe's model server", start: () => startKserve(common) },
  { name: 'ferry', what: '[N,4], defaults', start: () => startFerry(common, defaultDir.dir) },
  {
    name: 'ferry-unbatched',
    what: '[1,4], batching: false',
    start: () => startFerry(common, unbatchedDir.dir, 'ferry-unbatched'),
  },
  {
    name: 'ferry-batching',
    what: '[N,4], batching on, delay 0',
    start: () => startFerry(common, batchedDir.dir, 'ferry-batching'),
  },
];

const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
log(
  `S1 overhead: ${connections} connections, ${common.durationS} s per server (+${common.warmupS} s warm-up)`,
);
try {
  for (const c of candidates) {
    if (skip.has(c.name) || failures[c.name] || unavailable[c.name]) continue;
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
  await defaultDir.cleanup();
  await unbatchedDir.cleanup();
  await batchedDir.cleanup();
}

const floorCpu = cpuUsPerRequest(results.floor);
const note = (name: string) =>
  skip.has(name)
    ? 'skipped'
    : unavailable[name]
      ? 'n/a (not installed)'
      : failures[name]
        ? 'failed (see log above)'
        : '';
printTable(
  `S1 overhead: trivial add model, OIP JSON, c=${connections}, ${common.durationS} s`,
  [
    { key: 'server', title: 'server' },
    { key: 'what', title: 'what' },
    { key: 'rps', title: 'rps', digits: 0 },
    { key: 'p50', title: 'p50 ms', digits: 3 },
    { key: 'p99', title: 'p99 ms', digits: 3 },
    { key: 'non2xx', title: 'non-2xx', digits: 0 },
    { key: 'errors', title: 'errors', digits: 0 },
    { key: 'cpu', title: 'cpu us/req', digits: 1 },
    { key: 'note', title: 'note' },
  ],
  candidates.map(({ name, what }) => {
    const r = results[name];
    return r
      ? {
          server: name,
          what,
          rps: r.rps,
          p50: r.p50Ms,
          p99: r.p99Ms,
          non2xx: r.non2xx,
          errors: r.errors,
          cpu: cpuUsPerRequest(r),
          note: note(name),
        }
      : { server: name, what, note: note(name) };
  }),
);

const goals = printGoals([
  { name: 'ferry/fastapi rps', value: ratio(results.ferry?.rps, results.fastapi?.rps), op: '>=', target: 3 },
  { name: 'ferry/floor rps', value: ratio(results.ferry?.rps, results.floor?.rps), op: '>=', target: 0.8 },
  {
    name: 'ferry/kserve rps',
    value: ratio(results.ferry?.rps, results.kserve?.rps),
    op: '>=',
    target: 5,
    detail: unavailable.kserve ? 'kserve not installed (pip install kserve)' : undefined,
  },
  {
    name: 'kserve reference',
    value: null,
    op: 'info',
    detail: KSERVE_REFERENCE,
  },
  {
    name: 'ferry-unbatched/fastapi rps',
    value: ratio(results['ferry-unbatched']?.rps, results.fastapi?.rps),
    op: '>=',
    target: 1.5,
  },
  {
    name: 'ferry-unbatched cpu above floor',
    value: diff(cpuUsPerRequest(results['ferry-unbatched']), floorCpu),
    op: '<=',
    target: 50,
    unit: ' us',
    detail: 'server CPU per request minus the floor',
  },
  {
    name: 'ferry cpu above floor',
    value: diff(cpuUsPerRequest(results.ferry), floorCpu),
    op: 'info',
    unit: ' us',
    detail: 'server CPU per request minus the floor (research target 25 us)',
  },
  {
    name: 'ferry-batching/fastapi rps',
    value: ratio(results['ferry-batching']?.rps, results.fastapi?.rps),
    op: 'info',
    detail: 'batching explicitly on; the default should match it',
  },
  {
    name: 'ferry/ferry-batching rps',
    value: ratio(results.ferry?.rps, results['ferry-batching']?.rps),
    op: 'info',
    detail: 'defaults against explicit batching (about 1 once batching is the default)',
  },
  {
    name: 'flask/fastapi rps',
    value: ratio(results.flask?.rps, results.fastapi?.rps),
    op: 'info',
    detail: 'the WSGI baseline against the ASGI one',
  },
  {
    name: 'fastapi/floor rps',
    value: ratio(results.fastapi?.rps, results.floor?.rps),
    op: 'info',
    detail: 'the Python baseline against the floor',
  },
]);

saveResults(
  's1-overhead',
  {
    options: { ...common, connections },
    modelYaml: {
      ferry: defaultDir.yaml,
      'ferry-unbatched': unbatchedDir.yaml,
      'ferry-batching': batchedDir.yaml,
    },
    results,
    failures,
    unavailable,
    references: { kserve: KSERVE_REFERENCE },
    goals,
  },
  {
    title: `S1 overhead: trivial add model, OIP JSON, ${connections} connections, ${common.durationS} s`,
    rows: candidates
      .filter((c) => !skip.has(c.name))
      .map((c) => ({
        label: c.name,
        note: unavailable[c.name] ? 'n/a: not installed' : failures[c.name] ? 'failed' : c.what,
        rps: results[c.name]?.rps,
        p50Ms: results[c.name]?.p50Ms,
        p99Ms: results[c.name]?.p99Ms,
      })),
  },
  {
    title: `S1 overhead: latency distribution per server, trivial add model, OIP JSON, ${common.durationS} s`,
    panels: [
      {
        title: `closed loop, ${connections} connections (the median run by rps)`,
        series: candidates
          .filter((c) => !skip.has(c.name))
          .map((c) => ({
            label: c.name,
            note: unavailable[c.name] ? 'n/a: not installed' : failures[c.name] ? 'failed' : c.what,
            percentiles: results[c.name]?.percentiles,
            requests: results[c.name]?.requests,
          })),
      },
    ],
  },
);
process.exitCode = Object.keys(failures).length > 0 ? 1 : 0;
