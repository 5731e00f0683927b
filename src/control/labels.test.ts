import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isManaged, LABELS, makeReplicaLabels, readReplicaClaim } from './labels.ts';
import type { Revision } from './types.ts';

const rev: Revision = {
  deployment: 'iris',
  number: 3,
  specHash: 'h3',
  image: 'iris:3',
  replicas: 2,
  createdAt: 0,
};

test('makeReplicaLabels names owner, deployment, revision, spec hash and slot', () => {
  assert.deepEqual(makeReplicaLabels(rev, 1), {
    'ferry.dev/managed-by': 'ferry',
    'ferry.dev/deployment': 'iris',
    'ferry.dev/revision': '3',
    'ferry.dev/spec-hash': 'h3',
    'ferry.dev/replica-index': '1',
  });
});

test('labels round-trip through readReplicaClaim', () => {
  const labels = makeReplicaLabels(rev, 4);
  assert.equal(isManaged(labels), true);
  assert.deepEqual(readReplicaClaim(labels), { deployment: 'iris', revision: 3, specHash: 'h3', index: 4 });
});

test('malformed or missing labels read as undefined, foreign replicas are not managed', () => {
  assert.equal(isManaged({ [LABELS.managedBy]: 'someone-else' }), false);
  assert.equal(isManaged({}), false);
  assert.deepEqual(readReplicaClaim({ [LABELS.revision]: '0', [LABELS.index]: '-1' }), {
    deployment: undefined,
    revision: undefined,
    specHash: undefined,
    index: undefined,
  });
  assert.equal(readReplicaClaim({ [LABELS.revision]: '2x' }).revision, undefined);
});
