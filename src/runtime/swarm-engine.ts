/**
 * The narrow view Ferry has of a Docker Swarm (issue 13): only the calls the Swarm runtime makes, over dockerode
 * and the Engine API 1.41 of a manager. Services by label, their tasks (with the node each runs on and its
 * container's health), overlay networks, secrets, nodes. Tested against a real multi-node swarm
 * (test/swarm/harness.ts).
 *
 * Services are updated with the version the engine last reported (optimistic concurrency): an update that lost a
 * race is a FERRY_CONFLICT, never a silent overwrite.
 */
import type Dockerode from 'dockerode';
import { FerryError } from '../core/errors.ts';
import { demuxLines, engineTime } from '../image/engine/docker-engine.ts';
import type { ReplicaLogLine } from './types.ts';

export interface SwarmServiceView {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** The engine's version of the spec: what an update must name. */
  version: number;
  spec: Dockerode.ServiceSpec;
  /** Replicated services: how many tasks are wanted. */
  replicas: number | null;
}

export type TaskState =
  | 'new'
  | 'pending'
  | 'assigned'
  | 'accepted'
  | 'preparing'
  | 'ready'
  | 'starting'
  | 'running'
  | 'complete'
  | 'shutdown'
  | 'failed'
  | 'rejected'
  | 'remove'
  | 'orphaned';

export interface SwarmTaskView {
  id: string;
  serviceId: string;
  /** The replica's number within its service (1-based), when replicated. */
  slot: number | null;
  nodeId: string | null;
  /** What the task is now, and what the orchestrator wants it to be. */
  state: TaskState;
  desiredState: TaskState;
  /** The engine's message (`started`, `task: non-zero exit (1)`, `starting`, ...). */
  message: string;
  error: string | null;
  exitCode: number | null;
  containerId: string | null;
  /** Addresses on each attached network, without the prefix length. */
  addresses: string[];
  /** Milliseconds since the epoch of its last status change. */
  updatedAt: number;
}

export interface SwarmNodeView {
  id: string;
  hostname: string;
  address: string;
  state: 'unknown' | 'down' | 'ready' | 'disconnected';
  availability: 'active' | 'pause' | 'drain';
  role: 'worker' | 'manager';
  leader: boolean;
}

export interface SwarmEngine {
  /** The swarm's ID, or null when the engine is not a manager of one. */
  swarmId(): Promise<string | null>;
  nodes(): Promise<SwarmNodeView[]>;
  services(labels: Record<string, string>): Promise<SwarmServiceView[]>;
  createService(spec: Dockerode.ServiceSpec): Promise<string>;
  /** Replaces the spec; `version` is the one read (a stale one: FERRY_CONFLICT). */
  updateService(id: string, version: number, spec: Dockerode.ServiceSpec): Promise<void>;
  removeService(id: string): Promise<void>;
  tasks(serviceId: string): Promise<SwarmTaskView[]>;
  /** One task by ID; null when the swarm no longer has it. */
  task(id: string): Promise<SwarmTaskView | null>;
  /** An overlay network (attachable; `internal`: no way out of the swarm); returns its ID. Existing: its ID. */
  ensureNetwork(name: string, labels: Record<string, string>, internal: boolean): Promise<string>;
  networks(labels: Record<string, string>): Promise<Array<{ id: string; name: string }>>;
  removeNetwork(id: string): Promise<void>;
  /** A secret (immutable in Swarm: a new value is a new secret); returns its ID. */
  createSecret(name: string, value: string, labels: Record<string, string>): Promise<string>;
  secrets(
    labels: Record<string, string>,
  ): Promise<Array<{ id: string; name: string; labels: Record<string, string> }>>;
  removeSecret(id: string): Promise<void>;
  /**
   * A task's output as lines (the engine fetches it from the node the task ran on); `follow` keeps going until
   * the signal aborts or the task's container stops.
   */
  taskLogs(
    id: string,
    opts: { tail?: number; follow?: boolean; sinceMs?: number; signal?: AbortSignal },
  ): AsyncIterable<ReplicaLogLine>;
}

function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

function engineError(error: unknown, what: string): FerryError {
  const e = error as { statusCode?: number; json?: { message?: string }; message?: string };
  const message = e.json?.message ?? e.message ?? String(error);
  if (e.statusCode === 409 || /update out of sequence/.test(message))
    return new FerryError('FERRY_CONFLICT', `${what}: ${message}`, {
      hint: 'Someone else changed it meanwhile; read it again and retry.',
    });
  if (e.statusCode === 404) return new FerryError('FERRY_NOT_FOUND', `${what}: ${message}`);
  return new FerryError('FERRY_ENGINE_FAILED', `${what}: ${message}`);
}

/** A removal: done, or already gone (404); anything else is the engine's error. */
async function removed(call: Promise<unknown>, what: string): Promise<void> {
  try {
    await call;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw engineError(error, what);
  }
}

/** dockerode's Task has logs() (GET /tasks/{id}/logs); its typings do not say so. */
interface TaskWithLogs {
  logs(opts: Record<string, unknown>): Promise<unknown>;
}

const ms = (iso: string | undefined): number => (iso === undefined ? 0 : Date.parse(iso) || 0);

export class DockerSwarmEngine implements SwarmEngine {
  constructor(private readonly docker: Dockerode) {}

  async swarmId(): Promise<string | null> {
    try {
      const swarm = (await this.docker.swarmInspect()) as { ID?: string };
      return swarm.ID ?? null;
    } catch (error) {
      // 503 "This node is not a swarm manager" (or not in a swarm); an engine that does not answer is not that.
      if ((error as { statusCode?: number }).statusCode !== undefined) return null;
      throw engineError(error, 'asking the engine for its swarm');
    }
  }

  async nodes(): Promise<SwarmNodeView[]> {
    const list = (await this.docker.listNodes()) as Array<{
      ID: string;
      Description?: { Hostname?: string };
      Status?: { State?: SwarmNodeView['state']; Addr?: string };
      Spec?: { Availability?: SwarmNodeView['availability']; Role?: SwarmNodeView['role'] };
      ManagerStatus?: { Leader?: boolean };
    }>;
    return list
      .map((n) => ({
        id: n.ID,
        hostname: n.Description?.Hostname ?? n.ID,
        address: n.Status?.Addr ?? '',
        state: n.Status?.State ?? 'unknown',
        availability: n.Spec?.Availability ?? 'active',
        role: n.Spec?.Role ?? 'worker',
        leader: n.ManagerStatus?.Leader === true,
      }))
      .sort((a, b) => a.hostname.localeCompare(b.hostname));
  }

  async services(labels: Record<string, string>): Promise<SwarmServiceView[]> {
    const list = (await this.docker.listServices({ filters: { label: labelFilters(labels) } })) as Array<{
      ID: string;
      Version?: { Index?: number };
      Spec: Dockerode.ServiceSpec;
    }>;
    return list
      .map((s) => ({
        id: s.ID,
        name: s.Spec.Name ?? s.ID,
        labels: { ...(s.Spec.Labels ?? {}) },
        version: s.Version?.Index ?? 0,
        spec: s.Spec,
        replicas: s.Spec.Mode?.Replicated?.Replicas ?? null,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async createService(spec: Dockerode.ServiceSpec): Promise<string> {
    try {
      const created = (await this.docker.createService(spec)) as { id?: string; ID?: string };
      return created.id ?? created.ID ?? '';
    } catch (error) {
      throw engineError(error, `creating service ${spec.Name}`);
    }
  }

  async updateService(id: string, version: number, spec: Dockerode.ServiceSpec): Promise<void> {
    try {
      await this.docker.getService(id).update({ ...spec, version } as never);
    } catch (error) {
      throw engineError(error, `updating service ${spec.Name ?? id}`);
    }
  }

  async removeService(id: string): Promise<void> {
    await removed(this.docker.getService(id).remove(), `removing service ${id}`);
  }

  async tasks(serviceId: string): Promise<SwarmTaskView[]> {
    return this.listTasks({ service: [serviceId] });
  }

  async task(id: string): Promise<SwarmTaskView | null> {
    return (await this.listTasks({ id: [id] })).find((t) => t.id === id) ?? null;
  }

  private async listTasks(filters: Record<string, string[]>): Promise<SwarmTaskView[]> {
    const list = (await this.docker.listTasks({ filters })) as Array<{
      ID: string;
      ServiceID: string;
      Slot?: number;
      NodeID?: string;
      UpdatedAt?: string;
      DesiredState: TaskState;
      Status?: {
        State: TaskState;
        Message?: string;
        Err?: string;
        ContainerStatus?: { ContainerID?: string; ExitCode?: number };
      };
      NetworksAttachments?: Array<{ Addresses?: string[] }>;
    }>;
    return list
      .map((t) => ({
        id: t.ID,
        serviceId: t.ServiceID,
        slot: t.Slot ?? null,
        nodeId: t.NodeID ?? null,
        state: t.Status?.State ?? 'new',
        desiredState: t.DesiredState,
        message: t.Status?.Message ?? '',
        error: t.Status?.Err ?? null,
        exitCode: t.Status?.ContainerStatus?.ExitCode ?? null,
        containerId: t.Status?.ContainerStatus?.ContainerID ?? null,
        addresses: (t.NetworksAttachments ?? []).flatMap((n) =>
          (n.Addresses ?? []).map((a) => a.split('/')[0]!),
        ),
        updatedAt: ms(t.UpdatedAt),
      }))
      .sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0) || b.updatedAt - a.updatedAt);
  }

  async ensureNetwork(name: string, labels: Record<string, string>, internal: boolean): Promise<string> {
    const existing = (await this.docker.listNetworks({ filters: { name: [name] } })) as Array<{
      Id: string;
      Name: string;
    }>;
    const found = existing.find((n) => n.Name === name);
    if (found) return found.Id;
    try {
      const network = await this.docker.createNetwork({
        Name: name,
        Driver: 'overlay',
        Attachable: true,
        Internal: internal,
        CheckDuplicate: true,
        Labels: labels,
      });
      return network.id;
    } catch (error) {
      throw engineError(error, `creating network ${name}`);
    }
  }

  async networks(labels: Record<string, string>): Promise<Array<{ id: string; name: string }>> {
    const list = (await this.docker.listNetworks({ filters: { label: labelFilters(labels) } })) as Array<{
      Id: string;
      Name: string;
    }>;
    return list.map((n) => ({ id: n.Id, name: n.Name })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async removeNetwork(id: string): Promise<void> {
    await removed(this.docker.getNetwork(id).remove(), `removing network ${id}`);
  }

  async createSecret(name: string, value: string, labels: Record<string, string>): Promise<string> {
    try {
      const secret = (await this.docker.createSecret({
        Name: name,
        Labels: labels,
        Data: Buffer.from(value, 'utf8').toString('base64'),
      })) as { id?: string; ID?: string };
      return secret.id ?? secret.ID ?? '';
    } catch (error) {
      // The value is never part of the message.
      throw engineError(error, `creating secret ${name}`);
    }
  }

  async secrets(
    labels: Record<string, string>,
  ): Promise<Array<{ id: string; name: string; labels: Record<string, string> }>> {
    const list = (await this.docker.listSecrets({ filters: { label: labelFilters(labels) } })) as Array<{
      ID: string;
      Spec?: { Name?: string; Labels?: Record<string, string> };
    }>;
    return list
      .map((s) => ({ id: s.ID, name: s.Spec?.Name ?? s.ID, labels: { ...(s.Spec?.Labels ?? {}) } }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async removeSecret(id: string): Promise<void> {
    await removed(this.docker.getSecret(id).remove(), `removing secret ${id}`);
  }

  async *taskLogs(
    id: string,
    opts: { tail?: number; follow?: boolean; sinceMs?: number; signal?: AbortSignal },
  ): AsyncGenerator<ReplicaLogLine> {
    const { signal } = opts;
    if (signal?.aborted) return;
    const query: Record<string, unknown> = {
      stdout: true,
      stderr: true,
      follow: opts.follow === true,
      tail: opts.tail ?? 'all',
      ...(opts.sinceMs === undefined ? {} : { since: engineTime(opts.sinceMs) }),
      ...(signal ? { abortSignal: signal } : {}),
    };
    let body: NodeJS.ReadableStream | Buffer;
    try {
      body = (await (this.docker.getTask(id) as unknown as TaskWithLogs).logs(query)) as unknown as
        | NodeJS.ReadableStream
        | Buffer;
    } catch (error) {
      if (signal?.aborted) return;
      throw engineError(error, `reading the logs of task ${id}`);
    }
    if (Buffer.isBuffer(body)) {
      yield* demuxLines([body]);
      return;
    }
    const stream = body as NodeJS.ReadableStream & { destroy(): void };
    const onAbort = () => stream.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      yield* demuxLines(stream as AsyncIterable<Buffer>);
    } catch (error) {
      if (signal?.aborted) return;
      throw engineError(error, `reading the logs of task ${id}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream.destroy();
    }
  }
}
