/**
 * Ferry's policy (decide.ts), on a virtual clock: the decision table row by row, then timelines (step up, burst,
 * slow ramp, idle to zero, flapping input). One sample per second, as the gateway sends them; replicas become
 * ready as soon as they are wanted unless a timeline says otherwise.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, type FerryState, initialState } from './decide.ts';
import { scalingSettings } from './settings.ts';
import type { Decision, Observation, Sample, ScalingSettings } from './types.ts';

const S = (over: Partial<ScalingSettings> = {}) =>
  scalingSettings({ target: 10, targetUtilization: 1, ...over });
const sample = (at: number, concurrency: number, arrivals = concurrency): Sample => ({
  at,
  concurrency,
  arrivals,
  periodMs: 1000,
});
const obs = (samples: Sample[], ready: number, held = 0): Observation => ({ samples, ready, held });

/** Feeds load(t) (concurrency) once a second from `from` to `to` (exclusive); returns every decision. */
function run(
  settings: ScalingSettings,
  load: (t: number) => number,
  to: number,
  opts: { from?: number; state?: FerryState; startDelayS?: number; saturation?: (t: number) => number } = {},
) {
  let state = opts.state ?? initialState(settings, 0);
  const out: Array<Decision<FerryState> & { t: number; ready: number }> = [];
  const wantedAt: number[] = []; // when each replica slot was first wanted (for start delays)
  for (let t = opts.from ?? 0; t < to; t++) {
    const now = t * 1000;
    const ready = Math.min(state.desired, wantedAt.filter((w) => t - w >= (opts.startDelayS ?? 0)).length);
    const c = load(t);
    const smp: Sample = { ...sample(now, c), ...(opts.saturation ? { saturation: opts.saturation(t) } : {}) };
    const d = decide(now, obs([smp], ready), settings, state);
    while (wantedAt.length < d.desired) wantedAt.push(t);
    wantedAt.length = d.desired;
    state = d.state;
    out.push({ ...d, t, ready });
  }
  return out;
}

describe('decision table', () => {
  test('1: a request held at zero starts a replica at once, without data', () => {
    const s = S({ minReplicas: 0, initialScale: 0 });
    const d = decide(5_000, obs([], 0, 3), s, initialState(s, 0));
    assert.equal(d.desired, 1);
    assert.match(d.reason, /^activate: 3 request\(s\) held/);
    assert.equal(d.changed, true);
  });

  test('1: a burst held at zero starts enough for it (held / target), never fewer than asked, within max', () => {
    const s = S({ minReplicas: 0, initialScale: 0, maxReplicas: 5 });
    const first = decide(1_000, obs([], 0, 1), s, initialState(s, 0));
    assert.equal(first.desired, 1);
    // 35 held at a target of 10, nothing ready yet: 4 now, not one per tick.
    const more = decide(1_200, obs([], 0, 35), s, first.state);
    assert.equal(more.desired, 4);
    assert.match(more.reason, /^activate: 35 request\(s\) held with no replica, 4 for them$/);
    // Fewer held later (some went out), still nothing ready: never down while starting.
    assert.equal(decide(1_400, obs([], 0, 5), s, more.state).desired, 4);
    // Beyond max: max.
    assert.equal(decide(1_600, obs([], 0, 500), s, more.state).desired, 5);
  });

  test('2: no data is not zero: the count holds (initialScale at first)', () => {
    const s = S({ minReplicas: 0, initialScale: 2 });
    const d = decide(1_000, obs([], 2), s, initialState(s, 0));
    assert.equal(d.desired, 2);
    assert.match(d.reason, /^no data: holding 2/);
    assert.equal(d.changed, false);
  });

  test('3: the panic window asking for 2x the ready replicas panics, and scales to it', () => {
    const s = S();
    let state = initialState(s, 0);
    for (let t = 0; t < 60; t++) state = decide(t * 1000, obs([sample(t * 1000, 5)], 1), s, state).state;
    let d = decide(60_000, obs([sample(60_000, 5)], 1), s, state);
    assert.equal(d.desired, 1);
    for (let t = 61; t <= 66; t++) d = decide(t * 1000, obs([sample(t * 1000, 40)], 1), s, d.state);
    assert.match(d.reason, /\(panic\)/);
    assert.ok(d.desired >= 3, `desired ${d.desired}`);
  });

  test('4: in panic it never scales down, until a stable window passed since panic last held', () => {
    const s = S();
    const ds = run(s, (t) => (t >= 60 && t < 66 ? 60 : 2), 200);
    const peak = Math.max(...ds.map((d) => d.desired));
    const lastPanic = Math.max(...ds.filter((d) => d.reason.includes('(panic)')).map((d) => d.t));
    const during = ds.filter((d) => d.t > 66 && d.t <= lastPanic);
    assert.ok(
      during.every((d) => d.desired === peak),
      'held at the peak while panicking',
    );
    const firstPanic = Math.min(...ds.filter((d) => d.reason.includes('(panic)')).map((d) => d.t));
    assert.ok(lastPanic - firstPanic >= 59, 'panic lasts at least a stable window');
    assert.ok(ds.at(-1)!.desired < peak, 'then scales down');
  });

  test('5: otherwise the stable window decides: ceil(load / (target x utilisation))', () => {
    const ds = run(S({ targetUtilization: 0.7, target: 8 }), () => 12, 90);
    assert.equal(ds.at(-1)!.desired, 3); // ceil(12 / 5.6)
    assert.match(ds.at(-1)!.reason, /^concurrency 12 over 60 s, target 8$/);
  });

  test('rates: at most maxScaleUpRate x ready per decision, at least ready / maxScaleDownRate', () => {
    const up = run(S({ maxScaleUpRate: 2, maxReplicas: 100 }), () => 500, 8, { startDelayS: 1000 });
    assert.ok(
      up.every((d) => d.desired <= 2),
      'with 1 ready (nothing becomes ready), 2 at most',
    );
    const s = S({ maxReplicas: 100 });
    let state: FerryState = { ...initialState(s, -60_000), desired: 8 };
    const d = decide(1_000, obs([sample(1_000, 0)], 8), s, state);
    assert.equal(d.desired, 4, 'halved at most');
    state = d.state;
  });

  test('not down while the policy has had less than a stable window of data', () => {
    const s = S({ maxReplicas: 10 });
    const young: FerryState = { ...initialState(s, 0), desired: 4 };
    const quiet = decide(1_000, obs([sample(1_000, 0)], 4), s, young);
    assert.equal(quiet.desired, 4, 'a second of quiet after a deploy of 4 keeps them');
    assert.match(quiet.reason, /not down before 60 s of data/);
    const later = decide(60_000, obs([sample(60_000, 0)], 4), s, quiet.state);
    assert.ok(later.desired < 4, `down once a window has passed: ${later.desired}`);
    const up = decide(1_000, obs([sample(1_000, 100)], 4), s, young);
    assert.ok(up.desired > 4, 'up at once, young or not');
  });

  test('scale-down delay: down only when every decision of the delay agreed', () => {
    const at = (delayMs: number) =>
      run(
        S({ scaleDownDelayMs: delayMs, stableWindowMs: 6_000, panicWindowMs: 6_000 }),
        (t) => (t < 20 ? 30 : 0),
        60,
      ).find((d) => d.t >= 20 && d.desired < 3)!.t;
    assert.equal(at(10_000) - at(0), 10);
  });

  test('zero: only with min 0, a stable window of zero and the grace since the last request', () => {
    const s = S({ minReplicas: 0 });
    const ds = run(s, (t) => (t < 10 ? 5 : 0), 150);
    const zeroAt = ds.find((d) => d.desired === 0)!.t;
    assert.ok(zeroAt >= 70, `zero at ${zeroAt} s: after the stable window emptied (10 + 60 s)`);
    assert.ok(zeroAt - 9 >= 30, 'and after the grace');
    assert.ok(
      ds.filter((d) => d.t >= zeroAt).every((d) => d.desired === 0),
      'and stays there',
    );
    const min1 = run(S({ minReplicas: 1 }), (t) => (t < 10 ? 5 : 0), 150);
    assert.ok(min1.every((d) => d.desired >= 1));
  });

  test('saturation: full batches count as a full replica, whatever the concurrency', () => {
    const s = S({ target: 8, targetUtilization: 0.7 });
    // Full while 2 replicas serve, and half as full once 3 do: settles on 3 (it does not run away).
    let ds = run(s, () => 2, 70, { state: { ...initialState(s, 0), desired: 2 }, saturation: () => 1 });
    ds = run(s, () => 2, 70, { saturation: (t) => (t < 75 ? 1 : 0.5) });
    assert.ok(
      ds.some((d) => d.desired === 3),
      'full batches scale up with 2 in flight',
    );
    const calm = run(s, () => 2, 70, { state: { ...initialState(s, 0), desired: 2 }, saturation: () => 0.1 });
    assert.equal(calm.at(-1)!.desired, 1);
  });

  test('within min and max', () => {
    assert.equal(run(S({ maxReplicas: 4 }), () => 1000, 30).at(-1)!.desired, 4);
    assert.equal(run(S({ minReplicas: 3 }), () => 0, 90).at(-1)!.desired, 3);
  });

  test('rps as the metric', () => {
    const s = S({ metric: 'rps', target: 50 });
    const ds = run(s, () => 120, 70);
    assert.equal(ds.at(-1)!.desired, 3);
    assert.match(ds.at(-1)!.reason, /^rps 120 over 60 s, target 50$/);
  });
});

describe('timelines', () => {
  const s = S({ target: 8, targetUtilization: 0.7 });

  test('step 1x -> 4x -> 1x: up within 3 s of the step, back down after, no flapping', () => {
    const ds = run(s, (t) => (t >= 60 && t < 180 ? 20 : 5), 400);
    const before = ds.find((d) => d.t === 59)!.desired;
    const upAt = ds.find((d) => d.t >= 60 && d.desired > before)!.t;
    assert.ok(upAt - 60 <= 3, `decided ${upAt - 60} s after the step`);
    assert.equal(ds.find((d) => d.t === 170)!.desired, 4); // ceil(20 / 5.6)
    assert.equal(ds.at(-1)!.desired, 1);
    const changes = ds.filter((d) => d.changed).length;
    assert.ok(changes <= 6, `${changes} changes`);
  });

  test('a burst: up in panic, held a stable window, then down by at most half per decision', () => {
    const ds = run(s, (t) => (t >= 30 && t < 33 ? 60 : 3), 200);
    const peak = Math.max(...ds.map((d) => d.desired));
    assert.ok(peak >= 4);
    const downs = ds.filter((d, i) => i > 0 && d.desired < ds[i - 1]!.desired);
    for (const d of downs) {
      const prev = ds[ds.indexOf(d) - 1]!;
      assert.ok(d.desired >= Math.floor(d.ready / 2), `at ${d.t} s: ${prev.desired} -> ${d.desired}`);
    }
    assert.equal(ds.at(-1)!.desired, 1);
  });

  test('a slow ramp: follows, never down on the way up', () => {
    const ds = run(s, (t) => t / 10, 300);
    for (let i = 1; i < ds.length; i++) assert.ok(ds[i]!.desired >= ds[i - 1]!.desired, `t=${ds[i]!.t}`);
    assert.ok(ds.at(-1)!.desired >= 5);
  });

  test('idle to zero and back: zero after window + grace; a held request starts one at once', () => {
    const z = S({ minReplicas: 0, target: 8, targetUtilization: 0.7 });
    const ds = run(z, (t) => (t < 5 ? 3 : 0), 120);
    const end = ds.at(-1)!;
    assert.equal(end.desired, 0);
    const woke = decide(121_000, obs([], 0, 1), z, end.state);
    assert.equal(woke.desired, 1);
    assert.match(woke.reason, /^activate/);
  });

  test('flapping input (3, 9, 3, 9, ... in flight) does not flap the output', () => {
    const ds = run(s, (t) => (t % 2 === 0 ? 3 : 9), 600);
    const settled = ds.filter((d) => d.t >= 60);
    const values = new Set(settled.map((d) => d.desired));
    assert.deepEqual([...values], [2]); // ceil(6 / 5.6)
  });
});
