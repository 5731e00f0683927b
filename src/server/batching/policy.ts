/**
 * The batching policy: a pure function of the queue, the time and whether an executor is free.
 * No timers, no I/O; the async loop in batcher.ts feeds it and carries out what it decides.
 * Setting names follow Triton's dynamic batcher (max batch size, max queue delay, preferred batch
 * sizes, max queue size); deadline shedding follows BentoML's dispatcher (an online a*n+b fit of the
 * batch run time rejects early the requests that cannot finish in time).
 */
import type { BatchingSpec } from '../../spec/types.ts';

export interface QueuedItem {
  /** Samples in the request: the size of its first (batch) dimension. */
  readonly samples: number;
  /** When it entered the queue (clock ms). */
  readonly enqueuedAt: number;
  /** When its answer is due (clock ms); Infinity = none. */
  readonly deadline: number;
  /** Requests are only batched with requests of an equal key (undefined = all compatible). */
  readonly key?: string | undefined;
}

export interface BatchState {
  /** FIFO order: index 0 is the oldest. */
  readonly queue: ReadonlyArray<QueuedItem>;
  readonly now: number;
  /** True when no executor is free. */
  readonly busy: boolean;
}

export type BatchPolicy = BatchingSpec & {
  /** Estimated run time in ms of a batch of `samples` samples; absent while there is not enough data. */
  estimate?: ((samples: number) => number) | undefined;
};

export type BatchDecision =
  | {
      kind: 'dispatch';
      /** Requests in the batch (= indexes.length). Without keys: the first `count` entries that are not expired. */
      count: number;
      /** Queue indexes of the batch, ascending (FIFO order). */
      indexes: number[];
      /** Queue indexes to reject as late (504), ascending. */
      expired: number[];
    }
  | {
      kind: 'wait';
      /** Run the policy again at this time; null = only when a request arrives or an executor frees up. */
      until: number | null;
      expired: number[];
    };

/**
 * A waiting batch is dispatched this many ms before the latest start that still meets a member's
 * deadline, because real timers fire a little late.
 */
export const DEADLINE_SLACK_MS = 1;

/**
 * Decides what the batcher does now.
 *
 * Expiry (checked first, for every queued request; expired requests are left out of everything below):
 *
 * | request                                                               | result          |
 * |-----------------------------------------------------------------------|-----------------|
 * | now >= deadline                                                       | expired         |
 * | an estimate exists and now + estimate(its own samples) > deadline     | expired         |
 * | in the batch about to be dispatched, now + estimate(batch) > deadline | expired (retry) |
 *
 * "(retry)": the decision is taken again without it, so the batch may change.
 *
 * Dispatch. The *group* is the oldest live request (the head) plus the following live requests with
 * the head's key, in FIFO order, while their samples sum to at most maxBatchSize (it stops at the
 * first one that does not fit: that makes it *blocked*). S = samples in the group.
 *
 * | # | condition (first match wins)                                          | decision                         |
 * |---|-----------------------------------------------------------------------|----------------------------------|
 * | 1 | no live request                                                       | wait, until null                 |
 * | 2 | busy (no free executor)                                               | wait, until earliest deadline    |
 * | 3 | S >= maxBatchSize (full, or a head larger than maxBatchSize, alone)   | dispatch the group               |
 * | 4 | a prefix of the group sums exactly to a preferred size                | dispatch the longest such prefix |
 * | 5 | the group is blocked (the next request of its key does not fit)       | dispatch the group               |
 * | 6 | maxQueueDelayMs = 0 (take what is queued, no added delay)             | dispatch the group               |
 * | 7 | the head has waited >= maxQueueDelayMs                                | dispatch the group               |
 * | 8 | estimate exists, now + estimate(S) + slack >= a group member's deadline | dispatch the group (just in time) |
 * | 9 | otherwise                                                             | wait, until the earliest of: head's delay expiry, row 8's trigger time, any deadline |
 *
 * A `wait` always has `until` strictly after `now` (or null), so the loop never spins.
 */
export function decideBatch(state: BatchState, policy: BatchPolicy): BatchDecision {
  const { queue, now, busy } = state;
  const { estimate, maxBatchSize } = policy;
  const n = queue.length;
  const expired: number[] = [];
  let dead: Uint8Array | null = null;

  // Expiry of requests that cannot make it even if they ran alone, right now.
  for (let i = 0; i < n; i++) {
    const item = queue[i]!;
    if (now >= item.deadline || (estimate !== undefined && now + estimate(item.samples) > item.deadline)) {
      dead ??= new Uint8Array(n);
      dead[i] = 1;
      expired.push(i);
    }
  }

  if (busy) {
    let until = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) if (dead?.[i] !== 1 && queue[i]!.deadline < until) until = queue[i]!.deadline;
    return { kind: 'wait', until: Number.isFinite(until) ? until : null, expired };
  }

  const group: number[] = [];
  for (;;) {
    let head = 0;
    while (head < n && dead?.[head] === 1) head++;
    if (head === n) return { kind: 'wait', until: null, expired: sorted(expired) };

    // Form the group.
    group.length = 0;
    const headItem = queue[head]!;
    group.push(head);
    let total = headItem.samples;
    let blocked = false;
    if (total < maxBatchSize) {
      for (let j = head + 1; j < n; j++) {
        const item = queue[j]!;
        if (dead?.[j] === 1 || item.key !== headItem.key) continue;
        if (total + item.samples > maxBatchSize) {
          blocked = true;
          break;
        }
        group.push(j);
        total += item.samples;
        if (total === maxBatchSize) break;
      }
    }

    // Decide: how many of the group go now (0 = wait).
    let take = 0;
    if (total >= maxBatchSize) take = group.length;
    else {
      take = longestPreferredPrefix(queue, group, policy.preferredBatchSizes);
      if (take === 0) {
        if (blocked || policy.maxQueueDelayMs <= 0 || now >= headItem.enqueuedAt + policy.maxQueueDelayMs) {
          take = group.length;
        } else if (estimate !== undefined) {
          const latest = minDeadline(queue, group, group.length) - estimate(total) - DEADLINE_SLACK_MS;
          if (now >= latest) take = group.length;
        }
      }
    }

    if (take === 0) {
      let until = headItem.enqueuedAt + policy.maxQueueDelayMs;
      if (estimate !== undefined) {
        until = Math.min(
          until,
          minDeadline(queue, group, group.length) - estimate(total) - DEADLINE_SLACK_MS,
        );
      }
      for (let i = 0; i < n; i++)
        if (dead?.[i] !== 1 && queue[i]!.deadline < until) until = queue[i]!.deadline;
      return { kind: 'wait', until, expired: sorted(expired) };
    }

    // Members that the batch's estimated run time would make late are expired; decide again without them.
    if (estimate !== undefined) {
      let batchSamples = 0;
      for (let k = 0; k < take; k++) batchSamples += queue[group[k]!]!.samples;
      const finish = now + estimate(batchSamples);
      let late = false;
      for (let k = 0; k < take; k++) {
        const index = group[k]!;
        if (finish > queue[index]!.deadline) {
          dead ??= new Uint8Array(n);
          dead[index] = 1;
          expired.push(index);
          late = true;
        }
      }
      if (late) continue;
    }

    const indexes = group.slice(0, take);
    return { kind: 'dispatch', count: take, indexes, expired: sorted(expired) };
  }
}

/** The length of the longest group prefix whose samples sum exactly to a preferred size (0 = none). */
function longestPreferredPrefix(
  queue: ReadonlyArray<QueuedItem>,
  group: number[],
  preferred: number[],
): number {
  if (preferred.length === 0) return 0;
  let best = 0;
  let sum = 0;
  for (let k = 0; k < group.length; k++) {
    sum += queue[group[k]!]!.samples;
    if (preferred.includes(sum)) best = k + 1;
  }
  return best;
}

function minDeadline(queue: ReadonlyArray<QueuedItem>, group: number[], count: number): number {
  let min = Number.POSITIVE_INFINITY;
  for (let k = 0; k < count; k++) min = Math.min(min, queue[group[k]!]!.deadline);
  return min;
}

function sorted(indexes: number[]): number[] {
  return indexes.length > 1 ? indexes.sort((a, b) => a - b) : indexes;
}

/** True when a new request must be shed: the queue already holds maxQueueSize waiting requests. */
export function shouldShed(queueLength: number, maxQueueSize: number): boolean {
  return queueLength >= maxQueueSize;
}

export interface EstimatorOptions {
  /** Most recent batches the fit uses. Default 50 (as BentoML). */
  window?: number;
  /** Batches needed before estimates are given. Default 5. */
  minObservations?: number;
  /** First batches ignored (cold caches, lazy allocation). Default 1. */
  warmup?: number;
}

/**
 * Online estimate of a batch's run time as a*samples + b, fitted by least squares over a bounded
 * window of recent batches. "Not enough data" is a value: estimate() returns undefined until
 * minObservations batches were seen. The slope is never negative (more samples never run faster);
 * with a single distinct batch size seen, the estimate is their mean for every size.
 */
export class BatchLatencyEstimator {
  readonly #samples: Float64Array;
  readonly #ms: Float64Array;
  readonly #minObservations: number;
  #warmup: number;
  #size = 0;
  #next = 0;
  #a = 0;
  #b = 0;

  constructor(options: EstimatorOptions = {}) {
    const window = Math.max(2, Math.floor(options.window ?? 50));
    this.#samples = new Float64Array(window);
    this.#ms = new Float64Array(window);
    this.#minObservations = Math.min(window, Math.max(1, Math.floor(options.minObservations ?? 5)));
    this.#warmup = Math.max(0, Math.floor(options.warmup ?? 1));
  }

  /** Records one executed batch. Non-finite or negative values are ignored. */
  observe(samples: number, ms: number): void {
    if (!(Number.isFinite(samples) && Number.isFinite(ms) && samples >= 0 && ms >= 0)) return;
    if (this.#warmup > 0) {
      this.#warmup--;
      return;
    }
    this.#samples[this.#next] = samples;
    this.#ms[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#size < this.#samples.length) this.#size++;
    this.#fit();
  }

  /** Estimated run time in ms of a batch of `samples` samples, or undefined without enough data. */
  estimate(samples: number): number | undefined {
    if (this.#size < this.#minObservations) return undefined;
    return Math.max(0, this.#a * samples + this.#b);
  }

  get ready(): boolean {
    return this.#size >= this.#minObservations;
  }

  #fit(): void {
    const count = this.#size;
    let sumN = 0;
    let sumMs = 0;
    for (let i = 0; i < count; i++) {
      sumN += this.#samples[i]!;
      sumMs += this.#ms[i]!;
    }
    const meanN = sumN / count;
    const meanMs = sumMs / count;
    let sxx = 0;
    let sxy = 0;
    for (let i = 0; i < count; i++) {
      const dn = this.#samples[i]! - meanN;
      sxx += dn * dn;
      sxy += dn * (this.#ms[i]! - meanMs);
    }
    const slope = sxx > 0 ? sxy / sxx : 0;
    if (slope > 0) {
      this.#a = slope;
      this.#b = meanMs - slope * meanN;
    } else {
      this.#a = 0;
      this.#b = meanMs;
    }
  }
}
