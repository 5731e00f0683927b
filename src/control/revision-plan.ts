/**
 * The reconciler's pure diff for a runtime that keeps replicas itself (an orchestrator: Swarm; runtime/types.ts
 * RevisionRuntime): the desired revisions and the units the runtime lists -> which to ensure (create, or converge
 * on a replica count or a changed spec) and which to remove, and each deployment's `Ready` condition. No I/O, no
 * clock. Restarting crashed replicas and rescheduling a lost machine's are the orchestrator's, not decided here.
 *
 *   listed unit                                   -> action
 *   not Ferry's (no managed-by)                   -> none
 *   bad deployment or revision label              -> remove 'invalid-labels'
 *   deployment not desired                        -> remove 'orphaned'
 *   revision not desired                          -> remove 'revision-retired'
 *   desired, other replica count or spec hash     -> ensure (0 replicas: the unit stays, scaled to zero)
 *   desired, same                                 -> none
 * then every desired revision with replicas > 0 and no unit -> ensure (a revision wanted at 0 gets no unit made).
 *
 * A revision is desired when the deployment's step lists it, at 0 replicas too (autoscaled to zero, or scaled to 0
 * by hand, with its traffic kept): its unit waits at zero and starts again faster than a new one.
 *
 * Adoption after a control-plane restart is this same function on the listed units: it neither duplicates nor
 * orphans them.
 */
import { isManaged, readReplicaClaim } from './labels.ts';
import { type DesiredState, readyCondition } from './reconcile.ts';
import type { Condition, Revision } from './types.ts';

export interface ListedRevision {
  /** The unit's name (a Swarm service's). */
  name: string;
  labels: Record<string, string>;
  /** Replicas asked of the orchestrator. */
  replicas: number;
  /** Its replicas ready now. */
  ready: number;
}

export type RevisionAction =
  | { kind: 'ensure'; deployment: string; revision: Revision; replicas: number }
  | {
      kind: 'remove';
      name: string;
      deployment: string | undefined;
      revision: number | undefined;
      reason: 'invalid-labels' | 'orphaned' | 'revision-retired';
    };

export interface RevisionPlan {
  actions: RevisionAction[];
  conditions: Record<string, Condition[]>;
}

export function planRevisions(
  desired: DesiredState,
  listed: ListedRevision[],
  now: number,
  previous: Record<string, Condition[]> = {},
): RevisionPlan {
  const actions: RevisionAction[] = [];
  const wanted = new Map<string, Map<number, { revision: Revision; replicas: number }>>();
  for (const d of desired.deployments)
    wanted.set(d.name, new Map(d.revisions.map((r) => [r.revision.number, r])));
  const seen = new Set<string>();
  for (const unit of listed) {
    if (!isManaged(unit.labels)) continue;
    const claim = readReplicaClaim(unit.labels);
    const remove = (reason: 'invalid-labels' | 'orphaned' | 'revision-retired') =>
      actions.push({
        kind: 'remove',
        name: unit.name,
        deployment: claim.deployment,
        revision: claim.revision,
        reason,
      });
    if (claim.deployment === undefined || claim.revision === undefined) {
      remove('invalid-labels');
      continue;
    }
    const revisions = wanted.get(claim.deployment);
    if (revisions === undefined) {
      remove('orphaned');
      continue;
    }
    const want = revisions.get(claim.revision);
    const key = `${claim.deployment}@${claim.revision}`;
    if (want === undefined || seen.has(key)) {
      remove('revision-retired');
      continue;
    }
    seen.add(key);
    if (want.replicas !== unit.replicas || claim.specHash !== want.revision.specHash)
      actions.push({
        kind: 'ensure',
        deployment: claim.deployment,
        revision: want.revision,
        replicas: want.replicas,
      });
  }
  for (const [deployment, revisions] of wanted)
    for (const [number, want] of revisions)
      if (want.replicas > 0 && !seen.has(`${deployment}@${number}`))
        actions.push({ kind: 'ensure', deployment, revision: want.revision, replicas: want.replicas });

  const conditions: Record<string, Condition[]> = {};
  for (const d of desired.deployments) {
    const want = d.revisions.reduce((sum, r) => sum + r.replicas, 0);
    const numbers = new Set(d.revisions.map((r) => r.revision.number));
    const ready = listed
      .filter((u) => {
        const claim = readReplicaClaim(u.labels);
        return claim.deployment === d.name && claim.revision !== undefined && numbers.has(claim.revision);
      })
      .reduce((sum, u) => sum + u.ready, 0);
    conditions[d.name] = [readyCondition(want, Math.min(ready, want), undefined, now, previous[d.name])];
  }
  return { actions, conditions };
}
