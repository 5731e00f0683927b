/**
 * How a model version's requests reach its workers: batched (concatenated into one model call) or grouped
 * (a group shares one hop to a worker thread, each request still one model call). Pure.
 *
 * | serving.batching       | model (format, first dimension of every input and output) | plan                   |
 * |------------------------|-----------------------------------------------------------|------------------------|
 * | off (false / null)     | any                                                       | grouped                |
 * | left out (auto)        | ONNX, all dynamic (-1)                                     | batched, defaults      |
 * | left out (auto)        | a handler, or some tensor without a dynamic first dim     | grouped                |
 * | on (true / a mapping)  | ONNX, all dynamic                                          | batched, as configured |
 * | on (true / a mapping)  | a handler, all dynamic                                     | grouped, as configured |
 * | on (true / a mapping)  | some tensor without a dynamic first dim                    | grouped + a warning    |
 *
 * A handler's predict takes one request, so its "batching" is grouping with the configured policy (sizes in
 * samples, the configured delay): the requests share the hop, each is its own call.
 *
 * Grouping is what makes a model without a batch dimension fast: without it every request costs a full
 * message round trip to the worker, and the worker idles while the main thread answers. A group is
 * whatever queued while the worker was busy (no added delay), up to GROUP_SIZE requests of equal shape.
 */
import type { InferRequest, TensorSpec } from '../../protocol/types.ts';
import { DEFAULTS } from '../../spec/defaults.ts';
import type { BatchingSpec } from '../../spec/types.ts';
import { batchKey, samplesOf } from './concat.ts';

/** Requests sent to a worker in one message when they are not batched. */
export const GROUP_SIZE = 32;
/**
 * Batches in flight per worker: while it runs one, the next already waits in its port (the worker runs them
 * in order), so it does not idle while the main thread answers the last batch and sends the next. Measured
 * (S1 add model, 50 connections, 2 cores): grouped requests 20k -> 35k req/s, batched 46k -> 51k; 3 gave
 * nothing more.
 */
export const PIPELINE_DEPTH = 2;

export interface DispatchPlan {
  /** Concatenate each batch into one model call. */
  batched: boolean;
  policy: BatchingSpec;
  /** What the policy's sizes count: samples (batched) or requests (grouped). */
  samplesOf: (request: InferRequest) => number;
  /** Only requests with equal keys share a batch; grouped requests need none. */
  keyOf: typeof batchKey | undefined;
  /** Tensors without a dynamic first dimension, when batching was asked for but cannot apply. */
  ignored: string[];
}

const ONE = () => 1;

export function dispatchPlan(
  batching: BatchingSpec | null,
  format: 'onnx' | 'handler',
  inputs: TensorSpec[],
  outputs: TensorSpec[],
): DispatchPlan {
  const fixed = [...inputs, ...outputs].filter((t) => t.shape[0] !== -1).map((t) => t.name);
  const auto = batching?.auto === true;
  if (batching !== null && fixed.length === 0) {
    if (format === 'onnx')
      return { batched: true, policy: batching, samplesOf, keyOf: batchKey, ignored: [] };
    if (!auto) return { batched: false, policy: batching, samplesOf, keyOf: undefined, ignored: [] };
  }
  return {
    batched: false,
    policy: {
      maxBatchSize: GROUP_SIZE,
      maxQueueDelayMs: 0,
      preferredBatchSizes: [],
      maxQueueSize: batching?.maxQueueSize ?? DEFAULTS.serving.batchingWhenOn.maxQueueSize,
    },
    samplesOf: ONE,
    keyOf: undefined,
    ignored: batching !== null && !auto ? fixed : [],
  };
}
