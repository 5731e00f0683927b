/** Messages between the main thread and an inference worker, and how tensors cross without copies. */
import { ERROR_CODES, type ErrorCode, FerryError, isFerryError } from '../../core/errors.ts';
import type { InferRequest, Tensor, TensorSpec } from '../../protocol/types.ts';
import type { BackendLoadOptions } from '../backends/types.ts';

export interface WorkerInit {
  format: 'onnx' | 'handler';
  options: BackendLoadOptions;
  /** Nice value for the inference thread (0 = same priority as the event loop). */
  nice: number;
}

/**
 * `notAfter` in a run message: the latest deadline of its requests as a wall-clock time in ms
 * (performance.timeOrigin + performance.now(), comparable across threads). A worker that reaches the message
 * later skips it: every request in it has been answered 504 already. Infinity: no deadline.
 */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Tracing's clock in the workers (server/tracing.ts): ms on the process's monotonic clock (process.hrtime), which
 * every thread shares exactly; each thread's performance.timeOrigin is its own reading of the wall clock, and two
 * threads' can differ by more than a short model call lasts.
 */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

/**
 * Tracing (server/tracing.ts), only when it is on: a message with `trace` is timed by the worker, which answers
 * with `timings`; a grouped one carries each request's traceparent for the handler.
 */
export interface MessageTrace {
  traceparents: (string | undefined)[] | null;
}

/** What the pool is given for a traced batch. */
export interface WorkerTrace extends MessageTrace {
  onTimings(timings: WorkerTimings): void;
}

/** One request's model call in a worker, in monoMs; a handler's phases, those it has. */
export interface RequestTimings {
  start: number;
  end: number;
  preprocess?: [number, number];
  predict?: [number, number];
  postprocess?: [number, number];
  /** Its error code, when it failed alone. */
  error?: string;
}

export type WorkerTimings =
  | { kind: 'batch'; start: number; end: number }
  | { kind: 'group'; requests: RequestTimings[] };

export type ToWorker =
  /** To a preloaded worker (preload.ts), once: the model it is for. */
  | { type: 'init'; init: WorkerInit }
  | { type: 'infer'; id: number; requests: InferRequest[]; notAfter: number; trace?: MessageTrace }
  | { type: 'run'; id: number; inputs: Tensor[]; notAfter: number; trace?: MessageTrace }
  | { type: 'unload' };

export type FromWorker =
  | {
      type: 'loaded';
      inputs: TensorSpec[];
      outputs: TensorSpec[];
      executionProvider?: { provider: 'cuda' | 'cpu'; why: string };
    }
  | { type: 'load-failed'; error: SerializedError }
  /** A group's answers, one per request in order: its outputs, or why it alone failed. */
  | {
      type: 'result';
      id: number;
      results: ({ outputs: Tensor[] } | { error: SerializedError })[];
      timings?: WorkerTimings;
    }
  | { type: 'ran'; id: number; outputs: Tensor[]; timings?: WorkerTimings }
  | { type: 'failed'; id: number; error: SerializedError }
  | { type: 'unloaded' }
  /** From a preloaded worker (preload.ts), once: onnxruntime's setup is over (done or failed). */
  | { type: 'warmed' };

export function serializeError(error: unknown, fallback: ErrorCode): SerializedError {
  if (isFerryError(error)) {
    return { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
  }
  return { code: fallback, message: error instanceof Error ? error.message : String(error) };
}

export function deserializeError(error: SerializedError): FerryError {
  const code = error.code in ERROR_CODES ? error.code : 'FERRY_INTERNAL';
  return new FerryError(code, error.message, error.hint ? { hint: error.hint } : {});
}

/**
 * Buffers to transfer with a message. A typed array that views only part of its buffer (a slice of
 * a pooled request body, say) is first copied, so transferring never detaches memory still in use.
 */
export function transferables(tensors: Iterable<Tensor>): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const tensor of tensors) {
    if (tensor.datatype === 'BYTES') continue;
    const view = tensor.data as Exclude<Tensor['data'], Uint8Array[]>;
    if (!(view.buffer instanceof ArrayBuffer) || view.buffer.byteLength === 0) continue;
    seen.add(view.buffer);
  }
  return [...seen];
}

/**
 * Makes tensor buffers safe to transfer. Node keeps small Buffers in shared 8 KiB pool slabs, so a view
 * into a slab is copied (transferring the slab would detach other Buffers). A larger buffer belongs to
 * one request body alone and is transferred whole, without a copy: for a 600 KB image that saves a
 * copy and, more expensively, the garbage collection it causes.
 */
export function ownBuffers(tensors: Tensor[]): void {
  for (const tensor of tensors) {
    if (tensor.datatype === 'BYTES') continue;
    const view = tensor.data as Exclude<Tensor['data'], Uint8Array[]>;
    const whole = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
    const pooled = view.buffer.byteLength <= Buffer.poolSize;
    if (!(view.buffer instanceof ArrayBuffer) || (!whole && pooled)) {
      tensor.data = view.slice() as typeof view;
    }
  }
}
