/**
 * A rollout moves a deployment from its stable revision to a target revision without dropping a request.
 * `stepRollout` is a pure step in the style of knative's traffic rollout: it takes the state, what is
 * observed (ready replicas per revision) and `now`, and returns the next state, the traffic split, the
 * replica counts to reconcile and when to step again. Commands: `promote`, `abort`, `undo`.
 *
 * Two rules make it zero-downtime:
 *   1. Traffic moves to a revision only once enough of its replicas are ready.
 *   2. Replicas are counted from the traffic *in effect* (what the previous step published), so a revision
 *      is scaled down only a step after traffic left it. The caller applies `traffic` before it steps
 *      again; a step that moved traffic asks for the next one at once (`nextWakeAt = now`).
 *
 * Decision table (N = state.replicas, ready = ready replicas of the target, stable keeps N - moved):
 *
 *   strategy  phase        condition                                   -> result
 *   *         succeeded    -                                           -> 100% target, done
 *   *         aborted      -                                           -> 100% stable, done
 *   *         aborting     target has 0% in effect                     -> target scaled to 0, 'aborted', done
 *   *         aborting     stable has >= 1 ready                       -> 100% stable now (emergency brake)
 *   *         aborting     stable has 0 ready                          -> stable scaled to N, traffic waits
 *   *         in progress  target has 100% in effect                   -> stable scaled to 0, 'succeeded', done
 *   rolling   in progress  ready > moved                               -> target gets ready/N of the traffic
 *   rolling   in progress  -                                           -> target scaled to moved + maxSurge
 *   canary    step not     ready >= ceil(N * percent / 100)            -> target gets the step's percent
 *             reached
 *   canary    step reached pauseMs passed, or promoted                 -> next step
 *   canary    step reached pauseMs undefined, not promoted             -> 'paused' until promote()
 *
 * Canary steps must rise strictly within 1..100; a final 100% step is implied when missing. Traffic never
 * moves back on its own when a target replica fails: that is what `abort` is for.
 */
import { FerryError } from '../core/errors.ts';

export interface CanaryStep {
  percent: number;
  /** How long to hold this step once reached; undefined = hold until promote(). */
  pauseMs?: number;
}

export type RolloutStrategy =
  | { kind: 'rolling'; maxSurge?: number }
  | { kind: 'canary'; steps: CanaryStep[] };

export type RolloutPhase = 'progressing' | 'paused' | 'aborting' | 'succeeded' | 'aborted';

export interface RolloutState {
  deployment: string;
  replicas: number;
  stable: number;
  target: number;
  phase: RolloutPhase;
  /** Percent of traffic on the target as published by the last step. */
  percent: number;
  /** Replicas' worth of traffic moved to the target: the stable revision keeps `replicas - moved`. */
  moved: number;
  /** Canary: index of the step being worked on. */
  step: number;
  /** Canary: when traffic reached the current step; null until it does. */
  reachedAt: number | null;
  promoted: boolean;
  /** Why it was aborted, when the controller aborted it (the target revision failed); absent for a user's abort. */
  reason?: string;
}

export interface RolloutObservation {
  /** Ready replicas by revision number (as a string key). A missing revision has none ready. */
  readyByRevision: Record<string, number>;
}

export interface RolloutDecision {
  state: RolloutState;
  traffic: Array<{ revision: number; percent: number }>;
  desiredReplicas: Record<string, number>;
  nextWakeAt: number | null;
  done: boolean;
}

export function startRollout(init: {
  deployment: string;
  stable: number;
  target: number;
  replicas: number;
}): RolloutState {
  if (init.target === init.stable)
    throw bad(`${init.deployment} already serves revision ${init.target}; nothing to roll out`);
  if (!Number.isInteger(init.replicas) || init.replicas < 1)
    throw bad(`replicas for a rollout of ${init.deployment} must be an integer >= 1, got ${init.replicas}`);
  return { ...init, phase: 'progressing', percent: 0, moved: 0, step: 0, reachedAt: null, promoted: false };
}

export function stepRollout(
  state: RolloutState,
  observed: RolloutObservation,
  now: number,
  strategy: RolloutStrategy,
): RolloutDecision {
  const n = state.replicas;
  const ready = (rev: number) => observed.readyByRevision[String(rev)] ?? 0;
  const decide = (
    next: RolloutState,
    targetReplicas: number,
    stableReplicas: number,
    wake: number | null,
  ) => {
    const done = next.phase === 'succeeded' || next.phase === 'aborted';
    return {
      state: next,
      traffic: split(next),
      desiredReplicas: { [state.stable]: stableReplicas, [state.target]: targetReplicas },
      nextWakeAt: done ? null : next.percent !== state.percent ? now : wake,
      done,
    };
  };

  if (state.phase === 'succeeded') return decide(state, n, 0, null);
  if (state.phase === 'aborted') return decide(state, 0, n, null);
  if (state.phase === 'aborting') {
    if (state.percent === 0) return decide({ ...state, phase: 'aborted' }, 0, n, null);
    const back = ready(state.stable) >= 1 ? { ...state, percent: 0, moved: 0 } : state;
    return decide(back, Math.max(state.moved, needFor(n, state.percent)), n, null);
  }
  if (state.percent === 100) return decide({ ...state, phase: 'succeeded' }, n, 0, null);

  const stableReplicas = n - state.moved;
  if (strategy.kind === 'rolling') {
    const surge = strategy.maxSurge ?? 1;
    const moved = Math.max(state.moved, Math.min(n, ready(state.target)));
    const percent = moved === n ? 100 : Math.floor((100 * moved) / n);
    return decide({ ...state, moved, percent }, Math.min(n, state.moved + surge), stableReplicas, null);
  }

  const steps = canarySteps(strategy.steps);
  let next = { ...state };
  let wake: number | null = null;
  for (;;) {
    const step = steps[next.step]!;
    if (next.reachedAt === null) {
      if (ready(state.target) >= needFor(n, step.percent))
        next = {
          ...next,
          percent: step.percent,
          moved: Math.floor((n * step.percent) / 100),
          reachedAt: now,
        };
      break;
    }
    const pauseOver = next.promoted || (step.pauseMs !== undefined && now >= next.reachedAt + step.pauseMs);
    if (pauseOver) {
      next = { ...next, step: next.step + 1, reachedAt: null, promoted: false, phase: 'progressing' };
      continue;
    }
    if (step.pauseMs === undefined) next.phase = 'paused';
    else wake = next.reachedAt + step.pauseMs;
    break;
  }
  const targetReplicas = Math.max(needFor(n, steps[next.step]!.percent), needFor(n, state.percent));
  return decide(next, targetReplicas, stableReplicas, wake);
}

/** Ends the current canary pause (timed or manual). Readiness still gates the next step. */
export function promote(state: RolloutState): RolloutState {
  if (state.phase !== 'progressing' && state.phase !== 'paused')
    throw bad(
      `the rollout of ${state.deployment} to revision ${state.target} is ${state.phase}; nothing to promote`,
    );
  return { ...state, promoted: true, phase: 'progressing' };
}

/** All traffic back to the stable revision, then the target scaled to zero. Idempotent. `reason`: why. */
export function abort(state: RolloutState, reason?: string): RolloutState {
  if (state.phase === 'aborting' || state.phase === 'aborted') return state;
  if (state.phase === 'succeeded')
    throw bad(`the rollout of ${state.deployment} to revision ${state.target} already succeeded`, {
      hint: `ferry rollout undo ${state.deployment} --to ${state.stable} goes back to it`,
    });
  return { ...state, phase: 'aborting', promoted: false, ...(reason === undefined ? {} : { reason }) };
}

/**
 * Go back to an earlier revision: a new rollout from the revision now serving to `toRevision`. During a
 * rollout, undo to its stable revision is an abort; any other undo waits until the rollout ends.
 */
export function undo(state: RolloutState, toRevision: number): RolloutState {
  const serving =
    state.phase === 'succeeded' ? state.target : state.phase === 'aborted' ? state.stable : null;
  if (serving === null) {
    if (toRevision === state.stable) return abort(state);
    throw bad(`the rollout of ${state.deployment} to revision ${state.target} is still ${state.phase}`, {
      hint: `ferry rollout abort ${state.deployment} (back to revision ${state.stable}), or wait until it ends`,
    });
  }
  return startRollout({
    deployment: state.deployment,
    stable: serving,
    target: toRevision,
    replicas: state.replicas,
  });
}

/** Checked steps with the implied final 100%. */
export function canarySteps(steps: CanaryStep[]): CanaryStep[] {
  steps.forEach((s, i) => {
    const prev = i === 0 ? 0 : steps[i - 1]!.percent;
    if (!Number.isInteger(s.percent) || s.percent <= prev || s.percent > 100)
      throw bad(
        `strategy.steps[${i}].percent is ${s.percent}; steps must rise strictly within ${prev + 1}..100`,
        {
          hint: 'for example steps: [{ percent: 10, pauseMs: 60000 }, { percent: 50 }, { percent: 100 }]',
        },
      );
    if (s.pauseMs !== undefined && !(s.pauseMs >= 0))
      throw bad(
        `strategy.steps[${i}].pauseMs is ${s.pauseMs}; it must be >= 0 (or left out for a manual promote)`,
      );
  });
  return steps.at(-1)?.percent === 100 ? steps : [...steps, { percent: 100 }];
}

/** Replicas the target needs to carry `percent` of the traffic: at least one as soon as it carries any. */
function needFor(replicas: number, percent: number): number {
  return percent === 0 ? 0 : Math.max(1, Math.ceil((replicas * percent) / 100));
}

function split(s: RolloutState): Array<{ revision: number; percent: number }> {
  return [
    { revision: s.stable, percent: 100 - s.percent },
    { revision: s.target, percent: s.percent },
  ].filter((t) => t.percent > 0);
}

function bad(message: string, options: { hint?: string } = {}): FerryError {
  return new FerryError('FERRY_BAD_REQUEST', message, options);
}
