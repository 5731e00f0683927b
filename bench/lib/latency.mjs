// Latency summaries shared by the load generator (load-worker.mjs), the health probe (probe-client.mjs) and the
// in-process baseline (inprocess.ts).

/** The q-quantile of an ascending array (nearest rank); NaN when it is empty. */
export function percentile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  // q x n is rounded down by 1e-9 first: 0.999 x 1000 is 999.0000000000001 in floating point, whose ceiling would
  // take the 1000th value for the 999th.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length - 1e-9) - 1))];
}

/**
 * The percentiles kept in the results JSON to draw a latency distribution (chart-latency.ts): the body in steps
 * of 5-10, the tail in "nines". Bounded: at most this many points per measurement, whatever its length.
 */
export const CURVE_PERCENTILES = [
  0, 1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97, 98, 99, 99.5, 99.7, 99.8, 99.9, 99.95,
  99.97, 99.99, 99.995, 99.999,
];

/**
 * [percent, ms] pairs of an ascending array: every CURVE_PERCENTILES point that the sample resolves (a tail point
 * p is kept only when at least one value lies beyond it: (100 - p) / 100 x n >= 1), then [100, max]. Exact
 * (nearest rank), from every recorded value: no bucketing. Empty for an empty array.
 */
export function percentileCurve(sorted) {
  const n = sorted.length;
  if (n === 0) return [];
  const out = [];
  for (const p of CURVE_PERCENTILES) {
    if (p > 0 && ((100 - p) / 100) * n < 1 - 1e-9) break;
    out.push([p, p === 0 ? sorted[0] : percentile(sorted, p / 100)]);
  }
  out.push([100, sorted[n - 1]]);
  return out;
}

/**
 * Count, rate, mean, p50/p90/p99, max and the percentile curve (percentileCurve) of the first `n` latencies (ms)
 * of `lat`, over `wallS` seconds.
 */
export function summarize(lat, n, wallS) {
  const sorted = lat.subarray(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return {
    requests: n,
    wallS,
    rps: n / wallS,
    meanMs: n ? sum / n : Number.NaN,
    p50Ms: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
    maxMs: n ? sorted[n - 1] : Number.NaN,
    percentiles: percentileCurve(sorted),
  };
}
