/**
 * Traffic split: which revision of a deployment serves a request, and which revisions get a
 * mirrored (shadow) copy of it. Pure: the table, the request's pin and a random source go in.
 *
 * A table row either serves (`percent > 0`) or shadows (`shadow > 0`), never both: a revision that
 * served a request must not receive a second copy of it. A row with `percent: 0` and no shadow is
 * still useful: it keeps the revision reachable by pinning (a "tagged" revision, as in Knative).
 *
 * Pinning (header `x-ferry-revision`), decided as follows:
 *
 * | pinned revision                                   | result                                |
 * |---------------------------------------------------|---------------------------------------|
 * | absent or ''                                      | weighted pick among serving rows      |
 * | in the table (any percent, shadow rows included)  | `{ revision, pinned: true }`          |
 * | not in the table but in `knownRevisions`          | `{ revision, pinned: true }`          |
 * | neither                                           | `{ error: 'unknown-revision' }`       |
 *
 * An unknown pin is an error, never a silent fallback to the split: whoever pins a revision wants
 * that revision's answer, and a fallback would hide a typo. `knownRevisions` lets the gateway
 * reach revisions that still run but carry no traffic (e.g. the previous one during a rollout).
 */
import type { Random } from './random.ts';

export interface TrafficTarget {
  revision: string;
  /** Share of requests this revision serves, 0..100; serving rows sum to 100. */
  percent: number;
  /** Share of requests mirrored to this revision (response discarded), 0..100. */
  shadow?: number;
}

export interface PickOptions {
  /** Value of the `x-ferry-revision` header, if any. */
  pinnedRevision?: string;
  /** Revisions that may be pinned although they are not in the table. */
  knownRevisions?: readonly string[];
}

export type PickResult =
  | { revision: string; pinned: boolean }
  | { error: 'unknown-revision'; revision: string }
  /** The table has no serving row (only reachable when it did not pass validateTraffic). */
  | { error: 'no-serving-revision' };

/** Percent sums are compared with this tolerance, so 33.3 + 33.3 + 33.4 is 100. */
const SUM_TOLERANCE = 1e-6;

function isShare(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 100;
}

/**
 * Every problem with a traffic table, each naming the row (`traffic[i]`) and what is allowed.
 * An empty list means the table is usable by pickRevision and shadowTargets.
 */
export function validateTraffic(targets: readonly TrafficTarget[]): string[] {
  const problems: string[] = [];
  if (targets.length === 0) return ['traffic: the table is empty; give at least one revision at 100 percent'];
  const seen = new Set<string>();
  let sum = 0;
  targets.forEach((t, i) => {
    const at = `traffic[${i}]`;
    if (typeof t.revision !== 'string' || t.revision === '')
      problems.push(`${at}.revision: must be a non-empty revision name`);
    else if (seen.has(t.revision))
      problems.push(`${at}.revision: '${t.revision}' appears twice; list each revision once`);
    else seen.add(t.revision);
    if (!isShare(t.percent))
      problems.push(`${at}.percent: ${String(t.percent)} is not a number from 0 to 100`);
    else sum += t.percent;
    if (t.shadow !== undefined && !isShare(t.shadow))
      problems.push(`${at}.shadow: ${String(t.shadow)} is not a number from 0 to 100`);
    else if (isShare(t.percent) && t.percent > 0 && (t.shadow ?? 0) > 0)
      problems.push(
        `${at}: '${t.revision}' both serves (percent ${t.percent}) and shadows (shadow ${t.shadow}); ` +
          'a revision either serves or receives mirrored copies, set one of them to 0',
      );
  });
  if (Math.abs(sum - 100) > SUM_TOLERANCE)
    problems.push(`traffic: serving percents sum to ${Number(sum.toFixed(6))}; they must sum to 100`);
  return problems;
}

/** Picks the revision for one request: the pin if there is one, else a weighted draw. */
export function pickRevision(
  targets: readonly TrafficTarget[],
  options: PickOptions,
  random: Random,
): PickResult {
  const pin = options.pinnedRevision;
  if (pin !== undefined && pin !== '') {
    if (targets.some((t) => t.revision === pin) || options.knownRevisions?.includes(pin))
      return { revision: pin, pinned: true };
    return { error: 'unknown-revision', revision: pin };
  }
  let total = 0;
  for (const t of targets) if (t.percent > 0) total += t.percent;
  if (total <= 0) return { error: 'no-serving-revision' };
  // Cumulative walk; scaling by the actual total keeps the draw fair even if the sum drifts from 100.
  const draw = random() * total;
  let cumulative = 0;
  let last = '';
  for (const t of targets) {
    if (t.percent <= 0) continue;
    cumulative += t.percent;
    last = t.revision;
    if (draw < cumulative) return { revision: t.revision, pinned: false };
  }
  return { revision: last, pinned: false }; // only reached through floating-point rounding
}

/**
 * Revisions that get a mirrored copy of this request, in table order. Each shadow row draws
 * independently: a row with `shadow: 10` receives about 10% of requests. The gateway sends the
 * copies after (or beside) the real request and discards their responses.
 */
export function shadowTargets(targets: readonly TrafficTarget[], random: Random): string[] {
  const out: string[] = [];
  for (const t of targets) {
    const share = t.shadow ?? 0;
    if (share > 0 && random() * 100 < share) out.push(t.revision);
  }
  return out;
}
