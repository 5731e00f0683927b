import assert from 'node:assert/strict';
import { test } from 'node:test';
import { derivedTarget } from './capacity.ts';

test('concurrency: workers x batch x pipeline', () => {
  assert.equal(derivedTarget('concurrency', { workers: 1, batchSize: 32, pipelineDepth: 2 }), 64);
  assert.equal(derivedTarget('concurrency', { workers: 2, batchSize: 1, pipelineDepth: 2 }), 4);
  assert.equal(derivedTarget('concurrency', { workers: 0, batchSize: 0, pipelineDepth: 0 }), 1, 'at least 1');
});

test('rps: from the measured batch time; none without a measurement', () => {
  assert.equal(
    derivedTarget('rps', { workers: 1, batchSize: 8, pipelineDepth: 2, batchServiceTimeMs: 4 }),
    2000,
  );
  assert.equal(derivedTarget('rps', { workers: 1, batchSize: 8, pipelineDepth: 2 }), null);
});
