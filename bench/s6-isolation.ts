/**
 * S6: event-loop isolation. While the matmul stack is saturated (64 connections of infer), a low-rate probe
 * times GET /v2/health/ready. If inference ran on the HTTP thread, every probe would wait for the running
 * inference. The same probe also times the node:http floor (a fixed-response server with nothing else to do),
 * idle and while Ferry is saturated: the floor's numbers are what the probe client and the machine add, so
 * Ferry's numbers minus the floor's are the server's own share.
 *
 * The probe is, by default, a quiet client of its own (lib/probe-client.mjs: a child process, one raw
 * keep-alive socket, a precomputed request, hrtime timing, requests evenly spaced); `--probe autocannon` uses
 * an autocannon worker thread in this process, as S6 did before, and `--probe both|all` compares them.
 * Goal: health p99 < 2 ms under load.
 */
import { type LoadResult, runLoad } from './lib/load.ts';
import { cpuUsPerRequest, log, setupPinning } from './lib/measure.ts';
import { writeModelDir } from './lib/modeldir.ts';
import { wideMatmul } from './lib/models.ts';
import { binaryInferBody, jsonInferBody, seededData } from './lib/oip.ts';
import { numberFlag, parseOptions } from './lib/options.ts';
import { runProbe } from './lib/probe.ts';
import { diff, type Goal, printGoals, printTable, saveResults } from './lib/report.ts';
import { type Server, startFerry, startFloor } from './lib/servers.ts';

const USAGE = `S6 isolation: health-probe latency while the matmul model is saturated.
usage: node --import tsx bench/s6-isolation.ts [options]
  --connections <n>   concurrent infer clients for the saturating load, default 64
  --probe-rate <n>    health probes per second (1 connection), default 200
  --probe <list>      the probe clients, comma-separated: raw (a child process on a raw socket, requests
                      evenly spaced; the default), autocannon (a worker thread of this process; its rate
                      limit sends each second's requests back to back), raw-burst (the raw client sending
                      as autocannon does); both = raw,autocannon; all = raw,raw-burst,autocannon
  --batching <on|off> dynamic batching for the model (maxBatchSize 32, delay 0), default on
  --format <f>        infer request encoding: binary (default) or json`;

const { common, values } = parseOptions(USAGE, {
  connections: { type: 'string' },
  'probe-rate': { type: 'string' },
  probe: { type: 'string' },
  batching: { type: 'string' },
  format: { type: 'string' },
});
const connections = numberFlag(values, 'connections', 64, 1, 1024);
const probeRate = numberFlag(values, 'probe-rate', 200, 1, 100_000);
const batchingOn = (values.batching ?? 'on') === 'on';
if (values.batching !== undefined && values.batching !== 'on' && values.batching !== 'off') {
  process.stderr.write(`bench: --batching must be on or off, got "${String(values.batching)}"\n`);
  process.exit(2);
}
const format = values.format ?? 'binary';
if (format !== 'binary' && format !== 'json') {
  process.stderr.write(`bench: --format must be binary or json, got "${String(format)}"\n`);
  process.exit(2);
}
const PROBES = ['raw', 'raw-burst', 'autocannon'] as const;
type Probe = (typeof PROBES)[number];
const probeFlag = String(values.probe ?? 'raw');
const probes = [
  ...new Set(
    probeFlag === 'both'
      ? ['raw', 'autocannon']
      : probeFlag === 'all'
        ? [...PROBES]
        : probeFlag.split(',').filter(Boolean),
  ),
] as Probe[];
if (probes.length === 0 || probes.some((p) => !PROBES.includes(p))) {
  process.stderr.write(
    `bench: --probe takes a comma-separated list of ${PROBES.join(', ')} (or both, all), got "${probeFlag}"\n`,
  );
  process.exit(2);
}
/** The probe the goals are read from. */
const mainProbe = probes[0] as Probe;
await setupPinning(common);

const WIDTH = 1024;
const model = wideMatmul(4, WIDTH);
const input = { name: model.input, shape: [1, WIDTH], data: seededData(WIDTH) };
const req = format === 'binary' ? binaryInferBody([input]) : jsonInferBody([input]);
const dir = await writeModelDir({
  name: model.name,
  bytes: model.bytes,
  batching: batchingOn ? { maxBatchSize: 32, maxQueueDelayMs: 0 } : false,
  threads: common.threads,
});

type Target = 'floor' | 'ferry';
type State = 'idle' | 'under load';
const key = (p: Probe, t: Target, s: State) => `${p} probe -> ${t}, ${s}`;
const inferKey = (p: Probe) => `infer, saturating (${p} probe run)`;
const results: Record<string, LoadResult> = {};
const failures: Record<string, string> = {};

function probeOnce(p: Probe, server: Server, durationS: number): Promise<LoadResult> {
  const url = `${server.baseUrl}/v2/health/ready`;
  return p === 'autocannon'
    ? runLoad({ url, method: 'GET', connections: 1, rate: probeRate, durationS })
    : runProbe({ url, rate: probeRate, durationS, burst: p === 'raw-burst' });
}

function show(label: string, r: LoadResult): void {
  log(
    `  ${label}: ${r.requests} answers, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, max ${r.maxMs.toFixed(3)} ms` +
      (r.non2xx || r.errors ? `, non-2xx ${r.non2xx}, errors ${r.errors}` : ''),
  );
}

log(
  `S6 isolation: ${connections} infer connections (batching ${batchingOn ? 'on' : 'off'}), health probe ${probeRate}/s, ` +
    `probe client ${probes.join(' and ')}; ${common.durationS} s per probe run`,
);
let floor: Server | null = null;
let ferry: Server | null = null;
try {
  floor = await startFloor(common);
  ferry = await startFerry(common, dir.dir);
  const infer = {
    url: `${ferry.baseUrl}/v2/models/${model.name}/infer`,
    method: 'POST' as const,
    body: req.body,
    headers: req.headers,
    connections,
    cpuPids: [ferry.proc.pid],
  };
  // Idle: nothing but the probe. A short unrecorded probe first warms both servers' health paths.
  for (const p of probes) {
    for (const [t, s] of [
      ['floor', floor],
      ['ferry', ferry],
    ] as const) {
      if (common.warmupS > 0) await probeOnce(p, s, Math.min(common.warmupS, 2));
      const r = await probeOnce(p, s, common.durationS);
      results[key(p, t, 'idle')] = r;
      show(key(p, t, 'idle'), r);
    }
  }
  // Under load: Ferry saturated by the infer load; the probe times Ferry, then the floor (whose own event loop
  // stays idle: what it shows is the busy machine and the probe client). The load starts 1 s before the first
  // probe and ends ~1 s after the second.
  if (common.warmupS > 0) await runLoad({ ...infer, durationS: common.warmupS });
  for (const p of probes) {
    const heavy = runLoad({ ...infer, durationS: 2 * common.durationS + 2 });
    await new Promise((r) => setTimeout(r, 1000));
    for (const [t, s] of [
      ['ferry', ferry],
      ['floor', floor],
    ] as const) {
      const r = await probeOnce(p, s, common.durationS);
      results[key(p, t, 'under load')] = r;
      show(key(p, t, 'under load'), r);
    }
    const h = await heavy;
    results[inferKey(p)] = h;
    log(
      `  ${inferKey(p)}: ${Math.round(h.rps)} rps, p50 ${h.p50Ms.toFixed(3)} ms, p99 ${h.p99Ms.toFixed(3)} ms`,
    );
  }
} catch (e) {
  failures.run = (e as Error).message;
  log(`  FAILED\n${(e as Error).message.replace(/^/gm, '    ')}`);
} finally {
  await ferry?.proc.stop();
  await floor?.proc.stop();
  await dir.cleanup();
}

const streams: { key: string; probe: string; target: string; load: string }[] = [];
for (const p of probes) {
  for (const s of ['idle', 'under load'] as const) {
    for (const t of ['floor', 'ferry'] as const) {
      streams.push({ key: key(p, t, s), probe: p, target: `${t} /v2/health/ready`, load: s });
    }
  }
  streams.push({ key: inferKey(p), probe: '-', target: `ferry infer, c=${connections}`, load: 'saturating' });
}
printTable(
  `S6 isolation: matmul 4x${WIDTH}, ${connections} infer connections, health probe ${probeRate}/s on 1 connection`,
  [
    { key: 'probe', title: 'probe client' },
    { key: 'target', title: 'target' },
    { key: 'load', title: 'ferry load' },
    { key: 'requests', title: 'requests', digits: 0 },
    { key: 'rps', title: 'rps', digits: 0 },
    { key: 'p50', title: 'p50 ms', digits: 3 },
    { key: 'p99', title: 'p99 ms', digits: 3 },
    { key: 'max', title: 'max ms', digits: 3 },
    { key: 'cpu', title: 'server cpu ms/req', digits: 3 },
    { key: 'non2xx', title: 'non-2xx', digits: 0 },
    { key: 'errors', title: 'errors', digits: 0 },
  ],
  streams.map(({ key: k, probe, target, load }) => {
    const r = results[k];
    if (!r) return { probe, target, load: `${load} (failed)` };
    const cpu = k.startsWith('infer') ? cpuUsPerRequest(r) : null;
    return {
      probe,
      target,
      load,
      requests: r.requests,
      rps: r.rps,
      p50: r.p50Ms,
      p99: r.p99Ms,
      max: r.maxMs,
      cpu: cpu === null ? null : cpu / 1000,
      non2xx: r.non2xx,
      errors: r.errors,
    };
  }),
);

const p99 = (p: Probe, t: Target, s: State) => results[key(p, t, s)]?.p99Ms ?? null;
const goals: Goal[] = [
  {
    name: 'health p99 under load',
    value: p99(mainProbe, 'ferry', 'under load'),
    op: '<',
    target: 2,
    unit: ' ms',
    detail: `ferry, ${mainProbe} probe`,
  },
  {
    name: 'health p99 idle',
    value: p99(mainProbe, 'ferry', 'idle'),
    op: '<',
    target: 2,
    unit: ' ms',
    detail: `ferry, ${mainProbe} probe`,
  },
  {
    name: 'ferry - floor p99 under load',
    value: diff(p99(mainProbe, 'ferry', 'under load'), p99(mainProbe, 'floor', 'under load')),
    op: 'info',
    unit: ' ms',
    detail: "the server's own share: the floor, probed at the same time, shows the machine and the client",
  },
  {
    name: 'floor p99 under load',
    value: p99(mainProbe, 'floor', 'under load'),
    op: 'info',
    unit: ' ms',
    detail: 'a do-nothing server while ferry is saturated: the machine and the probe client',
  },
];
for (const other of probes.slice(1)) {
  for (const t of ['floor', 'ferry'] as const) {
    for (const s of ['idle', 'under load'] as const) {
      goals.push({
        name: `${other} - ${mainProbe} p99, ${t} ${s}`,
        value: diff(p99(other, t, s), p99(mainProbe, t, s)),
        op: 'info',
        unit: ' ms',
        detail: `what the ${other} probe shows over the ${mainProbe} one`,
      });
    }
  }
}
const checked = printGoals(goals);

saveResults(
  's6-isolation',
  {
    options: { ...common, connections, probeRate, probes, batchingOn, format },
    modelYaml: dir.yaml,
    results,
    failures,
    goals: checked,
  },
  {
    title: `S6 isolation: health probe ${probeRate}/s while matmul 4x${WIDTH} is saturated (${connections} connections)`,
    latencyScale: 'log',
    rows: streams.map(({ key: k, probe, target, load }) => ({
      label: k.startsWith('infer')
        ? `infer (${k.slice(k.indexOf('(') + 1, k.indexOf(' probe'))} run)`
        : `${target.split(' ')[0]}, ${load}`,
      note: k.startsWith('infer')
        ? `c=${connections}, saturating`
        : `${probe} probe, ${target.split(' ')[1]}`,
      rps: results[k]?.rps,
      p50Ms: results[k]?.p50Ms,
      p99Ms: results[k]?.p99Ms,
    })),
  },
  {
    title: `S6 isolation: latency distribution of the health probe (${probeRate}/s) and of the saturating infer load`,
    panels: probes.map((p) => ({
      title: `${p} probe client; infer: ${connections} connections, closed loop`,
      series: streams
        .filter((st) => st.probe === p || (st.probe === '-' && st.key === inferKey(p)))
        .map(({ key: k, target, load }) => ({
          label: k.startsWith('infer') ? 'infer (saturating)' : `${target.split(' ')[0]}, ${load}`,
          note: k.startsWith('infer') ? `c=${connections}` : target.split(' ')[1],
          percentiles: results[k]?.percentiles,
          requests: results[k]?.requests,
        })),
    })),
  },
);
process.exitCode = Object.keys(failures).length > 0 ? 1 : 0;
