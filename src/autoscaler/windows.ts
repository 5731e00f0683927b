/**
 * Bucketed metric windows: samples folded into fixed buckets (default 1 s) by time, so a window's average is
 * cheap and memory is bounded by window / bucket whatever the sample rate. Pure and immutable: `add` and `trim`
 * return a new window. A window with no bucket inside the asked span has **no data**, which is not zero: the
 * decision holds instead of scaling to zero on silence from a broken observer.
 */

export interface Bucket {
  /** Bucket start (ms, a multiple of the bucket size). */
  start: number;
  /** Sum of the concurrency samples' values weighted by their period (ms), and of the periods. */
  concurrencyMs: number;
  periodMs: number;
  arrivals: number;
  /** Sum of the samples' saturated load (metric units) weighted by their period (ms), when any sample said. */
  saturatedLoadMs?: number;
}

export interface Window {
  bucketMs: number;
  /** Oldest first. */
  buckets: readonly Bucket[];
}

export function emptyWindow(bucketMs = 1000): Window {
  return { bucketMs, buckets: [] };
}

export interface WindowSample {
  at: number;
  concurrency: number;
  arrivals: number;
  periodMs: number;
  /**
   * The load the replicas' own fullness stands for, in the metric's unit (saturation x ready replicas x target,
   * computed when the sample is folded in, so a later change of the replica count does not rescale it).
   */
  saturatedLoad?: number;
}

/** The window with the sample folded into its bucket (samples may come in any order). */
export function add(window: Window, sample: WindowSample): Window {
  const start = Math.floor(sample.at / window.bucketMs) * window.bucketMs;
  const period = Math.max(0, sample.periodMs);
  const buckets = [...window.buckets];
  let i = buckets.findIndex((b) => b.start === start);
  if (i === -1) {
    buckets.push({ start, concurrencyMs: 0, periodMs: 0, arrivals: 0 });
    buckets.sort((a, b) => a.start - b.start);
    i = buckets.findIndex((b) => b.start === start);
  }
  const b = buckets[i]!;
  const saturatedLoadMs =
    sample.saturatedLoad === undefined
      ? b.saturatedLoadMs
      : (b.saturatedLoadMs ?? 0) + sample.saturatedLoad * period;
  buckets[i] = {
    start,
    concurrencyMs: b.concurrencyMs + sample.concurrency * period,
    periodMs: b.periodMs + period,
    arrivals: b.arrivals + sample.arrivals,
    ...(saturatedLoadMs === undefined ? {} : { saturatedLoadMs }),
  };
  return { bucketMs: window.bucketMs, buckets };
}

/** Only the buckets that can still fall into a window of `keepMs` ending at now. */
export function trim(window: Window, now: number, keepMs: number): Window {
  const from = now - keepMs;
  return {
    bucketMs: window.bucketMs,
    buckets: window.buckets.filter((b) => b.start + window.bucketMs > from),
  };
}

export interface WindowStats {
  /** Time-weighted average requests in flight over the span's buckets. */
  concurrency: number;
  /** Arrivals per second over the span's covered time. */
  rps: number;
  /** Time-weighted average saturated load over the span (buckets without one count as 0), when any said. */
  saturatedLoad?: number;
  /** Buckets that had a sample. */
  buckets: number;
}

/** Averages over the buckets in (now - spanMs, now]; null when none has a sample: no data. */
export function stats(window: Window, now: number, spanMs: number): WindowStats | null {
  const from = now - spanMs;
  let concurrencyMs = 0;
  let periodMs = 0;
  let arrivals = 0;
  let saturatedLoadMs: number | undefined;
  let n = 0;
  for (const b of window.buckets) {
    if (b.start + window.bucketMs <= from || b.start > now) continue;
    n++;
    concurrencyMs += b.concurrencyMs;
    periodMs += b.periodMs;
    arrivals += b.arrivals;
    if (b.saturatedLoadMs !== undefined) saturatedLoadMs = (saturatedLoadMs ?? 0) + b.saturatedLoadMs;
  }
  if (n === 0 || periodMs === 0) return null;
  return {
    concurrency: concurrencyMs / periodMs,
    rps: (arrivals * 1000) / periodMs,
    ...(saturatedLoadMs === undefined ? {} : { saturatedLoad: saturatedLoadMs / periodMs }),
    buckets: n,
  };
}
