import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LABELS, makeReplicaLabels } from './labels.ts';
import { type ListedRevision, planRevisions } from './revision-plan.ts';
import { buildRoutes, toDiscoveryTable } from './routing.ts';
import { desired, rev } from './testing.ts';

const t0 = 1_000_000;

/** A unit as a revision runtime lists it: Ferry's labels for the revision (no replica index). */
function unit(deployment: string, revision: number, replicas: number, ready = replicas, specHash?: string) {
  const labels = makeReplicaLabels(rev(deployment, revision, specHash), 0);
  delete labels[LABELS.index];
  return { name: `${deployment}-r${revision}`, labels, replicas, ready } satisfies ListedRevision;
}

const kinds = (plan: ReturnType<typeof planRevisions>) =>
  plan.actions.map((a) =>
    a.kind === 'ensure'
      ? `ensure ${a.deployment}@${a.revision.number}x${a.replicas}`
      : `remove ${a.name} ${a.reason}`,
  );

test('a desired revision without a unit is ensured; one that matches is left alone', () => {
  const plan = planRevisions(desired(['iris', [1, 2]]), [], t0);
  assert.deepEqual(kinds(plan), ['ensure iris@1x2']);
  assert.deepEqual(kinds(planRevisions(desired(['iris', [1, 2]]), [unit('iris', 1, 2)], t0)), []);
});

test('a new replica count or spec hash converges the unit; nothing is duplicated after a restart', () => {
  assert.deepEqual(kinds(planRevisions(desired(['iris', [1, 3]]), [unit('iris', 1, 2)], t0)), [
    'ensure iris@1x3',
  ]);
  assert.deepEqual(kinds(planRevisions(desired(['iris', [1, 2]]), [unit('iris', 1, 2, 2, 'old-hash')], t0)), [
    'ensure iris@1x2',
  ]);
  // Adoption: the same listing planned twice (a control plane restarted) gives nothing to do, twice.
  const listed = [unit('iris', 1, 1), unit('iris', 2, 1)];
  const want = desired(['iris', [1, 1], [2, 1]]);
  assert.deepEqual(kinds(planRevisions(want, listed, t0)), []);
  assert.deepEqual(kinds(planRevisions(want, listed, t0 + 1)), []);
});

test('units not desired are removed, with why; units not Ferry’s are never touched', () => {
  const stranger = { name: 'theirs', labels: { app: 'x' }, replicas: 1, ready: 1 };
  const broken = { ...unit('iris', 1, 1), labels: { [LABELS.managedBy]: 'ferry' } };
  const plan = planRevisions(
    desired(['iris', [2, 1]]),
    [stranger, broken, unit('gone', 1, 1), unit('iris', 1, 1), unit('iris', 2, 1)],
    t0,
  );
  assert.deepEqual(kinds(plan), [
    'remove iris-r1 invalid-labels',
    'remove gone-r1 orphaned',
    'remove iris-r1 revision-retired',
  ]);
});

test('a revision wanted at 0 replicas keeps its unit, scaled to zero; none is made for it', () => {
  assert.deepEqual(kinds(planRevisions(desired(['iris', [1, 0]]), [unit('iris', 1, 2)], t0)), [
    'ensure iris@1x0',
  ]);
  assert.deepEqual(kinds(planRevisions(desired(['iris', [1, 0]]), [unit('iris', 1, 0, 0)], t0)), []);
  assert.deepEqual(kinds(planRevisions(desired(['iris', [1, 0]]), [], t0)), []);
});

test('Ready is True when every desired replica is ready, Progressing before', () => {
  const want = desired(['iris', [1, 2]]);
  const early = planRevisions(want, [unit('iris', 1, 2, 1)], t0);
  assert.equal(early.conditions.iris?.[0]?.reason, 'Progressing');
  assert.equal(early.conditions.iris?.[0]?.message, '1 of 2 ready');
  const done = planRevisions(want, [unit('iris', 1, 2, 2)], t0 + 5, early.conditions);
  assert.deepEqual(
    { status: done.conditions.iris?.[0]?.status, since: done.conditions.iris?.[0]?.since },
    { status: 'True', since: t0 + 5 },
  );
});

test('the route file names each routed revision by its service, tenant, activator and idle ones included', () => {
  const table = buildRoutes({
    deployments: [
      {
        name: 'ml/iris',
        public: false,
        activator: { maxHeld: 10, maxWaitMs: 1000 },
        traffic: [
          { revision: 1, percent: 90 },
          { revision: 2, percent: 10, shadow: 0 },
        ],
        servedNames: { 1: 'iris', 2: 'iris' },
        unavailable: { 2: 'the model fails to load (ModelLoadFailed)' },
      },
    ],
    replicas: [],
  });
  const file = toDiscoveryTable(
    table,
    (tenant, deployment, revision) => ({
      host: `tasks.ferry-${tenant}-${deployment}-r${revision}`,
      port: 8080,
    }),
    (tenant, deployment, revision) => tenant === 'ml' && deployment === 'iris' && revision === 2,
  );
  assert.deepEqual(file, {
    deployments: [
      {
        name: 'iris',
        tenant: 'ml',
        public: false,
        activator: { maxHeld: 10, maxWaitMs: 1000 },
        revisions: [
          {
            revision: 1,
            percent: 90,
            shadow: 0,
            servedName: 'iris',
            service: { host: 'tasks.ferry-ml-iris-r1', port: 8080 },
          },
          {
            revision: 2,
            percent: 10,
            shadow: 0,
            servedName: 'iris',
            unavailable: 'the model fails to load (ModelLoadFailed)',
            idle: true,
            service: { host: 'tasks.ferry-ml-iris-r2', port: 8080 },
          },
        ],
      },
    ],
    callers: [],
  });
});
