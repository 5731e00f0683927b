/**
 * The autoscaler's vocabulary: settings per deployment, what is observed, and what a policy decides. Pure data;
 * a policy is a pure function of (now, observations, settings, state) so it runs the same on a live platform and
 * on a virtual clock (tests, bench/autoscale.ts). Times are milliseconds; `now` is always an argument.
 */

export type ScalingMetric = 'concurrency' | 'rps';

export interface ScalingSettings {
  /** 0 allows scale to zero. */
  minReplicas: number;
  maxReplicas: number;
  /** What a replica is loaded by: requests in flight (default) or requests per second. */
  metric: ScalingMetric;
  /** Per replica, in the metric's unit; null: derived from the model's capacity (see capacity.ts). */
  target: number | null;
  /** Fraction of `target` to aim at (0 < u <= 1): headroom for bursts. */
  targetUtilization: number;
  /** The average over this window decides in normal mode. */
  stableWindowMs: number;
  /** The average over this (shorter) window decides in panic mode. */
  panicWindowMs: number;
  /** Panic when the panic window asks for this many times the ready replicas (2 = 200%). */
  panicThreshold: number;
  /** At most this many times the ready replicas per decision (>= 1). */
  maxScaleUpRate: number;
  /** At least the ready replicas divided by this per decision (>= 1). */
  maxScaleDownRate: number;
  /** A scale-down takes effect only when every decision in this window agrees (0: at once). */
  scaleDownDelayMs: number;
  /** Last request this long ago (and a stable window of zero) before going to zero. */
  scaleToZeroGraceMs: number;
  /** Replicas a new revision starts with (before any data). */
  initialScale: number;
  /**
   * The gateway's activator (src/gateway/activator.ts): at most this many requests of the deployment wait for a
   * replica (at zero, or for one being started when the ready ones are full); one more gets 503 + Retry-After.
   */
  maxHeld: number;
  /** A held request that waited this long gets 503 + Retry-After (never a hang). */
  maxHeldWaitMs: number;
}

/** One sample of a revision's load, as the gateway counts it (cheap: counters, no scraping on the hot path). */
export interface Sample {
  /** When the sample was taken. */
  at: number;
  /** Average requests in flight to the revision over the sample's period (queued in the activator included). */
  concurrency: number;
  /** Requests that arrived during the sample's period. */
  arrivals: number;
  /** The period the sample covers (ms), for rps = arrivals / period. */
  periodMs: number;
  /**
   * How full the revision's replicas are by their own measure (0..1+): the busiest of batch fill (average batch
   * size / max batch size) and queue depth over queue capacity. A replica whose batches are full is at capacity
   * even when few requests are in flight. Left out when unknown.
   */
  saturation?: number;
}

export interface Observation {
  /** New samples since the last decision (may be empty: no data is not zero). */
  samples: readonly Sample[];
  /** Replicas of the revision that are ready now. */
  ready: number;
  /** Requests waiting in the activator because no replica is ready (scale from zero). */
  held: number;
  /**
   * The per-replica target the model's capacity suggests (capacity.ts: its batching settings and measured
   * service time), used when settings.target is null. Left out: DEFAULT_TARGET of settings.ts.
   */
  derivedTarget?: number;
}

export interface Decision<S> {
  /** Replicas wanted now (within min/max). */
  desired: number;
  /** One line for events: "concurrency 27.4 over 6 s (panic), target 8". */
  reason: string;
  /** Whether the decision changed the count, for whoever records events. */
  changed: boolean;
  state: S;
}

/**
 * A scaling policy: Ferry's (decide.ts) and, in bench/, reference policies from Knative's KPA and Kubernetes'
 * HPA defaults, all behind this one shape so the same trace drives each.
 */
export interface Policy<S> {
  readonly name: string;
  initial(settings: ScalingSettings, now: number): S;
  decide(now: number, observation: Observation, settings: ScalingSettings, state: S): Decision<S>;
}
