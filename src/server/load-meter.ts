/**
 * One model version's load as the autoscaler reads it (GET /ferry/load, src/core/replica.ts LoadReport): how
 * full its executor slots ran and how long one full model call takes. Off the hot path: a few additions per
 * batch (not per request), nothing per read but a multiplication.
 *
 * Fill: the batcher keeps at most workers x PIPELINE_DEPTH batches out (its executor slots). A batch out fills
 * min(1, samples / batchSize) of a slot, from dispatch until it settles; `fillMs` is the time integral of the
 * filled slots, kept exactly (the level changes only at dispatch and settle; a read adds the level times the
 * time since the last change, so a long batch shows while it runs, not all at once when it ends). A reader
 * divides its difference over an interval by the interval x slots. For a version whose requests are not
 * batched (batchSize 1: each request is its own model call), a group out fills its slot: the fill is how busy
 * the slots were.
 *
 * Service time: `served` gets the time a worker spent on a call (see WorkerPool.run), and a least-squares fit
 * over recent calls (BatchLatencyEstimator, a x samples + b) gives the time of a full one.
 */
import { BatchLatencyEstimator } from './batching/policy.ts';

export class LoadMeter {
  readonly #batchSize: number;
  readonly #batched: boolean;
  readonly #now: () => number;
  readonly #service = new BatchLatencyEstimator();
  #out = 0;
  #level = 0;
  #since: number;
  #fillMs = 0;
  batches = 0;
  samples = 0;

  /**
   * `batchSize`: samples one call holds at most (maxBatchSize when batched); `batched` false: each request is
   * its own call (a group's calls run one after another), and batchSize is 1.
   */
  constructor(batchSize: number, batched: boolean, now: () => number = () => performance.now()) {
    this.#batchSize = batched ? Math.max(1, batchSize) : 1;
    this.#batched = batched;
    this.#now = now;
    this.#since = now();
  }

  get batchSize(): number {
    return this.#batchSize;
  }

  #fill(samples: number): number {
    return this.#batched ? Math.min(1, samples / this.#batchSize) : 1;
  }

  #advance(): void {
    const now = this.#now();
    this.#fillMs += this.#level * (now - this.#since);
    this.#since = now;
  }

  /** A batch of `samples` samples (requests, when not batched) went out to a worker. */
  dispatched(samples: number): void {
    this.#advance();
    this.#out++;
    this.#level += this.#fill(samples);
  }

  /** That batch settled (answered or failed). */
  settled(samples: number): void {
    this.#advance();
    this.#out = Math.max(0, this.#out - 1);
    // Adding and taking away the same fractions leaves rounding dust: nothing out is exactly nothing.
    this.#level = this.#out === 0 ? 0 : Math.max(0, this.#level - this.#fill(samples));
    this.batches++;
    this.samples += samples;
  }

  /** A worker spent `ms` on one message of `samples` samples (`calls` model calls: 1 when batched). */
  served(samples: number, calls: number, ms: number): void {
    if (this.#batched) this.#service.observe(samples, ms);
    else if (calls > 0) this.#service.observe(1, ms / calls);
  }

  /** The fill integral (ms x filled slots) up to now. */
  fillMs(): number {
    return this.#fillMs + this.#level * (this.#now() - this.#since);
  }

  /** Estimated ms of one full call; null until enough calls were measured. */
  batchServiceMs(): number | null {
    return this.#service.estimate(this.#batchSize) ?? null;
  }
}
