import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LABELS } from './labels.ts';
import { type CrashHistory, crashBackoffMs, type DesiredState, reconcile } from './reconcile.ts';
import {
  create,
  desired,
  drain,
  drainAndRemove,
  remove,
  replica,
  withId,
  withIndex,
  withLabels,
  withStartedAt,
  withState,
} from './testing.ts';
import type { Action, ActualReplica } from './types.ts';

const policy = { backoff: { baseMs: 1000, maxMs: 30_000 } };
const t0 = 1_000_000;

interface Row {
  name: string;
  desired: DesiredState;
  actual: ActualReplica[];
  want: Action[];
}

const rows: Row[] = [
  {
    name: 'nothing running: create every slot',
    desired: desired(['iris', [1, 3]]),
    actual: [],
    want: [create('iris', 1, 0), create('iris', 1, 1), create('iris', 1, 2)],
  },
  {
    name: 'steady state: nothing to do',
    desired: desired(['iris', [1, 2]]),
    actual: [replica('iris', 1), replica('iris', 1, withIndex(1), withState('starting'))],
    want: [],
  },
  {
    name: 'adoption after a restart: only the missing slot is created',
    desired: desired(['iris', [1, 3]]),
    actual: [replica('iris', 1), replica('iris', 1, withIndex(2))],
    want: [create('iris', 1, 1)],
  },
  {
    name: 'deployment deleted: ready replicas drained then removed, stopped ones just removed',
    desired: desired(),
    actual: [replica('iris', 1), replica('iris', 1, withIndex(1), withState('exited', 0))],
    want: [...drainAndRemove('iris-1-0', 'orphaned'), remove('iris-1-1', 'orphaned')],
  },
  {
    name: 'replicas without the managed-by label are not ours, even when they name a deployment',
    desired: desired(),
    actual: [
      replica('iris', 1, withLabels({ [LABELS.managedBy]: 'someone-else' })),
      replica('iris', 1, withIndex(1), withLabels({ [LABELS.managedBy]: undefined })),
    ],
    want: [],
  },
  {
    name: 'managed replica with a malformed label is removed and its slot recreated',
    desired: desired(['iris', [1, 1]]),
    actual: [replica('iris', 1, withLabels({ [LABELS.index]: 'zero' }))],
    want: [...drainAndRemove('iris-1-zero', 'invalid-labels'), create('iris', 1, 0)],
  },
  {
    name: 'revision no longer desired is removed',
    desired: desired(['iris', [2, 1]]),
    actual: [replica('iris', 1), replica('iris', 2)],
    want: drainAndRemove('iris-1-0', 'revision-retired'),
  },
  {
    name: 'spec-hash label differs from the revision: replaced in the same slot',
    desired: desired(['iris', [1, 2]]),
    actual: [replica('iris', 1), replica('iris', 1, withIndex(1), withLabels({ [LABELS.specHash]: 'old' }))],
    want: [...drainAndRemove('iris-1-1', 'spec-changed'), create('iris', 1, 1)],
  },
  {
    name: 'scale down 5 -> 3: the highest (newest) slots go first',
    desired: desired(['iris', [1, 3]]),
    actual: [0, 1, 2, 3, 4].map((i) => replica('iris', 1, withIndex(i))),
    want: [...drainAndRemove('iris-1-4', 'scale-down'), ...drainAndRemove('iris-1-3', 'scale-down')],
  },
  {
    name: 'scale down removes crashed, then starting, before ready',
    desired: desired(['iris', [1, 1]]),
    actual: [
      replica('iris', 1, withState('failed', 1)),
      replica('iris', 1, withIndex(1), withState('starting')),
      replica('iris', 1, withIndex(2)),
    ],
    want: [remove('iris-1-0', 'scale-down'), remove('iris-1-1', 'scale-down')],
  },
  {
    name: 'revision listed with 0 replicas: all of them go',
    desired: desired(['iris', [1, 0], [2, 1]]),
    actual: [replica('iris', 1), replica('iris', 2)],
    want: drainAndRemove('iris-1-0', 'scale-down'),
  },
  {
    name: 'duplicates in one slot: the ready one stays',
    desired: desired(['iris', [1, 1]]),
    actual: [replica('iris', 1, withId('b'), withState('starting')), replica('iris', 1, withId('a'))],
    want: [remove('b', 'duplicate')],
  },
  {
    name: 'duplicates both ready: the older one stays',
    desired: desired(['iris', [1, 1]]),
    actual: [
      replica('iris', 1, withId('new'), withStartedAt(20)),
      replica('iris', 1, withId('old'), withStartedAt(10)),
    ],
    want: drainAndRemove('new', 'duplicate'),
  },
  {
    name: 'a fresh crash waits for its backoff',
    desired: desired(['iris', [1, 1]]),
    actual: [replica('iris', 1, withState('failed', 1))],
    want: [],
  },
  {
    name: 'two deployments are reconciled independently, in the order desired lists them',
    desired: desired(['iris', [1, 1]], ['mnist', [4, 1]]),
    actual: [replica('mnist', 4), replica('resnet', 2)],
    want: [...drainAndRemove('resnet-2-0', 'orphaned'), create('iris', 1, 0)],
  },
];

for (const row of rows) {
  test(`reconcile: ${row.name}`, () => {
    const got = reconcile(row.desired, row.actual, t0, policy);
    assert.deepEqual(got.actions, row.want);
    // Applying the actions and listing again must be a fixed point for rows without crashes.
    if (!row.actual.some((r) => r.state === 'failed' || r.state === 'exited')) {
      const again = reconcile(row.desired, applyActions(row.actual, got.actions), t0, policy);
      assert.deepEqual(again.actions, [], 'second pass after applying the actions');
    }
  });
}

/** A runtime that does what it is told, in memory; created replicas come up 'starting'. */
function applyActions(actual: ActualReplica[], actions: Action[]): ActualReplica[] {
  let next = [...actual];
  for (const a of actions) {
    if (a.kind === 'remove') next = next.filter((r) => r.id !== a.id);
    if (a.kind === 'create')
      next.push(
        replica(
          a.deployment,
          a.revision.number,
          withIndex(a.index),
          withState('starting'),
          withId(`new-${a.index}`),
        ),
      );
  }
  return next;
}

test('crash loop timeline: backoff doubles, condition names the last exit code', () => {
  const want = desired(['iris', [1, 1]]);
  let history: CrashHistory = {};
  const step = (now: number, actual: ActualReplica[]) => {
    const r = reconcile(want, actual, now, policy, history);
    history = r.history;
    return r;
  };

  // t0: the replica exited with code 1. First crash: wait baseMs (1s) before replacing it.
  const a = replica('iris', 1, withId('a'), withState('failed', 1));
  let r = step(t0, [a]);
  assert.deepEqual(r.actions, []);
  assert.equal(r.nextWakeAt, t0 + 1000);
  assert.equal(r.conditions.iris![0]!.reason, 'CrashLoopBackOff');
  assert.equal(r.conditions.iris![0]!.status, 'False');
  assert.match(
    r.conditions.iris![0]!.message,
    /crashed 1 time\(s\) in a row, last exit code 1; next start in 1s/,
  );

  // t0+0.5s: the same crash listed again counts once.
  r = step(t0 + 500, [a]);
  assert.equal(history['iris@1']!.consecutive, 1);
  assert.equal(r.nextWakeAt, t0 + 1000);

  // t0+1s: backoff over: replaced in the same slot.
  r = step(t0 + 1000, [a]);
  assert.deepEqual(r.actions, [remove('a', 'crashed'), create('iris', 1, 0)]);
  assert.equal(r.nextWakeAt, null);

  // t0+1.5s: the replacement dies with 137: second crash in a row, backoff now 2s.
  const b = replica('iris', 1, withId('b'), withState('exited', 137));
  r = step(t0 + 1500, [b]);
  assert.deepEqual(r.actions, []);
  assert.equal(r.nextWakeAt, t0 + 3500);
  assert.match(r.conditions.iris![0]!.message, /crashed 2 time\(s\) in a row, last exit code 137/);

  // t0+3.5s: replaced; while its replacement starts, two crashes in a row still read as a crash loop.
  r = step(t0 + 3500, [b]);
  assert.deepEqual(r.actions, [remove('b', 'crashed'), create('iris', 1, 0)]);
  r = step(t0 + 3600, [replica('iris', 1, withId('c'), withState('starting'))]);
  assert.equal(r.conditions.iris![0]!.reason, 'CrashLoopBackOff');

  // It becomes ready: Ready=True. Ten quiet minutes later the crash record is forgotten.
  const c = replica('iris', 1, withId('c'));
  r = step(t0 + 5000, [c]);
  assert.equal(r.conditions.iris![0]!.reason, 'AllReplicasReady');
  assert.ok(history['iris@1']);
  r = step(t0 + 1500 + 10 * 60_000, [c]);
  assert.deepEqual(history, {});
});

test('crash backoff doubles from baseMs and stops at maxMs', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => crashBackoffMs(n, policy.backoff)),
    [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000],
  );
});

test('crashed replicas of a deployment being removed are not replaced and not counted', () => {
  const r = reconcile(desired(), [replica('iris', 1, withState('failed', 2))], t0, policy);
  assert.deepEqual(r.actions, [remove('iris-1-0', 'orphaned')]);
  assert.deepEqual(r.history, {});
  assert.deepEqual(r.conditions, {});
});

test('Ready condition: Progressing until all are ready; since holds while the reason holds', () => {
  const want = desired(['iris', [1, 2]]);
  const starting = [replica('iris', 1), replica('iris', 1, withIndex(1), withState('starting'))];
  const r1 = reconcile(want, starting, t0, policy);
  assert.deepEqual(r1.conditions.iris, [
    { type: 'Ready', status: 'Unknown', reason: 'Progressing', message: '1 of 2 ready', since: t0 },
  ]);
  const r2 = reconcile(want, starting, t0 + 5000, policy, r1.history, r1.conditions);
  assert.equal(r2.conditions.iris![0]!.since, t0);
  const ready = [replica('iris', 1), replica('iris', 1, withIndex(1))];
  const r3 = reconcile(want, ready, t0 + 9000, policy, r2.history, r2.conditions);
  assert.deepEqual(r3.conditions.iris, [
    { type: 'Ready', status: 'True', reason: 'AllReplicasReady', message: '2 of 2 ready', since: t0 + 9000 },
  ]);
});

test('drain always comes right before the remove of the same ready replica', () => {
  const { actions } = reconcile(desired(), [replica('a', 1), replica('b', 1)], t0, policy);
  assert.deepEqual(actions, [
    drain('a-1-0'),
    remove('a-1-0', 'orphaned'),
    drain('b-1-0'),
    remove('b-1-0', 'orphaned'),
  ]);
});
