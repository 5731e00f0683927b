import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../core/errors.ts';
import {
  abort,
  canarySteps,
  promote,
  type RolloutDecision,
  type RolloutState,
  type RolloutStrategy,
  startRollout,
  stepRollout,
  undo,
} from './rollout.ts';

const t0 = 1_000_000;
const s = (n: number) => t0 + n * 1000;

/** Walks a rollout: each call observes ready replicas of revisions 1 (stable) and 2 (target). */
function walker(strategy: RolloutStrategy, replicas: number) {
  let state: RolloutState = startRollout({ deployment: 'iris', stable: 1, target: 2, replicas });
  return {
    step(now: number, ready1: number, ready2: number): RolloutDecision {
      const d = stepRollout(state, { readyByRevision: { '1': ready1, '2': ready2 } }, now, strategy);
      state = d.state;
      return d;
    },
    command(f: (s: RolloutState) => RolloutState) {
      state = f(state);
    },
  };
}

test('rolling, 3 replicas, surge 1: traffic follows ready replicas, the old revision shrinks a step later', () => {
  const w = walker({ kind: 'rolling' }, 3);

  // t0: revision 2 gets one replica (surge 1); all traffic stays on revision 1.
  let d = w.step(t0, 3, 0);
  assert.deepEqual(d.traffic, [{ revision: 1, percent: 100 }]);
  assert.deepEqual(d.desiredReplicas, { 1: 3, 2: 1 });
  assert.equal(d.nextWakeAt, null, 'nothing to do until a replica becomes ready');

  // t0+5s: it is ready: a third of the traffic moves to it. Revision 1 keeps 3: traffic has not left yet.
  d = w.step(s(5), 3, 1);
  assert.deepEqual(d.traffic, [
    { revision: 1, percent: 67 },
    { revision: 2, percent: 33 },
  ]);
  assert.deepEqual(d.desiredReplicas, { 1: 3, 2: 1 });
  assert.equal(d.nextWakeAt, s(5), 'step again once the new split is applied');

  // t0+5s, split applied: one old replica's worth of traffic left, so revision 1 drops to 2, 2 grows to 2.
  d = w.step(s(5), 3, 1);
  assert.deepEqual(d.desiredReplicas, { 1: 2, 2: 2 });
  assert.equal(d.nextWakeAt, null);

  // t0+10s: second new replica ready: 66% moves; then 1 old, 3 new.
  d = w.step(s(10), 2, 2);
  assert.deepEqual(d.traffic.at(-1), { revision: 2, percent: 66 });
  d = w.step(s(10), 2, 2);
  assert.deepEqual(d.desiredReplicas, { 1: 1, 2: 3 });

  // t0+15s: all three ready: all traffic on revision 2; revision 1 still has its replica during the switch.
  d = w.step(s(15), 1, 3);
  assert.deepEqual(d.traffic, [{ revision: 2, percent: 100 }]);
  assert.deepEqual(d.desiredReplicas, { 1: 1, 2: 3 });
  assert.equal(d.done, false);

  // Then revision 1 goes to zero and the rollout is done.
  d = w.step(s(15), 1, 3);
  assert.deepEqual(d.desiredReplicas, { 1: 0, 2: 3 });
  assert.equal(d.done, true);
  assert.equal(d.state.phase, 'succeeded');
  assert.equal(d.nextWakeAt, null);
});

test('rolling: a target that never becomes ready never gets traffic', () => {
  const w = walker({ kind: 'rolling', maxSurge: 2 }, 4);
  for (const t of [0, 5, 60, 3600]) {
    const d = w.step(s(t), 4, 0);
    assert.deepEqual(d.traffic, [{ revision: 1, percent: 100 }]);
    assert.deepEqual(d.desiredReplicas, { 1: 4, 2: 2 });
  }
});

test('canary 10% (1 min) -> 50% (manual promote) -> 100%, 4 replicas', () => {
  const w = walker({ kind: 'canary', steps: [{ percent: 10, pauseMs: 60_000 }, { percent: 50 }] }, 4);

  // t0: one canary replica; revision 1 keeps all traffic until it is ready.
  let d = w.step(t0, 4, 0);
  assert.deepEqual(d.desiredReplicas, { 1: 4, 2: 1 });
  assert.deepEqual(d.traffic, [{ revision: 1, percent: 100 }]);

  // t0+5s: canary ready: 10% moves to it, and the one-minute pause starts.
  d = w.step(s(5), 4, 1);
  assert.deepEqual(d.traffic, [
    { revision: 1, percent: 90 },
    { revision: 2, percent: 10 },
  ]);
  d = w.step(s(5), 4, 1);
  assert.deepEqual(
    d.desiredReplicas,
    { 1: 4, 2: 1 },
    '10% of 4 is less than one replica: revision 1 keeps 4',
  );
  assert.equal(d.nextWakeAt, s(65));

  // t0+30s: still pausing.
  d = w.step(s(30), 4, 1);
  assert.equal(d.nextWakeAt, s(65));
  assert.equal(d.traffic.at(-1)!.percent, 10);

  // t0+65s: pause over: the canary grows to 2 replicas for 50%; traffic waits for the second one.
  d = w.step(s(65), 4, 1);
  assert.deepEqual(d.desiredReplicas, { 1: 4, 2: 2 });
  assert.equal(d.traffic.at(-1)!.percent, 10);
  assert.equal(d.nextWakeAt, null);

  // t0+70s: ready: 50/50; then revision 1 drops to 2, and the rollout waits for a manual promote.
  d = w.step(s(70), 4, 2);
  assert.deepEqual(
    d.traffic.map((t) => t.percent),
    [50, 50],
  );
  d = w.step(s(70), 4, 2);
  assert.deepEqual(d.desiredReplicas, { 1: 2, 2: 2 });
  assert.equal(d.state.phase, 'paused');
  assert.equal(d.nextWakeAt, null);

  // Two hours later: still paused; no timer ends a manual step.
  d = w.step(s(7200), 2, 2);
  assert.equal(d.state.phase, 'paused');
  assert.deepEqual(
    d.traffic.map((t) => t.percent),
    [50, 50],
  );

  // promote: the implied final step (100%) needs all 4 canary replicas ready first.
  w.command(promote);
  d = w.step(s(7201), 2, 2);
  assert.deepEqual(d.desiredReplicas, { 1: 2, 2: 4 });
  assert.equal(d.traffic.at(-1)!.percent, 50);
  d = w.step(s(7210), 2, 4);
  assert.deepEqual(d.traffic, [{ revision: 2, percent: 100 }]);
  d = w.step(s(7210), 2, 4);
  assert.deepEqual(d.desiredReplicas, { 1: 0, 2: 4 });
  assert.equal(d.done, true);
});

test('abort at 50%: all traffic back to stable at once, the canary scaled down after it drained', () => {
  const w = walker({ kind: 'canary', steps: [{ percent: 50 }] }, 4);
  w.step(t0, 4, 0);
  w.step(s(5), 4, 2); // 50% moves
  let d = w.step(s(5), 4, 2); // revision 1 down to 2, paused for promote
  assert.deepEqual(d.desiredReplicas, { 1: 2, 2: 2 });

  w.command(abort);
  d = w.step(s(10), 2, 2);
  assert.deepEqual(d.traffic, [{ revision: 1, percent: 100 }]);
  assert.deepEqual(d.desiredReplicas, { 1: 4, 2: 2 }, 'canary keeps its replicas while its traffic drains');
  assert.equal(d.nextWakeAt, s(10));

  d = w.step(s(10), 2, 2);
  assert.deepEqual(d.desiredReplicas, { 1: 4, 2: 0 });
  assert.equal(d.state.phase, 'aborted');
  assert.equal(d.done, true);

  // Aborting again changes nothing; promoting a finished rollout is an error.
  w.command(abort);
  assert.equal(w.step(s(20), 4, 0).state.phase, 'aborted');
  assert.throws(
    () => w.command(promote),
    (e: unknown) => e instanceof FerryError && /aborted/.test(e.message),
  );
});

test('abort with no ready stable replica: traffic waits on the target until stable is back', () => {
  const w = walker({ kind: 'rolling' }, 2);
  w.step(t0, 2, 0);
  w.step(s(5), 2, 2); // 100% to revision 2 published; revision 1 not scaled down yet
  w.command(abort);
  let d = w.step(s(6), 0, 2); // revision 1 lost its replicas meanwhile
  assert.deepEqual(d.traffic, [{ revision: 2, percent: 100 }]);
  assert.deepEqual(d.desiredReplicas, { 1: 2, 2: 2 });
  d = w.step(s(9), 1, 2);
  assert.deepEqual(d.traffic, [{ revision: 1, percent: 100 }]);
});

test('undo after success is a new rollout back; mid-rollout it is an abort or an error', () => {
  const w = walker({ kind: 'rolling' }, 1);
  w.step(t0, 1, 0);
  w.step(s(1), 1, 1);
  const done = w.step(s(1), 1, 1);
  assert.equal(done.state.phase, 'succeeded');
  assert.throws(() => abort(done.state), /already succeeded/);
  const back = undo(done.state, 1);
  assert.deepEqual([back.stable, back.target, back.phase, back.percent], [2, 1, 'progressing', 0]);

  const mid = startRollout({ deployment: 'iris', stable: 1, target: 2, replicas: 2 });
  assert.equal(undo(mid, 1).phase, 'aborting');
  assert.throws(
    () => undo(mid, 7),
    (e: unknown) =>
      e instanceof FerryError && e.code === 'FERRY_BAD_REQUEST' && /still progressing/.test(e.message),
  );
});

test('canary steps: final 100% implied, bad steps named by path', () => {
  assert.deepEqual(canarySteps([{ percent: 10 }]), [{ percent: 10 }, { percent: 100 }]);
  assert.throws(() => canarySteps([{ percent: 50 }, { percent: 20 }]), /strategy\.steps\[1\]\.percent is 20/);
  assert.throws(() => canarySteps([{ percent: 10, pauseMs: -1 }]), /strategy\.steps\[0\]\.pauseMs/);
  assert.throws(
    () => startRollout({ deployment: 'iris', stable: 1, target: 1, replicas: 1 }),
    /already serves/,
  );
  assert.throws(
    () => startRollout({ deployment: 'iris', stable: 1, target: 2, replicas: 0 }),
    /integer >= 1/,
  );
});

test('property: whatever is observed, traffic follows readiness and replicas follow traffic in effect', () => {
  const strategy = fc.oneof(
    fc.record({ kind: fc.constant('rolling' as const), maxSurge: fc.integer({ min: 1, max: 3 }) }),
    fc.uniqueArray(fc.integer({ min: 1, max: 99 }), { minLength: 1, maxLength: 3 }).chain((ps) =>
      fc.record({
        kind: fc.constant('canary' as const),
        steps: fc.tuple(
          ...ps
            .sort((a, b) => a - b)
            .map((percent) =>
              fc.record({
                percent: fc.constant(percent),
                pauseMs: fc.option(fc.nat(60_000), { nil: undefined }),
              }),
            ),
        ),
      }),
    ),
  );
  const event = fc.oneof(
    fc.record({ ready1: fc.nat(8), ready2: fc.nat(8), dt: fc.nat(90_000) }),
    fc.constantFrom('promote', 'abort'),
  );
  fc.assert(
    fc.property(
      strategy,
      fc.integer({ min: 1, max: 7 }),
      fc.array(event, { maxLength: 40 }),
      (strat, n, events) => {
        let state = startRollout({ deployment: 'iris', stable: 1, target: 2, replicas: n });
        let now = t0;
        for (const e of events) {
          if (e === 'promote' || e === 'abort') {
            if (state.phase === 'progressing' || state.phase === 'paused')
              state = e === 'promote' ? promote(state) : abort(state);
            continue;
          }
          now += e.dt;
          const before = state.percent;
          const d = stepRollout(state, { readyByRevision: { 1: e.ready1, 2: e.ready2 } }, now, strat);
          assert.equal(
            d.traffic.reduce((sum, t) => sum + t.percent, 0),
            100,
          );
          if (d.state.percent > before) assert.ok(e.ready2 >= Math.ceil((n * d.state.percent) / 100));
          if (d.state.percent < before) assert.ok(e.ready1 >= 1, 'traffic moves back only to a ready stable');
          // Replicas never drop below the share of the traffic in effect (within 1% of rounding).
          assert.ok(100 * d.desiredReplicas[1]! >= n * (100 - before) - n, 'stable kept for its traffic');
          assert.ok(100 * d.desiredReplicas[2]! >= n * before - n, 'target kept for its traffic');
          assert.ok(d.desiredReplicas[1]! + d.desiredReplicas[2]! <= 2 * n);
          state = d.state;
        }
      },
    ),
    { numRuns: 500 },
  );
});
