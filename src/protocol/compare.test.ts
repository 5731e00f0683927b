import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareResponse } from './compare.ts';

const response = {
  outputs: [
    { name: 'label', datatype: 'INT64', shape: [2], data: [0, 2] },
    { name: 'p', datatype: 'FP32', shape: [2, 2], data: [0.5, 0.5, 0.25, 0.75] },
  ],
};

test('a response within tolerance matches; extra actual outputs are ignored', () => {
  const expected = {
    outputs: [
      {
        name: 'p',
        datatype: 'FP32',
        shape: [2, 2],
        data: [
          [0.50001, 0.5],
          [0.25, 0.75],
        ],
      },
    ],
  };
  assert.deepEqual(compareResponse(expected, response, 1e-4), []);
});

test('each difference is reported with its path', () => {
  const expected = {
    outputs: [
      { name: 'label', datatype: 'INT32', shape: [2], data: [0, 1] },
      { name: 'p', shape: [4], data: [0.5, 0.5, 0.25, 0.75] },
      { name: 'missing', data: [] },
    ],
  };
  assert.deepEqual(compareResponse(expected, response, 1e-4), [
    { path: 'outputs["label"].datatype', expected: 'INT32', actual: 'INT64' },
    { path: 'outputs["label"].data[1]', expected: '1', actual: '2' },
    { path: 'outputs["p"].shape', expected: '[4]', actual: '[2,2]' },
    { path: 'outputs["missing"]', expected: 'present', actual: 'missing' },
  ]);
});

test('strings compare exactly; length differences are one mismatch', () => {
  const actual = { outputs: [{ name: 's', datatype: 'BYTES', shape: [2], data: ['a', 'b'] }] };
  assert.deepEqual(compareResponse({ outputs: [{ name: 's', data: ['a', 'b'] }] }, actual, 0), []);
  assert.deepEqual(compareResponse({ outputs: [{ name: 's', data: ['a'] }] }, actual, 0), [
    { path: 'outputs["s"].data.length', expected: '1', actual: '2' },
  ]);
  assert.equal(compareResponse({ outputs: [{ name: 's', data: ['a', 'c'] }] }, actual, 0).length, 1);
});

test('a response that is not OIP JSON mismatches every expected output', () => {
  assert.equal(compareResponse(response, { error: 'boom' }, 0).length, 2);
  assert.equal(compareResponse(response, null, 0).length, 2);
});
