/**
 * S6: event-loop isolation. While the matmul stack is saturated (64 connections of infer), a second,
 * low-rate load generator probes GET /v2/health/ready. If inference ran on the HTTP thread, every
 * probe would wait for the running inference. Also measured: the same probe with no load.
 * Goal: health p99 < 2 ms under load.
 */
import { runLoad } from './lib/load.ts';
import { cpuUsPerRequest, log, measure, setupPinning } from './lib/measure.ts';
import { writeModelDir } from './lib/modeldir.ts';
import { wideMatmul } from './lib/models.ts';
import { binaryInferBody, jsonInferBody, seededData } from './lib/oip.ts';
import { numberFlag, parseOptions } from './lib/options.ts';
import { printGoals, printTable, saveResults } from './lib/report.ts';
import { startFerry, withServer } from './lib/servers.ts';

const USAGE = `S6 isolation: health-probe latency while the matmul model is saturated.
usage: node --import tsx bench/s6-isolation.ts [options]
  --connections <n>   concurrent infer clients for the saturating load, default 64
  --probe-rate <n>    health probes per second (1 connection), default 200
  --batching <on|off> dynamic batching for the model (maxBatchSize 32, delay 0), default on
  --format <f>        infer request encoding: binary (default) or json`;

const { common, values } = parseOptions(USAGE, {
  connections: { type: 'string' },
  'probe-rate': { type: 'string' },
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
await setupPinning(common);

const WIDTH = 1024;
const model = wideMatmul(4, WIDTH);
const input = { name: model.input, shape: [1, WIDTH], data: seededData(WIDTH) };
const req = format === 'binary' ? binaryInferBody([input]) : jsonInferBody([input]);
const dir = await writeModelDir({
  name: model.name,
  bytes: model.bytes,
  batching: batchingOn ? { maxBatchSize: 32, maxQueueDelayMs: 0 } : null,
  threads: common.threads,
});

type Result = Awaited<ReturnType<typeof runLoad>>;
const results: Record<string, Result> = {};
const failures: Record<string, string> = {};
log(
  `S6 isolation: ${connections} infer connections (batching ${batchingOn ? 'on' : 'off'}), health probe ${probeRate}/s`,
);
try {
  await withServer(
    () => startFerry(common, dir.dir),
    async (s) => {
      const health = {
        url: `${s.baseUrl}/v2/health/ready`,
        method: 'GET' as const,
        connections: 1,
        rate: probeRate,
        cpuPids: [s.proc.pid],
      };
      const infer = {
        url: `${s.baseUrl}/v2/models/${model.name}/infer`,
        method: 'POST' as const,
        body: req.body,
        headers: req.headers,
        connections,
        cpuPids: [s.proc.pid],
      };
      results['health, idle'] = await measure('health, idle', health, common);
      // Saturating load: warm-up, then a run that starts 1 s before and ends ~1 s after the probe.
      if (common.warmupS > 0) await runLoad({ ...infer, durationS: common.warmupS });
      const heavy = runLoad({ ...infer, durationS: common.durationS + 2 });
      await new Promise((r) => setTimeout(r, 1000));
      const probe = runLoad({ ...health, durationS: common.durationS, cpuPids: [] });
      const [h, p] = await Promise.all([heavy, probe]);
      results['infer, saturating'] = h;
      results['health, under load'] = p;
      log(`  infer, saturating: ${Math.round(h.rps)} rps, p99 ${h.p99Ms.toFixed(3)} ms`);
      log(
        `  health, under load: p50 ${p.p50Ms.toFixed(3)} ms, p99 ${p.p99Ms.toFixed(3)} ms, max ${p.maxMs.toFixed(3)} ms`,
      );
    },
  );
} catch (e) {
  failures.ferry = (e as Error).message;
  log(`  ferry: FAILED\n${(e as Error).message.replace(/^/gm, '    ')}`);
} finally {
  await dir.cleanup();
}

printTable(
  `S6 isolation: matmul 4x${WIDTH}, ${connections} infer connections, health probe ${probeRate}/s on 1 connection`,
  [
    { key: 'stream', title: 'stream' },
    { key: 'requests', title: 'requests', digits: 0 },
    { key: 'rps', title: 'rps', digits: 0 },
    { key: 'p50', title: 'p50 ms', digits: 3 },
    { key: 'p99', title: 'p99 ms', digits: 3 },
    { key: 'max', title: 'max ms', digits: 3 },
    { key: 'cpu', title: 'server cpu ms/req', digits: 3 },
    { key: 'non2xx', title: 'non-2xx', digits: 0 },
    { key: 'errors', title: 'errors', digits: 0 },
  ],
  ['health, idle', 'infer, saturating', 'health, under load'].map((k) => {
    const r = results[k];
    if (!r) return { stream: `${k} (failed)` };
    const cpu = k === 'health, under load' ? null : cpuUsPerRequest(r);
    return {
      stream: k,
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

const goals = printGoals([
  {
    name: 'health p99 under load',
    value: results['health, under load']?.p99Ms ?? null,
    op: '<',
    target: 2,
    unit: ' ms',
  },
  { name: 'health p99 idle', value: results['health, idle']?.p99Ms ?? null, op: '<', target: 2, unit: ' ms' },
]);

saveResults('s6-isolation', {
  options: { ...common, connections, probeRate, batchingOn, format },
  modelYaml: dir.yaml,
  results,
  failures,
  goals,
});
process.exitCode = Object.keys(failures).length > 0 ? 1 : 0;
