/** Runtimes: start, find, read and stop model-server replicas (process, docker). */

export {
  CONTAINER_SOCKET_DIR,
  DockerRuntime,
  type DockerRuntimeOptions,
  RUNTIME_LABELS,
} from './docker-runtime.ts';
export { OTLP_RELAY_FILE, OTLP_RELAY_PATH, OtlpRelay, type OtlpRelayTarget } from './otlp-relay.ts';
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
