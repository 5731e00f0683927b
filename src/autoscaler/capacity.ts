/**
 * The per-replica target when a user sets none: what one replica serves before requests queue behind its
 * batches, from the model's serving settings and, for `rps`, the measured time of one batch. Pure.
 *
 * | metric      | target                                                                  |
 * |-------------|-------------------------------------------------------------------------|
 * | concurrency | workers x batch size x batches in flight per worker (the batcher's pipeline) |
 * | rps         | workers x batch size x 1000 / batch service time (ms), when measured     |
 * | rps, no measurement yet | null: DEFAULT_TARGET applies until one is              |
 *
 * Without batching the batch size is 1 (a replica still groups requests per worker hop, but each is its own
 * model call). So a batched ONNX model with one worker and batches of 32 aims at 64 requests in flight per
 * replica (45 at 70% utilisation), a handler model with one worker at 2.
 */
import type { ScalingMetric } from './types.ts';

export interface ReplicaCapacity {
  /** Worker threads per replica (serving.concurrency). */
  workers: number;
  /** Samples per model call: maxBatchSize when batching is on, else 1. */
  batchSize: number;
  /** Batches a worker has in flight at once (the server's PIPELINE_DEPTH, 2). */
  pipelineDepth: number;
  /** Median time of one model call (ms), when measured. */
  batchServiceTimeMs?: number;
}

export function derivedTarget(metric: ScalingMetric, c: ReplicaCapacity): number | null {
  const perWave = Math.max(1, c.workers) * Math.max(1, c.batchSize);
  if (metric === 'concurrency') return perWave * Math.max(1, c.pipelineDepth);
  if (c.batchServiceTimeMs === undefined || !(c.batchServiceTimeMs > 0)) return null;
  return (perWave * 1000) / c.batchServiceTimeMs;
}
