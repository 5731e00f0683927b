/** Runtimes: start, find, read and stop model-server replicas (process, docker). */

export { DockerRuntime, type DockerRuntimeOptions, RUNTIME_LABELS } from './docker-runtime.ts';
export { ProcessRuntime, type ProcessRuntimeOptions } from './process-runtime.ts';
export { readiness, readinessReport, replicaGet, replicaGetJson, withReadiness } from './readiness.ts';
export type {
  ReplicaLogLine,
  ReplicaSpec,
  ReplicaState,
  ReplicaStatus,
  Runtime,
  RuntimeEvent,
  RuntimeWatch,
} from './types.ts';
