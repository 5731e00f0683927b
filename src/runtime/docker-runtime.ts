/**
 * Runtime that runs each replica as a hardened container (src/image/engine: non-root, read-only root,
 * no capabilities, no-new-privileges, limits) with host networking, the server bound to 127.0.0.1:<port>.
 * What the runtime needs to find again after a restart lives in the container's labels: its replica name,
 * port and start time. Removing stops (SIGTERM, then SIGKILL after the grace period) and deletes the container.
 */
import { FerryError } from '../core/errors.ts';
import type { ContainerSummary, Engine } from '../image/engine/index.ts';
import { singleFlight } from './single-flight.ts';
import type { ReplicaSpec, ReplicaStatus, Runtime } from './types.ts';
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
      const status = await this.statusOf(c);
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
    };
  }

  async list(labels: Record<string, string>): Promise<ReplicaStatus[]> {
    const found = await this.engine.listByLabel(labels);
    const out = await Promise.all(found.map((c) => this.statusOf(c)));
    return out
      .filter((s): s is ReplicaStatus => s !== undefined)
      .sort((a, b) => a.startedAt - b.startedAt || a.name.localeCompare(b.name));
  }

  async logs(id: string, opts: { tail?: number } = {}): Promise<string[]> {
    const chunks: Buffer[] = [];
    const stream = this.engine.logs(id, opts.tail !== undefined ? { tail: opts.tail } : {});
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    return opts.tail !== undefined ? lines.slice(Math.max(0, lines.length - opts.tail)) : lines;
  }

  async remove(id: string, graceMs = 10_000): Promise<void> {
    await this.engine.stop(id, Math.max(0, Math.ceil(graceMs / 1000)));
    await this.engine.remove(id);
  }

  /** undefined for a container this runtime did not make (no replica-name / port labels). */
  private async statusOf(c: ContainerSummary): Promise<ReplicaStatus | undefined> {
    const name = c.labels[RUNTIME_LABELS.name];
    const port = c.labels[RUNTIME_LABELS.port];
    if (name === undefined || port === undefined || !/^\d{1,5}$/.test(port)) return undefined;
    const labels: Record<string, string> = {};
    for (const key of labelKeys(c.labels[RUNTIME_LABELS.keys])) {
      const value = c.labels[key];
      if (value !== undefined) labels[key] = value;
    }
    const base = {
      id: c.id,
      name,
      labels,
      startedAt: Number(c.labels[RUNTIME_LABELS.startedAt]) || 0,
      url: `http://127.0.0.1:${port}`,
    };
    if (c.state === 'running' || c.state === 'created' || c.state === 'restarting') {
      return { ...base, state: 'starting' };
    }
    // exited, dead, paused, removing: its exit status from inspect (null when it vanished meanwhile).
    const state = await this.engine.inspectContainer(c.id);
    if (state === null) return undefined;
    if (state.running) return { ...base, state: 'starting' };
    return {
      ...base,
      state: state.exitCode === 0 && !state.oomKilled ? 'exited' : 'failed',
      exitCode: state.exitCode,
    };
  }
}

function labelKeys(json: string | undefined): string[] {
  try {
    const keys: unknown = JSON.parse(json ?? '[]');
    return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
  } catch {
    return [];
  }
}
