/**
 * Load balancing: which replica of the chosen revision gets a request. Two policies, both plain
 * functions over a snapshot of the replicas (the proxy keeps `outstanding` up to date: +1 when it
 * sends a request, -1 when the response ends).
 *
 * A replica is eligible when all hold:
 *
 * | ready | now < ejectedUntil | in `exclude` | eligible |
 * |-------|--------------------|--------------|----------|
 * | false | any                | any          | no       |
 * | true  | yes (ejected)      | any          | no       |
 * | true  | no / unset         | yes          | no       |
 * | true  | no / unset         | no           | yes      |
 *
 * `exclude` holds the replicas that already failed this request, so a retry never goes back to
 * the same replica. Both policies return `null` when no replica is eligible; the proxy then
 * answers 503 (or, for scale-from-zero, hands the request to the activator).
 */
import type { Random } from './random.ts';

export interface Replica {
  id: string;
  ready: boolean;
  /** Requests sent to this replica and not yet finished. */
  outstanding: number;
  /** Passive outlier ejection: the replica gets no traffic while `now < ejectedUntil`. */
  ejectedUntil?: number;
}

export function isEligible(replica: Replica, now: number, exclude?: ReadonlySet<string>): boolean {
  if (!replica.ready) return false;
  if (replica.ejectedUntil !== undefined && now < replica.ejectedUntil) return false;
  return !exclude?.has(replica.id);
}

/**
 * The eligible replica with the fewest outstanding requests. Ties go to the smallest id (string
 * order), so the result depends on the snapshot only, never on the order of the list.
 */
export function leastOutstanding(
  replicas: readonly Replica[],
  now: number,
  exclude?: ReadonlySet<string>,
): string | null {
  let best: Replica | undefined;
  for (const r of replicas) {
    if (!isEligible(r, now, exclude)) continue;
    if (
      best === undefined ||
      r.outstanding < best.outstanding ||
      (r.outstanding === best.outstanding && r.id < best.id)
    )
      best = r;
  }
  return best?.id ?? null;
}

/**
 * Power of two choices: sample two distinct eligible replicas at random and take the one with
 * fewer outstanding requests; on a tie, the first one sampled (itself a random choice, so equal
 * replicas share load evenly). One eligible replica is returned as is. Cheaper than a full scan of
 * outstanding counts across many gateway instances, and avoids herding onto one "best" replica.
 */
export function powerOfTwoChoices(
  replicas: readonly Replica[],
  now: number,
  random: Random,
  exclude?: ReadonlySet<string>,
): string | null {
  const eligible: Replica[] = [];
  for (const r of replicas) if (isEligible(r, now, exclude)) eligible.push(r);
  const n = eligible.length;
  if (n === 0) return null;
  if (n === 1) return eligible[0]!.id;
  const i = Math.floor(random() * n);
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++; // distinct from i, uniform over the others
  const a = eligible[i]!;
  const b = eligible[j]!;
  return b.outstanding < a.outstanding ? b.id : a.id;
}
