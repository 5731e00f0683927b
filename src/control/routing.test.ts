/** The route table the loop publishes (routing.ts) and the activator settings an autoscaled deployment gets. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SETTINGS } from '../autoscaler/settings.ts';
import { activatorFor } from './autoscaling.ts';
import { buildRoutes, startingReplicas, steadyReplicas } from './routing.ts';

test('startingReplicas: per revision, what the controller wants beyond what is routed ready', () => {
  const desired = new Map<string, Record<string, number>>([
    ['a', { 1: 3, 2: 1 }],
    ['b', { 1: 1 }],
  ]);
  const routed = [
    { deployment: 'a', revision: 1 },
    { deployment: 'b', revision: 1 },
    { deployment: 'b', revision: 1 },
  ];
  assert.deepEqual(startingReplicas(desired, routed), { a: { 1: 2, 2: 1 } });
});

test('buildRoutes: starting, unavailable and replicaLimit per revision, only where there is something to say', () => {
  const table = buildRoutes({
    deployments: [
      {
        name: 'team-a/d',
        public: false,
        activator: { maxHeld: 5, maxWaitMs: 1000, replicaCapacity: 3 },
        traffic: [
          { revision: 1, percent: 50 },
          { revision: 2, percent: 50 },
        ],
        servedNames: { 1: 'm', 2: 'm' },
        unavailable: { 2: 'the model fails to load (ModelLoadFailed)' },
        replicaLimits: { 1: 38 },
      },
    ],
    replicas: [{ id: 'r1', url: 'http://127.0.0.1:1', deployment: 'team-a/d', revision: 1 }],
    starting: { 'team-a/d': { 1: 2 } },
  });
  const [d] = table.deployments;
  assert.deepEqual(d!.activator, { maxHeld: 5, maxWaitMs: 1000, replicaCapacity: 3 });
  assert.deepEqual(
    d!.revisions.map((r) => [r.revision, r.starting, r.unavailable, r.replicaLimit, r.replicas.length]),
    [
      [1, 2, undefined, 38, 1],
      [2, undefined, 'the model fails to load (ModelLoadFailed)', undefined, 0],
    ],
  );
  assert.equal('starting' in d!.revisions[1]!, false);
  assert.equal('replicaLimit' in d!.revisions[1]!, false);
});

test('activatorFor: the bounds from the settings, the concurrency target as replica capacity (default 8 otherwise)', () => {
  assert.deepEqual(activatorFor(DEFAULT_SETTINGS), { maxHeld: 1000, maxWaitMs: 30_000, replicaCapacity: 8 });
  assert.deepEqual(activatorFor({ ...DEFAULT_SETTINGS, target: 2.5, maxHeld: 7, maxHeldWaitMs: 500 }), {
    maxHeld: 7,
    maxWaitMs: 500,
    replicaCapacity: 3,
  });
  assert.equal(activatorFor({ ...DEFAULT_SETTINGS, metric: 'rps', target: 100 }).replicaCapacity, 8);
});

test('steadyReplicas: every serving revision the full count; autoscaled (byShare), its share of it, at least 1', () => {
  const split = [
    { revision: 1, percent: 75 },
    { revision: 2, percent: 25 },
    { revision: 3, percent: 0, shadow: 50 },
  ];
  assert.deepEqual(steadyReplicas(4, split), { 1: 4, 2: 4, 3: 2 });
  assert.deepEqual(steadyReplicas(4, split, true), { 1: 3, 2: 1, 3: 2 });
  assert.deepEqual(steadyReplicas(1, split, true), { 1: 1, 2: 1, 3: 1 });
  assert.deepEqual(steadyReplicas(0, split, true), { 1: 0, 2: 0 });
});
