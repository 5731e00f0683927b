/**
 * The Swarm runtime (issue 13): a revision is a Swarm service (swarm-service.ts), its replicas are the service's
 * tasks, and Swarm keeps them: restarts a crashed one, reschedules a lost node's, puts a task in DNS only once its
 * health check (model loaded) passes. The controller asks for a revision with N replicas and reads what runs.
 *
 *   networks  one internal overlay per tenant, `ferry-<tenant>` (a tenant's replicas and the gateway on it, no way
 *             out); `ferry_egress_<tenant>` too for a version that declares egress; `ferry_gateway_egress` for
 *             the gateway's way to the control plane. Attachable, never encrypted (no ESP here).
 *   secrets   a Swarm secret per variable and stored version, `<service>-<VAR>-v<version>`, mounted as a file of
 *             the server's user, removed with the service; values never in a spec, a label or a log line
 *   gateway   the `ferry-gateway` service, one task per node on a host-mode port, attached to every tenant
 *             network (a new tenant updates it); pulls its routes from the control plane with its own token
 *   replicas  tasks meant to run (desired state running); the service's failed tasks are its crash history
 *
 * Everything carries the platform's labels: `removeAll` (ferry down) removes exactly what they mark.
 * One Ferry per swarm: service and network names are the swarm's, not the platform's.
 */
import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import { FerryError } from '../core/errors.ts';
import type { SwarmEngine, SwarmServiceView, SwarmTaskView } from './swarm-engine.ts';
import {
  gatewayService,
  revisionService,
  revisionServiceName,
  SWARM_SERVER_PORT,
  type SwarmSecretRef,
  swarmName,
} from './swarm-service.ts';
import type {
  ReplicaLogLine,
  ReplicaState,
  ReplicaStatus,
  RevisionRuntime,
  RevisionSpec,
  RevisionStatus,
  RevisionTarget,
  RuntimeEvent,
  RuntimeWatch,
} from './types.ts';

/** On the services and secrets Ferry makes: which service a secret belongs to; what a service is. */
export const SWARM_LABELS = {
  service: 'ferry.dev/service',
  component: 'ferry.dev/component',
  /** sha256 of the whole spec Ferry asked for: a different one is an update. */
  specSha: 'ferry.dev/service-spec',
  index: 'ferry.dev/replica-index',
  /** On a network: `tenant` (a tenant's overlay, which the gateway joins), `egress` or `gateway`. */
  network: 'ferry.dev/network',
} as const;

export const GATEWAY_SERVICE = 'ferry-gateway';

export interface SwarmGatewayConfig {
  /** Pinned by digest in a registry every node reaches. */
  image: string;
  /** The port each node's gateway task publishes (host mode). */
  publishedPort: number;
  /** The control plane's route file as the nodes reach it: `http://<address>:<api port>/v1/gateway/routes`. */
  routesUrl: string;
  /** The gateway's token for that URL (role gateway); kept as a Swarm secret. */
  token: string;
  /** Its environment: the platform's OTEL_* variables (docs/tracing.md). */
  env?: Record<string, string>;
}

export interface SwarmRuntimeOptions {
  /** Labels everything this platform makes carries (managed-by, platform). */
  platformLabels: Record<string, string>;
  /** The gateway service to keep; left out: none (tests that place their own). */
  gateway?: SwarmGatewayConfig;
  /** The server's drain deadline on SIGTERM, seconds. Default 30. */
  shutdownTimeoutS?: number;
  /** How often watch() looks at the tasks. Default 1 s. */
  watchEveryMs?: number;
}

const STARTING: ReadonlySet<string> = new Set([
  'new',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
]);

/** A task's state as a replica's (running = past its health check: Swarm holds a task in `starting` until then). */
export function replicaStateOf(task: Pick<SwarmTaskView, 'state'>): ReplicaState {
  if (task.state === 'running') return 'ready';
  if (STARTING.has(task.state)) return 'starting';
  if (task.state === 'failed' || task.state === 'rejected') return 'failed';
  return 'exited';
}

/** A secret's name in the swarm: per service, variable and stored version (a new value is a new secret). */
export function secretName(service: string, variable: string, version: number | undefined): string {
  return swarmName(`${service}-${variable}-v${version ?? 0}`);
}

export function tenantNetworkName(tenant: string): string {
  return swarmName(`ferry-${tenant}`);
}

function sha(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);
}

export class SwarmRuntime implements RevisionRuntime {
  readonly kind = 'swarm' as const;
  readonly manages = 'revisions' as const;
  private readonly labels: Record<string, string>;
  private nodeNames = new Map<string, string>();
  private nodeNamesAt = 0;

  constructor(
    private readonly engine: SwarmEngine,
    private readonly opts: SwarmRuntimeOptions,
  ) {
    this.labels = { ...opts.platformLabels };
  }

  nameOf(tenant: string, deployment: string, revision: number): string {
    return revisionServiceName(tenant, deployment, revision);
  }

  target(name: string): RevisionTarget {
    return { host: `tasks.${name}`, port: SWARM_SERVER_PORT };
  }

  // ------------------------------------------------------------------------------------------- writing

  async ensureRevision(spec: RevisionSpec): Promise<void> {
    const name = revisionServiceName(spec.tenant, spec.deployment, spec.revision);
    const network = await this.ensureTenantNetwork(spec.tenant);
    const egress = spec.egress
      ? await this.engine.ensureNetwork(
          swarmName(`ferry_egress_${spec.tenant}`),
          { ...this.labels, [SWARM_LABELS.network]: 'egress' },
          false,
        )
      : undefined;
    const secrets = await this.ensureSecrets(name, spec);
    const wanted = revisionService({
      tenant: spec.tenant,
      deployment: spec.deployment,
      revision: spec.revision,
      image: spec.image,
      replicas: spec.replicas,
      env: spec.env,
      secrets,
      cpus: spec.cpus,
      memoryBytes: spec.memoryBytes,
      gpus: spec.gpus,
      constraints: [],
      network,
      ...(egress === undefined ? {} : { egressNetwork: egress }),
      startupTimeoutMs: spec.startupTimeoutMs,
      shutdownTimeoutS: this.opts.shutdownTimeoutS ?? 30,
      labels: { ...spec.labels, ...this.labels },
    });
    const created = await this.converge(wanted);
    // A new service may be on a new tenant network, which the gateway must reach.
    if (created && this.opts.gateway) await this.ensureGateway();
  }

  async removeRevision(name: string): Promise<void> {
    const found = (await this.engine.services(this.labels)).find((s) => s.name === name);
    if (found) await this.engine.removeService(found.id);
    for (const s of await this.engine.secrets({ ...this.labels, [SWARM_LABELS.service]: name }))
      await this.engine.removeSecret(s.id).catch(() => {
        // Still referenced (a task shutting down): removeAll or the next removal of the name takes it.
      });
  }

  /**
   * The gateway service: made, or updated when its image, port, routes URL, token or the tenant networks it must
   * reach changed (an update replaces one node's task at a time, stop-first). `tenants`: networks to make first, so
   * that a first deployment of a known tenant does not have to roll the gateways to reach it.
   */
  async ensureGateway(tenants: string[] = []): Promise<void> {
    const g = this.opts.gateway;
    if (!g) return;
    for (const tenant of tenants) await this.ensureTenantNetwork(tenant);
    const component = { ...this.labels, [SWARM_LABELS.component]: 'gateway' };
    const tokenName = swarmName(
      `ferry-gateway-token-${createHash('sha256').update(g.token).digest('hex').slice(0, 12)}`,
    );
    const tokens = await this.engine.secrets(component);
    const tokenId =
      tokens.find((s) => s.name === tokenName)?.id ??
      (await this.engine.createSecret(tokenName, g.token, component));
    const egress = await this.engine.ensureNetwork(
      'ferry_gateway_egress',
      { ...this.labels, [SWARM_LABELS.network]: 'gateway' },
      false,
    );
    const tenantNets = (await this.engine.networks({ ...this.labels, [SWARM_LABELS.network]: 'tenant' })).map(
      (n) => n.id,
    );
    const nodes = (await this.engine.nodes()).filter((n) => n.availability === 'active');
    await this.converge(
      gatewayService({
        image: g.image,
        replicas: Math.max(1, nodes.length),
        publishedPort: g.publishedPort,
        routesUrl: g.routesUrl,
        token: { secretId: tokenId, secretName: tokenName },
        networks: tenantNets,
        egressNetwork: egress,
        labels: component,
        ...(g.env === undefined ? {} : { env: g.env }),
      }),
    );
    for (const old of tokens)
      if (old.name !== tokenName) await this.engine.removeSecret(old.id).catch(() => {});
  }

  /**
   * A tenant's internal overlay, labelled as one (the gateway joins every network so labelled; names alone cannot
   * tell: tenant names may look like anything a DNS label may).
   */
  private ensureTenantNetwork(tenant: string): Promise<string> {
    return this.engine.ensureNetwork(
      tenantNetworkName(tenant),
      { ...this.labels, [SWARM_LABELS.network]: 'tenant' },
      true,
    );
  }

  /**
   * Creates the service, or updates it when what Ferry asks for changed since it last asked. True when it was
   * created.
   */
  private async converge(spec: Dockerode.ServiceSpec): Promise<boolean> {
    const digest = sha(spec);
    const labelled = { ...spec, Labels: { ...(spec.Labels ?? {}), [SWARM_LABELS.specSha]: digest } };
    const existing = (await this.engine.services(this.labels)).find((s) => s.name === spec.Name);
    if (!existing) {
      await this.engine.createService(labelled);
      return true;
    }
    if (existing.labels[SWARM_LABELS.specSha] !== digest)
      await this.engine.updateService(existing.id, existing.version, labelled);
    return false;
  }

  private async ensureSecrets(service: string, spec: RevisionSpec): Promise<SwarmSecretRef[]> {
    const variables = Object.keys(spec.secrets).sort();
    if (variables.length === 0) return [];
    const owned = { ...this.labels, [SWARM_LABELS.service]: service };
    const existing = await this.engine.secrets(owned);
    const refs: SwarmSecretRef[] = [];
    for (const variable of variables) {
      const secret = secretName(service, variable, spec.secretVersions[variable]);
      const id =
        existing.find((s) => s.name === secret)?.id ??
        (await this.engine.createSecret(secret, spec.secrets[variable]!, owned));
      refs.push({ name: variable, secretId: id, secretName: secret });
    }
    return refs;
  }

  async removeAll(labels: Record<string, string>): Promise<void> {
    const services = await this.engine.services(labels);
    await Promise.all(services.map((s) => this.engine.removeService(s.id)));
    // Networks (and secrets) are in use until the tasks' containers are gone on every node; a removed network
    // is still listed until the manager's own last container on it is gone. Done when none is listed.
    const deadline = Date.now() + 120_000;
    let left: string[] = [];
    for (;;) {
      for (const s of await this.engine.secrets(labels)) await this.engine.removeSecret(s.id).catch(() => {});
      for (const n of await this.engine.networks(labels))
        await this.engine.removeNetwork(n.id).catch(() => {});
      left = [
        ...(await this.engine.secrets(labels)).map((s) => `secret ${s.name}`),
        ...(await this.engine.networks(labels)).map((n) => `network ${n.name}`),
      ];
      if (left.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (left.length > 0)
      throw new FerryError(
        'FERRY_ENGINE_FAILED',
        `The swarm still has ${left.join(', ')} after its services were removed`,
        {
          hint: 'A node may be down with tasks on it; remove them with docker network rm / docker secret rm.',
        },
      );
  }

  // ------------------------------------------------------------------------------------------- reading

  async revisions(labels: Record<string, string>): Promise<RevisionStatus[]> {
    const services = (await this.engine.services({ ...this.labels, ...labels })).filter(
      (s) => s.labels[SWARM_LABELS.component] === undefined,
    );
    if (services.length === 0) return [];
    const nodes = await this.nodeHostnames();
    return Promise.all(
      services.map(async (service) => this.statusOf(service, await this.engine.tasks(service.id), nodes)),
    );
  }

  private statusOf(
    service: SwarmServiceView,
    tasks: SwarmTaskView[],
    nodes: Map<string, string>,
  ): RevisionStatus {
    const bySlot = new Map<number, number>();
    for (const t of tasks) if (t.slot !== null) bySlot.set(t.slot, (bySlot.get(t.slot) ?? 0) + 1);
    const replica = (t: SwarmTaskView): ReplicaStatus => {
      const node = t.nodeId === null ? undefined : nodes.get(t.nodeId);
      const index = t.slot === null ? 0 : t.slot - 1;
      const labels: Record<string, string> = { ...service.labels, [SWARM_LABELS.index]: String(index) };
      delete labels[SWARM_LABELS.specSha];
      return {
        id: t.id,
        name: `${service.name}.${t.slot ?? t.id.slice(0, 12)}`,
        labels,
        state: replicaStateOf(t),
        ...(t.exitCode === null || t.state === 'running' || STARTING.has(t.state)
          ? {}
          : { exitCode: t.exitCode }),
        startedAt: t.updatedAt,
        url: t.addresses[0]
          ? `http://${t.addresses[0]}:${SWARM_SERVER_PORT}`
          : `dns:${this.target(service.name).host}`,
        restarts: Math.max(0, (bySlot.get(t.slot ?? -1) ?? 1) - 1),
        ...(node === undefined ? {} : { node }),
      };
    };
    return {
      name: service.name,
      labels: service.labels,
      replicas: service.replicas ?? 0,
      running: tasks.filter((t) => t.desiredState === 'running').map(replica),
      failed: tasks.filter((t) => t.state === 'failed' || t.state === 'rejected').map(replica),
    };
  }

  /** Node IDs -> hostnames, asked again at most every 10 s (a node that joins shows soon enough). */
  private async nodeHostnames(): Promise<Map<string, string>> {
    if (Date.now() - this.nodeNamesAt > 10_000) {
      const nodes = await this.engine.nodes().catch(() => null);
      if (nodes) {
        this.nodeNames = new Map(nodes.map((n) => [n.id, n.hostname]));
        this.nodeNamesAt = Date.now();
      }
    }
    return this.nodeNames;
  }

  async list(labels: Record<string, string>): Promise<ReplicaStatus[]> {
    return (await this.revisions(labels)).flatMap((r) => r.running);
  }

  async logs(id: string, opts: { tail?: number } = {}): Promise<ReplicaLogLine[]> {
    const lines: ReplicaLogLine[] = [];
    for await (const l of this.engine.taskLogs(id, opts.tail === undefined ? {} : { tail: opts.tail }))
      lines.push(l);
    return opts.tail === undefined ? lines : lines.slice(Math.max(0, lines.length - opts.tail));
  }

  /**
   * Lines from now on. A task listed before its container exists (pending, pulling) is waited for: its lines
   * from its first one, none missed. Ends when the task is gone or its container stopped.
   */
  async *followLogs(id: string, signal: AbortSignal): AsyncIterable<ReplicaLogLine> {
    const since = Date.now();
    for (;;) {
      if (signal.aborted) return;
      const task = await this.engine.task(id);
      if (task === null || replicaStateOf(task) === 'failed' || replicaStateOf(task) === 'exited') {
        if (task?.containerId == null) return;
        break;
      }
      if (task.containerId !== null) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    yield* this.engine.taskLogs(id, { follow: true, sinceMs: since, signal });
  }

  /** Looks at the tasks every watchEveryMs (the 20.10 engine streams no task events) and reports changes. */
  watch(labels: Record<string, string>, listener: (event: RuntimeEvent) => void): RuntimeWatch {
    let last = new Map<string, ReplicaStatus>();
    let first = true;
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    const look = async () => {
      try {
        const now = new Map((await this.list(labels)).map((r) => [r.id, r]));
        if (!first && !closed) {
          for (const [id, r] of now) {
            const before = last.get(id);
            const stopped = r.state === 'failed' || r.state === 'exited';
            if (before === undefined && !stopped) listener({ type: 'started', replica: r });
            else if (before !== undefined && before.state !== r.state && stopped)
              listener({ type: 'exited', replica: r });
          }
          for (const [id, r] of last) if (!now.has(id)) listener({ type: 'removed', replica: r });
        }
        last = now;
        first = false;
      } catch {
        // An engine that does not answer for a moment: look again next time.
      }
      if (!closed) {
        timer = setTimeout(look, this.opts.watchEveryMs ?? 1000);
        timer.unref();
      }
    };
    void look();
    return {
      close() {
        closed = true;
        if (timer) clearTimeout(timer);
      },
    };
  }
}
