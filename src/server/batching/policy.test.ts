import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type BatchDecision,
  BatchLatencyEstimator,
  type BatchPolicy,
  DEADLINE_SLACK_MS,
  decideBatch,
  type QueuedItem,
  shouldShed,
} from './policy.ts';

const POLICY: BatchPolicy = {
  maxBatchSize: 8,
  maxQueueDelayMs: 10,
  preferredBatchSizes: [],
  maxQueueSize: 100,
};

function item(
  samples: number,
  enqueuedAt = 0,
  deadline = Number.POSITIVE_INFINITY,
  key?: string,
): QueuedItem {
  return { samples, enqueuedAt, deadline, key };
}

function decide(
  queue: QueuedItem[],
  now: number,
  policy: Partial<BatchPolicy> = {},
  busy = false,
): BatchDecision {
  return decideBatch({ queue, now, busy }, { ...POLICY, ...policy });
}

function dispatch(indexes: number[], expired: number[] = []): BatchDecision {
  return { kind: 'dispatch', count: indexes.length, indexes, expired };
}

function wait(until: number | null, expired: number[] = []): BatchDecision {
  return { kind: 'wait', until, expired };
}

describe('decideBatch: expiry', () => {
  test('a request whose deadline has come is expired (now >= deadline)', () => {
    assert.deepEqual(decide([item(1, 0, 5), item(1, 0, 6)], 5, { maxQueueDelayMs: 0 }), dispatch([1], [0]));
  });

  test('with an estimate, a request that could not finish even alone is expired', () => {
    const estimate = (n: number) => 10 * n;
    // alone: 0 + 10 = 10 > 9 -> expired; the second would finish at 10 <= 10 -> kept
    assert.deepEqual(decide([item(1, 0, 9), item(1, 0, 100)], 0, { estimate }, true), wait(100, [0]));
    assert.deepEqual(decide([item(1, 0, 10)], 0, { estimate }, true), wait(10));
  });

  test('a member that the batch run time would make late is expired and the batch formed again without it', () => {
    const estimate = (n: number) => 10 * n;
    // [0] alone finishes at 10 <= 15, but in a batch of 2 at 20 > 15; the batch is retried without it.
    const queue = [item(1, 0, 15), item(1, 0, 100)];
    assert.deepEqual(decide(queue, 0, { estimate, maxQueueDelayMs: 0 }), dispatch([1], [0]));
  });
});

describe('decideBatch: decision table', () => {
  test('row 1: nothing live -> wait for an arrival (until null)', () => {
    assert.deepEqual(decide([], 0), wait(null));
    assert.deepEqual(decide([item(1, 0, 3), item(2, 0, 4)], 7), wait(null, [0, 1]));
  });

  test('row 2: busy -> wait; wake at the earliest deadline so it is rejected on time', () => {
    assert.deepEqual(decide([item(8), item(8)], 100, {}, true), wait(null));
    assert.deepEqual(decide([item(1, 0, 50), item(1, 0, 30), item(1, 0, 5)], 10, {}, true), wait(30, [2]));
  });

  test('row 3: a full batch goes at once, before the delay', () => {
    assert.deepEqual(decide([item(3), item(5), item(1)], 0), dispatch([0, 1]));
  });

  test('row 3: a head larger than maxBatchSize goes alone', () => {
    assert.deepEqual(decide([item(12), item(1)], 0), dispatch([0]));
  });

  test('row 4: the longest prefix that is a preferred size goes at once', () => {
    const policy = { preferredBatchSizes: [2, 4] };
    assert.deepEqual(decide([item(1), item(1), item(1)], 0, policy), dispatch([0, 1]));
    assert.deepEqual(
      decide([item(1), item(1), item(1), item(1), item(1)], 0, policy),
      dispatch([0, 1, 2, 3]),
    );
    assert.deepEqual(decide([item(2), item(2), item(3)], 0, policy), dispatch([0, 1]));
  });

  test('row 4: no prefix hits a preferred size -> keep waiting for the delay', () => {
    assert.deepEqual(decide([item(3)], 0, { preferredBatchSizes: [2, 4] }), wait(10));
    assert.deepEqual(decide([item(1), item(2)], 0, { preferredBatchSizes: [2, 4] }), wait(10));
  });

  test('row 5: the next request does not fit -> the group cannot grow, so it goes now', () => {
    assert.deepEqual(decide([item(6), item(4)], 0), dispatch([0]));
  });

  test('row 6: maxQueueDelayMs 0 takes what is queued', () => {
    assert.deepEqual(decide([item(1), item(2)], 0, { maxQueueDelayMs: 0 }), dispatch([0, 1]));
    assert.deepEqual(
      decide([item(3)], 0, { maxQueueDelayMs: 0, preferredBatchSizes: [2, 4] }),
      dispatch([0]),
    );
  });

  test('row 7: the head has waited maxQueueDelayMs -> dispatch', () => {
    const queue = [item(1, 0), item(1, 4)];
    assert.deepEqual(decide(queue, 9.5), wait(10));
    assert.deepEqual(decide(queue, 10), dispatch([0, 1]));
  });

  test('row 8: with an estimate, a waiting batch goes just in time for its tightest deadline', () => {
    const estimate = () => 5;
    const queue = [item(1, 0, 20), item(1, 0)];
    const policy = { estimate, maxQueueDelayMs: 50 };
    const latest = 20 - 5 - DEADLINE_SLACK_MS;
    assert.deepEqual(decide(queue, 0, policy), wait(latest));
    assert.deepEqual(decide(queue, latest, policy), dispatch([0, 1]));
  });

  test('row 9: wait until the earliest of delay expiry and any deadline', () => {
    // A request of another key behind the head expires at 6, before the head's delay runs out at 10.
    const queue = [item(1, 0, Number.POSITIVE_INFINITY, 'a'), item(1, 0, 6, 'b')];
    assert.deepEqual(decide(queue, 1), wait(6));
    assert.deepEqual(decide(queue, 6), wait(10, [1]));
  });

  test('keys: the head key decides; later requests of that key join in FIFO order', () => {
    const queue = [item(1, 0, 99, 'a'), item(1, 0, 99, 'b'), item(1, 0, 99, 'a'), item(1, 0, 99, 'b')];
    assert.deepEqual(decide(queue, 0, { maxQueueDelayMs: 0 }), dispatch([0, 2]));
    const blocked = [item(5, 0, 99, 'a'), item(1, 0, 99, 'b'), item(5, 0, 99, 'a')];
    assert.deepEqual(decide(blocked, 0), dispatch([0]), 'blocked by the next same-key request only');
  });

  test('count is counted after expired requests leave the head', () => {
    assert.deepEqual(
      decide([item(1, 0, 1), item(1), item(1)], 2, { maxQueueDelayMs: 0 }),
      dispatch([1, 2], [0]),
    );
  });
});

describe('decideBatch: invariants (property)', () => {
  const arbItem = fc.record({
    samples: fc.integer({ min: 0, max: 12 }),
    enqueuedAt: fc.integer({ min: 0, max: 100 }),
    deadline: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.constant(Number.POSITIVE_INFINITY)),
    key: fc.constantFrom(undefined, 'a', 'b'),
  });
  const arbPolicy = fc.record({
    maxBatchSize: fc.integer({ min: 1, max: 10 }),
    maxQueueDelayMs: fc.integer({ min: 0, max: 30 }),
    preferredBatchSizes: fc.uniqueArray(fc.integer({ min: 1, max: 10 }), { maxLength: 3 }),
    maxQueueSize: fc.constant(100),
    slope: fc.option(fc.integer({ min: 0, max: 10 })),
  });

  test('waits are in the future, batches are valid, expired requests are really late', () => {
    fc.assert(
      fc.property(
        fc.array(arbItem, { maxLength: 12 }),
        fc.integer({ min: 0, max: 150 }),
        fc.boolean(),
        arbPolicy,
        (queue, now, busy, { slope, ...spec }) => {
          const estimate = slope === null ? undefined : (n: number) => slope * n + 1;
          const decision = decideBatch({ queue, now, busy }, { ...spec, estimate });
          const expired = new Set(decision.expired);
          assert.deepEqual(
            decision.expired,
            [...expired].sort((a, b) => a - b),
          );
          for (const i of expired) {
            const late =
              now >= queue[i]!.deadline ||
              (estimate !== undefined && now + estimate(queue[i]!.samples) > queue[i]!.deadline);
            if (!late) assert.ok(estimate !== undefined, `expired ${i} without a reason`);
          }
          if (decision.kind === 'wait') {
            if (decision.until !== null)
              assert.ok(decision.until > now, `wait until ${decision.until} <= now ${now}`);
            if (!busy && decision.until === null) {
              assert.equal(
                expired.size,
                queue.length,
                'waits for nothing only when the queue has nothing live',
              );
            }
            return;
          }
          assert.ok(!busy);
          const { indexes } = decision;
          assert.equal(decision.count, indexes.length);
          assert.ok(indexes.length > 0);
          const live = queue.map((_, i) => i).filter((i) => !expired.has(i));
          assert.equal(indexes[0], live[0], 'the oldest live request is always in the batch');
          const key = queue[indexes[0]!]!.key;
          let samples = 0;
          for (let k = 0; k < indexes.length; k++) {
            const i = indexes[k]!;
            assert.ok(!expired.has(i));
            if (k > 0) assert.ok(i > indexes[k - 1]!);
            assert.equal(queue[i]!.key, key);
            samples += queue[i]!.samples;
          }
          for (const i of indexes) {
            if (estimate !== undefined)
              assert.ok(now + estimate(samples) <= queue[i]!.deadline, 'member would be late');
            else assert.ok(now < queue[i]!.deadline);
          }
          if (indexes.length > 1)
            assert.ok(samples <= spec.maxBatchSize, `batch of ${samples} > ${spec.maxBatchSize}`);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('shouldShed', () => {
  test('sheds once maxQueueSize requests are waiting', () => {
    assert.equal(shouldShed(0, 1), false);
    assert.equal(shouldShed(9, 10), false);
    assert.equal(shouldShed(10, 10), true);
    assert.equal(shouldShed(11, 10), true);
  });
});

describe('BatchLatencyEstimator', () => {
  test('not enough data is undefined, not zero', () => {
    const estimator = new BatchLatencyEstimator({ minObservations: 3, warmup: 0 });
    assert.equal(estimator.estimate(1), undefined);
    estimator.observe(1, 3);
    estimator.observe(2, 5);
    assert.equal(estimator.estimate(1), undefined);
    assert.equal(estimator.ready, false);
    estimator.observe(4, 9);
    assert.equal(estimator.ready, true);
    // exactly 2n + 1
    assert.equal(estimator.estimate(8), 17);
  });

  test('the first (warm-up) batches are ignored', () => {
    const estimator = new BatchLatencyEstimator({ minObservations: 1, warmup: 1 });
    estimator.observe(1, 500);
    assert.equal(estimator.estimate(1), undefined);
    estimator.observe(1, 4);
    assert.equal(estimator.estimate(1), 4);
  });

  test('only the recent window counts', () => {
    const estimator = new BatchLatencyEstimator({ window: 3, minObservations: 2, warmup: 0 });
    for (const n of [1, 2, 3]) estimator.observe(n, 100 * n);
    assert.equal(estimator.estimate(4), 400);
    for (const n of [1, 2, 3]) estimator.observe(n, n + 1);
    assert.ok(Math.abs(estimator.estimate(4)! - 5) < 1e-9);
  });

  test('one batch size seen, or a negative slope -> the mean, flat', () => {
    const flat = new BatchLatencyEstimator({ minObservations: 2, warmup: 0 });
    flat.observe(4, 10);
    flat.observe(4, 20);
    assert.equal(flat.estimate(1), 15);
    assert.equal(flat.estimate(64), 15);
    const noisy = new BatchLatencyEstimator({ minObservations: 2, warmup: 0 });
    noisy.observe(1, 20);
    noisy.observe(8, 10);
    assert.equal(noisy.estimate(100), 15);
  });

  test('never negative; bad observations are ignored', () => {
    const estimator = new BatchLatencyEstimator({ minObservations: 2, warmup: 0 });
    estimator.observe(10, 10);
    estimator.observe(20, 30);
    estimator.observe(Number.NaN, 1);
    estimator.observe(1, -5);
    estimator.observe(1, Number.POSITIVE_INFINITY);
    assert.equal(estimator.estimate(20), 30);
    assert.equal(estimator.estimate(0), 0);
  });
});
