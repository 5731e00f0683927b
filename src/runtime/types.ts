/**
 * The Runtime port: what the control plane needs to start, find, read and stop model-server replicas.
 * Two shapes, one reading side:
 *   - `Runtime` (manages: 'replicas'): the controller keeps each replica itself (slots, crash backoff, readiness
 *     probes, drains). Implementations: process (a `ferry serve` child per replica), docker (a hardened container
 *     per replica).
 *   - `RevisionRuntime` (manages: 'revisions'): an orchestrator keeps a revision's replicas (restarts, reschedules
 *     a lost machine's, health-gates them); the controller asks for a revision with N replicas and reads what
 *     runs. Implementation: swarm (a Swarm service per revision); a Kubernetes Deployment is the same shape.
 * Both list replicas, read their logs and watch them the same way (`RuntimeReader`).
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
  /** The machine it runs on (swarm: the node's hostname); left out on one-machine runtimes. */
  node?: string;
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

export type RuntimeKind = 'process' | 'docker' | 'swarm';

/** What every runtime does alike: list what runs, read its logs, watch it change. */
export interface RuntimeReader {
  readonly kind: RuntimeKind;
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

/**
 * A revision as an orchestrator runs it: `replicas` copies of one server, kept running by the engine. The
 * controller makes it from the stored revision (replica-spec.ts), as it makes a ReplicaSpec.
 */
export interface RevisionSpec {
  /** The deployment's tenant and plain name, and the revision's number: they name the unit (service). */
  tenant: string;
  deployment: string;
  revision: number;
  /** Ferry's labels for the revision (managed-by, platform, deployment, revision, spec hash); no replica index. */
  labels: Record<string, string>;
  /** Pinned by digest in a registry every machine reaches. */
  image: string;
  replicas: number;
  env: Record<string, string>;
  /** Variables the model gets as files, never in the unit's configuration; by variable name. */
  secrets: Record<string, string>;
  /**
   * By variable name: the version of the stored secret its value is (src/control/store/secret-versions.ts); the
   * engine's copy of a secret is named by it, so a new value is a new copy and a revision keeps the one it pinned.
   */
  secretVersions: Record<string, number>;
  /** The replicas may reach other machines (the version declares network egress). */
  egress: boolean;
  cpus: number | null;
  memoryBytes: number | null;
  gpus: number;
  /** How long the model may take to load before a replica counts as failing. */
  startupTimeoutMs: number;
}

/** A revision as the orchestrator runs it now. */
export interface RevisionStatus {
  /** The unit's name (swarm: the service's). */
  name: string;
  labels: Record<string, string>;
  /** Replicas asked of the engine. */
  replicas: number;
  /** Its replicas that are meant to run (not the engine's history of replaced ones). */
  running: ReplicaStatus[];
  /** Replicas of it that failed (the engine's recent history): crash loops show here. */
  failed: ReplicaStatus[];
}

/** Where the gateway finds a revision's replicas: a DNS name answering one A record per ready replica. */
export interface RevisionTarget {
  host: string;
  port: number;
}

export interface RevisionRuntime extends RuntimeReader {
  readonly manages: 'revisions';
  /**
   * Creates the revision's unit, or converges it on `spec` (replica count, configuration); idempotent, does not
   * wait for readiness. A change another writer made meanwhile: FERRY_CONFLICT (read again on the next pass).
   */
  ensureRevision(spec: RevisionSpec): Promise<void>;
  /** Removes the unit (its replicas get SIGTERM and drain) and what only it used (its secrets). No-op when gone. */
  removeRevision(name: string): Promise<void>;
  /** The revisions carrying all these labels. */
  revisions(labels: Record<string, string>): Promise<RevisionStatus[]>;
  /** The unit's name for a revision (what `revisions` lists it as, and `target` and `removeRevision` take). */
  nameOf(tenant: string, deployment: string, revision: number): string;
  /** How the gateway reaches the revision's ready replicas. */
  target(name: string): RevisionTarget;
  /** Removes everything the platform made on the engine (units, networks, secrets, the gateway): ferry down. */
  removeAll(labels: Record<string, string>): Promise<void>;
}

export interface Runtime extends RuntimeReader {
  readonly kind: 'process' | 'docker';
  readonly manages: 'replicas';
  /**
   * Starts the replica unless one with that name is already running (then returns it, same id). Does not wait
   * for readiness. A stopped replica of that name is replaced.
   */
  ensure(spec: ReplicaSpec): Promise<ReplicaStatus>;
  /** SIGTERM, up to graceMs (default 10 s) to drain, then SIGKILL; forgets the replica. No-op when unknown. */
  remove(id: string, graceMs?: number): Promise<void>;
}

/** Exit code of a process killed by a signal, as shells and Docker report it (128 + signal number). */
export const SIGNAL_EXIT_BASE = 128;
