import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TensorSpec } from '../../protocol/types.ts';
import type { BatchingSpec } from '../../spec/types.ts';
import { dispatchPlan, GROUP_SIZE } from './plan.ts';

const spec = (name: string, ...shape: number[]): TensorSpec => ({ name, datatype: 'FP32', shape });
const dynamic = [spec('x', -1, 4)];
const fixed = [spec('x', 1, 4)];
const ON: BatchingSpec = { maxBatchSize: 8, maxQueueDelayMs: 2, preferredBatchSizes: [], maxQueueSize: 10 };
const AUTO: BatchingSpec = { ...ON, maxBatchSize: 32, maxQueueDelayMs: 0, auto: true };

test('the decision table, row by row', () => {
  const rows: [string, BatchingSpec | null, 'onnx' | 'handler', TensorSpec[], boolean, string[]][] = [
    ['off', null, 'onnx', dynamic, false, []],
    ['auto, ONNX, all dynamic', AUTO, 'onnx', dynamic, true, []],
    ['auto, handler', AUTO, 'handler', dynamic, false, []],
    ['auto, a fixed first dimension', AUTO, 'onnx', fixed, false, []],
    ['on, ONNX, all dynamic', ON, 'onnx', dynamic, true, []],
    ['on, handler, all dynamic', ON, 'handler', dynamic, false, []],
    ['on, a fixed first dimension', ON, 'onnx', fixed, false, ['x']],
  ];
  for (const [row, batching, format, tensors, batched, ignored] of rows) {
    const plan = dispatchPlan(batching, format, tensors, [spec('y', -1, 4)]);
    assert.equal(plan.batched, batched, row);
    assert.deepEqual(plan.ignored, ignored, row);
    if (batched) assert.equal(plan.policy, batching, `${row}: the configured policy`);
  }
  const handler = dispatchPlan(ON, 'handler', dynamic, [spec('y', -1, 4)]);
  assert.equal(handler.policy, ON, 'a handler with batching on groups by the configured policy');
  assert.equal(handler.keyOf, undefined, 'each request is its own call: shapes need not match');
});

test('grouped: up to GROUP_SIZE requests, counted as requests, no delay, the queue bound kept', () => {
  const plan = dispatchPlan(ON, 'onnx', fixed, [spec('y', 1, 4)]);
  assert.equal(plan.policy.maxBatchSize, GROUP_SIZE);
  assert.equal(plan.policy.maxQueueDelayMs, 0);
  assert.equal(plan.policy.maxQueueSize, 10);
  const request = {
    inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [5, 4], data: new Float32Array(20) }],
  };
  assert.equal(plan.samplesOf(request), 1);
  assert.equal(plan.keyOf, undefined);
  assert.equal(dispatchPlan(null, 'onnx', fixed, []).policy.maxQueueSize, 1024, 'off: the default bound');
});
