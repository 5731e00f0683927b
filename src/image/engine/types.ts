/**
 * The narrow view Ferry has of a container engine: only the calls Ferry makes. One implementation
 * (docker-engine.ts, over dockerode and the Docker Engine API); tests run it against a real engine.
 */
import type { Readable } from 'node:stream';

export interface EngineInfo {
  /** Engine version, e.g. "20.10.24+dfsg1". */
  version: string;
  /** Engine API version, e.g. "1.41". */
  apiVersion: string;
  os: string;
  arch: string;
}

export interface ImageInfo {
  /** "sha256:<hex>", the config digest. */
  id: string;
  /** Uncompressed size in bytes, as the engine reports it. */
  size: number;
  repoTags: string[];
  config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown> | null;
    Healthcheck?: { Test?: string[] } | null;
  };
}

/** A read-only bind mount (nothing else is offered: the root filesystem stays read-only). */
export interface ReadOnlyBind {
  /** Absolute path on the engine's host. */
  source: string;
  /** Absolute path in the container. */
  target: string;
}

/**
 * A read-write bind mount of a directory: what a replica's socket directory needs (the server creates its
 * socket there, the host side connects to it). Only that directory is shared.
 */
export interface WritableBind {
  source: string;
  target: string;
}

export interface RunOptions {
  image: string;
  name?: string;
  env?: Record<string, string>;
  /**
   * Port the server inside listens on (host networking: it is told FERRY_HOST=127.0.0.1 and FERRY_PORT,
   * so it binds the loopback interface only).
   */
  hostPort?: number;
  /**
   * 'host': the host's network (`ferry run`); 'none': no interface but the container's own loopback;
   * { bridge }: that user-defined bridge network (ensureNetwork), never the default one.
   */
  network: 'host' | 'none' | { bridge: string };
  /** CPU limit in cores (fractions allowed). */
  cpus?: number;
  memoryBytes?: number;
  pidsLimit?: number;
  readOnly: true;
  /** Writable tmpfs mounts; default { '/tmp': 'rw,nosuid,nodev,size=64m' }. */
  tmpfs?: Record<string, string>;
  /** "uid:gid" or a name; default the image's USER. Running as root is refused unless given here. */
  user?: string;
  labels?: Record<string, string>;
  /** Overrides the image's CMD. */
  cmd?: string[];
  /** Overrides the image's ENTRYPOINT. */
  entrypoint?: string[];
  binds?: ReadOnlyBind[];
  writableBinds?: WritableBind[];
  /**
   * Bounds on the container's output kept by the engine (json-file driver, rotated): default 10 MB per file,
   * 3 files.
   */
  logLimit?: { maxBytes: number; maxFiles: number };
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  /** "running", "exited", "created", ... */
  state: string;
  labels: Record<string, string>;
}

export interface ContainerState {
  running: boolean;
  exitCode: number;
  /** "running", "exited", ... */
  status: string;
  oomKilled: boolean;
  /** Times the engine restarted it in place (its restart policy); 0 under policy "no". */
  restartCount: number;
  labels?: Record<string, string>;
}

/** One line of a container's output, from the stream that wrote it (without its newline). */
export interface ContainerLogLine {
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface ContainerLogOptions {
  /** Keep going with new output until the container stops or the signal aborts. */
  follow?: boolean;
  /** Only the last lines (per the engine's count). */
  tail?: number;
  /** Only output written at or after this time (ms since the epoch, fractions allowed). */
  sinceMs?: number;
  signal?: AbortSignal;
}

/** A container lifecycle event, as the engine reports it. */
export interface ContainerEvent {
  /** Container ID. */
  id: string;
  /** "start", "die" or "destroy". */
  action: 'start' | 'die' | 'destroy';
  /** The container's labels (as the engine attaches them to the event). */
  labels: Record<string, string>;
  /** For "die". */
  exitCode?: number;
  /** Engine time of the event, nanoseconds since the epoch. */
  timeNano: bigint;
}

export interface ContainerEventOptions {
  /** Only containers carrying all these labels. */
  labels: Record<string, string>;
  /** Also events since this time (ms since the epoch, fractions allowed) that the engine still holds. */
  sinceMs?: number;
  /** Ends the iteration (quietly). */
  signal: AbortSignal;
}

/** Progress of a Dockerfile build. */
export type BuildEvent =
  | { type: 'step'; index: number; total: number; instruction: string }
  | { type: 'log'; line: string };

export interface BuildOptions {
  network: 'host';
  /** Path of the Dockerfile inside the context (default "Dockerfile"). */
  dockerfile?: string;
  onProgress?: (event: BuildEvent) => void;
}

export interface WaitReadyOptions {
  /** Fail as soon as this container is no longer running (with the tail of its logs). */
  containerId?: string;
  /** Stop waiting when aborted. */
  signal?: AbortSignal;
  /** Path polled on the base URL (default "/v2/health/ready"). */
  path?: string;
}

export interface PullOptions {
  auth?: { username: string; password: string } | { token: string };
  /** One line per change of a layer's state ("3f2a: Downloading 12.1 MB / 40.2 MB"). */
  onProgress?: (line: string) => void;
}

export interface Engine {
  /** Checks the engine answers; resolves with its version. */
  ping(): Promise<EngineInfo>;
  /** Loads a docker-archive tarball ("docker save" format) into the engine. Returns the loaded references. */
  loadImage(tar: Readable | Uint8Array): Promise<string[]>;
  /** null when the engine has no such image. */
  inspectImage(ref: string): Promise<ImageInfo | null>;
  /** Resolves false when there was no such image. */
  removeImage(ref: string, force?: boolean): Promise<boolean>;
  /**
   * Pulls an image from its registry (with these credentials when given), reporting progress per layer.
   * Rejects with a FerryError naming the image and the engine's reason.
   */
  pullImage(ref: string, opts?: PullOptions): Promise<void>;
  /** Creates and starts a hardened container (capabilities dropped, no-new-privileges, read-only, non-root). */
  runContainer(opts: RunOptions): Promise<{ id: string }>;
  /**
   * Polls `${baseUrl}/v2/health/ready` until it answers 200. Rejects on timeout (FERRY_MODEL_NOT_READY) or
   * when the watched container exits (FERRY_MODEL_LOAD_FAILED, with its log tail); the caller removes the
   * container.
   */
  waitReady(baseUrl: string, timeoutMs: number, opts?: WaitReadyOptions): Promise<void>;
  /** stdout and stderr of a container, interleaved, as text lines in bytes. */
  logs(id: string, opts?: { follow?: boolean; tail?: number }): Readable;
  /**
   * A container's output line by line, each from its stream (stdout or stderr). Ends with the output (or,
   * with follow, when the container stops or the signal aborts); a last line without newline is yielded
   * at the end. Rejects with a FerryError when the container is unknown (FERRY_FILE_NOT_FOUND).
   */
  logLines(id: string, opts?: ContainerLogOptions): AsyncIterable<ContainerLogLine>;
  /**
   * Container start / die / destroy events, as they happen, for containers carrying the labels. Ends
   * quietly when the signal aborts or when the engine closes the stream (the caller re-subscribes, with
   * sinceMs to catch up); rejects with a FerryError when the engine cannot be reached.
   */
  containerEvents(opts: ContainerEventOptions): AsyncIterable<ContainerEvent>;
  inspectContainer(id: string): Promise<ContainerState | null>;
  /** Sends SIGTERM (the image's stop signal), then SIGKILL after timeoutS. No-op when already stopped or gone. */
  stop(id: string, timeoutS: number): Promise<void>;
  /** Removes a container (forcibly). No-op when gone. */
  remove(id: string): Promise<void>;
  /**
   * Creates a bridge network unless one of that name exists: containers on it reach other machines (masqueraded)
   * but not each other (inter-container traffic off). Labelled as given.
   */
  ensureNetwork(name: string, labels: Record<string, string>): Promise<void>;
  /** Removes a network; resolves false (and keeps it) while containers are attached, true once gone. */
  removeNetwork(name: string): Promise<boolean>;
  /** Containers (running or not) carrying all these labels. */
  listByLabel(labels: Record<string, string>): Promise<ContainerSummary[]>;
  /** Builds a Dockerfile context (tarball) with host networking. Rejects with the failing step and its log. */
  buildDockerfile(
    contextTar: Readable | Uint8Array,
    tag: string,
    opts: BuildOptions,
  ): Promise<{ id: string }>;
}
