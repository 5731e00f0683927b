/**
 * The phases of a cold start (issue 11): a deployment at zero replicas that the autoscaler starts again because
 * requests wait for it. Pure: the loop gathers the moments, this turns them into phases, the event's sentence and
 * what `ferry describe` shows.
 *
 *   decided      the autoscaler decided to start the deployment from zero (a request held at zero pokes it)
 *   image        (docker) its image became ready, when that was after the decision: it was still being built
 *                or pulled (a first deploy, or one whose image was not prepared at zero); else no such moment
 *   started      the runtime's ensure returned (process spawned; container created and started)
 *   listening    the replica's server listens             } reported by the server in its ready answer
 *   loaded       its model's workers are up with a session } (ReplicaStartup, src/core/replica.ts);
 *   warm         warm-up done, the server is ready         } absent from a server that does not report them
 *   ready        the control plane saw the replica ready (its readiness probe)
 *   released     the route table with the replica went to the gateway: the held requests went out to it
 *
 * Each phase is the time from one moment to the next. Moments are taken in this order and never earlier than the
 * one before (clocks: the control plane's and the replica's are the same machine's; a moment reported before the
 * previous one, e.g. a container's server starting before `docker start` returned, counts as no time).
 * Loading starts before the server listens, so `load` is the part of the model's load that boot did not cover.
 */
import type { ReplicaStartup } from '../core/replica.ts';
import { plainName } from '../core/tenant.ts';

/** The label values of ferry_cold_start_seconds{phase} (docs/metrics.md), in order; `total` is them all. */
export const COLD_START_PHASES = ['image', 'start', 'boot', 'load', 'warmup', 'ready', 'release'] as const;
export type ColdStartPhase = (typeof COLD_START_PHASES)[number];

/** What each phase measures (docs/autoscaling.md shows the same). */
export const PHASE_MEANING: Record<ColdStartPhase, string> = {
  image:
    'decision to its image ready, when the image was still being built or pulled (docker; else left out)',
  start: 'decision to the runtime having started the replica (process spawned, container started)',
  boot: "the replica started to its server listening (the server's own report)",
  load: 'listening to the model loaded (workers with their sessions; loading overlaps boot)',
  warmup: 'model loaded to the server ready (the warm-up request on every worker)',
  ready: 'server ready to the control plane seeing it ready (readiness probe)',
  release: 'seen ready to the route table at the gateway, which releases the held requests',
};

export interface ColdStartMoments {
  deployment: string;
  revision: number;
  replica: string;
  decidedAt: number;
  /** When the revision's image became ready, if that was after the decision (docker); null otherwise. */
  imageReadyAt: number | null;
  /** runtime.ensure returned. */
  startedAt: number;
  /** The server's report; null when it gave none. */
  startup: ReplicaStartup | null;
  readyAt: number;
  releasedAt: number;
  /** Requests the gateway held for the deployment when the route table went out. */
  held: number;
}

/** One cold start as events, metrics and `ferry describe` show it. Times in ms. */
export interface ColdStartView {
  revision: number;
  replica: string;
  /** When it was decided (ms since the epoch). */
  at: number;
  /** Decision to release. */
  totalMs: number;
  /** null: not reported (a server without the startup report). */
  phases: Record<ColdStartPhase, number | null>;
  held: number;
}

export function coldStartView(m: ColdStartMoments): ColdStartView {
  const s = m.startup;
  let last = m.decidedAt;
  const step = (at: number | null | undefined): number | null => {
    if (at === null || at === undefined) return null;
    const ms = Math.max(0, at - last);
    last = Math.max(last, at);
    return ms;
  };
  const image = m.imageReadyAt !== null && m.imageReadyAt > m.decidedAt ? step(m.imageReadyAt) : null;
  const start = step(m.startedAt);
  const boot = step(s?.listeningAt);
  const load = step(s?.modelLoadedAt);
  // To the server's readyAt, which follows the warm-up's end by a few microseconds.
  const warmup = step(s?.readyAt);
  const ready = step(m.readyAt);
  const release = step(m.releasedAt);
  return {
    revision: m.revision,
    replica: m.replica,
    at: m.decidedAt,
    totalMs: Math.max(0, last - m.decidedAt),
    phases: { image, start, boot, load, warmup, ready, release },
    held: m.held,
  };
}

const sec = (ms: number) => (ms / 1000).toFixed(2);

/** The phases in a line: "start 0.01 s, boot 0.18 s, ...", leaving out those not reported. */
export function phasesLine(v: ColdStartView): string {
  return COLD_START_PHASES.filter((p) => v.phases[p] !== null)
    .map((p) => `${p} ${sec(v.phases[p]!)} s`)
    .join(', ');
}

/** The ColdStart event's message. */
export function coldStartMessage(deployment: string, v: ColdStartView): string {
  return (
    `cold start of ${plainName(deployment)}: ready ${sec(v.totalMs - (v.phases.release ?? 0))} s after the decision to start it, ` +
    `held requests released at ${sec(v.totalMs)} s (revision ${v.revision}, ${v.replica}; ${phasesLine(v)}; ` +
    `${v.held} request(s) held)`
  );
}
