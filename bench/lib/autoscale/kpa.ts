/**
 * Knative's Pod Autoscaler (KPA) with its documented defaults, as a pure Policy (src/autoscaler/types.ts), for
 * bench/autoscale.ts to run on the same virtual-clock trace as Ferry's policy. Written from the documentation and
 * the default config map, not copied from Knative's code. Sources (numbers cited per field below):
 *   [kpa]   https://knative.dev/docs/serving/autoscaling/kpa-specific/      (windows, panic, rates)
 *   [conc]  https://knative.dev/docs/serving/autoscaling/concurrency/       (target, target utilization)
 *   [zero]  https://knative.dev/docs/serving/autoscaling/scale-to-zero/     (grace period, retention)
 *   [cm]    https://github.com/knative/serving/blob/main/config/core/configmaps/autoscaler.yaml
 *           (config-autoscaler, the default of every key with its meaning; tick-interval)
 *
 * One decision (every tick, 2 s):
 *   target        = (settings.target ?? observation.derivedTarget ?? 100) x 0.7        per replica
 *   stable        = average concurrency over the last 60 s; panic = over the last 6 s
 *   ready'        = max(1, ready)
 *   wantStable    = ceil(stable / target), wantPanic = ceil(panic / target)
 *   bounded to [floor(ready' / 2), ceil(1000 x ready')]                                  (max scale down/up rate)
 *   panicking     starts (or is extended) when wantPanic / ready' >= 2; ends once 60 s passed without that
 *   desired       = wantStable; in panic max(wantStable, wantPanic), and never below the panic's highest so far
 *   to zero       : when desired is 0, the last replica stays until desired has been 0 for the grace period (30 s)
 *   min/max       : settings.minReplicas / maxReplicas (Knative's min-scale / max-scale annotations)
 * No data in the stable window: hold the current count (Knative's "no data to scale on yet").
 * Scale from zero: Knative's activator reports the requests it holds and pokes the autoscaler at once; here a
 * held count with no ready replica is taken as a concurrency point at `now` (the simulator pokes decide()).
 * Not modelled: target-burst-capacity (it only decides whether the activator stays in the request path), the
 * activator's own load balancing, scale-to-zero-pod-retention-period (default 0 s [zero]), rps as a metric.
 */
import type { Decision, Observation, Policy, ScalingSettings } from '../../../src/autoscaler/types.ts';

export interface KpaConfig {
  /** [cm] container-concurrency-target-default "100"; [conc] "Default: 100" (soft limit per replica). */
  targetDefault: number;
  /** [cm] container-concurrency-target-percentage "70"; [conc] target utilization "Default: 70". */
  targetUtilization: number;
  /** [kpa] stable-window "Default: 60s"; [cm] stable-window "60s". */
  stableWindowMs: number;
  /** [kpa] panic-window-percentage "Default: 10.0" (of the stable window: 6 s); [cm] "10.0". */
  panicWindowPercentage: number;
  /** [kpa] panic-threshold-percentage "Default: 200.0"; [cm] "200.0". */
  panicThresholdPercentage: number;
  /** [kpa] max-scale-up-rate "Default: 1000.0"; [cm] "1000.0". */
  maxScaleUpRate: number;
  /** [kpa] max-scale-down-rate "Default: 2.0"; [cm] "2.0". */
  maxScaleDownRate: number;
  /** [zero] scale-to-zero-grace-period "Default: 30s"; [cm] "30s". */
  scaleToZeroGraceMs: number;
  /** [cm] tick-interval "2s": the time between autoscaling calculations (the simulator's cadence for KPA). */
  tickMs: number;
}

export const KPA_DEFAULTS: Readonly<KpaConfig> = Object.freeze({
  targetDefault: 100,
  targetUtilization: 0.7,
  stableWindowMs: 60_000,
  panicWindowPercentage: 10,
  panicThresholdPercentage: 200,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  scaleToZeroGraceMs: 30_000,
  tickMs: 2_000,
});

interface Point {
  at: number;
  concurrency: number;
  periodMs: number;
}

export interface KpaState {
  /** Concurrency points within the stable window (oldest first). */
  points: Point[];
  /** The count last decided. */
  desired: number;
  /** When panic was last entered or extended (null: not panicking). */
  panicSince: number | null;
  /** The highest count decided in this panic. */
  maxPanicPods: number;
  /** Since when the algorithm has said 0 (null: it has not). */
  zeroSince: number | null;
}

function windowAverage(points: readonly Point[], now: number, spanMs: number): number | null {
  let sum = 0;
  let weight = 0;
  for (const p of points) {
    if (p.at <= now - spanMs || p.at > now) continue;
    const w = Math.max(1, p.periodMs);
    sum += p.concurrency * w;
    weight += w;
  }
  return weight === 0 ? null : sum / weight;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

/** The KPA with `over` replacing some of its defaults (the bench uses none). */
export function kpaPolicy(over: Partial<KpaConfig> = {}): Policy<KpaState> & { readonly config: KpaConfig } {
  const c: KpaConfig = { ...KPA_DEFAULTS, ...over };
  const panicWindowMs = Math.round((c.stableWindowMs * c.panicWindowPercentage) / 100 / 1000) * 1000;
  const panicThreshold = c.panicThresholdPercentage / 100;
  return {
    name: 'kpa-default',
    config: c,
    initial(settings: ScalingSettings, _now: number): KpaState {
      return {
        points: [],
        desired: clamp(settings.initialScale, settings.minReplicas, settings.maxReplicas),
        panicSince: null,
        maxPanicPods: 0,
        zeroSince: null,
      };
    },
    decide(now: number, obs: Observation, settings: ScalingSettings, state: KpaState): Decision<KpaState> {
      const points = state.points.filter((p) => p.at > now - c.stableWindowMs);
      for (const s of obs.samples)
        points.push({ at: s.at, concurrency: s.concurrency, periodMs: s.periodMs });
      if (obs.ready === 0 && obs.held > 0) points.push({ at: now, concurrency: obs.held, periodMs: 1000 });
      const hold = (why: string): Decision<KpaState> => ({
        desired: state.desired,
        reason: why,
        changed: false,
        state: { ...state, points },
      });
      const stable = windowAverage(points, now, c.stableWindowMs);
      const panic = windowAverage(points, now, panicWindowMs);
      if (stable === null) return hold('no data in the stable window');
      const target = Math.max(
        0.01,
        (settings.target ?? obs.derivedTarget ?? c.targetDefault) * c.targetUtilization,
      );
      const ready = Math.max(1, obs.ready);
      const maxUp = Math.ceil(c.maxScaleUpRate * ready);
      const maxDown = Math.floor(ready / c.maxScaleDownRate);
      const wantStable = Math.ceil(stable / target);
      const wantPanic = Math.ceil((panic ?? stable) / target);
      const dStable = clamp(wantStable, maxDown, maxUp);
      const dPanic = clamp(wantPanic, maxDown, maxUp);
      const over = wantPanic / ready >= panicThreshold;
      let panicSince = state.panicSince;
      let maxPanicPods = state.maxPanicPods;
      if (over) panicSince = now;
      else if (panicSince !== null && panicSince + c.stableWindowMs < now) {
        panicSince = null;
        maxPanicPods = 0;
      }
      let want = dStable;
      if (panicSince !== null) {
        want = Math.max(want, dPanic, maxPanicPods);
        maxPanicPods = want;
      }
      let desired = clamp(want, settings.minReplicas, settings.maxReplicas);
      let zeroSince = state.zeroSince;
      let zeroNote = '';
      if (desired === 0) {
        zeroSince ??= now;
        if (state.desired > 0 && now - zeroSince < c.scaleToZeroGraceMs) {
          desired = 1;
          zeroNote = `, to zero after the ${c.scaleToZeroGraceMs / 1000} s grace`;
        }
      } else zeroSince = null;
      const mode = panicSince !== null ? 'panic' : 'stable';
      const shown = mode === 'panic' ? (panic ?? stable) : stable;
      return {
        desired,
        reason: `concurrency ${shown.toFixed(1)} over ${(mode === 'panic' ? panicWindowMs : c.stableWindowMs) / 1000} s (${mode}), target ${target.toFixed(1)}${zeroNote}`,
        changed: desired !== state.desired,
        state: { points, desired, panicSince, maxPanicPods, zeroSince },
      };
    },
  };
}
