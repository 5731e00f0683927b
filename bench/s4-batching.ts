/**
 * S4: dynamic batching gain. The compute-bound matmul stack (4 x MatMul 1024x1024 + Relu), batch-1
 * requests from many concurrent clients: Ferry with batching off vs on (delay 0, "take what is queued"),
 * against the in-process batched run() ceiling; plus a low-load run (1 connection) for the p50 cost.
 * Goals: >= 3x throughput with batching at equal or better p99; <= +0.5 ms p50 at low load.
 */
import { type InProcessResult, runInProcess } from './lib/inprocess.ts';
import { cpuUsPerRequest, log, measure, setupPinning } from './lib/measure.ts';
import { writeModelDir } from './lib/modeldir.ts';
import { wideMatmul } from './lib/models.ts';
import { binaryInferBody, checkInfer, jsonInferBody, seededData } from './lib/oip.ts';
import { numberFlag, parseOptions } from './lib/options.ts';
import { diff, printGoals, printTable, ratio, saveResults } from './lib/report.ts';
import { startFerry, withServer } from './lib/servers.ts';

const USAGE = `S4 batching: Ferry with dynamic batching off vs on, vs in-process batched run(), matmul stack 4x1024.
usage: node --import tsx bench/s4-batching.ts [options]
  --connections <n>      concurrent clients for the throughput runs, default 64
  --max-batch <n>        maxBatchSize when batching is on, default 32
  --max-delay <ms>       maxQueueDelay when batching is on, default 0
  --format <f>           request encoding: binary (default) or json
  --inproc-duration <s>  seconds for each in-process run, default 5
  --no-low               skip the 1-connection (low load) runs`;

const { common, values } = parseOptions(USAGE, {
  connections: { type: 'string' },
  'max-batch': { type: 'string' },
  'max-delay': { type: 'string' },
  format: { type: 'string' },
  'inproc-duration': { type: 'string' },
  'no-low': { type: 'boolean' },
});
const connections = numberFlag(values, 'connections', 64, 1, 1024);
const maxBatch = numberFlag(values, 'max-batch', 32, 1, 4096);
const maxDelayMs = numberFlag(values, 'max-delay', 0, 0, 10_000);
const inprocS = numberFlag(values, 'inproc-duration', 5, 0.5, 600);
const format = values.format ?? 'binary';
if (format !== 'binary' && format !== 'json') {
  process.stderr.write(`bench: --format must be binary or json, got "${String(format)}"\n`);
  process.exit(2);
}
const withLow = values['no-low'] !== true;
await setupPinning(common);

const WIDTH = 1024;
const model = wideMatmul(4, WIDTH);
const row = seededData(WIDTH);
const input = { name: model.input, shape: [1, WIDTH], data: row };
const req = format === 'binary' ? binaryInferBody([input]) : jsonInferBody([input]);

log(
  `S4 batching: c=${connections}, maxBatchSize ${maxBatch}, maxQueueDelay ${maxDelayMs} ms, ${format} requests`,
);
const inproc: Record<string, InProcessResult> = {};
for (const b of [1, maxBatch]) {
  log(`  in-process run() batch ${b} ...`);
  const data = new Float32Array(WIDTH * b);
  for (let i = 0; i < b; i++) data.set(row, i * WIDTH);
  const r = await runInProcess({
    bytes: model.bytes,
    feeds: { [model.input]: { data, shape: [b, WIDTH] } },
    durationS: inprocS,
    warmupS: Math.min(common.warmupS, 2),
    threads: common.threads,
  });
  inproc[`batch ${b}`] = r;
  log(`  in-process batch ${b}: ${Math.round(r.callsPerS * b)} rows/s, p50 ${r.p50Ms.toFixed(3)} ms`);
}
const expected = inproc['batch 1']?.outputs[model.output];
if (!expected) throw new Error(`in-process run has no output "${model.output}"`);

const variants = [
  { name: 'off', batching: false },
  { name: 'on', batching: { maxBatchSize: maxBatch, maxQueueDelayMs: maxDelayMs } },
] as const;
const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
const failures: Record<string, string> = {};
const yamls: Record<string, string> = {};
for (const v of variants) {
  const dir = await writeModelDir({
    name: model.name,
    bytes: model.bytes,
    batching: v.batching,
    threads: common.threads,
  });
  yamls[v.name] = dir.yaml;
  try {
    await withServer(
      () => startFerry(common, dir.dir, `ferry batching ${v.name}`),
      async (s) => {
        const url = `${s.baseUrl}/v2/models/${model.name}/infer`;
        await checkInfer(url, req, model.output, expected);
        const base = {
          url,
          method: 'POST' as const,
          body: req.body,
          headers: req.headers,
          cpuPids: [s.proc.pid],
        };
        results[`${v.name} c=${connections}`] = await measure(
          `ferry batching ${v.name} c=${connections}`,
          { ...base, connections },
          common,
        );
        if (withLow) {
          results[`${v.name} c=1`] = await measure(
            `ferry batching ${v.name} c=1`,
            { ...base, connections: 1 },
            common,
          );
        }
      },
    );
  } catch (e) {
    failures[v.name] = (e as Error).message;
    log(`  ferry batching ${v.name}: FAILED\n${(e as Error).message.replace(/^/gm, '    ')}`);
  } finally {
    await dir.cleanup();
  }
}

const rows: Record<string, string | number | null>[] = Object.entries(inproc).map(([k, r]) => {
  const b = Number(k.split(' ')[1]);
  return { config: `in-process run() ${k}`, conns: 1, rows: r.callsPerS * b, p50: r.p50Ms, p99: r.p99Ms };
});
for (const conns of withLow ? [connections, 1] : [connections]) {
  for (const v of variants) {
    const r = results[`${v.name} c=${conns}`];
    const label = `ferry batching ${v.name}`;
    if (!r) {
      rows.push({ config: label, conns, note: 'failed (see log above)' });
      continue;
    }
    const cpu = cpuUsPerRequest(r);
    rows.push({
      config: label,
      conns,
      rows: r.rps,
      p50: r.p50Ms,
      p99: r.p99Ms,
      cpu: cpu === null ? null : cpu / 1000,
      non2xx: r.non2xx,
      errors: r.errors,
      note: '',
    });
  }
}
printTable(
  `S4 batching: matmul 4x${WIDTH}, batch-1 ${format} requests, maxBatchSize ${maxBatch}, maxQueueDelay ${maxDelayMs} ms`,
  [
    { key: 'config', title: 'config' },
    { key: 'conns', title: 'conns', digits: 0 },
    { key: 'rows', title: 'rows/s', digits: 0 },
    { key: 'p50', title: 'p50 ms', digits: 3 },
    { key: 'p99', title: 'p99 ms', digits: 3 },
    { key: 'cpu', title: 'server cpu ms/req', digits: 3 },
    { key: 'non2xx', title: 'non-2xx', digits: 0 },
    { key: 'errors', title: 'errors', digits: 0 },
    { key: 'note', title: 'note' },
  ],
  rows,
);

const on = results[`on c=${connections}`];
const off = results[`off c=${connections}`];
const ceiling = inproc[`batch ${maxBatch}`];
const goals = printGoals([
  {
    name: 'batching on/off rps',
    value: ratio(on?.rps, off?.rps),
    op: '>=',
    target: 3,
    detail: `c=${connections}`,
  },
  {
    name: 'batching on/off p99',
    value: ratio(on?.p99Ms, off?.p99Ms),
    op: '<=',
    target: 1,
    detail: `c=${connections}; <= 1 means equal or better p99`,
  },
  {
    name: 'low-load p50 cost',
    value: withLow ? diff(results['on c=1']?.p50Ms, results['off c=1']?.p50Ms) : null,
    op: '<=',
    target: 0.5,
    unit: ' ms',
    detail: 'p50 batching on minus off, 1 connection',
  },
  {
    name: 'on / in-process ceiling',
    value: ratio(on?.rps, ceiling ? ceiling.callsPerS * maxBatch : null),
    op: '>=',
    target: 0.7,
    detail: `rows/s vs in-process run() at batch ${maxBatch}`,
  },
  {
    name: 'low-load p50 over in-process',
    value: withLow ? diff(results['on c=1']?.p50Ms, inproc['batch 1']?.p50Ms) : null,
    op: '<=',
    target: 0.2,
    unit: ' ms',
    detail: 'p50 batching on at 1 connection minus in-process run() at batch 1',
  },
]);

saveResults(
  's4-batching',
  {
    options: { ...common, connections, maxBatch, maxDelayMs, format, inprocS, withLow },
    modelYaml: yamls,
    inProcess: Object.fromEntries(Object.entries(inproc).map(([k, r]) => [k, { ...r, outputs: undefined }])),
    results,
    failures,
    goals,
  },
  {
    title: `S4 batching: matmul 4x${WIDTH}, batch-1 ${format} requests, maxBatchSize ${maxBatch}`,
    throughputTitle: 'throughput, rows/s',
    latencyScale: 'log',
    rows: rows.map((r) => ({
      label: String(r.config).replace('in-process run() ', 'run() '),
      note: `${r.conns} connection${r.conns === 1 ? '' : 's'}${r.note ? `, ${r.note}` : ''}`,
      rps: r.rows as number | null | undefined,
      p50Ms: r.p50 as number | null | undefined,
      p99Ms: r.p99 as number | null | undefined,
    })),
  },
  {
    title: `S4 batching: latency distribution, matmul 4x${WIDTH}, batch-1 ${format} requests, maxBatchSize ${maxBatch}`,
    panels: (withLow ? [connections, 1] : [connections]).map((conns) => {
      const ref = inproc[`batch ${conns === 1 ? 1 : maxBatch}`];
      return {
        title: `${conns} connection${conns === 1 ? '' : 's'}, closed loop; in-process run() at batch ${conns === 1 ? 1 : maxBatch} for reference`,
        series: [
          ...variants.map((v) => {
            const r = results[`${v.name} c=${conns}`];
            return {
              label: `ferry batching ${v.name}`,
              note: r ? `${conns} connection${conns === 1 ? '' : 's'}` : 'failed',
              percentiles: r?.percentiles,
              requests: r?.requests,
            };
          }),
          {
            label: `run() batch ${conns === 1 ? 1 : maxBatch}`,
            note: 'in-process, time per call',
            percentiles: ref?.percentiles,
            requests: ref?.calls,
          },
        ],
      };
    }),
  },
);
process.exitCode = Object.keys(failures).length > 0 ? 1 : 0;
