/**
 * Runtime that runs each replica as a hardened container (src/image/engine: non-root, read-only root,
 * no capabilities, no-new-privileges, limits), sealed: no network at all (`--network none`: no interface but
 * its own loopback), the server listening on a unix socket in a directory of its own,
 * `<socketDir>/<name>/ferry.sock` on the host (socket-dir.ts), bind-mounted read-write at /run/ferry and
 * nothing else of the host. `socketDir` is 0700 (only Ferry's user and root pass), each replica's directory
 * 0733 so the container's user (65532 in Ferry's images) can make its socket there, the socket 0666 (who can
 * connect is decided by the directories: Ferry's user, root, and that one replica). A replica whose spec
 * declares egress joins a dedicated bridge network instead (ReplicaSpec.egressNetwork: made here when missing,
 * inter-container traffic off, removed with its last replica), never the host's network, and keeps the socket.
 * With `otlpRelay` (the platform traces, docs/tracing.md), each replica's directory also has `otlp.sock`, an OTLP
 * relay (otlp-relay.ts) the sealed server exports its spans through: opened before the container starts (and
 * again for a running replica found after a restart), closed when the replica is removed and by closeRelays().
 * What the runtime needs to find again after a restart lives in the container's labels: its replica name,
 * socket path and start time (containers of older Ferry versions: a port, host networking). Removing stops (SIGTERM, then SIGKILL after the grace period) and deletes the container.
 * The restart policy is "no": a crashed replica stays failed (with its exit code) until the reconciler
 * replaces it. Output is kept by the engine's json-file driver, bounded (max-size, max-file).
 * watch() follows the engine's event stream (start / die / destroy, filtered by label), subscribing with
 * `since` = the moment watch() was called (and, after the stream ends, the last event seen), so nothing is
 * lost between subscribing and a list() the caller makes meanwhile.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FerryError } from '../core/errors.ts';
import {
  LISTEN_SOCKET_ENV,
  SECRETS_DIR_ENV,
  SOCKET_MODE_ENV,
  socketPathOf,
  unixUrl,
} from '../core/replica.ts';
import type { ContainerEvent, ContainerState, Engine } from '../image/engine/index.ts';
import { OTLP_RELAY_FILE, OtlpRelay, type OtlpRelayTarget } from './otlp-relay.ts';
import { singleFlight } from './single-flight.ts';
import { replicaSocketDir, SECRETS_SUBDIR, SOCKET_FILE, writeSecretFiles } from './socket-dir.ts';
import type {
  ReplicaLogLine,
  ReplicaSpec,
  ReplicaStatus,
  Runtime,
  RuntimeEvent,
  RuntimeWatch,
} from './types.ts';
import { validateReplicaSpec } from './validate.ts';

/** Labels the docker runtime adds to every replica container (beside the caller's). */
export const RUNTIME_LABELS = {
  name: 'ferry.dev/replica-name',
  /** The host path of its socket. */
  socket: 'ferry.dev/replica-socket',
  /** The egress network it joined, when it has one. */
  network: 'ferry.dev/replica-network',
  /** Containers made before sockets: the port it listens on (host networking). */
  port: 'ferry.dev/replica-port',
  startedAt: 'ferry.dev/replica-started-at',
  /** JSON array of the caller's label keys: a container also carries its image's labels, not listed back. */
  keys: 'ferry.dev/replica-label-keys',
} as const;

/** Where the socket directory is mounted in a replica, and the socket in it. */
export const CONTAINER_SOCKET_DIR = '/run/ferry';
/** The user Ferry's images run as (src/image/base.ts): the owner of a replica's secret files. */
const CONTAINER_UID = 65532;

export interface DockerRuntimeOptions {
  /** Host directory of the replicas' socket directories (the platform's: `$FERRY_HOME/sockets`). */
  socketDir: string;
  /** Defaults when a spec gives none (as `ferry run`: 1 core, 1 GiB). */
  cpus?: number;
  memoryBytes?: number;
  pidsLimit?: number;
  /** Engine-kept output per replica (json-file rotation); default 10 MB x 3 files. */
  logLimit?: { maxBytes: number; maxFiles: number };
  /** Longest pause before watch() re-subscribes after the engine stream failed (default 5000 ms). */
  watchRetryMaxMs?: number;
  /**
   * Where each replica's OTLP relay forwards its spans (the platform's traces endpoint and its headers); absent:
   * no relay (tracing off).
   */
  otlpRelay?: OtlpRelayTarget;
  /** A relay that cannot be opened (the replica then exports nothing). */
  onRelayError?: (replicaDir: string, error: unknown) => void;
}

export class DockerRuntime implements Runtime {
  readonly kind = 'docker' as const;
  readonly manages = 'replicas' as const;

  readonly socketDir: string;
  /** Network operations in order per network (a removal must not race a replica joining it). */
  private readonly networkOps = new Map<string, Promise<unknown>>();
  /** The OTLP relays by replica directory. */
  private readonly relays = new Map<string, Promise<OtlpRelay | null>>();

  constructor(
    readonly engine: Engine,
    private readonly opts: DockerRuntimeOptions,
  ) {
    this.socketDir = resolve(opts.socketDir);
  }

  private serialized<T>(network: string | undefined, op: () => Promise<T>): Promise<T> {
    if (network === undefined) return op();
    const prev = this.networkOps.get(network) ?? Promise.resolve();
    const next = prev.then(op, op);
    const settled = next.catch(() => undefined);
    this.networkOps.set(network, settled);
    void settled.then(() => {
      if (this.networkOps.get(network) === settled) this.networkOps.delete(network);
    });
    return next;
  }

  /** Idempotent; two concurrent calls for one name start one replica. */
  readonly ensure = singleFlight(
    (spec: ReplicaSpec) => spec.name,
    (spec: ReplicaSpec) => this.ensureOnce(spec),
  );

  private async ensureOnce(spec: ReplicaSpec): Promise<ReplicaStatus> {
    validateReplicaSpec(spec);
    if (spec.image === undefined || spec.image === '') {
      throw new FerryError('FERRY_BAD_REQUEST', `Replica '${spec.name}': the docker runtime needs an image.`);
    }
    for (const c of await this.engine.listByLabel({ [RUNTIME_LABELS.name]: spec.name })) {
      const status = await this.statusOf(c.id, c.labels);
      if (status?.state === 'starting') {
        await this.openRelay(status.url);
        return status;
      }
      // A stopped container of that name: replaced (the name must be free for the new one).
      await this.engine.remove(c.id);
    }
    const dir = replicaSocketDir(this.socketDir, spec.name);
    const socket = `${dir}/${SOCKET_FILE}`;
    await mkdir(this.socketDir, { recursive: true, mode: 0o700 });
    await chmod(this.socketDir, 0o700);
    await this.closeRelay(dir);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o733 });
    await chmod(dir, 0o733);
    await this.openRelay(unixUrl(socket));
    const secretsDir = await writeSecretFiles(dir, spec.secrets, { uid: CONTAINER_UID, gid: CONTAINER_UID });
    const network = spec.egressNetwork;
    const startedAt = Date.now();
    const { id } = await this.serialized(network, async () => {
      if (network !== undefined)
        await this.engine.ensureNetwork(network, {
          ...pick(spec.labels, NETWORK_LABEL_KEYS),
          [RUNTIME_LABELS.network]: network,
        });
      return this.engine.runContainer({
        image: spec.image!,
        name: spec.name,
        env: {
          ...(spec.env ?? {}),
          [LISTEN_SOCKET_ENV]: `${CONTAINER_SOCKET_DIR}/${SOCKET_FILE}`,
          [SOCKET_MODE_ENV]: '666',
          ...(secretsDir === undefined
            ? {}
            : { [SECRETS_DIR_ENV]: `${CONTAINER_SOCKET_DIR}/${SECRETS_SUBDIR}` }),
        },
        network: network === undefined ? 'none' : { bridge: network },
        writableBinds: [{ source: dir, target: CONTAINER_SOCKET_DIR }],
        readOnly: true,
        cpus: spec.cpus ?? this.opts.cpus ?? 1,
        memoryBytes: spec.memoryBytes ?? this.opts.memoryBytes ?? 1024 * 1024 * 1024,
        pidsLimit: this.opts.pidsLimit ?? 256,
        ...(this.opts.logLimit ? { logLimit: this.opts.logLimit } : {}),
        labels: {
          ...spec.labels,
          [RUNTIME_LABELS.name]: spec.name,
          [RUNTIME_LABELS.socket]: socket,
          ...(network === undefined ? {} : { [RUNTIME_LABELS.network]: network }),
          [RUNTIME_LABELS.startedAt]: String(startedAt),
          [RUNTIME_LABELS.keys]: JSON.stringify(Object.keys(spec.labels)),
        },
      });
    });
    return {
      id,
      name: spec.name,
      labels: { ...spec.labels },
      state: 'starting',
      startedAt,
      url: unixUrl(socket),
      restarts: 0,
    };
  }

  async list(labels: Record<string, string>): Promise<ReplicaStatus[]> {
    const found = await this.engine.listByLabel(labels);
    const out = (await Promise.all(found.map((c) => this.statusOf(c.id, c.labels)))).filter(
      (s): s is ReplicaStatus => s !== undefined,
    );
    // A running replica found after a restart of the platform gets its relay again.
    await Promise.all(out.filter((s) => s.state === 'starting').map((s) => this.openRelay(s.url)));
    return out.sort((a, b) => a.startedAt - b.startedAt || a.name.localeCompare(b.name));
  }

  /** Opens the relay of the replica at `url` (a socket in one of our directories) unless it is open. */
  private async openRelay(url: string): Promise<void> {
    const target = this.opts.otlpRelay;
    const socket = socketPathOf(url);
    if (target === undefined || socket === null || dirname(dirname(socket)) !== this.socketDir) return;
    const dir = dirname(socket);
    if (this.relays.has(dir)) return;
    const opening = OtlpRelay.listen(join(dir, OTLP_RELAY_FILE), target).catch((error: unknown) => {
      // Tried again at the next list(): the directory may be on its way out, or back.
      if (this.relays.get(dir) === opening) this.relays.delete(dir);
      this.opts.onRelayError?.(dir, error);
      return null;
    });
    this.relays.set(dir, opening);
    await opening;
  }

  private async closeRelay(dir: string): Promise<void> {
    const relay = this.relays.get(dir);
    if (relay === undefined) return;
    this.relays.delete(dir);
    await (await relay)?.close();
  }

  /** Closes every OTLP relay (the platform stops; replicas kept running get theirs again at the next start). */
  async closeRelays(): Promise<void> {
    await Promise.all([...this.relays.keys()].map((dir) => this.closeRelay(dir)));
  }

  async logs(id: string, opts: { tail?: number } = {}): Promise<ReplicaLogLine[]> {
    const lines: ReplicaLogLine[] = [];
    for await (const l of this.engine.logLines(id, opts.tail !== undefined ? { tail: opts.tail } : {})) {
      lines.push(l);
    }
    return opts.tail !== undefined ? lines.slice(Math.max(0, lines.length - opts.tail)) : lines;
  }

  followLogs(id: string, signal: AbortSignal): AsyncIterable<ReplicaLogLine> {
    // since = now: what is written between this call and the engine attaching is not missed.
    return this.engine.logLines(id, { follow: true, sinceMs: Date.now(), signal });
  }

  watch(labels: Record<string, string>, listener: (event: RuntimeEvent) => void): RuntimeWatch {
    const abort = new AbortController();
    const { signal } = abort;
    const maxDelay = this.opts.watchRetryMaxMs ?? 5000;
    let sinceMs = Date.now();
    // The last event seen (engine time) and the ones at exactly that time: a re-subscription with `since`
    // replays them.
    let lastNano = 0n;
    const atLast = new Set<string>();
    /** Last status per container, for the `removed` event (destroy carries no exit code). */
    const last = new Map<string, ReplicaStatus>();
    let timer: NodeJS.Timeout | undefined;
    let resume: (() => void) | undefined;
    const pause = (ms: number) =>
      new Promise<void>((res) => {
        resume = res;
        timer = setTimeout(res, ms);
      });
    const deliver = async (e: ContainerEvent) => {
      const key = `${e.id}/${e.action}`;
      if (e.timeNano < lastNano || (e.timeNano === lastNano && atLast.has(key))) return;
      if (e.timeNano > lastNano) {
        lastNano = e.timeNano;
        atLast.clear();
      }
      atLast.add(key);
      let replica: ReplicaStatus | undefined;
      if (e.action === 'destroy') {
        replica = last.get(e.id) ?? this.statusFrom(e.id, e.labels, null);
        last.delete(e.id);
      } else {
        const state = await this.engine.inspectContainer(e.id).catch(() => null);
        replica =
          e.action === 'start'
            ? this.statusFrom(e.id, e.labels, { running: true, restartCount: state?.restartCount ?? 0 })
            : this.statusFrom(e.id, e.labels, {
                running: false,
                exitCode: e.exitCode ?? state?.exitCode ?? -1,
                oomKilled: state?.oomKilled ?? false,
                restartCount: state?.restartCount ?? 0,
              });
        if (replica !== undefined) last.set(e.id, replica);
      }
      if (replica === undefined || signal.aborted) return;
      const type = e.action === 'start' ? 'started' : e.action === 'die' ? 'exited' : 'removed';
      try {
        listener({ type, replica });
      } catch {
        // a listener's failure is its own
      }
    };
    void (async () => {
      let delay = 0;
      while (!signal.aborted) {
        try {
          for await (const e of this.engine.containerEvents({ labels, sinceMs, signal })) {
            delay = 0;
            await deliver(e);
          }
        } catch {
          // the engine went away: subscribe again below, after a pause
        }
        if (signal.aborted) break;
        // Catch up from the last event seen (the engine replays what it still holds since then).
        if (lastNano > 0n) sinceMs = Number(lastNano / 1_000_000n);
        delay = Math.min(maxDelay, delay === 0 ? 100 : delay * 2);
        await pause(delay);
      }
    })();
    return {
      close: () => {
        abort.abort();
        if (timer !== undefined) clearTimeout(timer);
        resume?.();
      },
    };
  }

  async remove(id: string, graceMs = 10_000): Promise<void> {
    const found = await this.engine.inspectContainer(id);
    await this.engine.stop(id, Math.max(0, Math.ceil(graceMs / 1000)));
    const network = found?.labels?.[RUNTIME_LABELS.network];
    await this.serialized(network, async () => {
      await this.engine.remove(id);
      // The network goes with its last replica (attached ones keep it: removeNetwork says false).
      if (network !== undefined) await this.engine.removeNetwork(network);
    });
    // Its socket directory (and relay), only when it is one of ours.
    const socket = socketPathOf(unixUrl(found?.labels?.[RUNTIME_LABELS.socket] ?? ''));
    if (socket !== null && dirname(dirname(socket)) === this.socketDir) {
      await this.closeRelay(dirname(socket));
      await rm(dirname(socket), { recursive: true, force: true });
      // A list() that saw it running just before may have opened the relay again meanwhile.
      await this.closeRelay(dirname(socket));
    }
  }

  /** undefined for a container this runtime did not make (no replica-name / port labels), or one gone. */
  private async statusOf(id: string, labels: Record<string, string>): Promise<ReplicaStatus | undefined> {
    if (this.statusFrom(id, labels, null) === undefined) return undefined;
    const state = await this.engine.inspectContainer(id);
    return state === null ? undefined : this.statusFrom(id, labels, state);
  }

  /** The status a container's labels and (when known) engine state describe. */
  private statusFrom(
    id: string,
    all: Record<string, string>,
    state: KnownState | null,
  ): ReplicaStatus | undefined {
    const name = all[RUNTIME_LABELS.name];
    const port = all[RUNTIME_LABELS.port];
    const socket = socketPathOf(unixUrl(all[RUNTIME_LABELS.socket] ?? ''));
    let url: string;
    if (socket !== null) url = unixUrl(socket);
    else if (port !== undefined && /^\d{1,5}$/.test(port)) url = `http://127.0.0.1:${port}`;
    else return undefined;
    if (name === undefined) return undefined;
    const labels: Record<string, string> = {};
    for (const key of labelKeys(all[RUNTIME_LABELS.keys])) {
      const value = all[key];
      if (value !== undefined) labels[key] = value;
    }
    const base = {
      id,
      name,
      labels,
      startedAt: Number(all[RUNTIME_LABELS.startedAt]) || 0,
      url,
      restarts: state?.restartCount ?? 0,
    };
    // Unknown state (a destroyed container we never saw die): it is not running.
    if (state === null) return { ...base, state: 'exited' };
    // created: about to start; restarting: the engine restarts it (not under our policy "no").
    if (state.running || state.status === 'created' || state.status === 'restarting') {
      return { ...base, state: 'starting' };
    }
    const exitCode = state.exitCode ?? -1;
    return {
      ...base,
      state: exitCode === 0 && !state.oomKilled ? 'exited' : 'failed',
      exitCode,
    };
  }
}

/** What is known of a container's state: all of inspect, or what an event says. */
type KnownState = Pick<ContainerState, 'running' | 'restartCount'> &
  Partial<Pick<ContainerState, 'exitCode' | 'oomKilled' | 'status'>>;

/** The caller's labels an egress network carries too (which installation and deployment it belongs to). */
const NETWORK_LABEL_KEYS = ['ferry.dev/managed-by', 'ferry.dev/platform', 'ferry.dev/deployment'];

function pick(labels: Record<string, string>, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (labels[k] !== undefined) out[k] = labels[k];
  return out;
}

function labelKeys(json: string | undefined): string[] {
  try {
    const keys: unknown = JSON.parse(json ?? '[]');
    return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
  } catch {
    return [];
  }
}
