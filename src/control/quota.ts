/**
 * Tenant quotas: what a tenant's deployments use together, and whether that fits its quotas. Pure. A deployment
 * uses its desired replicas, each with its newest revision's effective CPU and memory limits (the ones its
 * replicas run with). A rollout's surge replicas and the replicas of a revision being rolled away from are not
 * counted: a quota bounds what a tenant asks for, and a rollout is temporary (docs/security.md).
 */
import type { Quotas } from './store/tenants.ts';

export interface Usage {
  deployments: number;
  replicas: number;
  cpu: number;
  memoryBytes: number;
}

export interface DeploymentUse {
  replicas: number;
  /** Per replica; null = no limit (counts as 0 here; a CPU or memory quota then refuses it, see quotaProblems). */
  cpu: number | null;
  memoryBytes: number | null;
}

export function usageOf(deployments: readonly DeploymentUse[]): Usage {
  const usage: Usage = { deployments: 0, replicas: 0, cpu: 0, memoryBytes: 0 };
  for (const d of deployments) {
    usage.deployments += 1;
    usage.replicas += d.replicas;
    usage.cpu += d.replicas * (d.cpu ?? 0);
    usage.memoryBytes += d.replicas * (d.memoryBytes ?? 0);
  }
  // Sums of decimal cores (0.1 + 0.2) read back as they were written.
  usage.cpu = Math.round(usage.cpu * 1000) / 1000;
  return usage;
}

const GIB = 1024 ** 3;

function show(name: keyof Quotas, value: number): string {
  if (name === 'memoryBytes') return `${Number((value / GIB).toFixed(3))} GiB`;
  if (name === 'cpu') return `${value} CPU`;
  return String(value);
}

/**
 * Each quota the usage goes over, as "replicas: 12 of 10", and each deployment without a limit under a CPU or
 * memory quota (it could take any amount).
 */
export function quotaProblems(
  quotas: Quotas,
  usage: Usage,
  unlimited: { cpu: boolean; memory: boolean },
): string[] {
  const problems: string[] = [];
  for (const name of ['deployments', 'replicas', 'cpu', 'memoryBytes'] as const) {
    const limit = quotas[name];
    if (limit !== undefined && usage[name] > limit)
      problems.push(
        `${name === 'memoryBytes' ? 'memory' : name}: ${show(name, usage[name])} of ${show(name, limit)}`,
      );
  }
  if (quotas.cpu !== undefined && unlimited.cpu) problems.push('cpu: a deployment has no CPU limit');
  if (quotas.memoryBytes !== undefined && unlimited.memory)
    problems.push('memory: a deployment has no memory limit');
  return problems;
}

/**
 * The most replicas one deployment may have within its tenant's quotas, given what the tenant's other deployments
 * use and what one replica of it takes (the autoscaler decides within this; ferry scale is refused beyond it).
 * Infinity when no quota bounds it.
 */
export function maxReplicasWithin(
  quotas: Quotas,
  others: Usage,
  perReplica: { cpu: number | null; memoryBytes: number | null },
): number {
  let max = Number.POSITIVE_INFINITY;
  if (quotas.replicas !== undefined) max = Math.min(max, quotas.replicas - others.replicas);
  if (quotas.cpu !== undefined && perReplica.cpu !== null && perReplica.cpu > 0)
    max = Math.min(max, Math.floor((quotas.cpu - others.cpu + 1e-9) / perReplica.cpu));
  if (quotas.memoryBytes !== undefined && perReplica.memoryBytes !== null && perReplica.memoryBytes > 0)
    max = Math.min(max, Math.floor((quotas.memoryBytes - others.memoryBytes) / perReplica.memoryBytes));
  return Math.max(0, max);
}
