/**
 * S2: payload path. One FP32 [1,3,224,224] image (602 KB raw) into a cheap model (per-channel mean),
 * so transport and codec dominate. Ferry with OIP JSON vs the binary tensor extension, at 1 connection
 * (latency) and at 8 (CPU per request), against the in-process session.run() ceiling.
 * Goal: binary adds <= 0.5 ms p50 over in-process run() at 1 connection.
 */
import { type InProcessResult, runInProcess } from './lib/inprocess.ts';
import { cpuUsPerRequest, log, measure, setupPinning } from './lib/measure.ts';
import { writeModelDir } from './lib/modeldir.ts';
import { imageMean } from './lib/models.ts';
import { binaryInferBody, checkInfer, jsonInferBody, type RequestBody, seededData } from './lib/oip.ts';
import { numberFlag, parseOptions } from './lib/options.ts';
import { diff, printGoals, printTable, ratio, saveResults } from './lib/report.ts';
import { startFerry, withServer } from './lib/servers.ts';

const USAGE = `S2 payloads: Ferry JSON vs binary tensor extension on a 1x3x224x224 FP32 input, vs in-process run().
usage: node --import tsx bench/s2-payloads.ts [options]
  --low <n>        connections for the latency runs, default 1
  --high <n>       connections for the CPU runs, default 8
  --unaligned      also measure binary with an unaligned tensor offset (JSON header not padded)`;

const { common, values } = parseOptions(USAGE, {
  low: { type: 'string' },
  high: { type: 'string' },
  unaligned: { type: 'boolean' },
});
const low = numberFlag(values, 'low', 1, 1, 1024);
const high = numberFlag(values, 'high', 8, 1, 1024);
await setupPinning(common);

const model = imageMean();
const shape = [1, 3, 224, 224];
const data = seededData(3 * 224 * 224);
const input = { name: model.input, shape, data };

log(`S2 payloads: ${common.durationS} s per measurement (+${common.warmupS} s warm-up)`);
log('  in-process run() ...');
const inproc: InProcessResult = await runInProcess({
  bytes: model.bytes,
  feeds: { [model.input]: { data, shape } },
  durationS: common.durationS,
  warmupS: common.warmupS,
  threads: common.threads,
});
log(
  `  in-process: ${Math.round(inproc.callsPerS)} calls/s, p50 ${inproc.p50Ms.toFixed(3)} ms, p99 ${inproc.p99Ms.toFixed(3)} ms`,
);
const expected = inproc.outputs[model.output];
if (!expected) throw new Error(`in-process run has no output "${model.output}"`);

const bodies: Record<string, RequestBody> = {
  json: jsonInferBody([input]),
  binary: binaryInferBody([input], { align: true }),
  'binary-unaligned': binaryInferBody([input], { align: false }),
};
const plan: { format: keyof typeof bodies; connections: number }[] = [
  { format: 'json', connections: low },
  { format: 'binary', connections: low },
  ...(values.unaligned ? [{ format: 'binary-unaligned' as const, connections: low }] : []),
  { format: 'json', connections: high },
  { format: 'binary', connections: high },
];

const modelDir = await writeModelDir({ name: model.name, bytes: model.bytes, threads: common.threads });
const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
const failures: Record<string, string> = {};
const key = (p: (typeof plan)[number]) => `${p.format} c=${p.connections}`;
try {
  await withServer(
    () => startFerry(common, modelDir.dir),
    async (s) => {
      const url = `${s.baseUrl}/v2/models/${model.name}/infer`;
      for (const p of plan) {
        const req = bodies[p.format] as RequestBody;
        try {
          await checkInfer(url, req, model.output, expected);
          results[key(p)] = await measure(
            `ferry ${key(p)}`,
            {
              url,
              method: 'POST',
              body: req.body,
              headers: req.headers,
              connections: p.connections,
              cpuPids: [s.proc.pid],
            },
            common,
          );
        } catch (e) {
          failures[key(p)] = (e as Error).message;
          log(`  ferry ${key(p)}: FAILED: ${(e as Error).message}`);
        }
      }
    },
  );
} catch (e) {
  failures.ferry = (e as Error).message;
  log(`  ferry: FAILED\n${(e as Error).message.replace(/^/gm, '    ')}`);
} finally {
  await modelDir.cleanup();
}

const cpuMs = (r: (typeof results)[string] | undefined) => {
  const us = cpuUsPerRequest(r);
  return us === null ? null : us / 1000;
};
printTable(
  `S2 payloads: image_mean FP32 [1,3,224,224], JSON ${bodies.json?.body.length.toLocaleString('en-US')} B, binary ${bodies.binary?.body.length.toLocaleString('en-US')} B`,
  [
    { key: 'config', title: 'config' },
    { key: 'conns', title: 'conns', digits: 0 },
    { key: 'rps', title: 'rps', digits: 1 },
    { key: 'p50', title: 'p50 ms', digits: 3 },
    { key: 'p99', title: 'p99 ms', digits: 3 },
    { key: 'added', title: '+p50 vs run() ms', digits: 3 },
    { key: 'cpu', title: 'server cpu ms/req', digits: 3 },
    { key: 'non2xx', title: 'non-2xx', digits: 0 },
    { key: 'errors', title: 'errors', digits: 0 },
    { key: 'note', title: 'note' },
  ],
  [
    { config: 'in-process run()', conns: 1, rps: inproc.callsPerS, p50: inproc.p50Ms, p99: inproc.p99Ms },
    ...plan.map((p) => {
      const r = results[key(p)];
      const note = failures[key(p)] || failures.ferry ? 'failed (see log above)' : '';
      if (!r) return { config: `ferry ${p.format}`, conns: p.connections, note };
      return {
        config: `ferry ${p.format}`,
        conns: p.connections,
        rps: r.rps,
        p50: r.p50Ms,
        p99: r.p99Ms,
        added: p.connections === 1 ? r.p50Ms - inproc.p50Ms : null,
        cpu: cpuMs(r),
        non2xx: r.non2xx,
        errors: r.errors,
        note,
      };
    }),
  ],
);

const lowBin = results[`binary c=${low}`];
const lowJson = results[`json c=${low}`];
const highBin = results[`binary c=${high}`];
const highJson = results[`json c=${high}`];
const goals = printGoals([
  {
    name: `binary added p50 (c=${low})`,
    value: low === 1 ? diff(lowBin?.p50Ms, inproc.p50Ms) : null,
    op: '<=',
    target: 0.5,
    unit: ' ms',
    detail: 'ferry binary p50 minus in-process run() p50 (needs --low 1)',
  },
  {
    name: `json added p50 (c=${low})`,
    value: low === 1 ? diff(lowJson?.p50Ms, inproc.p50Ms) : null,
    op: 'info',
    unit: ' ms',
    detail: 'ferry JSON p50 minus in-process run() p50',
  },
  {
    name: `json/binary cpu per req (c=${high})`,
    value: ratio(cpuMs(highJson), cpuMs(highBin)),
    op: '>=',
    target: 100,
    detail: 'server CPU per request, JSON over binary (research S3 target)',
  },
  {
    name: `binary/json rps (c=${high})`,
    value: ratio(highBin?.rps, highJson?.rps),
    op: 'info',
    detail: 'throughput gain from binary tensors',
  },
]);

saveResults(
  's2-payloads',
  {
    options: { ...common, low, high, unaligned: values.unaligned === true },
    modelYaml: modelDir.yaml,
    bodyBytes: Object.fromEntries(Object.entries(bodies).map(([k, v]) => [k, v.body.length])),
    inProcess: { ...inproc, outputs: undefined },
    results,
    failures,
    goals,
  },
  {
    title: 'S2 payloads: image_mean FP32 [1,3,224,224], JSON vs binary tensors',
    throughputScale: 'log',
    latencyScale: 'log',
    rows: [
      {
        label: 'in-process run()',
        note: '1 caller',
        rps: inproc.callsPerS,
        p50Ms: inproc.p50Ms,
        p99Ms: inproc.p99Ms,
      },
      ...plan.map((p) => {
        const r = results[key(p)];
        return {
          label: `ferry ${p.format}`,
          note: `${p.connections} connection${p.connections === 1 ? '' : 's'}${r ? '' : ', failed'}`,
          rps: r?.rps,
          p50Ms: r?.p50Ms,
          p99Ms: r?.p99Ms,
        };
      }),
    ],
  },
  {
    title: 'S2 payloads: latency distribution, image_mean FP32 [1,3,224,224], JSON vs binary tensors',
    panels: [...new Set(plan.map((p) => p.connections))].map((conns) => ({
      title: `${conns} connection${conns === 1 ? '' : 's'}, closed loop${conns === 1 ? '; in-process run() for reference' : ''}`,
      series: [
        ...(conns === 1
          ? [
              {
                label: 'in-process run()',
                note: '1 caller, no HTTP',
                percentiles: inproc.percentiles,
                requests: inproc.calls,
              },
            ]
          : []),
        ...plan
          .filter((p) => p.connections === conns)
          .map((p) => {
            const r = results[key(p)];
            return {
              label: `ferry ${p.format}`,
              note: r ? `${conns} connection${conns === 1 ? '' : 's'}` : 'failed',
              percentiles: r?.percentiles,
              requests: r?.requests,
            };
          }),
      ],
    })),
  },
);
process.exitCode = Object.keys(failures).length > 0 ? 1 : 0;
