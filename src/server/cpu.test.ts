import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuQuota, parseCpuMax, threadsPerWorker } from './cpu.ts';

test('parseCpuMax reads cgroup v2 quotas', () => {
  assert.equal(parseCpuMax('max 100000\n'), null);
  assert.equal(parseCpuMax('150000 100000\n'), 1.5);
  assert.equal(parseCpuMax('50000 100000'), 0.5);
  assert.equal(parseCpuMax('garbage'), null);
});

test('cpuQuota falls back to the OS when there is no cgroup file', () => {
  const quota = cpuQuota(() => {
    throw new Error('ENOENT');
  });
  assert.ok(quota >= 1);
  assert.equal(
    cpuQuota(() => '50000 100000'),
    0.5,
  );
});

test('threadsPerWorker divides the quota among workers and never goes below 1', () => {
  assert.equal(threadsPerWorker(1, null, 4), 4);
  assert.equal(threadsPerWorker(2, null, 4), 2);
  assert.equal(threadsPerWorker(4, null, 1.5), 1);
  assert.equal(threadsPerWorker(1, null, 0.5), 1);
  assert.equal(threadsPerWorker(2, 3, 4), 3);
});
