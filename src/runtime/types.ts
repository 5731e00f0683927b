/**
 * The Runtime port: what the control plane needs to start, find, read and stop model-server replicas.
 * Implementations: process (a `ferry serve` child per replica), docker (a hardened container per replica).
 * Readiness is not a runtime concern: a live replica is listed as `starting`; callers probe
 * `${url}/v2/health/ready` (readiness(), withReadiness()) to tell `ready` apart.
 */

export type ReplicaState = 'starting' | 'ready' | 'failed' | 'exited';

export interface ReplicaSpec {
  /** Unique per replica, e.g. `ferry-<deployment>-r<rev>-<index>`; the identity `ensure` is idempotent on. */
  name: string;
  labels: Record<string, string>;
  /** Port the server listens on, on 127.0.0.1 only. */
  port: number;
  /** Model directory (with ferry.yaml): the process runtime serves it. */
  modelDir?: string;
  /** Image reference: the docker runtime runs it. */
  image?: string;
  env?: Record<string, string>;
  /** CPU limit in cores (docker; the process runtime does not enforce it). */
  cpus?: number;
  /** Memory limit in bytes (docker; the process runtime does not enforce it). */
  memoryBytes?: number;
}

export interface ReplicaStatus {
  /** Runtime-specific handle: `<name>@<pid>` (process) or the container ID (docker). */
  id: string;
  name: string;
  labels: Record<string, string>;
  state: ReplicaState;
  /** Set when the replica is no longer running and its exit status is known (137 = SIGKILL). */
  exitCode?: number;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** Base URL of its OIP server, `http://127.0.0.1:<port>`. */
  url: string;
}

export interface Runtime {
  readonly kind: 'process' | 'docker';
  /**
   * Starts the replica unless one with that name is already running (then returns it, same id). Does not wait
   * for readiness. A stopped replica of that name is replaced.
   */
  ensure(spec: ReplicaSpec): Promise<ReplicaStatus>;
  /** SIGTERM, up to graceMs (default 10 s) to drain, then SIGKILL; forgets the replica. No-op when unknown. */
  remove(id: string, graceMs?: number): Promise<void>;
  /** Replicas (running or not, until removed) carrying all these labels. */
  list(labels: Record<string, string>): Promise<ReplicaStatus[]>;
  /** The replica's stdout and stderr as text lines, the last `tail` when given. */
  logs(id: string, opts?: { tail?: number }): Promise<string[]>;
}

/** Exit code of a process killed by a signal, as shells and Docker report it (128 + signal number). */
export const SIGNAL_EXIT_BASE = 128;
