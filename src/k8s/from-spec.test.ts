import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inputProblems, pinned } from './from-spec.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

test('names and images from the command line are checked before a cluster sees them, each naming its flag', () => {
  assert.deepEqual(
    inputProblems({ name: 'iris', tenant: 'ml', image: `reg.example.com:5000/ml/iris@${DIGEST}` }, undefined),
    [],
  );
  for (const image of [
    'iris',
    'iris:1',
    '127.0.0.1:5000/ml/iris:2',
    `localhost/a/b_c@${DIGEST}`,
    `x:1@${DIGEST}`,
  ])
    assert.deepEqual(inputProblems({ name: 'iris', tenant: 'ml', image }, undefined), [], image);
  const bad = inputProblems({ name: 'Bad_Name', tenant: 'ML', image: 'not a ref' }, undefined);
  assert.equal(bad.length, 3);
  assert.match(bad[0]!, /^--name \(or model\.name\): "Bad_Name" is not a DNS-1123 label/);
  assert.match(bad[1]!, /^--tenant "ML": "ferry-ML" is not a DNS-1123 label/);
  assert.match(bad[2]!, /^--image "not a ref": not an image reference/);
  assert.match(
    inputProblems({ name: 'a'.repeat(41), tenant: 'ml', image: 'x' }, undefined)[0]!,
    /at most 40 characters/,
  );
  assert.match(inputProblems({ name: 'iris', tenant: 'ml', image: 'UPPER/case' }, undefined)[0]!, /--image/);
  assert.match(
    inputProblems({ name: 'iris', tenant: 'ml', image: 'x' }, 'Bad.NS')[0]!,
    /^--namespace: "Bad.NS"/,
  );
  assert.equal(pinned(`x@${DIGEST}`), true);
  assert.equal(pinned('x:1'), false);
});
