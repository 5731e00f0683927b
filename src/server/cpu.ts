/**
 * How many CPU cores this process may use: the cgroup quota when one is set (containers),
 * else what the OS offers. onnxruntime sizes its thread pool from the host's cores, which
 * oversubscribes a container with a small quota, so Ferry always sets thread counts itself.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { CPU_LIMIT_ENV } from '../core/replica.ts';

/** Parses cgroup v2 `cpu.max` ("max 100000" or "150000 100000") into cores, or null for no limit. */
export function parseCpuMax(text: string): number | null {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return null;
  const q = Number(quota);
  const p = Number(period ?? 100000);
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? q / p : null;
}

/** Parses cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` into cores, or null for no limit (-1). */
export function parseCfsQuota(quota: string, period: string): number | null {
  const q = Number(quota.trim());
  const p = Number(period.trim());
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? q / p : null;
}

/**
 * Cores this process may use: the smallest of the OS's cores, the cgroup quota (v2 `cpu.max`, else v1
 * `cpu.cfs_quota_us`) and FERRY_CPU_LIMIT when set.
 */
export function cpuQuota(
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
  env: NodeJS.ProcessEnv = process.env,
): number {
  let cores = availableParallelism();
  const read = (path: string) => {
    try {
      return readFile(path);
    } catch {
      return undefined;
    }
  };
  const v2 = read('/sys/fs/cgroup/cpu.max');
  const v1Quota = v2 === undefined ? read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') : undefined;
  const v1Period = v1Quota === undefined ? undefined : read('/sys/fs/cgroup/cpu/cpu.cfs_period_us');
  const quota =
    v2 !== undefined
      ? parseCpuMax(v2)
      : v1Quota !== undefined && v1Period !== undefined
        ? parseCfsQuota(v1Quota, v1Period)
        : null;
  if (quota !== null) cores = Math.min(cores, quota);
  const limit = Number(env[CPU_LIMIT_ENV]);
  if (env[CPU_LIMIT_ENV] && Number.isFinite(limit) && limit > 0) cores = Math.min(cores, limit);
  return cores;
}

/** Intra-op threads per worker: an explicit setting wins; else the quota shared by the workers, at least 1. */
export function threadsPerWorker(
  concurrency: number,
  configured: number | null,
  quota: number = cpuQuota(),
): number {
  if (configured !== null) return configured;
  return Math.max(1, Math.floor(quota / Math.max(1, concurrency)));
}
