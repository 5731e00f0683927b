// The reference policies of bench/autoscale.ts (Knative KPA and Kubernetes HPA with their documented defaults)
// and the virtual-clock simulator's bookkeeping. Pure and fast: virtual time only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hpaPolicy } from '../bench/lib/autoscale/hpa.ts';
import { kpaPolicy } from '../bench/lib/autoscale/kpa.ts';
import { heldFromMetrics } from '../bench/lib/autoscale/live.ts';
import { type SimOptions, simulate } from '../bench/lib/autoscale/sim.ts';
import type { Trace } from '../bench/lib/autoscale/traces.ts';
import { DEFAULT_SETTINGS } from '../src/autoscaler/settings.ts';
import type { Decision, Observation, Policy, Sample, ScalingSettings } from '../src/autoscaler/types.ts';

const SETTINGS: ScalingSettings = {
  ...DEFAULT_SETTINGS, // Knative's defaults too (src/autoscaler/settings.ts lists them side by side)
  minReplicas: 0,
  maxReplicas: 100,
  target: 10, // x 0.7 = 7 per replica
  initialScale: 2,
};

/** Drive a policy on a virtual clock: one 1 s sample per second at concurrency(t), decisions every tickMs. */
function drive<S>(
  policy: Policy<S>,
  settings: ScalingSettings,
  tickMs: number,
  untilMs: number,
  concurrency: (t: number) => number,
  ready: (desired: number) => number = (d) => d,
): { at: number; d: Decision<S> }[] {
  let state = policy.initial(settings, 0);
  let desired = settings.initialScale;
  const out: { at: number; d: Decision<S> }[] = [];
  let samples: Sample[] = [];
  for (let t = 1000; t <= untilMs; t += 1000) {
    samples.push({ at: t, concurrency: concurrency(t), arrivals: 0, periodMs: 1000 });
    if (t % tickMs !== 0) continue;
    const obs: Observation = { samples, ready: ready(desired), held: 0 };
    samples = [];
    const d = policy.decide(t, obs, settings, state);
    state = d.state;
    desired = d.desired;
    out.push({ at: t, d });
  }
  return out;
}

describe('KPA default (bench/lib/autoscale/kpa.ts)', () => {
  it('decides every 2 s with a 60 s stable window, a 6 s panic window and target x 70%', () => {
    const k = kpaPolicy();
    assert.equal(k.config.tickMs, 2000);
    assert.equal(k.config.stableWindowMs, 60_000);
    assert.equal(k.config.panicWindowPercentage, 10);
    assert.equal(k.config.panicThresholdPercentage, 200);
    assert.equal(k.config.targetUtilization, 0.7);
    // 14 in flight over a full window, target 7: 2 replicas.
    const rows = drive(k, SETTINGS, 2000, 120_000, () => 14);
    assert.equal(rows.at(-1)?.d.desired, 2);
    assert.match(rows.at(-1)?.d.reason ?? '', /stable/);
  });

  it('enters panic on a 4x step within one tick and never scales down while panicking', () => {
    const k = kpaPolicy();
    const step = 120_000;
    // 14 -> 56 in flight (4x) at 120 s, back to 14 at 130 s.
    const rows = drive(k, SETTINGS, 2000, 240_000, (t) => (t > step && t <= step + 10_000 ? 56 : 14));
    const first = rows.find((r) => r.at > step);
    assert.ok(first);
    assert.equal(first.at, step + 2000, 'the first tick after the step');
    assert.match(first.d.reason, /panic/);
    assert.ok(first.d.desired >= 4, `panic window (2 s at 56 in 6 s) asks for >= 4, got ${first.d.desired}`);
    let max = 0;
    for (const r of rows) {
      if (r.at <= step) continue;
      if (!/panic/.test(r.d.reason)) break;
      assert.ok(r.d.desired >= max, `no scale-down in panic (at ${r.at}: ${r.d.desired} < ${max})`);
      max = r.d.desired;
    }
    // Panic ends 60 s after the last over-threshold tick; then the stable window may scale down.
    const after = rows.filter((r) => r.at > step + 80_000);
    assert.ok(after.every((r) => /stable/.test(r.d.reason)));
  });

  it('keeps the last replica for the 30 s grace period before going to zero', () => {
    const k = kpaPolicy();
    const rows = drive(k, { ...SETTINGS, initialScale: 1 }, 2000, 200_000, (t) => (t <= 10_000 ? 3 : 0));
    // Stable window is all zero from 70 s on: desired 0 computed first at 72 s, replica kept until 102 s.
    const firstZeroWish = rows.find((r) => /grace/.test(r.d.reason));
    assert.ok(firstZeroWish, 'a decision that waits for the grace period');
    assert.equal(firstZeroWish.d.desired, 1);
    const zero = rows.find((r) => r.d.desired === 0);
    assert.ok(zero);
    assert.ok(zero.at - firstZeroWish.at >= 30_000, `zero at ${zero.at}, first wish at ${firstZeroWish.at}`);
    assert.ok(zero.at - firstZeroWish.at <= 32_000);
  });

  it('with no data holds the count', () => {
    const k = kpaPolicy();
    const d = k.decide(2000, { samples: [], ready: 2, held: 0 }, SETTINGS, k.initial(SETTINGS, 0));
    assert.equal(d.desired, 2);
    assert.equal(d.changed, false);
  });
});

describe('HPA default (bench/lib/autoscale/hpa.ts)', () => {
  const HPA = { ...SETTINGS, minReplicas: 1, initialScale: 4 };

  it('holds within the 0.1 tolerance', () => {
    const h = hpaPolicy();
    assert.equal(h.config.syncPeriodMs, 15_000);
    // target 7 per pod, 4 pods: 4 x 7 x 1.09 in flight is within tolerance; 4 x 7 x 1.12 is not.
    const within = drive(h, HPA, 15_000, 60_000, () => 4 * 7 * 1.09);
    assert.ok(within.every((r) => r.d.desired === 4));
    const beyond = drive(h, HPA, 15_000, 15_000, () => 4 * 7 * 1.12);
    assert.equal(beyond[0]?.d.desired, 5);
  });

  it('scales up by at most max(100%, 4 pods) per 15 s, with no stabilization', () => {
    const h = hpaPolicy();
    const rows = drive(h, { ...HPA, initialScale: 1 }, 15_000, 60_000, () => 7 * 60);
    assert.deepEqual(
      rows.map((r) => r.d.desired),
      [5, 10, 20, 40],
    );
    const big = drive(h, { ...HPA, initialScale: 10 }, 15_000, 15_000, () => 7 * 100);
    assert.equal(big[0]?.d.desired, 20, '100% of 10 beats 4 pods');
  });

  it('waits for the 300 s scale-down stabilization window before scaling down', () => {
    const h = hpaPolicy();
    const drop = 60_000;
    const rows = drive(h, { ...HPA, initialScale: 8 }, 15_000, 600_000, (t) => (t <= drop ? 8 * 7 : 7));
    const down = rows.find((r) => r.d.desired < 8);
    assert.ok(down);
    // The last recommendation of 8 was at 60 s; it leaves the window after 300 s.
    assert.ok(down.at > drop + 300_000 - 15_000, `scaled down at ${down.at}`);
    assert.ok(down.at <= drop + 300_000 + 15_000, `scaled down at ${down.at}`);
    assert.equal(down.d.desired, 1, '100% per 15 s allows going straight to the recommendation');
  });

  it('never goes below one replica', () => {
    const h = hpaPolicy();
    const rows = drive(h, { ...HPA, minReplicas: 0, initialScale: 1 }, 15_000, 900_000, () => 0);
    assert.ok(rows.every((r) => r.d.desired >= 1));
  });
});

describe('simulator (bench/lib/autoscale/sim.ts)', () => {
  const fixed = (n: number, name = 'fixed'): Policy<null> => ({
    name,
    initial: () => null,
    decide: (_now, _obs, _s, state) => ({ desired: n, reason: 'fixed', changed: false, state }),
  });
  const flat = (rps: number, durationMs: number): Trace => ({
    name: 'flat',
    description: `${rps} rps`,
    durationMs,
    maxRps: rps,
    rate: () => rps,
    steps: [],
    params: { rps },
  });
  const base = (over: Partial<SimOptions>): SimOptions => ({
    trace: flat(10, 10_000),
    policy: fixed(1) as Policy<unknown>,
    settings: { ...SETTINGS, minReplicas: 0, initialScale: 1 },
    tickMs: 1000,
    pokeAtZero: false,
    replica: { slots: 1, serviceMs: 50, service: 'fixed', queueCap: 0, startMs: 1000 },
    seed: 7,
    arrivals: 'even',
    sampleMs: 1000,
    deadlineMs: 1000,
    activatorCap: 5,
    activatorWaitMs: 1000,
    sloMs: 150,
    ...over,
  });

  it('one replica, 10 rps evenly for 10 s: 100 requests served, 10 replica-seconds, no SLO violation', () => {
    const r = simulate(base({}));
    assert.equal(r.arrived, 100);
    assert.equal(r.succeeded + r.unfinished, 100);
    assert.equal(r.failed, 0);
    assert.equal(r.replicaSeconds, 10);
    assert.equal(r.sloViolationS, 0);
    assert.equal(r.p50Ms, 50);
    assert.equal(r.decisions, 10);
  });

  it('zero replicas and a policy that never scales: the activator holds 5, the rest fail', () => {
    const r = simulate(
      base({ policy: fixed(0) as Policy<unknown>, initialReplicas: 0, trace: flat(10, 3000) }),
    );
    assert.equal(r.succeeded, 0);
    assert.equal(r.replicaSeconds, 0);
    assert.equal(r.failed + r.unfinished, r.arrived);
    // Each held request times out after 1 s: at most 5 are held, the others are refused by the full activator.
    assert.ok(r.failedTimeout >= 5, `timeouts ${r.failedTimeout}`);
    assert.ok(r.failedActivator > 0);
    assert.equal(r.successRatio, 0);
    // The timeline's per-second series: failures by arrival second add up (but for the arrival at exactly 3000 ms,
    // the trace's end, which falls in no second of [0, 3 s)), and the activator held its cap of 5.
    assert.equal(
      r.perSecond.failed.reduce((a, b) => a + b, 0),
      r.failed - 1,
    );
    assert.equal(Math.max(...(r.perSecond.held ?? [])), 5);
    assert.equal(r.initialDesired, 0);
  });

  it('scale from zero: the poke asks for a replica at the first held request; it is ready startMs later', () => {
    const fromZero: Policy<null> = {
      name: 'from-zero',
      initial: () => null,
      decide: (_now, obs, _s, state) => ({
        desired: obs.held > 0 || obs.ready > 0 ? 1 : 0,
        reason: 'held',
        changed: false,
        state,
      }),
    };
    const trace: Trace = {
      ...flat(10, 10_000),
      rate: (t) => (t >= 2000 ? 10 : 0),
      steps: [{ atMs: 2000, label: 'from zero', fromRps: 0, toRps: 10 }],
    };
    const r = simulate(
      base({
        policy: fromZero as Policy<unknown>,
        initialReplicas: 0,
        pokeAtZero: true,
        trace,
        activatorCap: 100,
        replica: { slots: 1, serviceMs: 50, service: 'fixed', queueCap: 20, startMs: 1000 },
      }),
    );
    const st = r.steps[0];
    assert.ok(st);
    assert.ok(st.decisionMs !== null && st.decisionMs <= 100, `decision ${st.decisionMs} ms after the step`);
    assert.equal(st.readyMs, (st.decisionMs ?? 0) + 1000);
    assert.equal(r.failed, 0);
    assert.ok(r.perSecond.failed.every((n) => n === 0));
    // Held while the replica started (second 2: 10 rps, ready 1 s after the first request), nothing before.
    const held = r.perSecond.held ?? [];
    assert.equal(held[0], 0);
    assert.ok((held[2] ?? 0) >= 9, `held in second 2: ${held[2]}`);
    // Requests held during the 1 s start waited up to ~1 s: those seconds violate the 150 ms SLO.
    assert.ok(r.sloViolationS >= 1);
    assert.ok(Math.abs(r.replicaSeconds - (10 - 2 - (st.decisionMs ?? 0) / 1000)) < 1e-9);
  });

  it('is deterministic: the same seed gives the same numbers, another seed other arrivals', () => {
    const o = base({
      arrivals: 'poisson',
      replica: { slots: 2, serviceMs: 80, service: 'exp', queueCap: 4, startMs: 500 },
    });
    const a = simulate(o);
    const b = simulate(o);
    assert.deepEqual(a, b);
    const c = simulate({ ...o, seed: 8 });
    assert.notDeepEqual(c.perSecond.arrivals, a.perSecond.arrivals);
  });

  it('refuses a policy that decides a non-integer count', () => {
    const bad: Policy<null> = {
      name: 'bad',
      initial: () => null,
      decide: (_n, _o, _s, state) => ({ desired: 1.5, reason: '', changed: true, state }),
    };
    assert.throws(() => simulate(base({ policy: bad as Policy<unknown> })), /not an integer/);
  });
});

describe('live replay (bench/lib/autoscale/live.ts)', () => {
  it("reads one deployment's held requests from the gateway's metrics", () => {
    const text = [
      '# HELP ferry_gateway_activator_held Requests held',
      '# TYPE ferry_gateway_activator_held gauge',
      'ferry_gateway_activator_held{deployment="live-step"} 3',
      'ferry_gateway_activator_held{deployment="acme/live-idle-burst"} 17',
      'ferry_gateway_requests_total{deployment="live-idle-burst"} 99',
    ].join('\n');
    assert.equal(heldFromMetrics(text, 'live-step'), 3);
    assert.equal(heldFromMetrics(text, 'live-idle-burst'), 17);
    assert.equal(heldFromMetrics(text, 'other'), null);
    assert.equal(heldFromMetrics('', 'live-step'), null);
  });
});
