/**
 * How a deployment goes from what is applied to what is wanted on a cluster without dropping a request (issue 12,
 * `ferry k8s apply | promote | undo`). Pure: inputs in, steps out; src/k8s/rollout-run.ts applies each step and
 * waits until every Deployment of it (the revisions' and the gateway's) has rolled out before the next.
 *
 * | step                   | revisions            | traffic                        | why                                  |
 * |------------------------|----------------------|--------------------------------|--------------------------------------|
 * | start (new revisions)  | applied + new        | as applied                     | the new revision's pods get ready before any request is sent to them |
 * | canary p% (each < 100) | applied + new        | p% of the wanted split, the rest as applied | the gateway's split moves (its rollout shows every gateway has the table) |
 * | switch                 | applied + new        | the wanted split               | every gateway sends to the new revisions before the old ones go |
 * | finish                 | the wanted ones      | the wanted split               | revisions without traffic are pruned |
 *
 * A step equal to the one before it is left out: a first apply starts its revisions then routes to them, and an
 * unchanged one re-applies.
 */
import { isDeepStrictEqual } from 'node:util';
import type { RenderInput, RenderRevision } from './render.ts';

export interface RolloutStep {
  input: RenderInput;
  /** What the step does, for the progress lines. */
  say: string;
  /** A canary step: its percent (the rollout may pause after it). */
  canary?: number;
}

type Traffic = RenderInput['traffic'];

/** Two revisions run the same thing (everything but their number). */
export function sameRevision(a: RenderRevision, b: RenderRevision): boolean {
  return isDeepStrictEqual({ ...a, revision: 0 }, { ...b, revision: 0 });
}

/**
 * The input `ferry k8s apply` wants from a spec's (one revision at 100%, numbered anything): the revision keeps
 * the number of an applied revision that runs the same thing, else it gets `nextRevision`.
 */
export function wantedInput(
  applied: RenderInput | null,
  fromSpec: RenderInput,
  nextRevision: number,
): { input: RenderInput; revision: number; isNew: boolean } {
  const spec = fromSpec.revisions[0];
  if (spec === undefined) throw new Error('wantedInput: the spec input has no revision');
  const same = applied?.revisions.find((r) => sameRevision(r, spec));
  const revision = same?.revision ?? nextRevision;
  return {
    input: { ...fromSpec, revisions: [{ ...spec, revision }], traffic: [{ revision, percent: 100 }] },
    revision,
    isNew: same === undefined,
  };
}

/**
 * `percent`% of the way from one split to another: each revision's share is interpolated and rounded, and the
 * rounding is given to the largest share, so the split always adds up to 100. Shadows stay as they were.
 */
export function mixTraffic(from: Traffic, to: Traffic, percent: number): Traffic {
  const revisions = [...new Set([...from, ...to].map((t) => t.revision))].sort((a, b) => a - b);
  const share = (list: Traffic, r: number) => list.find((t) => t.revision === r)?.percent ?? 0;
  const mixed = revisions.map((revision) => ({
    revision,
    percent: Math.round((share(to, revision) * percent + share(from, revision) * (100 - percent)) / 100),
    shadow: from.find((t) => t.revision === revision)?.shadow ?? 0,
  }));
  const total = mixed.reduce((sum, t) => sum + t.percent, 0);
  const largest = mixed.reduce((a, b) => (b.percent > a.percent ? b : a), mixed[0]!);
  largest.percent += 100 - total;
  return mixed
    .filter((t) => t.percent > 0 || t.shadow > 0)
    .map((t) => (t.shadow > 0 ? t : { revision: t.revision, percent: t.percent }));
}

function describeTraffic(traffic: Traffic): string {
  return traffic
    .filter((t) => t.percent > 0)
    .map((t) => `r${t.revision} ${t.percent}%`)
    .join(', ');
}

/** The steps from `applied` (null: nothing yet) to `wanted`, with canary percents (each < 100) in between. */
export function rolloutSteps(
  appliedOrNone: RenderInput | null,
  wanted: RenderInput,
  canaryAsked: readonly number[] = [],
): RolloutStep[] {
  // The first apply starts from nothing: its revisions start, then the gateway routes to them (no canary: there is
  // nothing to compare with).
  const applied = appliedOrNone ?? { ...wanted, revisions: [], traffic: [] };
  const canary = appliedOrNone === null ? [] : canaryAsked;
  const wantedNumbers = new Set(wanted.revisions.map((r) => r.revision));
  const kept = applied.revisions.filter((r) => !wantedNumbers.has(r.revision));
  const both = [...kept, ...wanted.revisions].sort((a, b) => a.revision - b.revision);
  const appliedNumbers = new Set(applied.revisions.map((r) => r.revision));
  const started = wanted.revisions
    .filter((r) => !appliedNumbers.has(r.revision))
    .map((r) => `r${r.revision}`);
  const candidates: RolloutStep[] = [
    {
      input: { ...wanted, revisions: both, traffic: applied.traffic },
      say: started.length > 0 ? `start ${started.join(', ')}` : 'apply',
    },
    ...canary
      .filter((p) => p < 100)
      .map((p) => {
        const traffic = mixTraffic(applied.traffic, wanted.traffic, p);
        return {
          input: { ...wanted, revisions: both, traffic },
          say: `canary ${p}%: ${describeTraffic(traffic)}`,
          canary: p,
        };
      }),
    { input: { ...wanted, revisions: both }, say: `switch to ${describeTraffic(wanted.traffic)}` },
    {
      input: wanted,
      say: `remove ${kept.map((r) => `r${r.revision}`).join(', ')}`,
    },
  ];
  const steps: RolloutStep[] = [];
  for (const step of candidates) {
    const before = steps.at(-1)?.input ?? applied;
    if (!isDeepStrictEqual(step.input, before)) steps.push(step);
  }
  return steps.length > 0 ? steps : [{ input: wanted, say: 'apply (no change)' }];
}
