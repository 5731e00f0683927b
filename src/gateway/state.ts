/**
 * The gateway's live routing state: the route table compiled for per-request use, each replica's
 * outstanding requests, ejection and retry-budget state, and the waiters of `waitIdle`.
 *
 * Replicas are kept by id across `setRoutes` calls: a replica that stays keeps its outstanding
 * count and ejection history. A replica removed from the table while it still has requests in
 * flight stays known (not routable) until its count reaches 0, so `outstanding(id)` and
 * `waitIdle` still see it; that is how the control plane drains a replica before stopping it.
 */
import type { Logger } from 'pino';
import type { RevisionLoadSample } from '../core/route-table.ts';
import { DEFAULT_TENANT, qualify } from '../core/tenant.ts';
import type { Replica } from './balancer.ts';
import {
  type EjectionPolicy,
  type EjectionState,
  ejectionState,
  onResult,
  syncReplicas,
} from './ejection.ts';
import { RevisionLoad } from './load.ts';
import type { GatewayMetrics, RevisionMetrics } from './metrics.ts';
import { type RetryBudgetPolicy, type RetryBudgetState, retryBudget } from './retry-budget.ts';
import { parseReplicaUrl, type RouteTable } from './routes.ts';
import type { TrafficTarget } from './traffic.ts';

export interface ReplicaState extends Replica {
  url: string;
  /** A hostname or address, or (a replica on a unix socket) the socket's absolute path. */
  host: string;
  /** 0 for a socket. */
  port: number;
  /** The Host header sent to this replica: `host:port`, or `localhost` on a socket. */
  hostHeader: string;
  /** False once the replica left the table (it may still finish requests). */
  routed: boolean;
}

export interface RevisionState {
  deployment: DeploymentState;
  /** The revision number as a string (traffic tables, labels, headers). */
  key: string;
  /** Its share of live traffic (0..100). */
  percent: number;
  servedName: string;
  /** servedName, percent-encoded for the path. */
  encodedName: string;
  replicas: ReplicaState[];
  /** Replicas asked for and not ready yet (the table's `starting`): capacity on the way. */
  starting: number;
  /** Why no replica of it can start now (the table's `unavailable`); null: nothing known. */
  unavailable: string | null;
  /** Requests one replica takes before it sheds (the table's `replicaLimit`); null: not known. */
  replicaLimit: number | null;
  ejection: EjectionState;
  metrics: RevisionMetrics;
  /** In-flight and arrivals for the autoscaler's samples (load.ts); the same object across route tables. */
  load: RevisionLoad;
}

export interface DeploymentState {
  /** The deployment's key (src/core/tenant.ts): its name in the default tenant, `tenant/name` elsewhere. */
  name: string;
  tenant: string;
  /** The name within its tenant (what the request path says). */
  plainName: string;
  /** Anyone may call it; false: a caller's token is checked (access.ts). */
  public: boolean;
  /**
   * Scale from zero: hold requests while no replica is ready (activator.ts); null = 503 at once.
   * replicaCapacity (null: none): also hold while replicas are starting and every ready one carries this many.
   */
  activator: { maxHeld: number; maxWaitMs: number; replicaCapacity: number | null } | null;
  targets: TrafficTarget[];
  /** Some revision receives shadow copies. */
  hasShadow: boolean;
  revisions: Map<string, RevisionState>;
  budget: RetryBudgetState;
  countRetry: () => void;
}

interface Waiter {
  ids: readonly string[];
  resolve: (idle: boolean) => void;
  timer: NodeJS.Timeout;
}

export interface RouteStateOptions {
  metrics: GatewayMetrics;
  ejection: EjectionPolicy;
  retryBudget: RetryBudgetPolicy;
  logger?: Logger;
}

export class RouteState {
  /** By key (DeploymentState.name). */
  readonly deployments = new Map<string, DeploymentState>();
  /** tenant -> plain name -> deployment: a request's lookup without building its key. */
  #byTenant = new Map<string, Map<string, DeploymentState>>();
  /** tenant -> its public deployments' names (a 404's hint never names a private one, nor another tenant's). */
  #publicNames = new Map<string, string[]>();
  readonly replicas = new Map<string, ReplicaState>();
  readonly #waiters = new Set<Waiter>();
  /** Label children and ejection state outlive a table that drops and re-adds a revision. */
  readonly #revisionMetrics = new Map<string, RevisionMetrics>();
  /** Per revision (same key as #revisionMetrics); kept while in the table or while requests are in flight. */
  readonly #loads = new Map<string, RevisionLoad>();
  readonly #o: RouteStateOptions;
  /** Called whenever a replica finishes a request (the activator releases what waited for room). */
  onSlotFree: (() => void) | undefined;

  constructor(options: RouteStateOptions) {
    this.#o = options;
  }

  /** Replaces the table (already validated). `now` starts the load period of a revision seen for the first time. */
  set(table: RouteTable, now: number): void {
    const seen = new Set<string>();
    for (const l of this.#loads.values()) l.routed = false;
    const next = new Map<string, DeploymentState>();
    const byTenant = new Map<string, Map<string, DeploymentState>>();
    const publicNames = new Map<string, string[]>();
    for (const d of table.deployments) {
      const tenant = d.tenant ?? DEFAULT_TENANT;
      const name = qualify(tenant, d.name);
      const previous = this.deployments.get(name);
      const dep: DeploymentState = {
        name,
        tenant,
        plainName: d.name,
        public: d.public === true,
        activator: d.activator
          ? {
              maxHeld: d.activator.maxHeld,
              maxWaitMs: d.activator.maxWaitMs,
              replicaCapacity: d.activator.replicaCapacity ?? null,
            }
          : null,
        targets: [],
        hasShadow: false,
        revisions: new Map(),
        budget: previous?.budget ?? retryBudget(this.#o.retryBudget),
        countRetry: previous?.countRetry ?? this.#o.metrics.retry(name),
      };
      for (const r of d.revisions) {
        const key = String(r.revision);
        dep.targets.push({ revision: key, percent: r.percent, shadow: r.shadow });
        if (r.shadow > 0) dep.hasShadow = true;
        const replicas: ReplicaState[] = [];
        for (const p of r.replicas) {
          seen.add(p.id);
          replicas.push(this.#replica(p.id, p.url, p.ready));
        }
        const ids = replicas.map((p) => p.id);
        const oldRev = previous?.revisions.get(key);
        const ejection = oldRev ? syncReplicas(oldRev.ejection, ids) : ejectionState(ids);
        for (const p of replicas) p.ejectedUntil = ejection.replicas[p.id]?.ejectedUntil;
        const metricsKey = `${name}\u0000${key}`;
        let metrics = this.#revisionMetrics.get(metricsKey);
        if (metrics === undefined) {
          metrics = this.#o.metrics.forRevision(name, key);
          this.#revisionMetrics.set(metricsKey, metrics);
        }
        let load = this.#loads.get(metricsKey);
        if (load === undefined) {
          load = new RevisionLoad(name, r.revision, now);
          this.#loads.set(metricsKey, load);
        }
        load.routed = true;
        dep.revisions.set(key, {
          deployment: dep,
          key,
          percent: r.percent,
          servedName: r.servedName,
          encodedName: encodeURIComponent(r.servedName),
          replicas,
          starting: r.starting ?? 0,
          unavailable: r.unavailable ?? null,
          replicaLimit: r.replicaLimit ?? null,
          ejection,
          metrics,
          load,
        });
      }
      next.set(name, dep);
      let names = byTenant.get(tenant);
      if (names === undefined) {
        names = new Map();
        byTenant.set(tenant, names);
      }
      names.set(d.name, dep);
      if (dep.public) {
        const list = publicNames.get(tenant);
        if (list === undefined) publicNames.set(tenant, [d.name]);
        else list.push(d.name);
      }
    }
    this.deployments.clear();
    for (const [k, v] of next) this.deployments.set(k, v);
    this.#byTenant = byTenant;
    this.#publicNames = publicNames;
    for (const [id, p] of this.replicas) {
      if (seen.has(id)) continue;
      p.routed = false;
      p.ready = false;
      if (p.outstanding === 0) this.replicas.delete(id);
    }
    this.#notify();
  }

  /**
   * One sample per revision in the table, and per revision that left it but had requests in flight or arrivals
   * in the period; starts the next period. A revision that left the table and is idle is then forgotten.
   */
  loadSamples(now: number): RevisionLoadSample[] {
    const out: RevisionLoadSample[] = [];
    for (const [k, l] of this.#loads) {
      if (
        !l.routed &&
        l.inFlight === 0 &&
        l.arrivals === 0 &&
        l.integral === 0 &&
        l.changedAt <= l.periodStart
      ) {
        this.#loads.delete(k);
        continue;
      }
      out.push(l.sample(now));
      if (!l.routed && l.inFlight === 0) this.#loads.delete(k);
    }
    return out;
  }

  /** Deployment `name` of `tenant`, or undefined. */
  lookup(tenant: string, name: string): DeploymentState | undefined {
    return this.#byTenant.get(tenant)?.get(name);
  }

  /** The public deployments of `tenant`, by plain name (for a 404's hint). */
  publicNames(tenant: string): readonly string[] {
    return this.#publicNames.get(tenant) ?? [];
  }

  #replica(id: string, url: string, ready: boolean): ReplicaState {
    const target = parseReplicaUrl(url)!;
    let p = this.replicas.get(id);
    if (p === undefined) {
      p = {
        id,
        ready,
        outstanding: 0,
        ejectedUntil: undefined,
        url,
        host: target.host,
        port: target.port,
        hostHeader: hostHeaderOf(target),
        routed: true,
      };
      this.replicas.set(id, p);
    } else {
      p.ready = ready;
      p.routed = true;
      if (p.url !== url) {
        p.url = url;
        p.host = target.host;
        p.port = target.port;
        p.hostHeader = hostHeaderOf(target);
      }
    }
    return p;
  }

  acquire(replica: ReplicaState, metrics: RevisionMetrics): void {
    replica.outstanding++;
    metrics.outstanding(1);
  }

  release(replica: ReplicaState, metrics: RevisionMetrics): void {
    replica.outstanding--;
    metrics.outstanding(-1);
    this.onSlotFree?.();
    if (replica.outstanding === 0) {
      if (!replica.routed && this.replicas.get(replica.id) === replica) this.replicas.delete(replica.id);
      if (this.#waiters.size > 0) this.#notify();
    }
  }

  /** Feeds one attempt's outcome to passive ejection; counts and logs a new ejection. */
  result(revision: RevisionState, replica: ReplicaState, ok: boolean, now: number): void {
    if (!replica.routed) return;
    // An attempt that started before the last setRoutes reports to the revision as it is now.
    const dep = this.deployments.get(revision.deployment.name);
    if (dep !== revision.deployment) {
      const current = dep?.revisions.get(revision.key);
      if (current === undefined) return;
      revision = current;
    }
    const before = revision.ejection;
    const after = onResult(before, replica.id, ok, now, this.#o.ejection);
    if (after === before) return;
    revision.ejection = after;
    const until = after.replicas[replica.id]?.ejectedUntil;
    if (until !== replica.ejectedUntil && until !== undefined && until > now) {
      revision.metrics.ejection();
      this.#o.logger?.warn(
        {
          deployment: revision.deployment.name,
          revision: revision.key,
          replica: replica.id,
          ejectedForMs: until - now,
        },
        'gateway: replica ejected after consecutive failures',
      );
    }
    replica.ejectedUntil = until;
  }

  outstanding(id: string): number {
    return this.replicas.get(id)?.outstanding ?? 0;
  }

  #idle(ids: readonly string[]): boolean {
    for (const id of ids) if (this.outstanding(id) > 0) return false;
    return true;
  }

  waitIdle(ids: readonly string[], timeoutMs: number): Promise<boolean> {
    if (this.#idle(ids)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        ids,
        resolve,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          resolve(this.#idle(ids));
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  #notify(): void {
    for (const w of this.#waiters) {
      if (!this.#idle(w.ids)) continue;
      clearTimeout(w.timer);
      this.#waiters.delete(w);
      w.resolve(true);
    }
  }

  /** Resolves every waiter with its current answer (gateway closing). */
  settleWaiters(): void {
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve(this.#idle(w.ids));
    }
    this.#waiters.clear();
  }
}

function hostHeaderOf(target: { host: string; port: number; socketPath?: string }): string {
  if (target.socketPath !== undefined) return 'localhost';
  return `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
}
