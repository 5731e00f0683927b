/**
 * Where a Deployment's rollout stands, from its status as the cluster reports it (issue 12, `ferry k8s status`).
 * Pure. The rules are kubectl's (`kubectl rollout status`, pkg/polymorphichelpers/rollout_status.go), in order:
 *
 * | the Deployment's status                                                | state       |
 * |------------------------------------------------------------------------|-------------|
 * | observedGeneration < metadata.generation                               | progressing: the controller has not seen the change yet |
 * | condition Progressing False, reason ProgressDeadlineExceeded           | failed      |
 * | updatedReplicas < wanted                                               | progressing: n of wanted updated |
 * | replicas > updatedReplicas                                             | progressing: old replicas being removed |
 * | availableReplicas < updatedReplicas                                    | progressing: n of m available |
 * | otherwise                                                              | complete    |
 *
 * `wanted` is spec.replicas (0 when KEDA scaled the revision to zero: complete, as kubectl says), or, when the
 * object has none (as rendered under an HPA, before the API server defaults it), status.replicas, else 1.
 */
import type { KubernetesObject } from './types.ts';

export type RolloutState = 'progressing' | 'complete' | 'failed';

export interface RolloutStatus {
  state: RolloutState;
  /** One sentence: what it waits for, or why it failed. */
  message: string;
}

interface DeploymentLike {
  metadata: { name: string; generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}

export function rolloutStatus(deployment: KubernetesObject): RolloutStatus {
  const d = deployment as unknown as DeploymentLike;
  const name = d.metadata.name;
  const s = d.status ?? {};
  const generation = d.metadata.generation ?? 0;
  if ((s.observedGeneration ?? 0) < generation)
    return { state: 'progressing', message: `${name}: waiting for the cluster to see the new spec` };
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded')
    return {
      state: 'failed',
      message: `${name}: the rollout exceeded its progress deadline${progressing.message ? ` (${progressing.message})` : ''}`,
    };
  const wanted = d.spec?.replicas ?? s.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  if (updated < wanted)
    return { state: 'progressing', message: `${name}: ${updated} of ${wanted} replicas updated` };
  if ((s.replicas ?? 0) > updated)
    return {
      state: 'progressing',
      message: `${name}: ${(s.replicas ?? 0) - updated} old replica(s) being removed`,
    };
  const available = s.availableReplicas ?? 0;
  if (available < updated)
    return {
      state: 'progressing',
      message: `${name}: ${available} of ${updated} updated replicas available`,
    };
  if (wanted === 0) return { state: 'complete', message: `${name}: scaled to zero` };
  return { state: 'complete', message: `${name}: ${available} of ${wanted} replicas available` };
}

/** The deployments' rollouts together: failed if one failed, progressing if one is, else complete. */
export function overallStatus(statuses: readonly RolloutStatus[]): RolloutState {
  if (statuses.some((s) => s.state === 'failed')) return 'failed';
  if (statuses.some((s) => s.state === 'progressing')) return 'progressing';
  return 'complete';
}
