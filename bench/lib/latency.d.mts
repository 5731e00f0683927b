/** A percentile curve: [percent (0..100), latency ms] pairs, ascending; the last is [100, max]. */
export type PercentileCurve = Array<[number, number]>;
/** The q-quantile (0..1) of an ascending array (nearest rank); NaN when it is empty. */
export declare function percentile(sorted: ArrayLike<number>, q: number): number;
/** The percentiles kept per measurement (and 100, the max). */
export declare const CURVE_PERCENTILES: readonly number[];
/** The points of CURVE_PERCENTILES an ascending sample resolves, then [100, max]; [] when empty. */
export declare function percentileCurve(sorted: ArrayLike<number>): PercentileCurve;
export declare function summarize(
  lat: Float64Array,
  n: number,
  wallS: number,
): {
  requests: number;
  wallS: number;
  rps: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  percentiles: PercentileCurve;
};
