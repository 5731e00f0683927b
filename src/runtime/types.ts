/**
 * The Runtime port: what the control plane needs to start, find, read and stop model-server replicas.
 * Implementations: process (a `ferry serve` child per replica), docker (a hardened container per replica).
 * Every replica's server listens on a unix socket in a directory of its own that the runtime makes
 * (socket-dir.ts); its url is `unix:<socket path>`. Readiness is not a runtime concern: a live replica is
 * listed as `starting`; callers probe its `/v2/health/ready` (readiness(), withReadiness()) to tell `ready` apart.
 */

export type ReplicaState = 'starting' | 'ready' | 'failed' | 'exited';

export interface ReplicaSpec {
  /** Unique per replica, e.g. `ferry-<deployment>-r<rev>-<index>`; the identity `ensure` is idempotent on. */
  name: string;
  labels: Record<string, string>;
  /**
   * docker: the replica may reach other machines, through this dedicated bridge network (the runtime creates
   * it when missing and removes it with its last replica; its members cannot reach each other). Left out: no
   * network at all (`--network none`). The process runtime has no network isolation and ignores it.
   */
  egressNetwork?: string;
  /** Model directory (with ferry.yaml): the process runtime serves it. */
  modelDir?: string;
  /** Image reference: the docker runtime runs it. */
  image?: string;
  env?: Record<string, string>;
  /**
   * Environment variables the model gets that must not be in the replica's configuration: written as files (one
   * per variable, readable by the replica's user only) into its own directory, named by FERRY_SECRETS_DIR; the
   * server reads them into its environment and removes them (src/server/secret-files.ts). Never in `env`, so
   * never in `docker inspect` or `/proc/<pid>/environ`.
   */
  secrets?: Record<string, string>;
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
  /**
   * Where its OIP server listens: `unix:<socket path>` (a replica started before sockets: `http://127.0.0.1:<port>`).
   * Probe it with readiness(); the gateway takes it as RouteReplica.url.
   */
  url: string;
  /**
   * Times the runtime restarted it in place (docker: the engine's RestartCount). Runtimes here never do
   * (a crashed replica is replaced, with a new id, by the reconciler), so 0 unless something else did.
   */
  restarts: number;
}

/**
 * A change of a replica: `started` (running now), `exited` (stopped; `replica.exitCode` when known, state
 * `failed` or `exited`), `removed` (gone; `replica` is its last known status).
 */
export interface RuntimeEvent {
  type: 'started' | 'exited' | 'removed';
  replica: ReplicaStatus;
}

/** A subscription; close() ends it and releases everything it holds (timers, sockets). */
export interface RuntimeWatch {
  close(): void;
}

/** One line of a replica's output (without its newline), with the stream that wrote it. */
export interface ReplicaLogLine {
  /** The process runtime writes both streams to one file and reports every line as `stdout`. */
  stream: 'stdout' | 'stderr';
  line: string;
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
  /**
   * The replica's stdout and stderr as lines in the order written (as far as the runtime keeps it), the
   * last `tail` when given. Unknown id: FERRY_MODEL_NOT_FOUND (process) / FERRY_FILE_NOT_FOUND (docker).
   */
  logs(id: string, opts?: { tail?: number }): Promise<ReplicaLogLine[]>;
  /**
   * Lines the replica writes from now on, as they come. Ends when the signal aborts, or once the replica has
   * stopped (exited or removed) and its last lines were yielded. A last line without newline is yielded when
   * the replica stops.
   */
  followLogs(id: string, signal: AbortSignal): AsyncIterable<ReplicaLogLine>;
  /**
   * Calls listener for every replica carrying all these labels that starts, exits or is removed after
   * this call (promptly: within about a second), in order per replica. Keeps going across engine
   * reconnects until close().
   */
  watch(labels: Record<string, string>, listener: (event: RuntimeEvent) => void): RuntimeWatch;
}

/** Exit code of a process killed by a signal, as shells and Docker report it (128 + signal number). */
export const SIGNAL_EXIT_BASE = 128;
