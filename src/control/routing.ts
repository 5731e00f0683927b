/**
 * Pure pieces of the controller's loop: which revisions need how many replicas when no rollout is running,
 * which revision "serves" a deployment, and the routing table the gateway gets (its type is in
 * src/core/route-table.ts: control does not import gateway; the platform hands one to the other).
 */
import type { DiscoveryService, DiscoveryTable, RouteCaller, RouteTable } from '../core/route-table.ts';
import { DEFAULT_TENANT, splitKey } from '../core/tenant.ts';
import type { TrafficEntry } from './store/store.ts';

export type { RouteReplica, RouteRevision, RouteTable } from '../core/route-table.ts';

/** What the controller needs from the gateway: a new table, and a wait until replicas have nothing in flight. */
export interface RoutePublisher {
  setRoutes(table: RouteTable): void;
  waitIdle(replicaIds: string[], timeoutMs: number): Promise<boolean>;
}

/** The revision with the largest share of live traffic (the newest among equals); undefined when none has any. */
export function servingRevision(traffic: TrafficEntry[]): number | undefined {
  let best: TrafficEntry | undefined;
  for (const t of traffic) {
    if (
      t.percent > 0 &&
      (best === undefined ||
        t.percent > best.percent ||
        (t.percent === best.percent && t.revision > best.revision))
    )
      best = t;
  }
  return best?.revision;
}

/**
 * Replicas per revision outside a rollout: every revision with live traffic runs the deployment's count, or,
 * `byShare` (an autoscaled deployment, whose count is what its whole load needs), its share of that count
 * (ceil(count x percent / 100), at least 1), as a rollout's canary step does; a shadow-only revision runs enough
 * for its mirrored share (at least one).
 */
export function steadyReplicas(
  replicas: number,
  traffic: TrafficEntry[],
  byShare = false,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of traffic) {
    const shadow = t.shadow ?? 0;
    if (t.percent > 0)
      out[t.revision] =
        byShare && replicas > 0 ? Math.max(1, Math.ceil((replicas * t.percent) / 100)) : replicas;
    else if (shadow > 0 && replicas > 0) out[t.revision] = Math.max(1, Math.ceil((replicas * shadow) / 100));
  }
  return out;
}

/**
 * Replicas on the way per deployment key and revision: those the controller wants and that are not routed as
 * ready yet (starting, being created, or asked for this pass). The gateway's burst capacity waits for them
 * (src/core/route-table.ts `starting`); a revision that cannot start any says so by `unavailable` instead.
 */
export function startingReplicas(
  desired: ReadonlyMap<string, Record<string, number>>,
  routed: ReadonlyArray<{ deployment: string; revision: number }>,
): Record<string, Record<string, number>> {
  const ready = new Map<string, number>();
  for (const r of routed)
    ready.set(`${r.deployment}@${r.revision}`, (ready.get(`${r.deployment}@${r.revision}`) ?? 0) + 1);
  const out: Record<string, Record<string, number>> = {};
  for (const [deployment, perRevision] of desired) {
    for (const [revision, count] of Object.entries(perRevision)) {
      const missing = count - (ready.get(`${deployment}@${revision}`) ?? 0);
      if (missing <= 0) continue;
      const perRev = out[deployment] ?? {};
      perRev[revision] = missing;
      out[deployment] = perRev;
    }
  }
  return out;
}

export interface RoutingInput {
  deployments: Array<{
    /** The deployment's key (src/core/tenant.ts); the table carries its tenant and plain name. */
    name: string;
    public: boolean;
    /** Hold requests while no replica is ready, or for burst capacity (src/core/route-table.ts). */
    activator?: { maxHeld: number; maxWaitMs: number; replicaCapacity?: number };
    traffic: TrafficEntry[];
    /** servedName by revision number */
    servedNames: Record<string, string>;
    /** By revision number: why no replica of it can start now (src/core/route-table.ts `unavailable`). */
    unavailable?: Record<string, string>;
    /** By revision number: requests one replica takes before it sheds (src/core/route-table.ts `replicaLimit`). */
    replicaLimits?: Record<string, number>;
  }>;
  /** Replicas that may take requests: listed, ready, not being drained. */
  replicas: Array<{ id: string; url: string; deployment: string; revision: number }>;
  /** Replicas starting (or created this pass) per deployment key and revision number; left out = none. */
  starting?: Record<string, Record<string, number>>;
  /** Invoker tokens that have not expired (store.invokerKeys()). */
  callers?: Array<{
    id: string;
    hash: string;
    tenant: string;
    deployment: string | null;
    rateLimit: { perSecond: number; burst: number } | null;
    expiresAt: number | null;
  }>;
}

export function buildRoutes(input: RoutingInput): RouteTable {
  return {
    deployments: input.deployments.map((d) => ({
      ...splitKey(d.name),
      public: d.public,
      ...(d.activator ? { activator: d.activator } : {}),
      revisions: d.traffic
        .filter((t) => t.percent > 0 || (t.shadow ?? 0) > 0)
        .map((t) => ({
          revision: t.revision,
          percent: t.percent,
          shadow: t.shadow ?? 0,
          servedName: d.servedNames[t.revision] ?? d.name,
          ...(input.starting?.[d.name]?.[t.revision]
            ? { starting: input.starting[d.name]![t.revision]! }
            : {}),
          ...(d.unavailable?.[t.revision] ? { unavailable: d.unavailable[t.revision]! } : {}),
          ...(d.replicaLimits?.[t.revision] ? { replicaLimit: d.replicaLimits[t.revision]! } : {}),
          replicas: input.replicas
            .filter((r) => r.deployment === d.name && r.revision === t.revision)
            .map((r) => ({ id: r.id, url: r.url, ready: true })),
        })),
    })),
    callers: (input.callers ?? []).map(
      (c): RouteCaller => ({
        id: c.id,
        hash: c.hash,
        tenant: c.tenant,
        ...(c.deployment === null ? {} : { deployment: c.deployment }),
        ...(c.rateLimit === null ? {} : { rateLimit: c.rateLimit }),
        ...(c.expiresAt === null ? {} : { expiresAt: c.expiresAt }),
      }),
    ),
  };
}

/**
 * The route file of a runtime whose revisions are found by DNS (swarm; src/core/route-table.ts DiscoveryTable):
 * the same table, each revision naming the service `serviceOf` gives instead of listing replicas. An autoscaled
 * deployment keeps its activator: the gateways hold requests at zero and report them (POST /v1/gateway/load).
 */
export function toDiscoveryTable(
  table: RouteTable,
  serviceOf: (tenant: string, deployment: string, revision: number) => DiscoveryService,
  /** The revisions that run no replica now (scaled to zero): marked `idle`, the gateways hold their requests. */
  idle: (tenant: string, deployment: string, revision: number) => boolean = () => false,
): DiscoveryTable {
  return {
    deployments: table.deployments.map(({ revisions, ...d }) => ({
      ...d,
      revisions: revisions.map(
        ({ replicas: _replicas, starting: _starting, replicaLimit: _limit, ...r }) => ({
          ...r,
          ...(idle(d.tenant ?? DEFAULT_TENANT, d.name, r.revision) ? { idle: true } : {}),
          service: serviceOf(d.tenant ?? DEFAULT_TENANT, d.name, r.revision),
        }),
      ),
    })),
    callers: table.callers ?? [],
  };
}
