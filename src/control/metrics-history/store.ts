/**
 * The metrics history's memory: per revision (deployment key + revision number) a ring of the last `capacity`
 * points, in columns (typed arrays: 8 bytes for the time, 4 per value, NaN for null; a column per status code
 * seen), so a full ring of 720 points is ~26 KB and holding it allocates nothing per point. Bounded twice:
 * at most `maxRevisionsPerDeployment` revisions per deployment (past it the deployment's revision idle the longest
 * goes) and `maxSeries` revisions in all (past it the revision idle the longest goes if idle `minIdleToEvictMs`,
 * else the new revision is refused and counted). `prune` drops the revisions of deployments that are gone and those idle (no
 * request, no replica, no cold start) for a whole window. Pure: no clock, no I/O.
 */
import type { Point } from './points.ts';

export interface HistoryLimits {
  /** Points per revision (window / step): 720 = one hour at 5 s. */
  capacity: number;
  /** Revisions kept in all. */
  maxSeries: number;
  /** Revisions kept per deployment. */
  maxRevisionsPerDeployment: number;
  /**
   * With `maxSeries` kept, a new revision takes the place of the one idle the longest only when that one has been
   * idle this long (ms); else the new one is refused. So more active revisions than the cap keep the history of
   * those that came first, rather than all of them taking turns with a point each.
   */
  minIdleToEvictMs: number;
}

export const DEFAULT_LIMITS: HistoryLimits = {
  capacity: 720,
  maxSeries: 1000,
  maxRevisionsPerDeployment: 10,
  minIdleToEvictMs: 600_000,
};

/** The columns' bytes per point slot without status codes: t (float64) + 7 float32 values. */
const SLOT_BYTES = 8 + 7 * 4;
/** Status code columns per revision at most (the gateway's codes are bounded already; this bounds a ring). */
const MAX_CODES = 32;

class Ring {
  readonly t: Float64Array;
  readonly rps: Float32Array;
  readonly p50: Float32Array;
  readonly p99: Float32Array;
  readonly replicas: Float32Array;
  readonly batchSize: Float32Array;
  readonly queueDepth: Float32Array;
  readonly coldStarts: Float32Array;
  readonly codes = new Map<string, Float32Array>();
  /** Index of the oldest point; `length` points from there on, wrapping. */
  start = 0;
  length = 0;
  /** `t` of the last point with a request, a ready replica or a cold start. */
  lastActive = 0;

  constructor(readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.rps = new Float32Array(capacity);
    this.p50 = new Float32Array(capacity);
    this.p99 = new Float32Array(capacity);
    this.replicas = new Float32Array(capacity);
    this.batchSize = new Float32Array(capacity);
    this.queueDepth = new Float32Array(capacity);
    this.coldStarts = new Float32Array(capacity);
  }

  get bytes(): number {
    return this.capacity * (SLOT_BYTES + 4 * this.codes.size);
  }

  push(p: Point): void {
    const cap = this.capacity;
    let i: number;
    if (this.length < cap) {
      i = (this.start + this.length) % cap;
      this.length++;
    } else {
      i = this.start;
      this.start = (this.start + 1) % cap;
    }
    this.t[i] = p.t;
    this.rps[i] = p.rps;
    this.p50[i] = p.p50 ?? Number.NaN;
    this.p99[i] = p.p99 ?? Number.NaN;
    this.replicas[i] = p.replicas;
    this.batchSize[i] = p.batchSize ?? Number.NaN;
    this.queueDepth[i] = p.queueDepth ?? Number.NaN;
    this.coldStarts[i] = p.coldStarts;
    for (const column of this.codes.values()) column[i] = 0;
    for (const [code, rate] of Object.entries(p.codes)) {
      let column = this.codes.get(code);
      if (column === undefined) {
        if (this.codes.size >= MAX_CODES) continue;
        column = new Float32Array(cap);
        this.codes.set(code, column);
      }
      column[i] = rate;
    }
    if (p.rps > 0 || p.replicas > 0 || p.coldStarts > 0) this.lastActive = p.t;
  }

  /** The points after `since` (ms), oldest first. */
  points(since = Number.NEGATIVE_INFINITY): Point[] {
    const out: Point[] = [];
    for (let k = 0; k < this.length; k++) {
      const i = (this.start + k) % this.capacity;
      if (this.t[i]! <= since) continue;
      const codes: Record<string, number> = {};
      for (const [code, column] of this.codes) if (column[i]! > 0) codes[code] = f32(column[i]!)!;
      out.push({
        t: this.t[i]!,
        rps: f32(this.rps[i]!)!,
        p50: f32(this.p50[i]!),
        p99: f32(this.p99[i]!),
        codes,
        replicas: this.replicas[i]!,
        batchSize: f32(this.batchSize[i]!),
        queueDepth: f32(this.queueDepth[i]!),
        coldStarts: this.coldStarts[i]!,
      });
    }
    return out;
  }
}

/** A float32 read back: NaN is null, and six significant digits (not float32's 12.300000190734863). */
function f32(x: number): number | null {
  return Number.isNaN(x) ? null : Number(x.toPrecision(6));
}

export interface RevisionHistory {
  revision: number;
  points: Point[];
}

export class HistoryStore {
  readonly limits: HistoryLimits;
  /** deployment key -> revision -> ring. */
  readonly #series = new Map<string, Map<number, Ring>>();
  #count = 0;
  /** New revisions refused because maxSeries were kept and none idle long enough to make room. */
  refused = 0;

  constructor(limits: Partial<HistoryLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    if (this.limits.capacity < 1 || this.limits.maxSeries < 1 || this.limits.maxRevisionsPerDeployment < 1)
      throw new Error(
        'metrics history: capacity, maxSeries and maxRevisionsPerDeployment must be at least 1',
      );
  }

  /**
   * Adds a point to a revision. A revision not kept yet is only started by an active point (a request, a ready
   * replica or a cold start): the gateway's counters of a long-idle revision do not bring it back.
   */
  append(deployment: string, revision: number, point: Point): boolean {
    let revisions = this.#series.get(deployment);
    let ring = revisions?.get(revision);
    if (ring === undefined) {
      if (!(point.rps > 0 || point.replicas > 0 || point.coldStarts > 0)) return false;
      if (revisions !== undefined && revisions.size >= this.limits.maxRevisionsPerDeployment)
        this.#evict(deployment);
      else if (
        this.#count >= this.limits.maxSeries &&
        !this.#evict(undefined, point.t - this.limits.minIdleToEvictMs)
      ) {
        this.refused++;
        return false;
      }
      if (revisions === undefined) {
        revisions = new Map();
        this.#series.set(deployment, revisions);
      }
      ring = new Ring(this.limits.capacity);
      revisions.set(revision, ring);
      this.#count++;
    }
    ring.push(point);
    return true;
  }

  /** Drops the revision idle the longest (of one deployment, or of all; idle since before `idleBefore`). */
  #evict(deployment?: string, idleBefore = Number.POSITIVE_INFINITY): boolean {
    let oldest: { deployment: string; revision: number; at: number } | undefined;
    const scan =
      deployment === undefined ? this.#series : new Map([[deployment, this.#series.get(deployment)!]]);
    for (const [d, revisions] of scan)
      for (const [revision, ring] of revisions)
        if (oldest === undefined || ring.lastActive < oldest.at)
          oldest = { deployment: d, revision, at: ring.lastActive };
    if (oldest === undefined || oldest.at >= idleBefore) return false;
    this.#remove(oldest.deployment, oldest.revision);
    return true;
  }

  #remove(deployment: string, revision: number): void {
    const revisions = this.#series.get(deployment);
    if (revisions?.delete(revision)) this.#count--;
    if (revisions?.size === 0) this.#series.delete(deployment);
  }

  /** Forgets deployments for which `exists` is false and revisions idle since before `idleBefore` (ms). */
  prune(exists: (deployment: string) => boolean, idleBefore: number): void {
    for (const [deployment, revisions] of this.#series) {
      if (!exists(deployment)) {
        this.#count -= revisions.size;
        this.#series.delete(deployment);
        continue;
      }
      for (const [revision, ring] of revisions)
        if (ring.lastActive < idleBefore) this.#remove(deployment, revision);
    }
  }

  /** A deployment's revisions (ascending) with their points after `since`; [] when none is kept. */
  view(deployment: string, since?: number): RevisionHistory[] {
    const revisions = this.#series.get(deployment);
    if (revisions === undefined) return [];
    return [...revisions]
      .sort((a, b) => a[0] - b[0])
      .map(([revision, ring]) => ({ revision, points: ring.points(since) }));
  }

  deployments(): string[] {
    return [...this.#series.keys()];
  }

  /** Revisions kept, points held, the bytes of their columns, and new revisions refused so far. */
  stats(): { series: number; points: number; bytes: number; refused: number } {
    let points = 0;
    let bytes = 0;
    for (const revisions of this.#series.values())
      for (const ring of revisions.values()) {
        points += ring.length;
        bytes += ring.bytes;
      }
    return { series: this.#count, points, bytes, refused: this.refused };
  }
}
