/**
 * Control plane: the store, the pure decisions behind `ferry up` (reconciler diff, rollout steps, traffic
 * moves), the labels that mark what Ferry runs, and the controller: the reconcile loop (loop.ts) that feeds
 * those decisions their state and `now`, and the command service (commands.ts) the HTTP API (api/) calls.
 */

export * from './api/index.ts';
export { type ArtifactInfo, ArtifactStore, type ReceivedArtifact } from './artifacts.ts';
export { ChangeFeed, type ChangeWatcher, type PlatformChange } from './changes.ts';
export { CommandService, type CommandServiceOptions } from './commands.ts';
export { Controller, type ControllerOptions } from './controller.ts';
export { type ControllerLogger, eventRecorder, type RecordEvent } from './events.ts';
export { type GatewayLoadReport, GatewayLoads } from './gateway-load.ts';
export {
  isManaged,
  LABELS,
  MANAGED_BY,
  makeReplicaLabels,
  type ReplicaClaim,
  readReplicaClaim,
} from './labels.ts';
export { LogArchive, type LogArchiveOptions } from './log-archive.ts';
export { ControlLoop, type ControlLoopOptions, type ImageProvisioner } from './loop.ts';
export type { LoopPort, LoopStatus } from './loop-port.ts';
export { ControlMetrics } from './metrics.ts';
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
export { ReplicaLogs, type ReplicaLogsOptions } from './replica-logs.ts';
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
export { type GatewayRoutes, RouteFile, type RouteFileVersion, routeFileEtag } from './route-file.ts';
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
