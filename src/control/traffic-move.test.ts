/** The decision table of traffic-move.ts, row by row. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { needFor, stepTrafficMove, trafficMoveMessage } from './traffic-move.ts';

describe('stepTrafficMove', () => {
  test('a target revision with no ready replica holds the move; both splits get their replicas', () => {
    const step = stepTrafficMove(
      2,
      [{ revision: 2, percent: 100 }],
      [
        { revision: 1, percent: 90 },
        { revision: 2, percent: 10 },
      ],
      { 2: 2 },
    );
    assert.equal(step.apply, false);
    assert.deepEqual(step.desiredReplicas, { 1: 2, 2: 2 });
    assert.deepEqual(step.waitingFor, [{ revision: 1, ready: 0, need: 2 }]);
    assert.equal(trafficMoveMessage(step.waitingFor), 'the new split waits for r1 (0/2 ready)');
  });

  test('every target revision has ready replicas for its share: the move applies, the target sizes replicas', () => {
    const step = stepTrafficMove(
      2,
      [{ revision: 2, percent: 100 }],
      [
        { revision: 1, percent: 90 },
        { revision: 2, percent: 10 },
      ],
      { 1: 2, 2: 2 },
    );
    assert.equal(step.apply, true);
    assert.deepEqual(step.desiredReplicas, { 1: 2, 2: 2 });
    assert.deepEqual(step.waitingFor, []);
  });

  test('a small share needs fewer ready replicas (at least one)', () => {
    assert.equal(needFor(10, 10), 1);
    assert.equal(needFor(10, 15), 2);
    assert.equal(needFor(3, 1), 1);
    assert.equal(needFor(3, 0), 0);
    const step = stepTrafficMove(
      10,
      [{ revision: 1, percent: 100 }],
      [
        { revision: 1, percent: 90 },
        { revision: 2, percent: 10 },
      ],
      { 1: 10, 2: 1 },
    );
    assert.equal(step.apply, true);
  });

  test('moving everything away: the old revision keeps its replicas until the move applies, then gets none', () => {
    const waiting = stepTrafficMove(1, [{ revision: 1, percent: 100 }], [{ revision: 3, percent: 100 }], {
      1: 1,
    });
    assert.deepEqual(waiting.desiredReplicas, { 1: 1, 3: 1 });
    const applied = stepTrafficMove(1, [{ revision: 1, percent: 100 }], [{ revision: 3, percent: 100 }], {
      1: 1,
      3: 1,
    });
    assert.equal(applied.apply, true);
    // The revision losing its traffic keeps its replica on this step; without a target, the next step sizes
    // replicas from the split in effect alone (steadyReplicas).
    assert.deepEqual(applied.desiredReplicas, { 1: 1, 3: 1 });
  });

  test('a shadow share never waits', () => {
    const step = stepTrafficMove(
      2,
      [{ revision: 1, percent: 100 }],
      [
        { revision: 1, percent: 100 },
        { revision: 2, percent: 0, shadow: 20 },
      ],
      { 1: 2 },
    );
    assert.equal(step.apply, true);
    assert.deepEqual(step.desiredReplicas, { 1: 2, 2: 1 });
  });

  test('with no replicas wanted there is nothing to wait for', () => {
    const step = stepTrafficMove(0, [{ revision: 1, percent: 100 }], [{ revision: 2, percent: 100 }], {});
    assert.equal(step.apply, true);
  });
});
