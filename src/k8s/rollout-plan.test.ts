import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  beginChange,
  type DeploymentRecord,
  deploymentRecordObject,
  parseDeploymentRecord,
  undoTarget,
  withInput,
} from './records.ts';
import type { RenderInput } from './render.ts';
import { mixTraffic, rolloutSteps, wantedInput } from './rollout-plan.ts';
import { irisRevision } from './testdata/fixtures.ts';

const iris = (revisions: number[], traffic: Array<[number, number]>): RenderInput => ({
  name: 'iris',
  tenant: 'default',
  public: false,
  replicas: 2,
  scaling: null,
  revisions: revisions.map((n) => irisRevision(n)),
  traffic: traffic.map(([revision, percent]) => ({ revision, percent })),
});

const summary = (steps: ReturnType<typeof rolloutSteps>) =>
  steps.map((s) => ({
    say: s.say,
    revisions: s.input.revisions.map((r) => r.revision),
    traffic: s.input.traffic.map((t) => `${t.revision}:${t.percent}`).join(' '),
  }));

test('a spec keeps the number of an applied revision that runs the same thing, else takes the next one', () => {
  const applied = iris([3], [[3, 100]]);
  const same = wantedInput(applied, iris([1], [[1, 100]]), 7);
  assert.deepEqual(
    [same.revision, same.isNew],
    [7, true],
    'revision 1 of the spec differs from r3 (its image)',
  );
  const spec = { ...iris([1], [[1, 100]]), revisions: [irisRevision(3, { revision: 99 })] };
  const again = wantedInput(applied, spec, 7);
  assert.deepEqual([again.revision, again.isNew], [3, false]);
  assert.deepEqual(again.input.traffic, [{ revision: 3, percent: 100 }]);
  const changed = wantedInput(applied, { ...spec, revisions: [irisRevision(3, { env: { A: '1' } })] }, 7);
  assert.deepEqual([changed.revision, changed.isNew], [7, true], 'an env change is a new revision');
});

test('traffic mixes toward the wanted split and always adds up to 100', () => {
  const from = [{ revision: 1, percent: 100 }];
  const to = [{ revision: 2, percent: 100 }];
  assert.deepEqual(mixTraffic(from, to, 10), [
    { revision: 1, percent: 90 },
    { revision: 2, percent: 10 },
  ]);
  assert.deepEqual(mixTraffic(from, to, 100), [{ revision: 2, percent: 100 }]);
  const thirds = mixTraffic(
    [
      { revision: 1, percent: 33 },
      { revision: 2, percent: 67 },
    ],
    [{ revision: 3, percent: 100 }],
    50,
  );
  assert.equal(
    thirds.reduce((s, t) => s + t.percent, 0),
    100,
  );
  assert.deepEqual(
    thirds.map((t) => t.revision),
    [1, 2, 3],
  );
});

test('steps: a first apply starts then routes; a new revision starts, moves by canary steps, switches, then the old goes', () => {
  assert.deepEqual(summary(rolloutSteps(null, iris([1], [[1, 100]]), [10, 100])), [
    { say: 'start r1', revisions: [1], traffic: '' },
    { say: 'switch to r1 100%', revisions: [1], traffic: '1:100' },
  ]);
  assert.deepEqual(summary(rolloutSteps(iris([1], [[1, 100]]), iris([2], [[2, 100]]), [10, 50, 100])), [
    { say: 'start r2', revisions: [1, 2], traffic: '1:100' },
    { say: 'canary 10%: r1 90%, r2 10%', revisions: [1, 2], traffic: '1:90 2:10' },
    { say: 'canary 50%: r1 50%, r2 50%', revisions: [1, 2], traffic: '1:50 2:50' },
    { say: 'switch to r2 100%', revisions: [1, 2], traffic: '2:100' },
    { say: 'remove r1', revisions: [2], traffic: '2:100' },
  ]);
  // Without a canary, the same without the middle steps.
  assert.deepEqual(
    summary(rolloutSteps(iris([1], [[1, 100]]), iris([2], [[2, 100]]))).map((s) => s.say),
    ['start r2', 'switch to r2 100%', 'remove r1'],
  );
  // Unchanged: re-applied once. Replicas changed only: one step.
  assert.deepEqual(
    summary(rolloutSteps(iris([1], [[1, 100]]), iris([1], [[1, 100]]))).map((s) => s.say),
    ['apply (no change)'],
  );
  assert.deepEqual(
    summary(rolloutSteps(iris([1], [[1, 100]]), { ...iris([1], [[1, 100]]), replicas: 5 })).map((s) => s.say),
    ['apply'],
  );
  // Back to a revision still running (an abandoned canary): no start, the switch, then the new one goes.
  assert.deepEqual(
    summary(
      rolloutSteps(
        iris(
          [1, 2],
          [
            [1, 90],
            [2, 10],
          ],
        ),
        iris([1], [[1, 100]]),
      ),
    ),
    [
      { say: 'switch to r1 100%', revisions: [1, 2], traffic: '1:100' },
      { say: 'remove r2', revisions: [1], traffic: '1:100' },
    ],
  );
});

test('the record: a ConfigMap that reads back; history for undo, newest first, bounded', () => {
  let record: DeploymentRecord = { input: iris([1], [[1, 100]]), history: [], nextRevision: 2, canary: null };
  const apply = (r: DeploymentRecord, input: RenderInput, now: string) =>
    withInput(beginChange(r, now), input);
  record = apply(record, iris([2], [[2, 100]]), '2026-12-06T00:00:00Z');
  record = apply(record, iris([3], [[3, 100]]), '2026-12-06T00:01:00Z');
  assert.equal(
    beginChange(beginChange(record, 'x'), 'y').history.length,
    3,
    'a change begun twice: one entry',
  );
  assert.equal(record.nextRevision, 4);
  const object = deploymentRecordObject(record, 'ferry-default');
  assert.equal(object.metadata.name, 'ferry-deployment-iris');
  assert.deepEqual(parseDeploymentRecord(JSON.parse(JSON.stringify(object))), record);
  assert.deepEqual(undoTarget(record).traffic, [{ revision: 2, percent: 100 }], 'undo: the state before');
  assert.deepEqual(undoTarget(record, 1).traffic, [{ revision: 1, percent: 100 }]);
  assert.throws(() => undoTarget(record, 9), /revision 9 is not in its history \(the history has r1, r2\)/);
  assert.throws(() => undoTarget({ ...record, history: [] }), /no earlier state/);
  for (let i = 4; i < 30; i++) record = apply(record, iris([i], [[i, 100]]), 'later');
  assert.equal(record.history.length, 10);
  // A record edited by hand is named, not trusted.
  const bad = { ...object, data: { 'input.json': '{"name": 1}' } };
  assert.throws(
    () => parseDeploymentRecord(bad),
    /ConfigMap\/ferry-default\/ferry-deployment-iris: input.json is not/,
  );
});
