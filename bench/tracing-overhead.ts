/**
 * Tracing overhead (issue 14, docs/tracing.md): S1's trivial add model ([N,4], defaults), OIP JSON, closed loop,
 * Ferry from this tree with tracing off (no OTEL_* variables) against a Ferry built before tracing existed
 * (`--base <its bin/ferry.js>`), in the same run, interleaved round by round so that drift on a busy machine
 * falls on both alike; and, for reference, tracing on (exporting OTLP/HTTP to a receiver in this process that
 * decodes and counts the spans): every request traced (always_on), and 1% sampled (parentbased_traceidratio 0.01,
 * requests without a traceparent). Goal: off / base within noise (>= 0.97 rps).
 *
 *   git worktree add /tmp/ferry-base <commit before tracing>   (its node_modules: a symlink to this one's)
 *   node --import tsx bench/tracing-overhead.ts --base /tmp/ferry-base/bin/ferry.js --rounds 3
 */

import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { cpuMsPerRequest } from './lib/load.ts';
import { log, measure, setupPinning } from './lib/measure.ts';
import { writeModelDir } from './lib/modeldir.ts';
import { tinyAdd } from './lib/models.ts';
import { checkInfer } from './lib/oip.ts';
import { numberFlag, parseOptions, REPO_ROOT } from './lib/options.ts';
import { freePort, startProcess } from './lib/process.ts';
import { printGoals, printTable, ratio, saveResults } from './lib/report.ts';
import type { Server } from './lib/servers.ts';
import { withServer } from './lib/servers.ts';

const SIDES = ['base', 'off', 'on', 'on-1pct'] as const;
type Side = (typeof SIDES)[number];

const USAGE = `Tracing overhead: Ferry with tracing off vs a build before tracing, and tracing on, on S1's add model.
usage: node --import tsx bench/tracing-overhead.ts --base <bin/ferry.js of the build before tracing> [options]
  --base <path>       bin/ferry.js of a Ferry without tracing (a git worktree of the commit before it)
  --rounds <n>        rounds; each measures every side once, in turn (default 3)
  --connections <n>   concurrent connections, default 50
  --skip <list>       comma-separated sides to leave out: ${SIDES.join(',')}`;

const { common, values } = parseOptions(USAGE, {
  base: { type: 'string' },
  rounds: { type: 'string' },
  connections: { type: 'string' },
  skip: { type: 'string' },
});
const connections = numberFlag(values, 'connections', 50, 1, 1024);
const rounds = numberFlag(values, 'rounds', 3, 1, 100);
const skip = new Set(
  String(values.skip ?? '')
    .split(',')
    .filter(Boolean),
);
const base = values.base === undefined ? undefined : String(values.base);
if (base === undefined) skip.add('base');
else if (!existsSync(base)) {
  process.stderr.write(`bench: --base: ${base} does not exist\n`);
  process.exit(2);
}
await setupPinning(common);

// The OTLP receiver: decodes what it gets (JSON), counts the spans, answers 200.
let spansReceived = 0;
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[];
    };
    for (const rs of body.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? []) spansReceived += ss.spans?.length ?? 0;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

const model = tinyAdd();
const BODY = `{"inputs":[{"name":"${model.input}","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`;
const HEADERS = { 'content-type': 'application/json' };
const EXPECTED = [2, 4, 6, 8];
const dir = await writeModelDir({ name: model.name, bytes: model.bytes, threads: common.threads });

/** The environment without any OTEL_ variable, plus `extra`. */
function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_')) env[k] = v;
  return { ...env, ...extra };
}

const sides: { side: Side; what: string; bin: string; env: NodeJS.ProcessEnv }[] = [
  { side: 'base', what: 'before tracing', bin: base ?? '', env: envWith({}) },
  { side: 'off', what: 'this tree, no OTEL_*', bin: common.ferryBin, env: envWith({}) },
  {
    side: 'on',
    what: 'always_on, OTLP/HTTP',
    bin: common.ferryBin,
    env: envWith({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_SAMPLER: 'always_on' }),
  },
  {
    side: 'on-1pct',
    what: 'traceidratio 0.01',
    bin: common.ferryBin,
    env: envWith({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.01',
    }),
  },
];

async function start(s: (typeof sides)[number]): Promise<Server> {
  const port = await freePort();
  const proc = await startProcess({
    name: `ferry-${s.side}`,
    command: process.execPath,
    args: [s.bin, 'serve', dir.dir, '--host', '127.0.0.1', '--port', String(port)],
    cwd: REPO_ROOT,
    env: s.env,
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    readyTimeoutMs: common.readyTimeoutS * 1000,
    ...(common.pin ? { cpus: '1' } : {}),
  });
  return { name: s.side, proc, baseUrl: `http://127.0.0.1:${port}` };
}

type Result = Awaited<ReturnType<typeof measure>>;
const results: Record<string, Result[]> = {};
const spans: Record<string, number> = {};
const loadBefore = loadavg();
log(
  `tracing overhead: ${connections} connections, ${rounds} round(s), ${common.durationS} s per side and round (+${common.warmupS} s warm-up), load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
);
try {
  for (let round = 1; round <= rounds; round++) {
    // Every other round in the opposite order: what comes first or last in a round (a machine that slows down
    // or speeds up within it) falls on every side alike.
    for (const s of round % 2 === 1 ? sides : [...sides].reverse()) {
      if (skip.has(s.side)) continue;
      const before = spansReceived;
      const r = await withServer(
        () => start(s),
        async (server) => {
          const url = `${server.baseUrl}/v2/models/${model.name}/infer`;
          await checkInfer(url, { body: Buffer.from(BODY), headers: HEADERS }, model.output, EXPECTED);
          return measure(
            `${s.side} (round ${round})`,
            { url, method: 'POST', body: BODY, headers: HEADERS, connections, cpuPids: [server.proc.pid] },
            { ...common, repeat: 1 },
          );
        },
      );
      // The server has stopped: what it exported (its shutdown flushes) is in.
      spans[s.side] = (spans[s.side] ?? 0) + spansReceived - before;
      results[s.side] = [...(results[s.side] ?? []), r];
    }
  }
} finally {
  await dir.cleanup();
  receiver.close();
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const stat = (side: Side, pick: (r: Result) => number) => median((results[side] ?? []).map(pick));
const cpu = (r: Result) => (cpuMsPerRequest(r) ?? Number.NaN) * 1000;

printTable(
  `Tracing overhead: S1 add model, OIP JSON, c=${connections}, ${rounds} x ${common.durationS} s per side (medians)`,
  [
    { key: 'side', title: 'side' },
    { key: 'what', title: 'what' },
    { key: 'rps', title: 'rps', digits: 0 },
    { key: 'p50', title: 'p50 ms', digits: 3 },
    { key: 'p99', title: 'p99 ms', digits: 3 },
    { key: 'cpu', title: 'cpu us/req', digits: 1 },
    { key: 'runs', title: 'rps per round' },
    { key: 'spans', title: 'spans received' },
  ],
  sides
    .filter((s) => !skip.has(s.side))
    .map((s) => ({
      side: s.side,
      what: s.what,
      rps: stat(s.side, (r) => r.rps),
      p50: stat(s.side, (r) => r.p50Ms),
      p99: stat(s.side, (r) => r.p99Ms),
      cpu: stat(s.side, cpu),
      runs: (results[s.side] ?? []).map((r) => Math.round(r.rps)).join(' / '),
      spans: String(spans[s.side] ?? 0),
    })),
);

/** The median over rounds of side a's value divided by side b's in the same round (paired: drift cancels). */
const paired = (a: Side, b: Side, pick: (r: Result) => number): number | null => {
  const ra = results[a] ?? [];
  const rb = results[b] ?? [];
  return median(ra.flatMap((r, i) => (rb[i] === undefined ? [] : [pick(r) / pick(rb[i]!)])));
};

const loadAfter = loadavg();
const goals = printGoals([
  {
    name: 'off/base rps (medians)',
    value: ratio(
      stat('off', (r) => r.rps),
      stat('base', (r) => r.rps),
    ),
    op: '>=',
    target: 0.97,
    detail: 'tracing off costs nothing measurable',
  },
  {
    name: 'off/base rps, paired',
    value: paired('off', 'base', (r) => r.rps),
    op: 'info',
    detail: 'median over rounds of the ratio within each round',
  },
  {
    name: 'off/base cpu/req, paired',
    value: paired('off', 'base', cpu),
    op: 'info',
    detail: 'server CPU per request, median of the per-round ratios',
  },
  {
    name: 'off/base p99',
    value: ratio(
      stat('off', (r) => r.p99Ms),
      stat('base', (r) => r.p99Ms),
    ),
    op: 'info',
  },
  {
    name: 'off: spans sent',
    value: spans.off ?? 0,
    op: '<=',
    target: 0,
    detail: 'nothing exported when off',
  },
  {
    name: 'on/off rps',
    value: ratio(
      stat('on', (r) => r.rps),
      stat('off', (r) => r.rps),
    ),
    op: 'info',
  },
  {
    name: 'on-1pct/off rps',
    value: ratio(
      stat('on-1pct', (r) => r.rps),
      stat('off', (r) => r.rps),
    ),
    op: 'info',
  },
  {
    name: 'load average',
    value: null,
    op: 'info',
    detail: `before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
  },
]);

saveResults('tracing-overhead', {
  options: { ...common, connections, rounds, base },
  results,
  spans,
  goals,
  loadavg: { before: loadBefore, after: loadAfter },
});
