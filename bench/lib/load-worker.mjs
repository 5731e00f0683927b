// One autocannon run inside a worker thread, so that each load generator has its own event loop
// (two concurrent runs, as in S6, do not distort each other's latencies) and the scenario's main
// thread stays free. Plain JavaScript on purpose: it needs no TypeScript loader inside the worker.
//
// autocannon records latencies in whole milliseconds; the goals here are sub-millisecond, so this
// worker records every 2xx response time itself (float ms from process.hrtime) and computes exact
// percentiles. It also samples the server's CPU time (/proc) at the start and end of the run.
import { parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import { treeCpuMs } from './cpu.mjs';
import { summarize } from './latency.mjs';

const o = workerData;
let lat = new Float64Array(1 << 16);
let n = 0;
let non2xx = 0;
const statusCodes = {};
let cpuStart = null;
let t0 = 0n;

const instance = autocannon(
  {
    url: o.url,
    method: o.method,
    body: o.body ? Buffer.from(o.body.buffer, o.body.byteOffset, o.body.byteLength) : undefined,
    headers: o.headers,
    connections: o.connections,
    duration: o.durationS,
    overallRate: o.rate || undefined,
    pipelining: 1,
    timeout: o.timeoutS,
    renderProgressBar: false,
    renderResultsTable: false,
    renderLatencyTable: false,
  },
  (err, result) => {
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpuEnd = treeCpuMs(o.cpuPids);
    if (err) {
      parentPort.postMessage({ error: String(err?.stack ?? err) });
      return;
    }
    parentPort.postMessage({
      result: {
        ...summarize(lat, n, wallS),
        non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        statusCodes,
        serverCpuMs: cpuStart !== null && cpuEnd !== null ? cpuEnd - cpuStart : null,
      },
    });
  },
);

instance.on('start', () => {
  if (t0 !== 0n) return;
  cpuStart = treeCpuMs(o.cpuPids);
  t0 = process.hrtime.bigint();
});

instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
  if (statusCode < 200 || statusCode > 299) {
    non2xx++;
    return;
  }
  if (n === lat.length) {
    const bigger = new Float64Array(lat.length * 2);
    bigger.set(lat);
    lat = bigger;
  }
  lat[n++] = responseTime;
});
