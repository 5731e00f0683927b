/**
 * Control plane: the pure decisions behind `ferry up` (reconciler diff, rollout steps) and the labels that
 * mark what Ferry runs. The loops that store revisions, call a runtime and the gateway come later and feed
 * these functions their state and `now`.
 */

export * from './api/index.ts';
export { type ArtifactInfo, ArtifactStore, type ReceivedArtifact } from './artifacts.ts';
export { Controller, type ControllerOptions } from './controller.ts';
export type { ControllerLogger } from './events.ts';
export {
  isManaged,
  LABELS,
  MANAGED_BY,
  makeReplicaLabels,
  type ReplicaClaim,
  readReplicaClaim,
} from './labels.ts';
export { LogArchive, type LogArchiveOptions } from './log-archive.ts';
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
export {
  buildRoutes,
  type RoutePublisher,
  type RouteTable,
  servingRevision,
  steadyReplicas,
} from './routing.ts';
export { envName, SecretBox, Secrets } from './secrets.ts';
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
export {
  type AddVersionRequest,
  type ImagePinner,
  type PinnedImage,
  registerVersion,
  versionSpecOf,
} from './versions.ts';
export type * from './views.ts';
