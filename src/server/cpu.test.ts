import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { cpuQuota, parseCfsQuota, parseCpuMax, threadsPerWorker } from './cpu.ts';

test('parseCpuMax reads cgroup v2 quotas', () => {
  assert.equal(parseCpuMax('max 100000\n'), null);
  assert.equal(parseCpuMax('150000 100000\n'), 1.5);
  assert.equal(parseCpuMax('50000 100000'), 0.5);
  assert.equal(parseCpuMax('garbage'), null);
});

test('parseCfsQuota reads cgroup v1 quotas', () => {
  assert.equal(parseCfsQuota('-1\n', '100000\n'), null);
  assert.equal(parseCfsQuota('50000\n', '100000\n'), 0.5);
});

const files =
  (entries: Record<string, string>) =>
  (path: string): string => {
    const text = entries[path];
    if (text === undefined) throw new Error(`ENOENT ${path}`);
    return text;
  };

test('cpuQuota falls back to the OS when there is no cgroup file', () => {
  assert.equal(cpuQuota(files({}), {}), availableParallelism());
  assert.equal(cpuQuota(files({ '/sys/fs/cgroup/cpu.max': '50000 100000' }), {}), 0.5);
});

test('cpuQuota reads a cgroup v1 quota (Docker on a v1 host limits a container there)', () => {
  const v1 = {
    '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '50000\n',
    '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
  };
  assert.equal(cpuQuota(files(v1), {}), 0.5);
  assert.equal(
    cpuQuota(files({ ...v1, '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1' }), {}),
    availableParallelism(),
  );
});

test('cpuQuota follows FERRY_CPU_LIMIT, the limit the platform gives a replica, when it is lower', () => {
  assert.equal(cpuQuota(files({}), { FERRY_CPU_LIMIT: '0.5' }), 0.5);
  assert.equal(cpuQuota(files({}), { FERRY_CPU_LIMIT: '1000' }), availableParallelism());
  assert.equal(cpuQuota(files({}), { FERRY_CPU_LIMIT: 'lots' }), availableParallelism());
});

test('threadsPerWorker divides the quota among workers and never goes below 1', () => {
  assert.equal(threadsPerWorker(1, null, 4), 4);
  assert.equal(threadsPerWorker(2, null, 4), 2);
  assert.equal(threadsPerWorker(4, null, 1.5), 1);
  assert.equal(threadsPerWorker(1, null, 0.5), 1);
  assert.equal(threadsPerWorker(2, 3, 4), 3);
});
