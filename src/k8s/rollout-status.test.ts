import assert from 'node:assert/strict';
import { test } from 'node:test';
import { overallStatus, rolloutStatus } from './rollout-status.ts';
import type { KubernetesObject } from './types.ts';

const dep = (
  generation: number,
  spec: Record<string, unknown>,
  status: Record<string, unknown>,
): KubernetesObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'iris-r2', generation },
  spec,
  status,
});
const progressing = (status: string, reason: string) => ({ type: 'Progressing', status, reason });

test('the rollout table, row by row', () => {
  assert.deepEqual(rolloutStatus(dep(2, { replicas: 2 }, { observedGeneration: 1 })), {
    state: 'progressing',
    message: 'iris-r2: waiting for the cluster to see the new spec',
  });
  const failed = rolloutStatus(
    dep(
      2,
      { replicas: 2 },
      {
        observedGeneration: 2,
        updatedReplicas: 1,
        conditions: [
          {
            ...progressing('False', 'ProgressDeadlineExceeded'),
            message: 'ReplicaSet "iris-r2-abc" has timed out progressing.',
          },
        ],
      },
    ),
  );
  assert.equal(failed.state, 'failed');
  assert.match(
    failed.message,
    /exceeded its progress deadline \(ReplicaSet "iris-r2-abc" has timed out progressing\.\)/,
  );
  assert.deepEqual(
    rolloutStatus(dep(2, { replicas: 3 }, { observedGeneration: 2, updatedReplicas: 1 })).message,
    'iris-r2: 1 of 3 replicas updated',
  );
  assert.equal(
    rolloutStatus(dep(2, { replicas: 2 }, { observedGeneration: 2, replicas: 3, updatedReplicas: 2 }))
      .message,
    'iris-r2: 1 old replica(s) being removed',
  );
  assert.equal(
    rolloutStatus(
      dep(
        2,
        { replicas: 2 },
        { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 },
      ),
    ).message,
    'iris-r2: 1 of 2 updated replicas available',
  );
  const done = rolloutStatus(
    dep(
      2,
      { replicas: 2 },
      {
        observedGeneration: 2,
        replicas: 2,
        updatedReplicas: 2,
        availableReplicas: 2,
        conditions: [progressing('True', 'NewReplicaSetAvailable')],
      },
    ),
  );
  assert.deepEqual(done, { state: 'complete', message: 'iris-r2: 2 of 2 replicas available' });
  // Under an HPA there is no spec.replicas: what the status counts is wanted.
  assert.equal(
    rolloutStatus(
      dep(1, {}, { observedGeneration: 1, replicas: 4, updatedReplicas: 4, availableReplicas: 4 }),
    ).state,
    'complete',
  );
  assert.equal(
    rolloutStatus(dep(1, {}, { observedGeneration: 1 })).message,
    'iris-r2: 0 of 1 replicas updated',
  );
  // Scaled to zero (KEDA sets spec.replicas 0): complete, as kubectl says, not waiting for a replica forever.
  assert.deepEqual(rolloutStatus(dep(1, { replicas: 0 }, { observedGeneration: 1 })), {
    state: 'complete',
    message: 'iris-r2: scaled to zero',
  });
});

test('together: failed wins, then progressing', () => {
  const s = (state: 'progressing' | 'complete' | 'failed') => ({ state, message: '' });
  assert.equal(overallStatus([s('complete'), s('failed'), s('progressing')]), 'failed');
  assert.equal(overallStatus([s('complete'), s('progressing')]), 'progressing');
  assert.equal(overallStatus([s('complete')]), 'complete');
  assert.equal(overallStatus([]), 'complete');
});
