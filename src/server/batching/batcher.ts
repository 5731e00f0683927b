/**
 * The async batching loop. It keeps the queue, asks the pure policy (policy.ts) what to do, and
 * carries it out: dispatches batches to `execute`, arms one timer for the next decision time, and
 * rejects shed or late requests. It runs the policy only when something changes (a request arrives,
 * the timer fires, a batch finishes); it never polls. Time comes from an injected Clock so tests
 * walk a timeline without real timers.
 *
 * At low load it adds essentially nothing: with maxQueueDelayMs 0 and a free executor, `submit`
 * calls `execute` synchronously, before it returns.
 */
import { FerryError, isFerryError } from '../../core/errors.ts';
import type { BatchingSpec } from '../../spec/types.ts';
import { BatchLatencyEstimator, type BatchPolicy, decideBatch, shouldShed } from './policy.ts';

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
}

/**
 * performance.now() and setTimeout. Timers are not unref'd on purpose: a timer only exists while
 * requests are queued, and it is what moves them on; unref'ing it could let a process exit with
 * requests that never settle.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const timer = setTimeout(fn, Math.max(1, Math.ceil(ms)));
    return { cancel: () => clearTimeout(timer) };
  },
};

export interface BatchInfo {
  /** Requests in the batch. */
  size: number;
  /** Samples in the batch (sum of samplesOf). */
  samples: number;
  /** Per request, ms from submit to dispatch. */
  queueMs: number[];
  /** ms from dispatch until execute settled. */
  runMs: number;
  /** False when execute failed (every request of the batch was rejected). */
  ok: boolean;
}

export interface BatcherOptions<TReq, TRes> {
  policy: BatchingSpec;
  clock: Clock;
  /**
   * Runs one batch; resolves with one result per request, in order; a result that is a FerryError fails
   * that request alone. `deadline` (clock ms) is the latest of its requests': an executor that cannot start
   * it before then may skip it (every request has had its 504).
   */
  execute: (batch: TReq[], deadline: number) => Promise<(TRes | FerryError)[]>;
  /** Samples in a request (its first dimension); batch sizes are counted in samples. */
  samplesOf: (request: TReq) => number;
  /** Number of executors: at most this many batches run at once. */
  concurrency: number;
  /** Only requests with equal keys are batched together (e.g. batchKey from concat.ts). */
  keyOf?: (request: TReq) => string;
  /** Called after every executed batch (metrics). */
  onBatch?: (info: BatchInfo) => void;
  /** The run-time estimator used for deadline shedding and Retry-After; default a new one. */
  estimator?: BatchLatencyEstimator;
}

interface Entry<TReq, TRes> {
  readonly request: TReq;
  readonly samples: number;
  readonly enqueuedAt: number;
  readonly deadline: number;
  readonly key: string | undefined;
  readonly resolve: (result: TRes) => void;
  readonly reject: (error: FerryError) => void;
}

export class Batcher<TReq, TRes> {
  readonly #spec: BatchingSpec;
  readonly #clock: Clock;
  readonly #execute: (batch: TReq[], deadline: number) => Promise<(TRes | FerryError)[]>;
  readonly #samplesOf: (request: TReq) => number;
  readonly #keyOf: ((request: TReq) => string) | undefined;
  readonly #onBatch: ((info: BatchInfo) => void) | undefined;
  readonly #concurrency: number;
  readonly #estimator: BatchLatencyEstimator;
  /** Policies handed to decideBatch, built once: [no estimate yet, with estimate] x [open, closing]. */
  readonly #policies: {
    open: BatchPolicy;
    closing: BatchPolicy;
    openEst: BatchPolicy;
    closingEst: BatchPolicy;
  };

  #queue: Entry<TReq, TRes>[] = [];
  #running = 0;
  #timer: TimerHandle | null = null;
  #timerAt = Number.NaN;
  #closed = false;
  #pumping = false;
  #pumpAgain = false;
  #drainWaiters: (() => void)[] = [];

  constructor(options: BatcherOptions<TReq, TRes>) {
    const { policy, concurrency } = options;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `Batcher: concurrency must be an integer >= 1, got ${concurrency}`,
      );
    }
    if (!(policy.maxBatchSize >= 1) || !(policy.maxQueueDelayMs >= 0) || !(policy.maxQueueSize >= 1)) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `Batcher: invalid batching policy (maxBatchSize ${policy.maxBatchSize} must be >= 1, maxQueueDelayMs ${policy.maxQueueDelayMs} >= 0, maxQueueSize ${policy.maxQueueSize} >= 1)`,
      );
    }
    this.#spec = policy;
    this.#clock = options.clock;
    this.#execute = options.execute;
    this.#samplesOf = options.samplesOf;
    this.#keyOf = options.keyOf;
    this.#onBatch = options.onBatch;
    this.#concurrency = concurrency;
    const estimator = options.estimator ?? new BatchLatencyEstimator();
    this.#estimator = estimator;
    const estimate = (samples: number): number => estimator.estimate(samples) ?? 0;
    // After close() no request can arrive to join a batch, so waiting for one is pointless.
    const closing = { ...policy, maxQueueDelayMs: 0 };
    this.#policies = {
      open: { ...policy },
      closing,
      openEst: { ...policy, estimate },
      closingEst: { ...closing, estimate },
    };
  }

  /** Requests waiting in the queue (not counting running batches). */
  get queueDepth(): number {
    return this.#queue.length;
  }

  /** Batches executing now. */
  get running(): number {
    return this.#running;
  }

  /**
   * Queues a request. Resolves with its result, or rejects with a FerryError: FERRY_SHUTTING_DOWN after
   * close(), FERRY_QUEUE_FULL (with retryAfterSeconds) when maxQueueSize requests are waiting,
   * FERRY_DEADLINE_EXCEEDED when it cannot finish by `deadline` (clock ms), or the batch's failure.
   */
  submit(request: TReq, deadline: number): Promise<TRes> {
    if (this.#closed) {
      return Promise.reject(
        new FerryError('FERRY_SHUTTING_DOWN', 'the model server is shutting down and takes no new requests', {
          hint: 'Send the request to another replica.',
        }),
      );
    }
    if (shouldShed(this.#queue.length, this.#spec.maxQueueSize)) {
      return Promise.reject(
        new FerryError(
          'FERRY_QUEUE_FULL',
          `the batching queue is full (${this.#queue.length} requests waiting, serving.batching.maxQueueSize is ${this.#spec.maxQueueSize})`,
          {
            retryAfterSeconds: this.#retryAfterSeconds(),
            hint: 'Retry after the Retry-After delay, add replicas, or raise serving.batching.maxQueueSize.',
          },
        ),
      );
    }
    let samples: number;
    let key: string | undefined;
    try {
      samples = this.#samplesOf(request);
      key = this.#keyOf?.(request);
    } catch (error) {
      return Promise.reject(toFerryError(error, 'FERRY_INTERNAL', 'could not size the request for batching'));
    }
    if (!Number.isInteger(samples) || samples < 0) {
      return Promise.reject(
        new FerryError(
          'FERRY_INTERNAL',
          `samplesOf returned ${samples}; a request's sample count must be an integer >= 0`,
        ),
      );
    }
    return new Promise<TRes>((resolve, reject) => {
      this.#queue.push({ request, samples, enqueuedAt: this.#clock.now(), deadline, key, resolve, reject });
      this.#pump();
    });
  }

  /** Resolves when the queue is empty and no batch is running. */
  drain(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /**
   * Stops taking requests (new submits reject with FERRY_SHUTTING_DOWN), dispatches what is queued
   * without further delay, and resolves when everything has finished.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#pump();
    return this.drain();
  }

  #idle(): boolean {
    return this.#queue.length === 0 && this.#running === 0;
  }

  #retryAfterSeconds(): number {
    let samples = 0;
    for (const entry of this.#queue) samples += entry.samples;
    const max = this.#spec.maxBatchSize;
    const batchMs = this.#estimator.estimate(Math.min(max, Math.max(1, samples)));
    if (batchMs === undefined) return 1;
    const rounds = Math.ceil(Math.ceil(samples / max) / this.#concurrency);
    return Math.max(1, Math.ceil((rounds * batchMs) / 1000));
  }

  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#step();
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  /** Runs the policy until it says wait; dispatches every batch it hands out meanwhile. */
  #step(): void {
    const estimated = this.#estimator.ready;
    const policy = this.#closed
      ? estimated
        ? this.#policies.closingEst
        : this.#policies.closing
      : estimated
        ? this.#policies.openEst
        : this.#policies.open;
    for (;;) {
      const now = this.#clock.now();
      const decision = decideBatch(
        { queue: this.#queue, now, busy: this.#running >= this.#concurrency },
        policy,
      );
      const batch = decision.kind === 'dispatch' ? decision.indexes : EMPTY;
      if (decision.expired.length > 0 || batch.length > 0) this.#take(decision.expired, batch, now);
      if (decision.kind === 'wait') {
        this.#arm(decision.until, now);
        if (this.#idle()) this.#drained();
        return;
      }
    }
  }

  /** Removes expired and dispatched entries from the queue (one pass), rejects the first, runs the second. */
  #take(expired: number[], dispatch: number[], now: number): void {
    const queue = this.#queue;
    const batch: Entry<TReq, TRes>[] = [];
    let write = 0;
    let e = 0;
    let d = 0;
    for (let read = 0; read < queue.length; read++) {
      const entry = queue[read]!;
      if (expired[e] === read) {
        e++;
        entry.reject(lateError(entry, now, this.#estimator.estimate(entry.samples)));
      } else if (dispatch[d] === read) {
        d++;
        batch.push(entry);
      } else {
        queue[write++] = entry;
      }
    }
    queue.length = write;
    if (batch.length > 0) this.#run(batch, now);
  }

  #run(batch: Entry<TReq, TRes>[], dispatchedAt: number): void {
    this.#running++;
    const requests = batch.map((entry) => entry.request);
    let samples = 0;
    let latest = Number.NEGATIVE_INFINITY;
    for (const entry of batch) {
      samples += entry.samples;
      if (entry.deadline > latest) latest = entry.deadline;
    }
    const overdue = this.#watchDeadlines(batch);
    // The executor is free again: hand out the next batch before answering this one, so the worker does
    // not wait while the main thread writes the responses.
    const release = () => {
      overdue.cancel();
      this.#running--;
      this.#pump();
    };
    let pending: Promise<(TRes | FerryError)[]>;
    try {
      pending = this.#execute(requests, latest);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (results) => {
        const runMs = this.#clock.now() - dispatchedAt;
        release();
        if (!Array.isArray(results) || results.length !== batch.length) {
          const got = Array.isArray(results) ? `${results.length} results` : typeof results;
          const error = new FerryError(
            'FERRY_INTERNAL',
            `the batch executor returned ${got} for a batch of ${batch.length} requests`,
          );
          for (const entry of batch) entry.reject(error);
          this.#report(batch, samples, dispatchedAt, runMs, false);
          return;
        }
        this.#estimator.observe(samples, runMs);
        for (let i = 0; i < batch.length; i++) {
          const result = results[i]!;
          if (result instanceof FerryError) batch[i]!.reject(result);
          else batch[i]!.resolve(result);
        }
        this.#report(batch, samples, dispatchedAt, runMs, true);
      },
      (error: unknown) => {
        const runMs = this.#clock.now() - dispatchedAt;
        release();
        const failure = toFerryError(
          error,
          'FERRY_INFERENCE_FAILED',
          `the model failed while running a batch of ${batch.length} request(s)`,
        );
        for (const entry of batch) entry.reject(failure);
        this.#report(batch, samples, dispatchedAt, runMs, false);
      },
    );
  }

  /**
   * Answers a running request whose deadline passes before its batch finishes with 504 (the batch's late
   * result is then dropped for it): one timer per batch, at its earliest deadline, not one per request.
   */
  #watchDeadlines(batch: Entry<TReq, TRes>[]): TimerHandle {
    let timer: TimerHandle | null = null;
    const answered = new Set<Entry<TReq, TRes>>();
    const arm = (): void => {
      let earliest = Number.POSITIVE_INFINITY;
      for (const entry of batch)
        if (!answered.has(entry) && entry.deadline < earliest) earliest = entry.deadline;
      if (earliest === Number.POSITIVE_INFINITY) return;
      timer = this.#clock.setTimer(Math.max(0, earliest - this.#clock.now()), () => {
        const now = this.#clock.now();
        for (const entry of batch) {
          if (answered.has(entry) || entry.deadline > now) continue;
          answered.add(entry);
          entry.reject(
            new FerryError(
              'FERRY_DEADLINE_EXCEEDED',
              `inference did not finish within the model's timeout: its batch was still running ${Math.round(now - entry.enqueuedAt)} ms after the request arrived`,
              {
                hint: 'Raise serving.timeout in ferry.yaml, add workers (serving.concurrency), or send less load.',
              },
            ),
          );
        }
        arm();
      });
    };
    arm();
    return { cancel: () => timer?.cancel() };
  }

  #report(
    batch: Entry<TReq, TRes>[],
    samples: number,
    dispatchedAt: number,
    runMs: number,
    ok: boolean,
  ): void {
    if (this.#onBatch === undefined) return;
    const queueMs = batch.map((entry) => dispatchedAt - entry.enqueuedAt);
    try {
      this.#onBatch({ size: batch.length, samples, queueMs, runMs, ok });
    } catch (error) {
      // A failing metrics callback must not fail requests or stop the loop; make it visible instead.
      process.emitWarning(
        `Batcher onBatch callback threw: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  #arm(until: number | null, now: number): void {
    if (until === this.#timerAt && this.#timer !== null) return;
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Number.NaN;
    if (until === null) return;
    this.#timerAt = until;
    this.#timer = this.#clock.setTimer(Math.max(0, until - now), () => {
      this.#timer = null;
      this.#timerAt = Number.NaN;
      this.#pump();
    });
  }

  #drained(): void {
    if (this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

const EMPTY: number[] = [];

function lateError(
  entry: { enqueuedAt: number; deadline: number },
  now: number,
  estimate: number | undefined,
): FerryError {
  const waited = Math.round(now - entry.enqueuedAt);
  const why =
    now >= entry.deadline
      ? 'its deadline passed while it waited'
      : `its batch's estimated run time (~${Math.ceil(estimate ?? 0)} ms or more) would end after its deadline (in ${Math.round(entry.deadline - now)} ms)`;
  return new FerryError(
    'FERRY_DEADLINE_EXCEEDED',
    `the request was rejected before running: ${why}; it waited ${waited} ms in the batching queue`,
    { hint: 'Retry later or with a longer timeout (serving.timeoutMs); the replica is overloaded.' },
  );
}

function toFerryError(
  error: unknown,
  code: 'FERRY_INFERENCE_FAILED' | 'FERRY_INTERNAL',
  context: string,
): FerryError {
  if (isFerryError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FerryError(code, `${context}: ${message}`, { cause: error });
}
