/**
 * Gateway: what the Ferry gateway adds in front of one replica, next to nginx as a reference proxy.
 * One `ferry serve` replica of the trivial add model (as S1) on TCP, and one on a unix socket (as the
 * platform runs them); then, one after the other in the same run: straight to the TCP replica, through
 * the Ferry gateway to the TCP replica, through the gateway to the socket replica (gateway-unix: the same
 * gateway, the upstream hop over the socket), the gateway with the deployment private (gateway-private:
 * tenant prefix, a bearer token hashed and looked up on every request: the access check's cost), through
 * nginx (one worker, upstream keep-alive). Two loads each: a fixed moderate rate (latency added) and a closed
 * loop at --connections (maximum throughput).
 * Goals: gateway adds <= 0.3 ms at p50, and gateway rps >= 0.8x nginx rps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './lib/load.ts';
import { cpuUsPerRequest, log, measure, setupPinning } from './lib/measure.ts';
import { writeModelDir } from './lib/modeldir.ts';
import { tinyAdd } from './lib/models.ts';
import { ensureNginx, startNginx } from './lib/nginx.ts';
import { checkInfer } from './lib/oip.ts';
import { numberFlag, parseOptions, REPO_ROOT } from './lib/options.ts';
import { freePort, startProcess } from './lib/process.ts';
import { diff, printGoals, printTable, ratio, saveResults } from './lib/report.ts';
import { type Server, startFerry } from './lib/servers.ts';

const USAGE = `Gateway: added latency and throughput of the Ferry gateway vs direct vs nginx (trivial model).
usage: node --import tsx bench/gateway.ts [options]
  --connections <n>       closed-loop connections for the throughput run, default 32
  --rate <n>              requests/s for the latency run, default 1000
  --rate-connections <n>  connections for the latency run, default 8
  --skip <list>           comma-separated paths to leave out: direct,gateway,gateway-unix,gateway-private,nginx,node-proxy
  --ab-rounds <n>         TCP vs unix upstream, taking turns: rounds of one latency run each, default 6 (0: none)`;

const { common, values } = parseOptions(USAGE, {
  connections: { type: 'string' },
  rate: { type: 'string' },
  'rate-connections': { type: 'string' },
  skip: { type: 'string' },
  'ab-rounds': { type: 'string' },
});
const abRounds = numberFlag(values, 'ab-rounds', 6, 0, 100);
const connections = numberFlag(values, 'connections', 32, 1, 1024);
const rate = numberFlag(values, 'rate', 1000, 1, 1_000_000);
const rateConnections = numberFlag(values, 'rate-connections', 8, 1, 1024);
const skip = new Set(
  String(values.skip ?? '')
    .split(',')
    .filter(Boolean),
);
await setupPinning(common);

const model = tinyAdd();
const DEPLOYMENT = 'adder';
const BODY = `{"inputs":[{"name":"${model.input}","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`;
const HEADERS = { 'content-type': 'application/json' };
const EXPECTED = [2, 4, 6, 8];
// Batching on, no added delay: the replica configuration a user runs for throughput.
const modelDir = await writeModelDir({
  name: model.name,
  bytes: model.bytes,
  threads: common.threads,
  batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
});

type Result = Awaited<ReturnType<typeof measure>>;
/** p50 per round of the TCP-vs-unix comparison (ms). */
const ab: { tcp: number[]; unix: number[] } = { tcp: [], unix: [] };
const median = (xs: number[]) =>
  xs.length === 0 ? undefined : [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const latency: Record<string, Result> = {};
const throughput: Record<string, Result> = {};
const failures: Record<string, string> = {};
const PATHS = ['direct', 'gateway', 'gateway-unix', 'gateway-private', 'nginx', 'node-proxy'] as const;
/** The private path's bearer token (a made-up one of the API's length). */
const TOKEN = 'fy_bench_0123456789abcdefghijklmnopqrstuvwxyzABCD';
const PRIVATE_HEADERS = { ...HEADERS, authorization: `Bearer ${TOKEN}` };

let nginxBin: string | null = null;
if (!skip.has('nginx')) {
  const found = ensureNginx();
  if ('problem' in found) failures.nginx = found.problem;
  else nginxBin = found.path;
}

/**
 * A Node proxy in its own process in front of `upstream`, routing deployment DEPLOYMENT to the model:
 * the Ferry gateway (lib/gateway-process.ts, through tsx) or the textbook node:http proxy
 * (baselines/node-proxy.mjs: the floor of any proxy written for Node). Both take the same flags.
 */
async function startNodeProxy(
  name: 'gateway' | 'gateway-private' | 'node-proxy',
  upstream: string,
): Promise<Server> {
  const script =
    name !== 'node-proxy'
      ? ['--import', 'tsx', join(REPO_ROOT, 'bench', 'lib', 'gateway-process.ts')]
      : [join(REPO_ROOT, 'bench', 'baselines', 'node-proxy.mjs')];
  const port = await freePort();
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: [
      ...script,
      ...['--port', String(port), '--deployment', DEPLOYMENT, '--served', model.name, '--upstream', upstream],
      ...(name === 'gateway-private' ? ['--token', TOKEN] : []),
    ],
    cwd: REPO_ROOT,
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    readyTimeoutMs: common.readyTimeoutS * 1000,
    cpus: common.pin ? '1' : undefined,
  });
  return { name, proc, baseUrl: `http://127.0.0.1:${port}` };
}

async function measurePath(name: string, url: string, cpuPids: number[]): Promise<void> {
  const headers = name === 'gateway-private' ? PRIVATE_HEADERS : HEADERS;
  await checkInfer(url, { body: Buffer.from(BODY), headers }, model.output, EXPECTED);
  latency[name] = await measure(
    `${name} @${rate}/s`,
    { url, method: 'POST', body: BODY, headers, connections: rateConnections, rate, cpuPids },
    common,
  );
  throughput[name] = await measure(
    `${name} c=${connections}`,
    { url, method: 'POST', body: BODY, headers, connections, cpuPids },
    common,
  );
}

log(
  `Gateway: ${common.durationS} s per measurement (+${common.warmupS} s warm-up); ` +
    `latency at ${rate}/s over ${rateConnections} connections, throughput at c=${connections}`,
);
let replica: Server | null = null;
let socketReplica: Server | null = null;
const socketDir = mkdtempSync(join(tmpdir(), 'ferry-bench-gw-'));
try {
  replica = await startFerry(common, modelDir.dir, 'replica');
  const upstream = replica.baseUrl;
  if (!skip.has('gateway-unix'))
    socketReplica = await startFerry(common, modelDir.dir, 'replica-unix', join(socketDir, 'ferry.sock'));
  const socketUpstream = socketReplica?.baseUrl;
  const proxies: Record<(typeof PATHS)[number], (() => Promise<Server>) | null> = {
    direct: null,
    gateway: () => startNodeProxy('gateway', upstream),
    'gateway-unix': socketUpstream ? () => startNodeProxy('gateway', socketUpstream) : null,
    'gateway-private': () => startNodeProxy('gateway-private', upstream),
    nginx: nginxBin
      ? () => startNginx(common, nginxBin!, { upstream, deployment: DEPLOYMENT, served: model.name })
      : null,
    'node-proxy': () => startNodeProxy('node-proxy', upstream),
  };
  for (const name of PATHS) {
    if (skip.has(name) || failures[name]) continue;
    let proxy: Server | null = null;
    try {
      const start = proxies[name];
      if (start) proxy = await start();
      const url = proxy
        ? `${proxy.baseUrl}${name === 'gateway-private' ? '/t/bench' : ''}/v2/models/${DEPLOYMENT}/infer`
        : `${upstream}/v2/models/${model.name}/infer`;
      // CPU column: the proxy's own CPU per request (the replica's for the direct path).
      await measurePath(name, url, [proxy ? proxy.proc.pid : replica.proc.pid]);
    } catch (e) {
      failures[name] = (e as Error).message;
      log(`  ${name}: FAILED\n${(e as Error).message.replace(/^/gm, '    ')}`);
    } finally {
      await proxy?.proc.stop();
    }
  }
  // TCP vs unix upstream, taking turns: the paths above run one after the other, so a slower phase of the
  // machine or a colder replica lands on one of them. Here both gateways run at once, both warm, and each round
  // measures both at the fixed rate, in alternating order.
  if (abRounds > 0 && socketUpstream && !skip.has('gateway') && !skip.has('gateway-unix')) {
    const tcpGw = await startNodeProxy('gateway', upstream);
    const unixGw = await startNodeProxy('gateway', socketUpstream);
    try {
      const urlOf = (s: Server) => `${s.baseUrl}/v2/models/${DEPLOYMENT}/infer`;
      const load = (url: string, durationS: number) =>
        runLoad({
          url,
          method: 'POST',
          body: BODY,
          headers: HEADERS,
          connections: rateConnections,
          rate,
          durationS,
        });
      for (const s of [tcpGw, unixGw]) await load(urlOf(s), Math.max(1, common.warmupS));
      for (let round = 0; round < abRounds; round++) {
        const order: Array<['tcp' | 'unix', Server]> =
          round % 2 === 0
            ? [
                ['tcp', tcpGw],
                ['unix', unixGw],
              ]
            : [
                ['unix', unixGw],
                ['tcp', tcpGw],
              ];
        for (const [side, s] of order) {
          const r = await load(urlOf(s), common.durationS);
          ab[side].push(r.p50Ms);
          log(`  a/b round ${round + 1} ${side}: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`);
        }
      }
    } finally {
      await tcpGw.proc.stop();
      await unixGw.proc.stop();
    }
  }
} catch (e) {
  failures.replica = (e as Error).message;
  log(`  replica: FAILED\n${(e as Error).message.replace(/^/gm, '    ')}`);
} finally {
  await replica?.proc.stop();
  await socketReplica?.proc.stop();
  rmSync(socketDir, { recursive: true, force: true });
  await modelDir.cleanup();
}

const note = (name: string) => (skip.has(name) ? 'skipped' : failures[name] ? 'failed (see log above)' : '');
printTable(
  `Gateway: trivial add model (batching on), OIP JSON, ${common.durationS} s per run`,
  [
    { key: 'path', title: 'path' },
    { key: 'p50', title: `p50 ms @${rate}/s`, digits: 3 },
    { key: 'p99', title: `p99 ms @${rate}/s`, digits: 3 },
    { key: 'added', title: 'added p50 ms', digits: 3 },
    { key: 'rps', title: `rps c=${connections}`, digits: 0 },
    { key: 'tp50', title: `p50 ms c=${connections}`, digits: 3 },
    { key: 'tp99', title: `p99 ms c=${connections}`, digits: 3 },
    { key: 'errors', title: 'non-2xx+err', digits: 0 },
    { key: 'cpu', title: 'proxy cpu us/req', digits: 1 },
    { key: 'note', title: 'note' },
  ],
  PATHS.map((name) => {
    const l = latency[name];
    const t = throughput[name];
    return {
      path: name,
      p50: l?.p50Ms,
      p99: l?.p99Ms,
      added: name === 'direct' ? null : diff(l?.p50Ms, latency.direct?.p50Ms),
      rps: t?.rps,
      tp50: t?.p50Ms,
      tp99: t?.p99Ms,
      errors: l || t ? (l?.non2xx ?? 0) + (l?.errors ?? 0) + (t?.non2xx ?? 0) + (t?.errors ?? 0) : null,
      cpu: name === 'direct' ? null : cpuUsPerRequest(t),
      note: note(name),
    };
  }),
);

const goals = printGoals([
  {
    name: 'gateway added p50',
    value: diff(latency.gateway?.p50Ms, latency.direct?.p50Ms),
    op: '<=',
    target: 0.3,
    unit: ' ms',
    detail: `gateway p50 minus direct p50 at ${rate}/s`,
  },
  {
    name: 'gateway/nginx rps',
    value: ratio(throughput.gateway?.rps, throughput.nginx?.rps),
    op: '>=',
    target: 0.8,
    detail: `closed loop, c=${connections}`,
  },
  {
    name: 'gateway added p50, unix/tcp upstream',
    value: ratio(
      diff(latency['gateway-unix']?.p50Ms, latency.direct?.p50Ms),
      diff(latency.gateway?.p50Ms, latency.direct?.p50Ms),
    ),
    op: 'info',
    detail:
      'added p50 with the replica on a unix socket over added p50 with it on TCP (< 1: the socket helps)',
  },
  {
    name: 'gateway p50, unix/tcp upstream (a/b)',
    value: ratio(median(ab.unix), median(ab.tcp)),
    op: 'info',
    detail: `both gateways running, ${abRounds} rounds taking turns at ${rate}/s: median p50 ${median(ab.unix)?.toFixed(3) ?? '-'} ms (unix) vs ${median(ab.tcp)?.toFixed(3) ?? '-'} ms (tcp); < 1: the socket helps`,
  },
  {
    name: 'gateway rps, unix/tcp upstream',
    value: ratio(throughput['gateway-unix']?.rps, throughput.gateway?.rps),
    op: 'info',
    detail: `closed loop, c=${connections}`,
  },
  {
    name: 'gateway cpu us/req, unix/tcp upstream',
    value: ratio(cpuUsPerRequest(throughput['gateway-unix']), cpuUsPerRequest(throughput.gateway)),
    op: 'info',
    detail: "the gateway process's own CPU per request",
  },
  {
    name: 'nginx added p50',
    value: diff(latency.nginx?.p50Ms, latency.direct?.p50Ms),
    op: 'info',
    unit: ' ms',
    detail: 'the reference proxy',
  },
  {
    name: 'gateway-private/gateway rps',
    value: ratio(throughput['gateway-private']?.rps, throughput.gateway?.rps),
    op: 'info',
    detail: 'a private deployment (bearer token hashed and looked up per request) vs a public one',
  },
  {
    name: 'gateway-private added p50 vs gateway',
    value: diff(latency['gateway-private']?.p50Ms, latency.gateway?.p50Ms),
    op: 'info',
    unit: ' ms',
  },
  {
    name: 'gateway/node-proxy rps',
    value: ratio(throughput.gateway?.rps, throughput['node-proxy']?.rps),
    op: 'info',
    detail: 'against the textbook node:http proxy (baselines/node-proxy.mjs)',
  },
  {
    name: 'node-proxy added p50',
    value: diff(latency['node-proxy']?.p50Ms, latency.direct?.p50Ms),
    op: 'info',
    unit: ' ms',
  },
  {
    name: 'gateway/direct rps',
    value: ratio(throughput.gateway?.rps, throughput.direct?.rps),
    op: 'info',
    detail: 'the proxy shares the CPUs with the replica and the load generator',
  },
  {
    name: 'nginx/direct rps',
    value: ratio(throughput.nginx?.rps, throughput.direct?.rps),
    op: 'info',
  },
]);

saveResults(
  'gateway',
  {
    options: { ...common, connections, rate, rateConnections, abRounds },
    modelYaml: modelDir.yaml,
    latency,
    throughput,
    ab,
    failures,
    goals,
  },
  {
    title: 'Gateway: one ferry serve replica of the add model, reached directly and through proxies',
    throughputTitle: `throughput, req/s (closed loop, c=${connections})`,
    latencyTitle: `latency, ms (${rate} req/s over ${rateConnections} connections)`,
    rows: PATHS.filter((name) => !skip.has(name)).map((name) => ({
      label: name,
      note: note(name),
      rps: throughput[name]?.rps,
      p50Ms: latency[name]?.p50Ms,
      p99Ms: latency[name]?.p99Ms,
    })),
  },
  {
    title: 'Gateway: latency distribution per path, one ferry serve replica of the add model',
    panels: [
      { title: `${rate} req/s over ${rateConnections} connections (rate-limited)`, runs: latency },
      { title: `closed loop, ${connections} connections`, runs: throughput },
    ].map(({ title, runs }) => ({
      title,
      series: PATHS.filter((name) => !skip.has(name)).map((name) => ({
        label: name,
        ...(note(name) ? { note: note(name) } : {}),
        percentiles: runs[name]?.percentiles,
        requests: runs[name]?.requests,
      })),
    })),
  },
);
process.exitCode = Object.keys(failures).length > 0 ? 1 : 0;
