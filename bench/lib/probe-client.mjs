// The quiet health probe (S6): a process of its own that sends a precomputed GET over one keep-alive socket
// at a fixed rate and times each answer with process.hrtime.bigint(), from the write to the last byte read.
// Nothing else runs in this process: no load generator, no HTTP library, no worker threads. It prints one
// JSON line with the results on stdout and exits.
//
//   node bench/lib/probe-client.mjs --port 8001 [--path /v2/health/ready] [--rate 200] [--duration 10] [--burst]
//
// A request is sent every 1/rate s on schedule; when the previous answer is still out at that time, the next
// request goes as soon as it is in (one connection, no pipelining) and counts as `late`. With --burst it sends
// as autocannon's rate limit does instead: `rate` requests back to back at the start of every second, then
// nothing until the next second (used to tell the probe's pattern from its client, bench/README.md, S6).
import { parseArgs } from 'node:util';
import { summarize } from './latency.mjs';
import { buildRequest, RawHttpConnection } from './raw-http.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    path: { type: 'string', default: '/v2/health/ready' },
    rate: { type: 'string', default: '200' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '20' },
    burst: { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
const rate = Number(values.rate);
const durationS = Number(values.duration);
const warmup = Number(values.warmup);
if (!(port > 0 && rate > 0 && durationS > 0 && warmup >= 0)) {
  process.stderr.write('probe-client: --port, --rate and --duration must be positive numbers\n');
  process.exit(2);
}

const REQ = buildRequest({ host: `127.0.0.1:${port}`, path: values.path });
const conn = await RawHttpConnection.connect('127.0.0.1', port);
// A few answers first: the connection and both sides' code paths are warm before anything is timed.
for (let i = 0; i < warmup; i++) await conn.request(REQ);

const burst = values.burst === true;
const intervalNs = BigInt(Math.round(1e9 / rate));
const lat = new Float64Array(Math.ceil(rate * durationS) + 16);
let n = 0;
let non2xx = 0;
let late = 0;
const statusCodes = {};
const t0 = process.hrtime.bigint();
const end = t0 + BigInt(Math.round(durationS * 1e9));
let next = t0;
let sent = 0;
let burstStart = t0;
const burstSize = Math.max(1, Math.round(rate));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
while (next < end) {
  const now = process.hrtime.bigint();
  // Sleep until the slot (timers are ms-grained, so a send may be up to ~1 ms off its slot; the time measured
  // starts at the write, so that moves the rate a little, not the latencies). No busy wait: it would load the
  // machine the probe is measuring.
  if (now < next) await sleep(Math.max(1, Math.round(Number(next - now) / 1e6)));
  else if (!burst && now - next > intervalNs) late++;
  const start = process.hrtime.bigint();
  const { status } = await conn.request(REQ);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  statusCodes[status] = (statusCodes[status] ?? 0) + 1;
  if (status >= 200 && status < 300) {
    if (n < lat.length) lat[n++] = ms;
  } else non2xx++;
  sent++;
  if (!burst) next += intervalNs;
  else if (sent % burstSize === 0) {
    burstStart += 1_000_000_000n; // this second's burst is done: the next starts a second after this one
    next = burstStart;
  } else next = process.hrtime.bigint(); // the next one at once
}
const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
conn.close();
process.stdout.write(
  `${JSON.stringify({
    ...summarize(lat, n, wallS),
    non2xx,
    errors: 0,
    timeouts: 0,
    late,
    statusCodes,
    serverCpuMs: null,
  })}\n`,
);
