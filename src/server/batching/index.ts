/** Dynamic batching: a pure policy, the async loop that applies it, and tensor concat/split. */
export {
  Batcher,
  type BatcherOptions,
  type BatchInfo,
  type Clock,
  systemClock,
  type TimerHandle,
} from './batcher.ts';
export { batchKey, concatBatch, samplesOf, splitBatch } from './concat.ts';
export {
  type BatchDecision,
  BatchLatencyEstimator,
  type BatchPolicy,
  type BatchState,
  DEADLINE_SLACK_MS,
  decideBatch,
  type EstimatorOptions,
  type QueuedItem,
  shouldShed,
} from './policy.ts';
