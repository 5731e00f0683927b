/**
 * How many CPU cores this process may use: the cgroup quota when one is set (containers),
 * else what the OS offers. onnxruntime sizes its thread pool from the host's cores, which
 * oversubscribes a container with a small quota, so Ferry always sets thread counts itself.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Parses cgroup v2 `cpu.max` ("max 100000" or "150000 100000") into cores, or null for no limit. */
export function parseCpuMax(text: string): number | null {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return null;
  const q = Number(quota);
  const p = Number(period ?? 100000);
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? q / p : null;
}

export function cpuQuota(readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): number {
  const cores = availableParallelism();
  try {
    const quota = parseCpuMax(readFile('/sys/fs/cgroup/cpu.max'));
    return quota === null ? cores : Math.min(cores, quota);
  } catch {
    return cores;
  }
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
