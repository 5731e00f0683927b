/**
 * Platform rollout under load: the whole platform on this machine (store, process runtime, controller,
 * gateway, API), two replicas of examples/iris, and an open-loop load of --rps requests/s through the
 * gateway while it rolls out a revision, runs a canary that is promoted, a canary that is aborted, an
 * undo, and replaces a replica killed with SIGKILL; then the load goes on until --duration seconds have
 * passed. Reports each step's time and the load's answers, failures and latency.
 * Goal: 0 failed requests at 200 requests/s (what test/platform.test.ts asserted before it became a
 * behaviour test at a rate a busy machine keeps up with).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addVersionFromDir } from '../src/cli/upload.ts';
import { ControlClient } from '../src/control/index.ts';
import { startPlatform } from '../src/platform/index.ts';
import { until } from '../test/helpers.ts';
import { type LoadResult, steadyLoad } from '../test/load.ts';
import { log } from './lib/measure.ts';
import { numberFlag, parseOptions, REPO_ROOT } from './lib/options.ts';
import { printGoals, printTable, saveResults } from './lib/report.ts';

const USAGE = `Platform rollout: requests/s through the gateway while the platform rolls out, and their failures.
usage: node --import tsx bench/platform-rollout.ts [options]
  --rps <n>        requests per second (open loop), default 200
  --replicas <n>   replicas per revision, default 2
  (--duration <s> is the least time the load runs, default 60; --warmup, --repeat, --pin, --threads do not apply)`;

const { common, values } = parseOptions(USAGE, {
  rps: { type: 'string' },
  replicas: { type: 'string' },
});
const rps = numberFlag(values, 'rps', 200, 1, 10_000);
const replicas = numberFlag(values, 'replicas', 2, 1, 16);
const durationS =
  values.duration === undefined && process.env.BENCH_DURATION === undefined ? 60 : common.durationS;

const IRIS = join(REPO_ROOT, 'examples', 'iris');
const BODY = readFileSync(join(IRIS, 'requests', 'setosa.json'));

const home = await mkdtemp(join(tmpdir(), 'ferry-bench-rollout-'));
const platform = await startPlatform({ home, runtime: 'process', apiPort: 0, gatewayPort: 0, resyncMs: 500 });
const client = new ControlClient({ url: platform.apiUrl, token: platform.adminToken! });
const infer = `${platform.gatewayUrl}/v2/models/iris/infer`;
const phase = async () => (await client.rollout('iris'))?.phase;
const ready = async (revision?: number) =>
  (await client.replicas('iris')).filter(
    (r) => r.state === 'ready' && (revision === undefined || r.revision === revision),
  ).length;

interface Step {
  step: string;
  seconds: number;
  sent: number;
  ok: number;
  failed: number;
}
const steps: Step[] = [];
let result: LoadResult | undefined;
try {
  await client.createModel('iris');
  await addVersionFromDir(client, 'iris', '1', IRIS);
  await client.deploy({ name: 'iris', model: 'iris', version: '1', replicas });
  await until('the first replicas', async () => (await ready(1)) === replicas);
  log(`platform up; ${rps} requests/s through ${infer} for at least ${durationS} s`);

  const load = steadyLoad({ url: infer, body: BODY, rps, maxDurationMs: 60 * 60_000 });
  const failedOf = (r: LoadResult) => r.errors + Object.values(r.statuses).reduce((a, b) => a + b, 0);
  const started = Date.now();
  let last = { at: started, ...load.snapshot() };
  const step = async (name: string, action: () => Promise<unknown>) => {
    await action();
    const now = load.snapshot();
    const s = {
      step: name,
      seconds: (Date.now() - last.at) / 1000,
      sent: now.sent - last.sent,
      ok: now.ok - last.ok,
      failed: failedOf(now) - failedOf(last),
    };
    steps.push(s);
    log(`${name}: ${s.seconds.toFixed(1)} s, ${s.ok}/${s.sent} answered`);
    last = { at: Date.now(), ...now };
  };
  await step('rolling update (r2)', async () => {
    await client.update('iris', { env: { FERRY_BENCH_STEP: 'rolling' } });
    await until('rolling done', async () => (await phase()) === 'succeeded');
  });
  await step('canary 50% (r3), promoted', async () => {
    await client.update('iris', {
      env: { FERRY_BENCH_STEP: 'canary' },
      strategy: { kind: 'canary', steps: [{ percent: 50 }] },
    });
    await until('canary paused', async () => (await phase()) === 'paused');
    await client.promote('iris');
    await until('canary done', async () => (await phase()) === 'succeeded');
  });
  await step('canary 50% (r4), aborted', async () => {
    await client.update('iris', { env: { FERRY_BENCH_STEP: 'aborted' } });
    await until('canary paused', async () => (await phase()) === 'paused');
    await client.abort('iris');
    await until('aborted', async () => (await phase()) === 'aborted');
  });
  await step("undo to r2's spec", async () => {
    await client.undo('iris', 2);
    await until('undo done', async () => (await phase()) === 'succeeded');
  });
  await step('SIGKILL of a replica, replaced', async () => {
    const victim = (await client.replicas('iris')).find((r) => r.state === 'ready')!;
    process.kill(Number(victim.id.split('@')[1]), 'SIGKILL');
    await until('replaced', async () => {
      const list = await client.replicas('iris');
      return list.filter((r) => r.state === 'ready' && r.id !== victim.id).length === replicas;
    });
  });
  await step('steady', async () => {
    const rest = durationS * 1000 - (Date.now() - started);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  });
  result = await load.stop();
  const seconds = (Date.now() - started) / 1000;
  printTable(
    `Platform rollout under ${rps} requests/s (process runtime, ${replicas} replicas)`,
    [
      { key: 'step', title: 'step' },
      { key: 'seconds', title: 'seconds', digits: 1 },
      { key: 'sent', title: 'sent', digits: 0 },
      { key: 'ok', title: 'answered 2xx', digits: 0 },
      { key: 'failed', title: 'failed', digits: 0 },
    ],
    steps.map((s) => ({ ...s })),
  );
  const goals = printGoals([
    {
      name: 'failed requests',
      value: failedOf(result),
      op: '<=',
      target: 0,
      detail: `${JSON.stringify(result.statuses)} errors ${result.errors} ${result.failures.slice(0, 3).join(' | ')}`,
    },
    { name: 'answered rps', value: result.ok / seconds, op: 'info', detail: `asked ${rps}` },
    { name: 'p50 latency', value: result.p50, op: 'info', unit: ' ms' },
    { name: 'p99 latency', value: result.p99, op: 'info', unit: ' ms' },
  ]);
  saveResults('platform-rollout', { options: { rps, replicas, durationS }, steps, result, goals });
} finally {
  await platform.stop({ removeReplicas: true });
  await rm(home, { recursive: true, force: true });
}
if (result === undefined) process.exit(1);
