/**
 * A deployment's rollout as the store keeps it and as people read it: its strategy checked and converted
 * (`toStrategy`), whether it is over (`isDone`) and its one-line message (`rolloutMessage`). Pure; shared by
 * the loop (loop.ts), which steps rollouts, and the command service (commands.ts), which starts and shows them.
 */
import { FerryError } from '../core/errors.ts';
import type { RolloutState, RolloutStrategy } from './rollout.ts';
import type { StrategyInput } from './views.ts';

export function isDone(state: RolloutState): boolean {
  return state.phase === 'succeeded' || state.phase === 'aborted';
}

export function toStrategy(input: StrategyInput): RolloutStrategy {
  if (input.kind === 'canary') {
    if (!Array.isArray(input.steps) || input.steps.length === 0)
      throw new FerryError('FERRY_BAD_REQUEST', 'strategy.steps must list at least one canary step', {
        hint: 'e.g. {"kind":"canary","steps":[{"percent":10,"pauseMs":30000},{"percent":100}]}',
      });
    return {
      kind: 'canary',
      steps: input.steps.map((s) => ({
        percent: s.percent,
        ...(s.pauseMs === undefined ? {} : { pauseMs: s.pauseMs }),
      })),
    };
  }
  return { kind: 'rolling', ...(input.maxSurge === undefined ? {} : { maxSurge: input.maxSurge }) };
}

export function rolloutMessage(s: RolloutState): string {
  switch (s.phase) {
    case 'progressing':
      return `Revision ${s.target} has ${s.percent}% of traffic; waiting for its replicas to be ready`;
    case 'paused':
      return `Paused at ${s.percent}% on revision ${s.target}; ferry rollout promote ${s.deployment} continues`;
    case 'aborting':
      return `Aborting${s.reason ? ` (${s.reason})` : ''}: traffic goes back to revision ${s.stable}`;
    case 'aborted':
      return `Aborted${s.reason ? ` (${s.reason})` : ''}: revision ${s.stable} serves all traffic`;
    case 'succeeded':
      return `Revision ${s.target} serves all traffic`;
  }
}

/**
 * A running rollout told of a new replica count (ferry scale, the autoscaler): it keeps its step, with the count
 * it moves to; undefined when there is nothing to change (done, or 0 replicas: a rollout keeps at least one).
 */
export function rescaled(state: RolloutState, replicas: number): RolloutState | undefined {
  if (isDone(state) || replicas < 1) return undefined;
  return { ...state, replicas, moved: Math.min(state.moved, replicas) };
}
