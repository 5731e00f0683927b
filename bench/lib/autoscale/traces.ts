/**
 * Load traces for bench/autoscale.ts: the arrival rate (requests/s) as a function of virtual time (ms), with the
 * load steps whose reaction the bench times. Every parameter is named and kept in `params` (they go in the JSON).
 */

export interface TraceStep {
  /** When the rate changes (ms). */
  atMs: number;
  label: string;
  fromRps: number;
  toRps: number;
}

export interface Trace {
  name: string;
  description: string;
  durationMs: number;
  /** An upper bound of rate(t) over the trace (for Poisson arrivals by thinning). */
  maxRps: number;
  /** Arrival rate at time t (ms), requests/s. */
  rate(tMs: number): number;
  /** The load steps to time the reaction to (none for a smooth trace). */
  steps: TraceStep[];
  params: Record<string, number>;
}

function positive(name: string, v: number, allowZero = false): number {
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new Error(`trace: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${v}`);
  }
  return v;
}

export interface StepParams {
  baseRps: number;
  factor: number;
  /** At the base rate before the step (windows fill, replicas settle). */
  warmMs: number;
  /** At base x factor. */
  highMs: number;
  /** Back at the base rate (long enough to see HPA's 300 s scale-down stabilisation end). */
  tailMs: number;
}

/** 1x -> factor x -> 1x. */
export function stepTrace(p: Partial<StepParams> = {}): Trace {
  const q: StepParams = { baseRps: 100, factor: 4, warmMs: 120_000, highMs: 180_000, tailMs: 420_000, ...p };
  positive('baseRps', q.baseRps);
  positive('factor', q.factor);
  positive('warmMs', q.warmMs, true);
  positive('highMs', q.highMs);
  positive('tailMs', q.tailMs, true);
  const high = q.baseRps * q.factor;
  const up = q.warmMs;
  const down = q.warmMs + q.highMs;
  return {
    name: 'step',
    description: `${q.baseRps} rps -> ${high} rps (${q.factor}x) for ${q.highMs / 1000} s -> ${q.baseRps} rps`,
    durationMs: down + q.tailMs,
    maxRps: Math.max(q.baseRps, high),
    rate: (t) => (t >= up && t < down ? high : q.baseRps),
    steps: [
      { atMs: up, label: `${q.factor}x up`, fromRps: q.baseRps, toRps: high },
      { atMs: down, label: '1x down', fromRps: high, toRps: q.baseRps },
    ],
    params: { ...q },
  };
}

export interface BurstParams {
  baseRps: number;
  burstRps: number;
  warmMs: number;
  burstMs: number;
  tailMs: number;
}

/** A short burst on a steady base. */
export function burstTrace(p: Partial<BurstParams> = {}): Trace {
  const q: BurstParams = {
    baseRps: 100,
    burstRps: 600,
    warmMs: 120_000,
    burstMs: 10_000,
    tailMs: 420_000,
    ...p,
  };
  positive('baseRps', q.baseRps);
  positive('burstRps', q.burstRps);
  positive('warmMs', q.warmMs, true);
  positive('burstMs', q.burstMs);
  positive('tailMs', q.tailMs, true);
  const start = q.warmMs;
  const end = q.warmMs + q.burstMs;
  return {
    name: 'burst',
    description: `${q.baseRps} rps with a ${q.burstMs / 1000} s burst at ${q.burstRps} rps`,
    durationMs: end + q.tailMs,
    maxRps: Math.max(q.baseRps, q.burstRps),
    rate: (t) => (t >= start && t < end ? q.burstRps : q.baseRps),
    steps: [
      { atMs: start, label: 'burst', fromRps: q.baseRps, toRps: q.burstRps },
      { atMs: end, label: 'burst ends', fromRps: q.burstRps, toRps: q.baseRps },
    ],
    params: { ...q },
  };
}

export interface IdleBurstParams {
  idleMs: number;
  burstRps: number;
  burstMs: number;
  tailMs: number;
}

/** Nothing (scaled to zero), then a burst from zero, then nothing again (scale back to zero). */
export function idleBurstTrace(p: Partial<IdleBurstParams> = {}): Trace {
  const q: IdleBurstParams = { idleMs: 60_000, burstRps: 200, burstMs: 60_000, tailMs: 180_000, ...p };
  positive('idleMs', q.idleMs, true);
  positive('burstRps', q.burstRps);
  positive('burstMs', q.burstMs);
  positive('tailMs', q.tailMs, true);
  const start = q.idleMs;
  const end = q.idleMs + q.burstMs;
  return {
    name: 'idle-burst',
    description: `idle ${q.idleMs / 1000} s (zero replicas), ${q.burstRps} rps for ${q.burstMs / 1000} s, idle`,
    durationMs: end + q.tailMs,
    maxRps: q.burstRps,
    rate: (t) => (t >= start && t < end ? q.burstRps : 0),
    steps: [
      { atMs: start, label: 'from zero', fromRps: 0, toRps: q.burstRps },
      { atMs: end, label: 'to idle', fromRps: q.burstRps, toRps: 0 },
    ],
    params: { ...q },
  };
}

export interface DiurnalParams {
  minRps: number;
  maxRps: number;
  /** One "day": min -> max -> min as a raised cosine. */
  periodMs: number;
}

/** A smooth ramp up and down (a compressed day). */
export function diurnalTrace(p: Partial<DiurnalParams> = {}): Trace {
  const q: DiurnalParams = { minRps: 20, maxRps: 400, periodMs: 1_200_000, ...p };
  positive('minRps', q.minRps, true);
  positive('maxRps', q.maxRps);
  positive('periodMs', q.periodMs);
  if (q.maxRps < q.minRps) throw new Error('trace: maxRps must be >= minRps');
  return {
    name: 'diurnal',
    description: `${q.minRps} -> ${q.maxRps} -> ${q.minRps} rps over ${q.periodMs / 1000} s (raised cosine)`,
    durationMs: q.periodMs,
    maxRps: q.maxRps,
    rate: (t) => q.minRps + ((q.maxRps - q.minRps) * (1 - Math.cos((2 * Math.PI * t) / q.periodMs))) / 2,
    steps: [],
    params: { ...q },
  };
}

export const TRACES = {
  step: stepTrace,
  burst: burstTrace,
  'idle-burst': idleBurstTrace,
  diurnal: diurnalTrace,
} as const;
export type TraceName = keyof typeof TRACES;

/**
 * The trace with its time compressed by `scale` (0 < scale <= 1): every phase lasts scale x as long, the rates are
 * the same (so the load a replica sees, and the replicas needed, do not change; the policies' windows and the cold
 * start are not scaled, so they weigh more on a compressed trace: every policy on it alike).
 */
export function compressTrace(trace: Trace, scale: number): Trace {
  if (!(scale > 0 && scale <= 1)) throw new Error(`trace: time scale must be in (0, 1], got ${scale}`);
  if (scale === 1) return trace;
  return {
    ...trace,
    description: `${trace.description}; time x${scale}`,
    durationMs: trace.durationMs * scale,
    rate: (t) => trace.rate(t / scale),
    steps: trace.steps.map((s) => ({ ...s, atMs: s.atMs * scale })),
    params: { ...trace.params, timeScale: scale },
  };
}
