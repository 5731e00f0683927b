// Latency summaries shared by the load generator (load-worker.mjs) and the health probe (probe-client.mjs).

/** The q-quantile of an ascending array (nearest rank); NaN when it is empty. */
export function percentile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Count, rate, mean, p50/p90/p99 and max of the first `n` latencies (ms) of `lat`, over `wallS` seconds. */
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
  };
}
