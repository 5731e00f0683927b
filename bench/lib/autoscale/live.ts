/**
 * The live half of bench/autoscale.ts: one Trace replayed open-loop against a real `ferry up` (lib/live-platform.ts),
 * measured like the simulator measures (sim.ts), from the client's side and the platform's API.
 *
 * - The model: test/fixtures/lifecycle/slow (predict sleeps its `ms` input on a timer), copied with its tensors'
 *   first dimension made dynamic and `serving: { concurrency: slots, batching: { maxBatchSize: 1, maxQueueSize } }`:
 *   `slots` inference workers, each running one request at a time (a worker runs its messages in order), each
 *   request its own hop (no grouping of 32 behind one worker), at most `maxQueueSize` waiting in the replica's
 *   batcher. So a replica serves `slots` requests at once for serviceMs each, as the simulated replica does; what
 *   waits beyond is two per worker in its port (the pipeline) plus the batcher's queue (set to queueCap - slots).
 * - Arrivals: arrivals.ts, the simulator's generator with the same seed, each sent at its time (open-loop: a late
 *   answer does not delay the next request; latency counts from the scheduled arrival, so the client's own
 *   lateness is in it), every request bounded by deadlineMs (AbortSignal.timeout).
 * - Every `pollMs` the replicas the API lists (any state but exited: starting replicas count, as in the sim) and the
 *   ready ones: replica-seconds, peak, step -> ready. Decisions: the deployment's Autoscaled events
 *   ("scaled x a -> b: ..."), on the platform's clock (the same machine's wall clock).
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScalingSettings } from '../../../src/autoscaler/types.ts';
import { addVersionFromDir } from '../../../src/cli/upload.ts';
import type { LivePlatform } from '../live-platform.ts';
import { sleep, until } from '../live-platform.ts';
import { log } from '../measure.ts';
import { REPO_ROOT } from '../options.ts';
import { type ArrivalMode, arrivalTimes } from './arrivals.ts';
import { type DecisionRecord, percentile, type SimResult, stepResults } from './sim.ts';
import type { Trace } from './traces.ts';

export const LIVE_MODEL = 'slow';
const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'lifecycle', 'slow');

export interface LiveOptions {
  platform: LivePlatform;
  trace: Trace;
  seed: number;
  arrivals: ArrivalMode;
  serviceMs: number;
  slots: number;
  /** Requests waiting per replica beyond its slots (the sim's queueCap). */
  queueCap: number;
  deadlineMs: number;
  sloMs: number;
  /** The autoscaling the deployment gets (Ferry's defaults with the bench's min, max, target, initialScale). */
  scaling: Partial<ScalingSettings>;
  /** Replicas ready before the trace starts (0: the trace starts from zero). */
  initial: number;
  pollMs: number;
  /** When a trace not starting from zero gets its autoscaling: with the deploy, or once its replicas are ready. */
  scalingAt: 'deploy' | 'ready';
  /** Deployment name, e.g. live-step. */
  name: string;
}

export interface LiveResult extends SimResult {
  /** The client's worst lateness sending a request (ms after its scheduled time). */
  maxSendLagMs: number;
  /** Failed answers by HTTP status ('timeout', 'error' for no answer). */
  failures: Record<string, number>;
  /** The first failure's message (status and body, or the client's error). */
  firstError?: string;
  /**
   * Replica samples: ms from the trace's start, listed, ready, and the requests the gateway held for the deployment
   * (its `ferry_gateway_activator_held` gauge on GET /metrics; left out when that could not be read).
   */
  samples: Array<{ t: number; listed: number; ready: number; held?: number }>;
}

/**
 * The gateway's held gauge for one deployment from its Prometheus text (`ferry_gateway_activator_held{deployment=
 * "<name>" or "<tenant>/<name>"}`); null when the deployment has no such line.
 */
export function heldFromMetrics(text: string, deployment: string): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith('ferry_gateway_activator_held{')) continue;
    const m = /deployment="([^"]*)"[^}]*}\s+(\S+)/.exec(line);
    if (!m) continue;
    const key = m[1] as string;
    if (key === deployment || key.endsWith(`/${deployment}`)) {
      const v = Number(m[2]);
      return Number.isFinite(v) ? v : null;
    }
  }
  return null;
}

/** The fixture as a model dir for the bench: dynamic first dimension, `slots` workers, one request per hop. */
export function liveModelDir(slots: number, queueCap: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-live-model-'));
  cpSync(join(FIXTURE, 'handler.ts'), join(dir, 'handler.ts'));
  writeFileSync(
    join(dir, 'ferry.yaml'),
    `# bench/autoscale.ts --live: test/fixtures/lifecycle/slow with ${slots} workers, one request per hop
apiVersion: ferry.dev/v1alpha1
kind: Model
model:
  name: ${LIVE_MODEL}
  version: "1"
  format: handler
  file: handler.ts
  inputs:
    - { name: ms, datatype: INT32, shape: [-1] }
  outputs:
    - { name: slept, datatype: INT32, shape: [-1] }
serving:
  timeout: 30s
  concurrency: ${slots}
  batching: { maxBatchSize: 1, maxQueueSize: ${Math.max(1, queueCap - slots)} }
`,
  );
  return dir;
}

/** Upload the live model once per platform. */
export async function uploadLiveModel(p: LivePlatform, slots: number, queueCap: number): Promise<void> {
  const dir = liveModelDir(slots, queueCap);
  try {
    await p.client.createModel(LIVE_MODEL);
    await addVersionFromDir(p.client, LIVE_MODEL, '1', dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `rounds` rounds of `n` requests at once; every answer must be 200. */
async function warm(url: string, n: number, rounds: number, body: string, timeoutMs: number): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    await Promise.all(
      Array.from({ length: n }, async () => {
        const res = await fetch(url, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`warming ${url}: ${res.status} ${text.slice(0, 200)}`);
      }),
    );
  }
}

export async function runLive(o: LiveOptions): Promise<LiveResult> {
  const c = o.platform.client;
  const { trace } = o;
  const url = `${o.platform.gatewayUrl}/v2/models/${o.name}/infer`;
  const body = JSON.stringify({
    inputs: [{ name: 'ms', datatype: 'INT32', shape: [1], data: [Math.round(o.serviceMs)] }],
  });
  // From zero: autoscaled from the start (nothing runs, the first request starts a replica). Otherwise, with
  // scalingAt 'deploy' (default), autoscaled from the deploy on: the autoscaler's first decisions see the wait for
  // the replicas (no load) and scale down, then panic up on the trace's first second (a start transient the sim
  // has not); with 'ready', a fixed count first, autoscaled once ready and warmed, just before the first request
  // (the windows start with the trace, as the sim's do; but see bench/README.md: one such run failed 24% of its
  // requests, every second of the high phase, not understood yet).
  await c.deploy({
    name: o.name,
    model: LIVE_MODEL,
    version: '1',
    public: true,
    replicas: o.initial,
    scaling: o.initial === 0 || o.scalingAt === 'deploy' ? o.scaling : null,
  } as Parameters<typeof c.deploy>[0]);
  if (o.initial > 0) {
    log(`${o.name}: waiting for ${o.initial} ready replica(s)`);
    await until(
      `${o.initial} ready replicas of ${o.name}`,
      async () => (await c.replicas(o.name)).filter((r) => r.state === 'ready').length >= o.initial,
      120_000,
      100,
    );
    // Warm: a handler without examples is not warmed up at load, and the first requests of its workers were slow
    // (a first run: 13.5 in flight at 100 rps in the first second, the panic window raised 2 -> 6 replicas before
    // the step). A few rounds of slots x replicas requests at once, before the autoscaling starts.
    await warm(url, o.initial * o.slots, 5, body, o.deadlineMs);
    if (o.scalingAt === 'ready') await c.setScaling(o.name, o.scaling);
  }
  const times = arrivalTimes(trace, o.seed, o.arrivals);
  const seconds = Math.ceil(trace.durationMs / 1000);
  const lat: number[][] = Array.from({ length: seconds }, () => []);
  const all: number[] = [];
  const failures: Record<string, number> = {};
  let succeeded = 0;
  let failed = 0;
  let maxSendLagMs = 0;
  let firstError: string | undefined;
  const perArrivals = new Array<number>(seconds).fill(0);
  const samples: LiveResult['samples'] = [];
  const heldNow = async (): Promise<number | null> => {
    try {
      const res = await fetch(`${o.platform.gatewayUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
      const text = await res.text();
      return res.status === 200 ? heldFromMetrics(text, o.name) : null;
    } catch {
      return null;
    }
  };

  const t0 = performance.now();
  const epoch0 = Date.now();
  const since = () => performance.now() - t0;
  let replaying = true;
  const poller = (async () => {
    while (replaying) {
      const at = since();
      try {
        const [reps, held] = await Promise.all([c.replicas(o.name), heldNow()]);
        const listed = reps.filter((r) => r.state !== 'exited').length;
        samples.push({
          t: at,
          listed,
          ready: reps.filter((r) => r.state === 'ready').length,
          ...(held === null ? {} : { held }),
        });
      } catch {
        // a failed poll is a gap in the samples, not a result
      }
      await sleep(Math.max(0, o.pollMs - (since() - at)));
    }
  })();
  const fail = (at: number, why: string) => {
    failed++;
    failures[why] = (failures[why] ?? 0) + 1;
    lat[Math.floor(at / 1000)]?.push(Number.POSITIVE_INFINITY);
  };
  const send = async (at: number): Promise<void> => {
    const left = o.deadlineMs - (since() - at);
    try {
      const res = await fetch(url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(Math.max(1, Math.round(left))),
      });
      const text = await res.text();
      if (res.status !== 200) {
        firstError ??= `${res.status}: ${text.slice(0, 200)}`;
        return fail(at, String(res.status));
      }
      const got = JSON.parse(text) as { outputs?: Array<{ name: string; data: number[] }> };
      if (got.outputs?.find((x) => x.name === 'slept')?.data[0] !== Math.round(o.serviceMs))
        return fail(at, 'wrong answer');
      const l = since() - at;
      succeeded++;
      lat[Math.floor(at / 1000)]?.push(l);
      all.push(l);
    } catch (e) {
      const name = (e as Error).name;
      firstError ??= `${(e as Error).message}${(e as Error).cause ? `: ${String((e as Error).cause)}` : ''}`;
      fail(at, name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'error');
    }
  };
  const inflight = new Set<Promise<void>>();
  log(`${o.name}: replaying ${times.length} requests over ${(trace.durationMs / 1000).toFixed(0)} s`);
  let i = 0;
  while (i < times.length) {
    const now = since();
    while (i < times.length && times[i]! <= now) {
      const at = times[i++]!;
      maxSendLagMs = Math.max(maxSendLagMs, now - at);
      const s = Math.floor(at / 1000);
      if (s < seconds) perArrivals[s] = (perArrivals[s] ?? 0) + 1;
      const p = send(at);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    if (i < times.length) await sleep(Math.max(0, times[i]! - since()));
  }
  // The rest of the trace (a quiet tail), then the last answers (each bounded by the deadline).
  if (since() < trace.durationMs) await sleep(trace.durationMs - since());
  await Promise.all(inflight);
  replaying = false;
  await poller;

  // Decisions: the Autoscaled events since the trace started.
  const events = (await c.events({ deployment: o.name, limit: 1000 }))
    .filter((e) => e.reason === 'Autoscaled' && e.at >= epoch0)
    .sort((a, b) => a.at - b.at);
  const changes: DecisionRecord[] = [];
  for (const e of events) {
    const m = / (\d+) -> (\d+)/.exec(e.message);
    if (!m) continue;
    changes.push({
      at: e.at - epoch0,
      desired: Number(m[2]),
      ready: Number.NaN,
      reason: e.message.slice(e.message.indexOf(':') + 1).trim(),
    });
  }
  const p99s = lat.map((l) => {
    if (l.length === 0) return null;
    l.sort((a, b) => a - b);
    return percentile(l, 0.99);
  });
  all.sort((a, b) => a - b);
  let area = 0;
  for (let k = 1; k < samples.length; k++)
    area += samples[k - 1]!.listed * (samples[k]!.t - samples[k - 1]!.t);
  const steps = stepResults(
    trace,
    o,
    o.initial,
    changes,
    samples.map((x) => ({ at: x.t, ready: x.ready })),
  );
  const perReady = new Array<number>(seconds).fill(0);
  // Held: the most the gateway's gauge showed in each second (polled, so a short peak between polls is missed).
  const perHeld = samples.some((x) => x.held !== undefined) ? new Array<number>(seconds).fill(0) : undefined;
  for (const s of samples) {
    const k = Math.floor(s.t / 1000);
    if (k < seconds) perReady[k] = s.ready;
    if (perHeld && s.held !== undefined && k < seconds) perHeld[k] = Math.max(perHeld[k] ?? 0, s.held);
  }
  return {
    policy: 'ferry-live',
    trace: trace.name,
    arrived: times.length,
    succeeded,
    failed,
    failedTimeout: failures.timeout ?? 0,
    failedOverflow: failed - (failures.timeout ?? 0),
    failedActivator: 0,
    unfinished: 0,
    successRatio: succeeded + failed === 0 ? null : succeeded / (succeeded + failed),
    sloViolationS: p99s.filter((p) => p !== null && p > o.sloMs).length,
    replicaSeconds: area / 1000,
    peakReplicas: samples.reduce((m, s) => Math.max(m, s.listed), 0),
    p50Ms: percentile(all, 0.5),
    p99Ms: percentile(all, 0.99),
    decisions: events.length,
    steps,
    changes,
    initialDesired: o.initial,
    perSecond: {
      arrivals: perArrivals,
      ready: perReady,
      p99Ms: p99s.map((p) => (p === Number.POSITIVE_INFINITY ? -1 : p)),
      failed: lat.map((l) => l.filter((v) => v === Number.POSITIVE_INFINITY).length),
      ...(perHeld ? { held: perHeld } : {}),
    },
    maxSendLagMs,
    failures,
    ...(firstError === undefined ? {} : { firstError }),
    samples,
  };
}
