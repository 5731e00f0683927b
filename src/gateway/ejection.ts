/**
 * Passive outlier ejection: a replica whose requests keep failing stops getting traffic for a
 * while, without any active health check. A pure state machine: `onResult` takes the state, one
 * request's outcome and `now`, and returns the next state; nothing here reads a clock.
 *
 * Per replica, for a result at `now` (`threshold` = policy.consecutiveFailures):
 *
 * | replica at `now`                          | result | next                                         |
 * |-------------------------------------------|--------|----------------------------------------------|
 * | ejected (now < ejectedUntil)              | any    | unchanged (late answers to old requests)     |
 * | probing (first result after an ejection)  | ok     | serving, failures 0                          |
 * | probing                                   | fail   | ejected again, longer (one probe, not five)  |
 * | serving                                   | ok     | failures 0                                   |
 * | serving, failures + 1 < threshold         | fail   | failures + 1                                 |
 * | serving, failures + 1 >= threshold        | fail   | ejected (if under the cap, else serving)     |
 *
 * Ejection length: `baseEjectionMs * 2^(k-1)`, capped at `maxEjectionMs`, for the k-th ejection
 * in a row. The count starts over at 1 when the previous ejection ended more than `maxEjectionMs`
 * before this one (the replica has been healthy long enough to be forgiven).
 *
 * Cap: at most `floor(n * maxEjectedPercent / 100)` of the n known replicas are ejected at once;
 * when the cap is reached a failing replica keeps serving (a bad replica beats no replica). With
 * one replica, or a percent under 100/n, nothing is ever ejected. The replica set is the state's:
 * build it with `ejectionState(ids)` and keep it current with `syncReplicas` as replicas come and
 * go; a result from an id the state has not seen adds that id.
 */

export interface EjectionPolicy {
  /** Consecutive failures that eject a serving replica (>= 1). */
  consecutiveFailures: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** 0..100: never eject more than this share of the replicas at once. */
  maxEjectedPercent: number;
}

export interface ReplicaHealth {
  /** Consecutive failures while serving. */
  failures: number;
  /** Ejections in the current run; drives the exponential backoff. */
  ejections: number;
  /** End of the current or last ejection. */
  ejectedUntil?: number;
  /** The ejection has ended and no result has come back since: the next result decides. */
  probing: boolean;
}

export interface EjectionState {
  readonly replicas: Readonly<Record<string, ReplicaHealth>>;
}

const HEALTHY: ReplicaHealth = { failures: 0, ejections: 0, probing: false };

export function ejectionState(replicaIds: Iterable<string>): EjectionState {
  const replicas: Record<string, ReplicaHealth> = {};
  for (const id of replicaIds) replicas[id] = HEALTHY;
  return { replicas };
}

/** Keeps the health of replicas still present, adds new ones as healthy, forgets removed ones. */
export function syncReplicas(state: EjectionState, replicaIds: Iterable<string>): EjectionState {
  const replicas: Record<string, ReplicaHealth> = {};
  for (const id of replicaIds) replicas[id] = state.replicas[id] ?? HEALTHY;
  return { replicas };
}

export function isEjected(state: EjectionState, id: string, now: number): boolean {
  const until = state.replicas[id]?.ejectedUntil;
  return until !== undefined && now < until;
}

function ejectionMs(k: number, policy: EjectionPolicy): number {
  return Math.min(policy.baseEjectionMs * 2 ** (k - 1), policy.maxEjectionMs);
}

function underCap(state: EjectionState, id: string, now: number, policy: EjectionPolicy): boolean {
  const ids = Object.keys(state.replicas);
  const allowed = Math.floor((ids.length * policy.maxEjectedPercent) / 100);
  let ejected = 0;
  for (const other of ids) if (other !== id && isEjected(state, other, now)) ejected++;
  return ejected < allowed;
}

export function onResult(
  state: EjectionState,
  replicaId: string,
  ok: boolean,
  now: number,
  policy: EjectionPolicy,
): EjectionState {
  const known = state.replicas[replicaId];
  if (known === undefined) state = { replicas: { ...state.replicas, [replicaId]: HEALTHY } };
  const h = known ?? HEALTHY;
  if (h.ejectedUntil !== undefined && now < h.ejectedUntil) return state;

  let next: ReplicaHealth;
  if (ok) {
    if (h.failures === 0 && !h.probing) return state; // the common case allocates nothing
    next = { ...h, failures: 0, probing: false };
  } else {
    const failures = h.failures + 1;
    if ((h.probing || failures >= policy.consecutiveFailures) && underCap(state, replicaId, now, policy)) {
      const forgiven = h.ejectedUntil === undefined || now - h.ejectedUntil > policy.maxEjectionMs;
      const ejections = forgiven ? 1 : h.ejections + 1;
      next = { failures: 0, ejections, ejectedUntil: now + ejectionMs(ejections, policy), probing: true };
    } else {
      next = { ...h, failures };
    }
  }
  return { replicas: { ...state.replicas, [replicaId]: next } };
}
