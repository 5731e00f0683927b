/**
 * Kubernetes' HorizontalPodAutoscaler (autoscaling/v2) with its documented defaults, as a pure Policy
 * (src/autoscaler/types.ts), scaling on requests in flight per pod as a Pods metric with an AverageValue target.
 * Written from the documentation, not copied from Kubernetes' code. Sources:
 *   [hpa]  https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
 *          (algorithm details, missing metrics, stabilization, default behavior, sync period, tolerance)
 *   [api]  https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/horizontal-pod-autoscaler-v2/
 *          (HPAScalingRules: policies "if not set ... scale up: allow doubling the number of pods, or an absolute
 *          change of 4 pods in a 15s window; scale down: allow all pods to be removed in a 15s window";
 *          stabilizationWindowSeconds "scale up: 0, scale down: 300"; selectPolicy "Max")
 *
 * One decision (every sync, 15 s):
 *   perPod    = the metric's current value per ready pod: the last sample's concurrency / ready  (see below)
 *   ratio     = perPod / target; |ratio - 1| <= 0.1: recommend the current count (tolerance)
 *   otherwise recommend ceil(ratio x ready); pods not ready yet have no metric: counted at 0 when scaling up and at
 *   the target when scaling down, and if that flips the direction or lands within tolerance, keep the count
 *   stabilise : scale down only to the highest recommendation of the last 300 s; scale up at once (window 0)
 *   rate      : up to max(2 x, +4) the count at the start of the last 15 s; down by at most 100% per 15 s
 *   bounds    : minReplicas >= 1 (no scale to zero), maxReplicas
 * The metric value: HPA reads whatever the metrics API reports at sync time. We take the last gateway sample (the
 * average over its 1 s period), the most current value a custom-metrics adapter could give; a real adapter often
 * averages over longer (e.g. a Prometheus rate over 1 min), which would only make HPA slower.
 * The target: HPA has no default target for a custom metric; we give it the same per-replica target as the KPA
 * (target x 0.7) so the control laws differ, not the set point. Not modelled: CPU initialization period and
 * readiness delay (CPU metrics only), metric staleness of metrics-server (~15 s+ scrape).
 */
import type { Decision, Observation, Policy, ScalingSettings } from '../../../src/autoscaler/types.ts';

export interface HpaConfig {
  /** [hpa] "--horizontal-pod-autoscaler-sync-period ... default interval is 15 seconds". */
  syncPeriodMs: number;
  /** [hpa] "--horizontal-pod-autoscaler-tolerance ... defaults to 0.1". */
  tolerance: number;
  /** [api]/[hpa] scaleDown stabilizationWindowSeconds default 300. */
  scaleDownStabilizationMs: number;
  /** [api]/[hpa] scaleUp stabilizationWindowSeconds default 0. */
  scaleUpStabilizationMs: number;
  /** [api]/[hpa] default scaleUp policies: Percent 100 per 15 s and Pods 4 per 15 s, selectPolicy Max. */
  scaleUpPercent: number;
  scaleUpPods: number;
  scaleUpPeriodMs: number;
  /** [api]/[hpa] default scaleDown policy: Percent 100 per 15 s. */
  scaleDownPercent: number;
  scaleDownPeriodMs: number;
  /** Per-replica target = (settings.target ?? derivedTarget ?? targetDefault) x targetUtilization (see above). */
  targetDefault: number;
  targetUtilization: number;
}

export const HPA_DEFAULTS: Readonly<HpaConfig> = Object.freeze({
  syncPeriodMs: 15_000,
  tolerance: 0.1,
  scaleDownStabilizationMs: 300_000,
  scaleUpStabilizationMs: 0,
  scaleUpPercent: 100,
  scaleUpPods: 4,
  scaleUpPeriodMs: 15_000,
  scaleDownPercent: 100,
  scaleDownPeriodMs: 15_000,
  targetDefault: 100,
  targetUtilization: 0.7,
});

export interface HpaState {
  /** The count HPA last wrote to the scale subresource (its "currentReplicas"). */
  replicas: number;
  /** Unstabilised recommendations, newest last, kept for the longest stabilization window. */
  recommendations: { at: number; replicas: number }[];
  /** Changes HPA made (+ up, - down), kept for the longest policy period. */
  events: { at: number; change: number }[];
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

export function hpaPolicy(over: Partial<HpaConfig> = {}): Policy<HpaState> & { readonly config: HpaConfig } {
  const c: HpaConfig = { ...HPA_DEFAULTS, ...over };
  const minOf = (s: ScalingSettings) => Math.max(1, s.minReplicas);
  return {
    name: 'hpa-default',
    config: c,
    initial(settings: ScalingSettings, _now: number): HpaState {
      return {
        replicas: clamp(settings.initialScale, minOf(settings), settings.maxReplicas),
        recommendations: [],
        events: [],
      };
    },
    decide(now: number, obs: Observation, settings: ScalingSettings, state: HpaState): Decision<HpaState> {
      const current = state.replicas;
      const min = minOf(settings);
      const last = obs.samples.at(-1);
      const target = Math.max(
        0.01,
        (settings.target ?? obs.derivedTarget ?? c.targetDefault) * c.targetUtilization,
      );
      const keep = (why: string): Decision<HpaState> => {
        const desired = clamp(current, min, settings.maxReplicas);
        return { desired, reason: why, changed: desired !== current, state: { ...state, replicas: desired } };
      };
      if (last === undefined || obs.ready === 0) return keep('no metrics (no sample or no ready pod)');
      // 1. Recommendation from the metric ([hpa] algorithm details, missing metrics).
      const ready = obs.ready;
      const sum = last.concurrency;
      const ratio = sum / ready / target;
      let recommendation = current;
      let why: string;
      if (Math.abs(ratio - 1) <= c.tolerance) {
        why = `within tolerance (ratio ${ratio.toFixed(2)})`;
      } else {
        const missing = Math.max(0, current - ready);
        if (missing === 0) {
          recommendation = Math.ceil(ratio * ready);
          why = `ratio ${ratio.toFixed(2)}`;
        } else {
          const up = ratio > 1;
          const r2 = up
            ? sum / (ready + missing) / target
            : (sum + missing * target) / (ready + missing) / target;
          if (Math.abs(r2 - 1) <= c.tolerance || r2 > 1 !== up) {
            why = `ratio ${ratio.toFixed(2)}, ${r2.toFixed(2)} counting ${missing} pods without metrics: hold`;
          } else {
            recommendation = Math.ceil(r2 * (ready + missing));
            why = `ratio ${r2.toFixed(2)} counting ${missing} pods without metrics`;
          }
        }
      }
      // 2. Stabilization ([hpa] stabilization window; [api] defaults 0 up, 300 s down).
      const keepMs = Math.max(c.scaleDownStabilizationMs, c.scaleUpStabilizationMs);
      const recs = state.recommendations.filter((r) => r.at > now - keepMs);
      let upLimit = recommendation;
      let downLimit = recommendation;
      for (const r of recs) {
        if (r.at > now - c.scaleUpStabilizationMs) upLimit = Math.min(upLimit, r.replicas);
        if (r.at > now - c.scaleDownStabilizationMs) downLimit = Math.max(downLimit, r.replicas);
      }
      recs.push({ at: now, replicas: recommendation });
      let stabilized = current;
      if (stabilized < upLimit) stabilized = upLimit;
      if (stabilized > downLimit) stabilized = downLimit;
      // 3. Rate policies ([api] default policies, selectPolicy Max).
      const periodMs = Math.max(c.scaleUpPeriodMs, c.scaleDownPeriodMs);
      const events = state.events.filter((e) => e.at > now - periodMs);
      const since = (ms: number) => {
        let added = 0;
        let removed = 0;
        for (const e of events) {
          if (e.at <= now - ms) continue;
          if (e.change > 0) added += e.change;
          else removed -= e.change;
        }
        return current - added + removed;
      };
      let desired = stabilized;
      if (desired > current) {
        const start = since(c.scaleUpPeriodMs);
        const limit = Math.max(Math.ceil(start * (1 + c.scaleUpPercent / 100)), start + c.scaleUpPods);
        if (desired > limit) {
          desired = limit;
          why += `, scale-up limited to ${limit}`;
        }
      } else if (desired < current) {
        const start = since(c.scaleDownPeriodMs);
        const limit = Math.floor(start * (1 - c.scaleDownPercent / 100));
        if (desired < limit) desired = limit;
      }
      if (stabilized > desired || recommendation === desired) {
        // nothing to add
      } else if (stabilized > recommendation) {
        why += `, held at ${stabilized} by the ${c.scaleDownStabilizationMs / 1000} s scale-down window`;
      }
      desired = clamp(desired, min, settings.maxReplicas);
      if (desired !== current) events.push({ at: now, change: desired - current });
      return {
        desired,
        reason: `${why}, target ${target.toFixed(1)} per pod`,
        changed: desired !== current,
        state: { replicas: desired, recommendations: recs, events },
      };
    },
  };
}
