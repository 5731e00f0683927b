import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maxReplicasWithin, quotaProblems, usageOf } from './quota.ts';

const GIB = 1024 ** 3;

test('usage sums replicas and their limits', () => {
  assert.deepEqual(
    usageOf([
      { replicas: 2, cpu: 0.5, memoryBytes: GIB },
      { replicas: 3, cpu: 0.1, memoryBytes: 2 * GIB },
    ]),
    { deployments: 2, replicas: 5, cpu: 1.3, memoryBytes: 8 * GIB },
  );
  assert.deepEqual(usageOf([]), { deployments: 0, replicas: 0, cpu: 0, memoryBytes: 0 });
});

test('each quota over its limit is named with its use and limit; at the limit is fine', () => {
  const usage = { deployments: 3, replicas: 12, cpu: 6, memoryBytes: 16 * GIB };
  const none = { cpu: false, memory: false };
  assert.deepEqual(
    quotaProblems({ deployments: 3, replicas: 12, cpu: 6, memoryBytes: 16 * GIB }, usage, none),
    [],
  );
  assert.deepEqual(quotaProblems({ replicas: 10, memoryBytes: 8 * GIB }, usage, none), [
    'replicas: 12 of 10',
    'memory: 16 GiB of 8 GiB',
  ]);
  assert.deepEqual(quotaProblems({ cpu: 4 }, usage, none), ['cpu: 6 CPU of 4 CPU']);
  assert.deepEqual(quotaProblems({}, usage, { cpu: true, memory: true }), [], 'no quota, no limit needed');
  assert.deepEqual(quotaProblems({ cpu: 100 }, usage, { cpu: true, memory: true }), [
    'cpu: a deployment has no CPU limit',
  ]);
});

test('the most replicas a deployment may have within its quotas, beside the others', () => {
  const others = { deployments: 1, replicas: 2, cpu: 2, memoryBytes: 2 * GIB };
  assert.equal(maxReplicasWithin({}, others, { cpu: 1, memoryBytes: GIB }), Number.POSITIVE_INFINITY);
  assert.equal(maxReplicasWithin({ replicas: 10 }, others, { cpu: 1, memoryBytes: GIB }), 8);
  assert.equal(maxReplicasWithin({ cpu: 4 }, others, { cpu: 0.5, memoryBytes: GIB }), 4);
  assert.equal(maxReplicasWithin({ memoryBytes: 3 * GIB }, others, { cpu: 1, memoryBytes: GIB }), 1);
  assert.equal(maxReplicasWithin({ replicas: 1 }, others, { cpu: 1, memoryBytes: GIB }), 0, 'never negative');
});
