/**
 * Runtime that runs each replica as a hardened container (src/image/engine: non-root, read-only root,
 * no capabilities, no-new-privileges, limits) with host networking, the server bound to 127.0.0.1:<port>.
 * What the runtime needs to find again after a restart lives in the container's labels: its replica name,
 * port and start time. Removing stops (SIGTERM, then SIGKILL after the grace period) and deletes the container.
 * The restart policy is "no": a crashed replica stays failed (with its exit code) until the reconciler
 * replaces it. Output is kept by the engine's json-file driver, bounded (max-size, max-file).
 * watch() follows the engine's event stream (start / die / destroy, filtered by label), subscribing with
 * `since` = the moment watch() was called (and, after the stream ends, the last event seen), so nothing is
 * lost between subscribing and a list() the caller makes meanwhile.
 */
import { FerryError } from '../core/errors.ts';
import type { ContainerEvent, ContainerState, Engine } from '../image/engine/index.ts';
import { singleFlight } from './single-flight.ts';
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
  port: 'ferry.dev/replica-port',
  startedAt: 'ferry.dev/replica-started-at',
  /** JSON array of the caller's label keys: a container also carries its image's labels, not listed back. */
  keys: 'ferry.dev/replica-label-keys',
} as const;

export interface DockerRuntimeOptions {
  /** Defaults when a spec gives none (as `ferry run`: 1 core, 1 GiB). */
  cpus?: number;
  memoryBytes?: number;
  pidsLimit?: number;
  /** Engine-kept output per replica (json-file rotation); default 10 MB x 3 files. */
  logLimit?: { maxBytes: number; maxFiles: number };
  /** Longest pause before watch() re-subscribes after the engine stream failed (default 5000 ms). */
  watchRetryMaxMs?: number;
}

export class DockerRuntime implements Runtime {
  readonly kind = 'docker' as const;

  constructor(
    readonly engine: Engine,
    private readonly opts: DockerRuntimeOptions = {},
  ) {}

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
      if (status?.state === 'starting') return status;
      // A stopped container of that name: replaced (the name must be free for the new one).
      await this.engine.remove(c.id);
    }
    const startedAt = Date.now();
    const { id } = await this.engine.runContainer({
      image: spec.image,
      name: spec.name,
      env: spec.env ?? {},
      hostPort: spec.port,
      network: 'host',
      readOnly: true,
      cpus: spec.cpus ?? this.opts.cpus ?? 1,
      memoryBytes: spec.memoryBytes ?? this.opts.memoryBytes ?? 1024 * 1024 * 1024,
      pidsLimit: this.opts.pidsLimit ?? 256,
      ...(this.opts.logLimit ? { logLimit: this.opts.logLimit } : {}),
      labels: {
        ...spec.labels,
        [RUNTIME_LABELS.name]: spec.name,
        [RUNTIME_LABELS.port]: String(spec.port),
        [RUNTIME_LABELS.startedAt]: String(startedAt),
        [RUNTIME_LABELS.keys]: JSON.stringify(Object.keys(spec.labels)),
      },
    });
    return {
      id,
      name: spec.name,
      labels: { ...spec.labels },
      state: 'starting',
      startedAt,
      url: `http://127.0.0.1:${spec.port}`,
      restarts: 0,
    };
  }

  async list(labels: Record<string, string>): Promise<ReplicaStatus[]> {
    const found = await this.engine.listByLabel(labels);
    const out = await Promise.all(found.map((c) => this.statusOf(c.id, c.labels)));
    return out
      .filter((s): s is ReplicaStatus => s !== undefined)
      .sort((a, b) => a.startedAt - b.startedAt || a.name.localeCompare(b.name));
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
    await this.engine.stop(id, Math.max(0, Math.ceil(graceMs / 1000)));
    await this.engine.remove(id);
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
    if (name === undefined || port === undefined || !/^\d{1,5}$/.test(port)) return undefined;
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
      url: `http://127.0.0.1:${port}`,
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

function labelKeys(json: string | undefined): string[] {
  try {
    const keys: unknown = JSON.parse(json ?? '[]');
    return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
  } catch {
    return [];
  }
}
