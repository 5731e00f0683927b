/**
 * Control plane: the pure decisions behind `ferry up` (reconciler diff, rollout steps) and the labels that
 * mark what Ferry runs. The loops that store revisions, call a runtime and the gateway come later and feed
 * these functions their state and `now`.
 */
export {
  isManaged,
  LABELS,
  MANAGED_BY,
  makeReplicaLabels,
  type ReplicaClaim,
  readReplicaClaim,
} from './labels.ts';
export {
  type CrashHistory,
  type CrashRecord,
  crashBackoffMs,
  crashKey,
  DEFAULT_RESET_AFTER_MS,
  type DesiredState,
  type ReconcilePolicy,
  type ReconcileResult,
  reconcile,
} from './reconcile.ts';
export {
  abort,
  type CanaryStep,
  canarySteps,
  promote,
  type RolloutDecision,
  type RolloutObservation,
  type RolloutPhase,
  type RolloutState,
  type RolloutStrategy,
  startRollout,
  stepRollout,
  undo,
} from './rollout.ts';
export * from './store/index.ts';
export type {
  Action,
  ActualReplica,
  Condition,
  ConditionStatus,
  RemoveReason,
  ReplicaState,
  Revision,
} from './types.ts';
