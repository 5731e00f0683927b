/**
 * Moving traffic by hand (`ferry traffic iris r1=90 r2=10`) without dropping a request: the split asked for
 * (the target) takes effect only once every revision it gives live traffic to has enough ready replicas for its
 * share. Until then the split in effect stays, and the revisions of both splits run side by side. Pure: the
 * controller feeds it the ready counts it observed.
 *
 * Decision table (N = the deployment's replicas, need(p) = ceil(N * p / 100), at least 1 when p > 0):
 *
 *   condition                                                   -> result
 *   every target revision with p > 0 has >= need(p) ready       -> apply the target
 *   (or N = 0: nothing serves, nothing to wait for)
 *   otherwise                                                   -> keep the split in effect
 *
 * With `byShare` (an autoscaled deployment) a revision runs need(p), its share, rather than N (routing.ts
 * steadyReplicas). Either way the replicas are those of both splits (per revision the larger count): a revision that loses its
 * traffic shrinks only on the next step, once the routes without it are out (as rollout.ts does).
 *
 * Shadow shares do not wait: a mirrored request's answer never reaches a client.
 */
import { steadyReplicas } from './routing.ts';
import type { TrafficEntry } from './store/store.ts';

export interface TrafficMoveStep {
  /** True: the target takes effect now. */
  apply: boolean;
  /** Replicas per revision (as a string key) to run now: both splits'. */
  desiredReplicas: Record<string, number>;
  /** Revisions still short of ready replicas, for status lines. Empty when apply is true. */
  waitingFor: Array<{ revision: number; ready: number; need: number }>;
}

export function needFor(replicas: number, percent: number): number {
  return percent <= 0 || replicas <= 0 ? 0 : Math.max(1, Math.ceil((replicas * percent) / 100));
}

export function stepTrafficMove(
  replicas: number,
  current: TrafficEntry[],
  target: TrafficEntry[],
  readyByRevision: Record<string, number>,
  byShare = false,
): TrafficMoveStep {
  const waitingFor = target
    .filter((t) => t.percent > 0)
    .map((t) => ({
      revision: t.revision,
      ready: readyByRevision[t.revision] ?? 0,
      need: needFor(replicas, t.percent),
    }))
    .filter((w) => w.ready < w.need);
  const desiredReplicas = steadyReplicas(replicas, current, byShare);
  for (const [rev, count] of Object.entries(steadyReplicas(replicas, target, byShare)))
    desiredReplicas[rev] = Math.max(desiredReplicas[rev] ?? 0, count);
  return { apply: waitingFor.length === 0, desiredReplicas, waitingFor };
}

/** One line for humans: what a waiting move waits for. */
export function trafficMoveMessage(waitingFor: TrafficMoveStep['waitingFor']): string {
  return `the new split waits for ${waitingFor.map((w) => `r${w.revision} (${w.ready}/${w.need} ready)`).join(', ')}`;
}

/** A split for humans: `r1 90%, r2 10% (shadow r3 20%)`. */
export function formatSplit(entries: TrafficEntry[]): string {
  const live = entries.filter((e) => e.percent > 0).map((e) => `r${e.revision} ${e.percent}%`);
  const shadow = entries.filter((e) => (e.shadow ?? 0) > 0).map((e) => `r${e.revision} ${e.shadow}%`);
  return `${live.join(', ')}${shadow.length > 0 ? ` (shadow ${shadow.join(', ')})` : ''}`;
}
