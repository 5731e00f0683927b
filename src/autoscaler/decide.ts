/**
 * Ferry's scaling policy: a pure function of (now, observation, settings, state), run every second and at once
 * when a request is held at zero. Knative's KPA is the model (stable and panic windows, rates, grace); Ferry adds
 * activation without waiting for a tick, "no data" that holds instead of scaling down, and batching-aware load
 * (a replica whose batches are full counts as full whatever its concurrency).
 *
 * Load L over a window = max(metric average, saturated load average): the metric is requests in flight
 * (`concurrency`) or arrivals per second (`rps`); a sample's saturated load is its saturation (the replicas' own
 * fullness: batch fill, queue) x the replicas ready then x target, fixed when the sample is taken in (so the
 * replicas a decision adds do not rescale old samples).
 * Per-replica aim T = target x targetUtilization, target = settings.target ?? observation.derivedTarget ??
 * DEFAULT_TARGET. Wanted W(window) = ceil(L / T).
 *
 * | # | condition (first that holds)                                   | desired                                     | reason says           |
 * |---|----------------------------------------------------------------|---------------------------------------------|-----------------------|
 * | 1 | requests held with nothing ready (held > 0, ready 0)           | max(1, current, ceil(held / T)): at once,   | activate              |
 * |   |                                                                | never down; a burst at zero starts enough   |                       |
 * | 2 | no sample in the stable window (no data; not zero)             | the current desired (initialScale at first) | no data: holding      |
 * | 3 | panic: W(panic window) >= panicThreshold x max(ready, 1)       | max(W(panic), current): never down in panic | ... (panic)           |
 * | 4 | still in panic (less than a stable window since it last held)  | max(W(panic), current)                      | ... (panic)           |
 * | 5 | otherwise, going up or steady                                  | W(stable)                                   | ... over 60 s         |
 * | 6 | otherwise, going down                                          | max(W(stable), W(panic)): the recent load   | ... over 60 s         |
 * |   |                                                                | must have fallen too, not only the average  |                       |
 *
 * Then, in order: at most ceil(maxScaleUpRate x max(ready, 1)) and at least floor(ready / maxScaleDownRate);
 * never down while less than a stable window has passed since the policy began (the deployment became
 * autoscaled, or the control plane started): a window that is not full yet is no minute's average, and a second
 * of quiet must not undo the replicas a deploy just started;
 * a scale-down waits until every decision of the last scaleDownDelay agrees (the highest of them wins); 0 only
 * when minReplicas is 0, the stable window has data and says 0, and the last request is scaleToZeroGrace old
 * (else 1); finally within [minReplicas, maxReplicas].
 */
import { DEFAULT_TARGET } from './settings.ts';
import type { Decision, Observation, Policy, ScalingSettings } from './types.ts';
import { add, emptyWindow, stats, trim, type Window, type WindowStats } from './windows.ts';

export interface FerryState {
  window: Window;
  /** The last decision. */
  desired: number;
  /** When the panic condition last held; null outside panic. */
  panicAt: number | null;
  /** Recent decisions before the scale-down delay (time, wanted), oldest first. */
  recent: ReadonlyArray<{ at: number; want: number }>;
  /** When a request was last seen (arriving, in flight or held); null when never. */
  lastActivity: number | null;
  /** When the policy began for this deployment (initialState's now). */
  since: number;
}

const clamp = (n: number, s: ScalingSettings) => Math.min(s.maxReplicas, Math.max(s.minReplicas, n));

function load(st: WindowStats, s: ScalingSettings): number {
  return Math.max(s.metric === 'rps' ? st.rps : st.concurrency, st.saturatedLoad ?? 0);
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function initialState(settings: ScalingSettings, now: number): FerryState {
  return {
    since: now,
    window: emptyWindow(),
    desired: clamp(settings.initialScale, settings),
    panicAt: null,
    recent: [],
    lastActivity: null,
  };
}

export function decide(
  now: number,
  observation: Observation,
  settings: ScalingSettings,
  state: FerryState,
): Decision<FerryState> {
  const s = settings;
  let window = state.window;
  let lastActivity = state.lastActivity;
  const target = s.target ?? observation.derivedTarget ?? DEFAULT_TARGET;
  for (const sample of observation.samples) {
    window = add(window, {
      ...sample,
      ...(sample.saturation === undefined
        ? {}
        : { saturatedLoad: sample.saturation * observation.ready * target }),
    });
    if (sample.arrivals > 0 || sample.concurrency > 0) lastActivity = Math.max(lastActivity ?? 0, sample.at);
  }
  if (observation.held > 0) lastActivity = now;
  window = trim(window, now, s.stableWindowMs);
  const aim = target * s.targetUtilization;
  const ready = observation.ready;
  const base = { window, lastActivity };
  const done = (desired: number, reason: string, extra: Partial<FerryState> = {}): Decision<FerryState> => ({
    desired,
    reason,
    changed: desired !== state.desired,
    state: {
      ...state,
      ...base,
      ...extra,
      desired,
      recent: [...(extra.recent ?? state.recent)],
    },
  });

  // 1: requests wait with nothing ready: start enough for them now, without waiting for data or a tick (the
  // gateway asks again as more are held, so a burst at zero starts its replicas together, not one per tick).
  if (observation.held > 0 && ready === 0) {
    const desired = Math.max(1, clamp(Math.max(1, state.desired, Math.ceil(observation.held / aim)), s));
    return done(
      desired,
      `activate: ${observation.held} request(s) held with no replica${desired > 1 ? `, ${desired} for them` : ''}`,
      { panicAt: null },
    );
  }

  const stable = stats(window, now, s.stableWindowMs);
  // 2: no data is not zero: hold.
  if (stable === null) return done(clamp(state.desired, s), `no data: holding ${clamp(state.desired, s)}`);

  const panic = stats(window, now, s.panicWindowMs);
  const readyForRatio = Math.max(ready, 1);
  const panicLoad = panic === null ? 0 : load(panic, s);
  const wantPanic = Math.ceil(panicLoad / aim);
  const stableLoad = load(stable, s);
  const wantStable = Math.ceil(stableLoad / aim);
  let panicAt = state.panicAt;
  if (panic !== null && wantPanic >= s.panicThreshold * readyForRatio) panicAt = now;
  else if (panicAt !== null && now - panicAt >= s.stableWindowMs) panicAt = null;
  const inPanic = panicAt !== null;

  // Down only as far as the last panic window still needs: the load fell, not just the long average.
  let want = inPanic
    ? Math.max(wantPanic, state.desired)
    : wantStable < state.desired
      ? Math.min(state.desired, Math.max(wantStable, wantPanic))
      : wantStable;
  const shown = inPanic ? panicLoad : stableLoad;
  const span = inPanic ? s.panicWindowMs : s.stableWindowMs;
  const shownStats = inPanic ? panic : stable;
  const metricLoad = shownStats === null ? 0 : s.metric === 'rps' ? shownStats.rps : shownStats.concurrency;
  // When the replicas' own measure (full batches, queues) is what decides, say so rather than a metric it is not.
  const what =
    shown > metricLoad
      ? `replicas' own load ${fmt(shown)} (${s.metric} ${fmt(metricLoad)}; their batches or queues are full)`
      : `${s.metric} ${fmt(shown)}`;
  let reason = `${what} over ${fmt(span / 1000)} s${inPanic ? ' (panic)' : ''}, target ${fmt(target)}`;

  // Rates relative to what is ready.
  want = Math.min(want, Math.max(1, Math.ceil(s.maxScaleUpRate * readyForRatio)));
  want = Math.max(want, Math.floor(ready / s.maxScaleDownRate));

  // Not down on a window that is not full yet.
  if (want < state.desired && now - state.since < s.stableWindowMs) {
    want = state.desired;
    reason += `; not down before ${fmt(s.stableWindowMs / 1000)} s of data`;
  }

  // Scale-down delay: the highest wish of the delay window.
  const recent = [...state.recent.filter((r) => now - r.at <= s.scaleDownDelayMs), { at: now, want }];
  if (want < state.desired && s.scaleDownDelayMs > 0) {
    const held = Math.max(...recent.map((r) => r.want));
    if (held > want) {
      want = held;
      reason += `; scale-down waits ${fmt(s.scaleDownDelayMs / 1000)} s`;
    }
  }

  // Zero only after the grace, and only when allowed.
  if (want === 0) {
    if (s.minReplicas > 0) want = s.minReplicas;
    else if (lastActivity !== null && now - lastActivity < s.scaleToZeroGraceMs) {
      want = 1;
      reason += `; idle ${fmt((now - lastActivity) / 1000)} s, zero after ${fmt(s.scaleToZeroGraceMs / 1000)} s`;
    } else if (state.desired > 0) reason += '; idle: scale to zero';
  }

  return done(clamp(want, s), reason, { panicAt, recent });
}

export const ferryPolicy: Policy<FerryState> = {
  name: 'ferry',
  initial: initialState,
  decide,
};
