/**
 * A fixed set of inference workers for one model version. `run` sends a batch to the least busy worker;
 * the batcher keeps at most PIPELINE_DEPTH (batching/plan.ts) per worker in flight, which each worker runs
 * in order. A worker that dies is replaced; the batches it held fail with FERRY_INFERENCE_FAILED.
 */
import { Worker } from 'node:worker_threads';
import { FerryError } from '../../core/errors.ts';
import type { InferRequest, Tensor, TensorSpec } from '../../protocol/types.ts';
import { concatBatch, splitBatch } from '../batching/concat.ts';
import {
  deserializeError,
  type FromWorker,
  ownBuffers,
  type ToWorker,
  transferables,
  type WorkerInit,
  type WorkerTrace,
} from './messages.ts';

import { takePreloaded } from './preload.ts';
/** The worker's entry: bundled (image), compiled (dist/cli) or through tsx (from source); see worker-url.ts. */
import { WORKER_URL as BOOTSTRAP } from './worker-url.ts';

interface Pending {
  /** Per request, in order: its outputs, or the error of that request alone (grouped requests). */
  resolve: (outputs: (Tensor[] | FerryError)[]) => void;
  reject: (error: Error) => void;
  /** Samples per request when the inputs were concatenated; the batched outputs are split by these. */
  sizes: number[] | null;
  /** performance.now() when it was posted to the worker. */
  postedAt: number;
  onServed: ((ms: number) => void) | undefined;
  /** Tracing on: gets the worker's timings. */
  trace: WorkerTrace | undefined;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  busy: number;
  /** performance.now() when its last message was answered: the worker runs messages in order. */
  lastDoneAt: number;
}

export interface PoolEvents {
  onWorkerExit?: (info: { code: number; replaced: boolean }) => void;
  /** A replacement worker could not load the model; `remaining` workers are still running. */
  onReplacementFailed?: (error: Error, remaining: number) => void;
}

export class WorkerPool {
  #slots: Slot[] = [];
  #nextId = 1;
  #closing = false;
  inputs: TensorSpec[] = [];
  outputs: TensorSpec[] = [];
  /** One of its workers was started while the process booted (preload.ts). */
  preloaded = false;
  /** ONNX: the execution provider the workers' sessions run on, and why. */
  executionProvider: { provider: 'cuda' | 'cpu'; why: string } | null = null;

  private constructor(
    private readonly init: WorkerInit,
    private readonly events: PoolEvents,
  ) {}

  /** Starts `size` workers and resolves when all have loaded the model (or rejects with the first failure). */
  static async start(init: WorkerInit, size: number, events: PoolEvents = {}): Promise<WorkerPool> {
    const pool = new WorkerPool(init, events);
    const started = await Promise.allSettled(Array.from({ length: size }, () => pool.#spawn()));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    return pool;
  }

  #spawn(): Promise<Slot> {
    return new Promise((resolve, reject) => {
      // The worker started while the process booted (preload.ts), when there is one for this format.
      const pre = takePreloaded(this.init.format);
      const worker = pre ?? new Worker(BOOTSTRAP, { workerData: this.init, stdout: false, stderr: false });
      if (pre) {
        this.preloaded = true;
        pre.postMessage({ type: 'init', init: this.init } satisfies ToWorker);
      }
      const slot: Slot = { worker, pending: new Map(), busy: 0, lastDoneAt: 0 };
      let loaded = false;
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'loaded':
            loaded = true;
            this.inputs = message.inputs;
            this.outputs = message.outputs;
            if (message.executionProvider) this.executionProvider = message.executionProvider;
            this.#slots.push(slot);
            resolve(slot);
            break;
          case 'load-failed':
            reject(deserializeError(message.error));
            break;
          case 'result':
          case 'ran':
          case 'failed': {
            const pending = slot.pending.get(message.id);
            if (!pending) break;
            slot.pending.delete(message.id);
            slot.busy--;
            // The worker started it when it was posted or when the one before it was answered, the later.
            const now = performance.now();
            const servedMs = now - Math.max(pending.postedAt, slot.lastDoneAt);
            slot.lastDoneAt = now;
            if (message.type !== 'failed') {
              pending.onServed?.(servedMs);
              if (pending.trace !== undefined && message.timings !== undefined)
                pending.trace.onTimings(message.timings);
            }
            if (message.type === 'failed') pending.reject(deserializeError(message.error));
            else if (message.type === 'result')
              pending.resolve(
                message.results.map((r) => ('error' in r ? deserializeError(r.error) : r.outputs)),
              );
            else settleBatch(pending, message.outputs);
            break;
          }
          case 'unloaded':
          case 'warmed':
            break;
        }
      });
      worker.on('error', (error) => {
        if (!loaded)
          reject(
            new FerryError('FERRY_MODEL_LOAD_FAILED', `inference worker failed to start: ${error.message}`),
          );
      });
      worker.on('exit', (code) => {
        this.#slots = this.#slots.filter((s) => s !== slot);
        for (const pending of slot.pending.values()) {
          pending.reject(
            new FerryError(
              'FERRY_INFERENCE_FAILED',
              `the inference worker exited (code ${code}) while running this request`,
            ),
          );
        }
        slot.pending.clear();
        if (!loaded) {
          reject(
            new FerryError(
              'FERRY_MODEL_LOAD_FAILED',
              `inference worker exited (code ${code}) before the model loaded`,
            ),
          );
          return;
        }
        if (this.#closing) return;
        this.events.onWorkerExit?.({ code, replaced: true });
        this.#spawn().catch((error: Error) => this.events.onReplacementFailed?.(error, this.#slots.length));
      });
    });
  }

  get size(): number {
    return this.#slots.length;
  }

  /**
   * Runs requests on the least busy worker, in one message. `concatenate` (a batch for a model with a batch
   * dimension): they are concatenated here, so one buffer per input crosses to the worker (transferred, not
   * copied), run as one model call, and one buffer per output comes back to be split. Otherwise the worker
   * runs them one call each: grouping them only saves hops. A worker that reaches the message after
   * `notAfter` (wall-clock ms, see messages.ts) skips it. `onServed` gets the time the worker spent on it
   * (answered minus the later of posted and the previous message's answer: hops included, waiting not).
   */
  run(
    requests: InferRequest[],
    concatenate: boolean,
    notAfter = Number.POSITIVE_INFINITY,
    onServed?: (ms: number) => void,
    trace?: WorkerTrace,
  ): Promise<(Tensor[] | FerryError)[]> {
    const slot = this.#slots.reduce<Slot | undefined>(
      (best, s) => (best === undefined || s.busy < best.busy ? s : best),
      undefined,
    );
    if (slot === undefined) {
      return Promise.reject(
        new FerryError('FERRY_MODEL_NOT_READY', 'no inference worker is running for this model'),
      );
    }
    const id = this.#nextId++;
    let message: ToWorker;
    let sizes: number[] | null = null;
    if (concatenate) {
      let inputs = requests[0]!.inputs;
      if (requests.length > 1) {
        const batch = concatBatch(
          requests,
          this.inputs.map((t) => t.name),
        );
        inputs = batch.inputs;
        sizes = batch.sizes;
      }
      ownBuffers(inputs);
      message = { type: 'run', id, inputs, notAfter };
    } else {
      for (const request of requests) ownBuffers(request.inputs);
      message = { type: 'infer', id, requests, notAfter };
    }
    if (trace !== undefined) message.trace = { traceparents: trace.traceparents };
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject, sizes, postedAt: performance.now(), onServed, trace });
      slot.busy++;
      const tensors = message.type === 'run' ? message.inputs : requests.flatMap((r) => r.inputs);
      slot.worker.postMessage(message, transferables(tensors));
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void slot.worker.terminate().then(() => resolve()), 5000);
            slot.worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            slot.worker.postMessage({ type: 'unload' } satisfies ToWorker);
          }),
      ),
    );
    this.#slots = [];
  }
}

function settleBatch(pending: Pending, outputs: Tensor[]): void {
  if (pending.sizes === null) {
    pending.resolve([outputs]);
    return;
  }
  try {
    pending.resolve(splitBatch(outputs, pending.sizes));
  } catch (error) {
    pending.reject(error as Error);
  }
}
