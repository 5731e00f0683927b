/**
 * From two scrapes to one point of the metrics history (docs/metrics.md, Metrics history). Pure: a `Reading` is
 * what one scrape found, cumulative as the processes count it; `pointBetween` turns the previous reading and this
 * one into the rates, quantiles and means of the step between them, per revision.
 *
 * Counters reset when a process restarts: a value below the previous one is taken as counted from zero since (the
 * Prometheus `rate()` rule), so a restart never makes a negative rate. A histogram whose count went down is reset
 * as a whole, every bucket from zero.
 */
import type { Sample } from './prom-text.ts';

/** Series key of a revision: `${deployment}\u0000${revision}` (the deployment's key, `tenant/name` outside default). */
export type SeriesKey = string;

export const seriesKey = (deployment: string, revision: number | string): SeriesKey =>
  `${deployment}\u0000${revision}`;

export function splitKey(key: SeriesKey): { deployment: string; revision: number } {
  const i = key.indexOf('\u0000');
  return { deployment: key.slice(0, i), revision: Number(key.slice(i + 1)) };
}

/** A cumulative histogram: upper bounds ascending (the last +Inf) and the count at or below each. */
export interface Buckets {
  le: number[];
  cumulative: number[];
}

/** What the gateway counted for one revision, cumulative. */
export interface GatewayCounts {
  /** Requests answered, by HTTP status code. */
  codes: Record<string, number>;
  /** ferry_gateway_request_duration_seconds. */
  duration: Buckets | null;
}

/** What one replica reported, cumulative except the queue depth. */
export interface ReplicaCounts {
  key: SeriesKey;
  batchSum: number;
  batchCount: number;
  /** Sum over its models of ferry_queue_depth now; null when this reading's scrape of it failed (carried over). */
  queueDepth: number | null;
}

/** One scrape of everything, at `at` (ms since epoch). */
export interface Reading {
  at: number;
  /** When `gateway` was read: `at`, or an earlier reading's time when this one could not read it (carried over). */
  gatewayAt: number;
  /** Per revision: the gateway's counters (scraped), when the gateway was read. */
  gateway: Map<SeriesKey, GatewayCounts>;
  /** Per revision: requests that arrived at the gateways, cumulative (swarm: from their load reports). */
  arrivals: Map<SeriesKey, number>;
  /** Per replica id. */
  replicas: Map<string, ReplicaCounts>;
  /** Per revision: ferry_cold_start_seconds_count{phase="total"}. */
  coldStarts: Map<SeriesKey, number>;
  /** Per revision: ready replicas now (the controller's view). */
  ready: Map<SeriesKey, number>;
}

/** One step of one revision, as the API shows it (contract A, docs/metrics.md). */
export interface Point {
  /** ms since epoch, the end of the step. */
  t: number;
  rps: number;
  /** Seconds; null when no request ended in the step (or the latency is not known: gateway reports). */
  p50: number | null;
  p99: number | null;
  /** Requests/s by HTTP status code; {} when not known (gateway reports). */
  codes: Record<string, number>;
  replicas: number;
  batchSize: number | null;
  queueDepth: number | null;
  coldStarts: number;
}

export function emptyReading(at: number): Reading {
  return {
    at,
    gatewayAt: at,
    gateway: new Map(),
    arrivals: new Map(),
    replicas: new Map(),
    coldStarts: new Map(),
    ready: new Map(),
  };
}

/** The increase of a counter from `prev` to `cur`; a drop is a reset (counted from zero since). */
export function counterDelta(prev: number | undefined, cur: number): number {
  if (prev === undefined) return cur;
  return cur >= prev ? cur - prev : cur;
}

/** Bucket-wise increase; a histogram whose total went down was reset, so its current counts are the increase. */
export function bucketDelta(prev: Buckets | null | undefined, cur: Buckets): Buckets {
  const total = cur.cumulative.at(-1) ?? 0;
  const prevTotal = prev?.cumulative.at(-1) ?? 0;
  if (!prev || total < prevTotal || prev.le.length !== cur.le.length) return cur;
  return {
    le: cur.le,
    cumulative: cur.cumulative.map((c, i) => Math.max(0, c - (prev.cumulative[i] ?? 0))),
  };
}

/**
 * The q-quantile (0..1) of a cumulative histogram, as PromQL's histogram_quantile: the bucket holding the rank,
 * linear within it (from 0 for the first bucket); in the +Inf bucket, the highest finite bound. null when empty.
 */
export function quantile(q: number, b: Buckets): number | null {
  const n = b.le.length;
  const total = b.cumulative[n - 1] ?? 0;
  if (n === 0 || total <= 0) return null;
  const rank = q * total;
  let i = 0;
  while (i < n - 1 && b.cumulative[i]! < rank) i++;
  const upper = b.le[i]!;
  if (upper === Number.POSITIVE_INFINITY) return n >= 2 ? b.le[n - 2]! : null;
  const lower = i === 0 ? 0 : b.le[i - 1]!;
  const below = i === 0 ? 0 : b.cumulative[i - 1]!;
  const inBucket = b.cumulative[i]! - below;
  if (inBucket <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}

/**
 * The point of revision `key` for the step from `prev` to `cur`. A counter, histogram or replica absent from
 * `prev` was created since, so it counts from zero (the first reading of all is only a baseline: no point).
 */
export function pointBetween(key: SeriesKey, prev: Reading, cur: Reading): Point {
  const seconds = Math.max(0.001, (cur.at - prev.at) / 1000);
  let requests = 0;
  let perSecond = seconds;
  const codes: Record<string, number> = {};
  let p50: number | null = null;
  let p99: number | null = null;
  const g = cur.gateway.get(key);
  if (g !== undefined) {
    // Over the time between the gateway's two readings: a step it could not be read shows none, the next one both.
    const gatewaySeconds = (cur.gatewayAt - prev.gatewayAt) / 1000;
    const before = prev.gateway.get(key);
    if (gatewaySeconds > 0) {
      perSecond = gatewaySeconds;
      for (const [code, n] of Object.entries(g.codes)) {
        const d = counterDelta(before?.codes[code] ?? 0, n);
        if (d > 0) {
          codes[code] = round(d / perSecond) ?? 0;
          requests += d;
        }
      }
      if (g.duration) {
        const step = bucketDelta(before?.duration, g.duration);
        p50 = round(quantile(0.5, step));
        p99 = round(quantile(0.99, step));
      }
    }
  } else {
    const arrived = cur.arrivals.get(key);
    if (arrived !== undefined) requests = counterDelta(prev.arrivals.get(key) ?? 0, arrived);
  }
  let batchSum = 0;
  let batchCount = 0;
  let queueDepth: number | null = null;
  for (const [id, r] of cur.replicas) {
    if (r.key !== key) continue;
    const before = prev.replicas.get(id);
    // A replica's sum and count reset together (a restart): count decides.
    const reset = before !== undefined && r.batchCount < before.batchCount;
    batchSum += reset || before === undefined ? r.batchSum : r.batchSum - before.batchSum;
    batchCount += reset || before === undefined ? r.batchCount : r.batchCount - before.batchCount;
    if (r.queueDepth !== null) queueDepth = (queueDepth ?? 0) + r.queueDepth;
  }
  const cold = cur.coldStarts.get(key);
  return {
    t: cur.at,
    rps: round(requests / perSecond)!,
    p50,
    p99,
    codes,
    replicas: cur.ready.get(key) ?? 0,
    batchSize: batchCount > 0 ? round(batchSum / batchCount) : null,
    queueDepth,
    coldStarts: cold === undefined ? 0 : counterDelta(prev.coldStarts.get(key) ?? 0, cold),
  };
}

/** Six significant digits: what a float32 column keeps anyway, and short JSON. */
export function round(x: number | null): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  return Number(x.toPrecision(6));
}

// ------------------------------------------------------------------------------------------ from samples

/** The gateway's counters per revision from its /metrics samples (requests by code, the duration histogram). */
export function gatewayCounts(samples: readonly Sample[]): Map<SeriesKey, GatewayCounts> {
  const out = new Map<SeriesKey, GatewayCounts>();
  const entry = (deployment: string | undefined, revision: string | undefined) => {
    // Requests answered before a revision was chosen (revision "") are the deployment's, not a revision's.
    if (!deployment || !revision) return undefined;
    const key = seriesKey(deployment, revision);
    let e = out.get(key);
    if (e === undefined) {
      e = { codes: {}, duration: null };
      out.set(key, e);
    }
    return e;
  };
  const buckets = new Map<SeriesKey, Array<[number, number]>>();
  for (const s of samples) {
    if (s.name === 'ferry_gateway_requests_total') {
      const e = entry(s.labels.deployment, s.labels.revision);
      const code = s.labels.code;
      if (e && code) e.codes[code] = (e.codes[code] ?? 0) + s.value;
    } else if (s.name === 'ferry_gateway_request_duration_seconds_bucket') {
      const e = entry(s.labels.deployment, s.labels.revision);
      if (!e) continue;
      const key = seriesKey(s.labels.deployment!, s.labels.revision!);
      const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
      if (Number.isNaN(le)) continue;
      let list = buckets.get(key);
      if (list === undefined) {
        list = [];
        buckets.set(key, list);
      }
      list.push([le, s.value]);
    }
  }
  for (const [key, list] of buckets) {
    list.sort((a, b) => a[0] - b[0]);
    out.get(key)!.duration = { le: list.map((b) => b[0]), cumulative: list.map((b) => b[1]) };
  }
  return out;
}

/** One replica's batch size sum and count and queue depth (summed over its models) from its /metrics samples. */
export function replicaCounts(key: SeriesKey, samples: readonly Sample[]): ReplicaCounts {
  let batchSum = 0;
  let batchCount = 0;
  let queueDepth = 0;
  for (const s of samples) {
    if (s.name === 'ferry_batch_size_sum') batchSum += s.value;
    else if (s.name === 'ferry_batch_size_count') batchCount += s.value;
    else if (s.name === 'ferry_queue_depth') queueDepth += s.value;
  }
  return { key, batchSum, batchCount, queueDepth };
}

/** Completed cold starts per revision from the control plane's samples (the `total` phase's count). */
export function coldStartCounts(samples: readonly Sample[]): Map<SeriesKey, number> {
  const out = new Map<SeriesKey, number>();
  for (const s of samples)
    if (s.name === 'ferry_cold_start_seconds_count' && s.labels.phase === 'total') {
      const { deployment, revision } = s.labels;
      if (deployment && revision) out.set(seriesKey(deployment, revision), s.value);
    }
  return out;
}
