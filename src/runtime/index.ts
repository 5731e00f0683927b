/** Runtimes: start, find, read and stop model-server replicas (process, docker). */

export { DockerRuntime, type DockerRuntimeOptions, RUNTIME_LABELS } from './docker-runtime.ts';
export { ProcessRuntime, type ProcessRuntimeOptions } from './process-runtime.ts';
export {
  readiness,
  readinessReport,
  replicaGet,
  replicaGetJson,
  replicaGetText,
  withReadiness,
} from './readiness.ts';
export { type SwarmGatewayConfig, SwarmRuntime, type SwarmRuntimeOptions } from './swarm-runtime.ts';
export type {
  ReplicaLogLine,
  ReplicaSpec,
  ReplicaState,
  ReplicaStatus,
  RevisionRuntime,
  RevisionSpec,
  RevisionStatus,
  RevisionTarget,
  Runtime,
  RuntimeEvent,
  RuntimeKind,
  RuntimeReader,
  RuntimeWatch,
} from './types.ts';
