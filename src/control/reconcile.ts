/**
 * The reconciler's pure diff: desired revisions and the replicas a runtime lists -> actions, conditions
 * and the next time to look again. No I/O, no clock: `now` is an argument. Adoption after a control-plane
 * restart is this same function on the listed replicas; it neither duplicates nor orphans them.
 *
 * Every replica carries the labels of labels.ts. Decision table, per listed replica, first match wins:
 *
 *   managed-by   deployment  revision   spec-hash  slot                       -> action
 *   not ferry    *           *          *          *                          -> none (not ours)
 *   ferry        bad label   *          *          *                          -> remove 'invalid-labels'
 *   ferry        not desired *          *          *                          -> remove 'orphaned'
 *   ferry        desired     not listed *          *                          -> remove 'revision-retired'
 *   ferry        desired     listed     bad label  or bad slot label          -> remove 'invalid-labels'
 *   ferry        desired     listed     differs    *                          -> remove 'spec-changed'
 *   ferry        desired     listed     same       taken by a better replica  -> remove 'duplicate'
 *   ferry        desired     listed     same       more kept than desired     -> remove 'scale-down'
 *   ferry        desired     listed     same       failed/exited, backoff due -> remove 'crashed' + create
 *   ferry        desired     listed     same       failed/exited, not due     -> wait (nextWakeAt)
 *   ferry        desired     listed     same       otherwise                  -> keep
 * then each revision gets `create` actions for its free slots, lowest index first.
 *
 * "Better" in a slot: ready > starting > failed/exited, then the older one (it was serving first), then id.
 * Scale-down removes failed/exited first, then starting, then ready; among equals the highest slot (the
 * newest) first. A ready replica is drained right before it is removed.
 *
 * Crash loops: a revision's crash record counts passes that saw a new crash (`consecutive`). A crashed
 * replica is replaced at lastCrashAt + min(maxMs, baseMs * 2^(consecutive-1)). The record is forgotten
 * once no replica of the revision has crashed for `resetAfterMs` (default 10 minutes, as Kubernetes).
 *
 * Condition `Ready` per deployment:
 *   crashed replica waiting, or consecutive >= 2 with too few ready -> False   CrashLoopBackOff
 *   all desired replicas ready                                      -> True    AllReplicasReady
 *   otherwise                                                       -> Unknown Progressing
 */
import { isManaged, readReplicaClaim } from './labels.ts';
import type { Action, ActualReplica, Condition, RemoveReason, Revision } from './types.ts';

export interface DesiredState {
  deployments: Array<{ name: string; revisions: Array<{ revision: Revision; replicas: number }> }>;
}

export interface ReconcilePolicy {
  backoff: { baseMs: number; maxMs: number; resetAfterMs?: number };
}

export interface CrashRecord {
  /** Passes that saw a new crash since the record was last reset. */
  consecutive: number;
  lastExitCode: number | undefined;
  lastCrashAt: number;
  /** Ids of listed crashed replicas already counted, so a crash seen twice counts once. */
  counted: string[];
}

/** Keyed by crashKey(deployment, revision). Feed each result's `history` into the next pass. */
export type CrashHistory = Record<string, CrashRecord>;

export interface ReconcileResult {
  actions: Action[];
  conditions: Record<string, Condition[]>;
  /** When a waiting crash backoff ends; null when nothing waits on time. */
  nextWakeAt: number | null;
  history: CrashHistory;
}

export const DEFAULT_RESET_AFTER_MS = 10 * 60_000;

export function crashKey(deployment: string, revision: number): string {
  return `${deployment}@${revision}`;
}

export function crashBackoffMs(consecutive: number, backoff: ReconcilePolicy['backoff']): number {
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, consecutive - 1));
}

export function reconcile(
  desired: DesiredState,
  actual: ActualReplica[],
  now: number,
  policy: ReconcilePolicy,
  history: CrashHistory = {},
  previous: Record<string, Condition[]> = {},
): ReconcileResult {
  const actions: Action[] = [];
  const remove = (r: ActualReplica, reason: RemoveReason) => {
    if (r.state === 'ready') actions.push({ kind: 'drain', id: r.id });
    actions.push({ kind: 'remove', id: r.id, reason });
  };

  // Sort listed replicas into their revision's group, removing the ones that belong nowhere.
  const groups = new Map<string, Array<{ replica: ActualReplica; index: number }>>();
  const wanted = new Map<string, Map<number, Revision>>();
  for (const d of desired.deployments) {
    wanted.set(d.name, new Map(d.revisions.map((r) => [r.revision.number, r.revision])));
    for (const r of d.revisions) groups.set(crashKey(d.name, r.revision.number), []);
  }
  for (const replica of actual) {
    if (!isManaged(replica.labels)) continue;
    const claim = readReplicaClaim(replica.labels);
    if (claim.deployment === undefined || claim.revision === undefined) {
      remove(replica, 'invalid-labels');
      continue;
    }
    const revisions = wanted.get(claim.deployment);
    const rev = revisions?.get(claim.revision);
    if (!revisions) remove(replica, 'orphaned');
    else if (!rev) remove(replica, 'revision-retired');
    else if (claim.specHash === undefined || claim.index === undefined) remove(replica, 'invalid-labels');
    else if (claim.specHash !== rev.specHash) remove(replica, 'spec-changed');
    else groups.get(crashKey(claim.deployment, claim.revision))!.push({ replica, index: claim.index });
  }

  const nextHistory: CrashHistory = {};
  const conditions: Record<string, Condition[]> = {};
  let nextWakeAt: number | null = null;
  for (const d of desired.deployments) {
    let want = 0;
    let ready = 0;
    let crashLoop: { revision: number; record: CrashRecord; dueAt: number | null } | undefined;
    for (const { revision, replicas } of d.revisions) {
      const key = crashKey(d.name, revision.number);
      const kept = keepBestPerSlot(groups.get(key)!, remove);
      for (const extra of kept.splice(replicas).reverse()) remove(extra.replica, 'scale-down');

      const crashed = kept.filter((k) => isCrashed(k.replica));
      const record = updateCrashRecord(history[key], crashed, actual, now, policy);
      if (record) nextHistory[key] = record;
      // All crashed replicas of a revision share its backoff.
      const dueAt = record ? record.lastCrashAt + crashBackoffMs(record.consecutive, policy.backoff) : 0;
      const waiting = crashed.length > 0 && now < dueAt;
      for (const k of waiting ? [] : crashed) {
        remove(k.replica, 'crashed');
        actions.push({ kind: 'create', deployment: d.name, revision, index: k.index });
      }
      if (waiting) nextWakeAt = Math.min(nextWakeAt ?? dueAt, dueAt);

      const revReady = kept.filter((k) => k.replica.state === 'ready').length;
      want += replicas;
      ready += revReady;
      if (record && !crashLoop && (waiting || (record.consecutive >= 2 && revReady < replicas)))
        crashLoop = { revision: revision.number, record, dueAt: waiting ? dueAt : null };

      const used = new Set(kept.map((k) => k.index));
      for (let index = 0, missing = replicas - kept.length; missing > 0; index++) {
        if (used.has(index)) continue;
        actions.push({ kind: 'create', deployment: d.name, revision, index });
        missing--;
      }
    }
    conditions[d.name] = [readyCondition(want, ready, crashLoop, now, previous[d.name])];
  }
  return { actions, conditions, nextWakeAt, history: nextHistory };
}

type Slotted = { replica: ActualReplica; index: number };

const isCrashed = (r: ActualReplica) => r.state === 'failed' || r.state === 'exited';
const stateRank = (r: ActualReplica) => (r.state === 'ready' ? 0 : r.state === 'starting' ? 1 : 2);

/** Per slot the best replica stays, the rest are duplicates. Returns the kept, best first. */
function keepBestPerSlot(group: Slotted[], remove: (r: ActualReplica, why: RemoveReason) => void): Slotted[] {
  const better = (a: Slotted, b: Slotted) =>
    stateRank(a.replica) - stateRank(b.replica) ||
    a.replica.startedAt - b.replica.startedAt ||
    (a.replica.id < b.replica.id ? -1 : 1);
  const bySlot = new Map<number, Slotted>();
  for (const s of [...group].sort(better)) {
    if (bySlot.has(s.index)) remove(s.replica, 'duplicate');
    else bySlot.set(s.index, s);
  }
  // Order for scale-down: what stays first (ready, low slots), what goes last (crashed, high slots).
  return [...bySlot.values()].sort(
    (a, b) => stateRank(a.replica) - stateRank(b.replica) || a.index - b.index,
  );
}

function updateCrashRecord(
  prev: CrashRecord | undefined,
  crashed: Slotted[],
  actual: ActualReplica[],
  now: number,
  policy: ReconcilePolicy,
): CrashRecord | undefined {
  const listed = new Set(actual.map((r) => r.id));
  const counted = (prev?.counted ?? []).filter((id) => listed.has(id));
  const fresh = crashed.filter((c) => !counted.includes(c.replica.id));
  if (fresh.length > 0) {
    return {
      consecutive: (prev?.consecutive ?? 0) + 1,
      lastExitCode: fresh[fresh.length - 1]!.replica.exitCode,
      lastCrashAt: now,
      counted: [...counted, ...fresh.map((c) => c.replica.id)],
    };
  }
  if (!prev) return undefined;
  const resetAfter = policy.backoff.resetAfterMs ?? DEFAULT_RESET_AFTER_MS;
  if (crashed.length === 0 && now - prev.lastCrashAt >= resetAfter) return undefined;
  return { ...prev, counted };
}

export function readyCondition(
  want: number,
  ready: number,
  crashLoop: { revision: number; record: CrashRecord; dueAt: number | null } | undefined,
  now: number,
  previous: Condition[] | undefined,
): Condition {
  let next: Omit<Condition, 'since'>;
  if (crashLoop) {
    const { revision, record, dueAt } = crashLoop;
    const code = record.lastExitCode === undefined ? 'unknown' : String(record.lastExitCode);
    const wait = dueAt === null ? '' : `; next start in ${Math.ceil((dueAt - now) / 1000)}s`;
    next = {
      type: 'Ready',
      status: 'False',
      reason: 'CrashLoopBackOff',
      message: `revision ${revision} crashed ${record.consecutive} time(s) in a row, last exit code ${code}${wait}`,
    };
  } else if (ready >= want) {
    next = {
      type: 'Ready',
      status: 'True',
      reason: 'AllReplicasReady',
      message: `${ready} of ${want} ready`,
    };
  } else {
    next = { type: 'Ready', status: 'Unknown', reason: 'Progressing', message: `${ready} of ${want} ready` };
  }
  const old = previous?.find((c) => c.type === next.type);
  const since = old && old.status === next.status && old.reason === next.reason ? old.since : now;
  return { ...next, since };
}
