/**
 * The route table: what the control plane (src/control/routing.ts builds it) hands the gateway
 * (src/gateway, `setRoutes`). Defined here, once, because neither module imports the other.
 */

export interface RouteReplica {
  id: string;
  url: string;
  /** in the router only when true */
  ready: boolean;
}

export interface RouteRevision {
  revision: number;
  /** share of live traffic 0..100; the revisions of a deployment sum to 100 (or all 0 = nothing serves) */
  percent: number;
  /** percent 0..100 of requests mirrored to this revision (answers discarded, recorded in metrics + logs) */
  shadow: number;
  /** the model name the replicas of this revision serve (from their ferry.yaml); the gateway rewrites the path */
  servedName: string;
  replicas: RouteReplica[];
  /**
   * Replicas of this revision asked for and not ready yet (starting, loading, warming up); left out = 0. With
   * the deployment's `activator.replicaCapacity`, capacity on the way: a request that would find every ready
   * replica full waits for it in the activator instead of piling onto them.
   */
  starting?: number;
  /**
   * Why no replica of this revision can start now (a model that fails to load, a crash loop, an image that cannot
   * be had), in words for the client; left out = nothing known against it. While the revision has no ready
   * replica, the gateway answers its requests 503 naming this, with Retry-After, at once, and lets go of those it
   * held: a client learns why instead of waiting out the activator's bound.
   */
  unavailable?: string;
  /**
   * Requests one replica of this revision takes at once before it sheds them (503 FERRY_QUEUE_FULL), as its
   * replicas report (a whole number >= 1; left out = not known). With the deployment's `activator`, a request whose
   * pick already carries that many is held rather than sent to be shed, and goes out when a replica has room.
   */
  replicaLimit?: number;
}

export interface RouteDeployment {
  /** The deployment's plain name (unique within its tenant; never contains '/'). */
  name: string;
  /** Its tenant; left out = the default tenant (src/core/tenant.ts). */
  tenant?: string;
  /**
   * true: anyone who reaches the gateway may call it. false or left out: private, a caller must present
   * `Authorization: Bearer <token>` whose hash is one of the table's `callers` allowed on it.
   */
  public?: boolean;
  /**
   * Scale to zero (issue 11): when the revision a request is routed to (by the split or its pin) has no ready
   * replica, the gateway holds the request (at most `maxHeld` for the deployment, each at most `maxWaitMs`; the
   * access check and rate limit first) and tells the control plane at once (GatewayOptions.onHeld); held requests
   * go out in order as soon as a table brings a ready replica of their revision. Past either bound: 503
   * FERRY_NO_READY_REPLICA with Retry-After. Left out: no holding (503 at once, as before). maxHeld: a whole
   * number >= 1; maxWaitMs: > 0 and at most one hour (src/gateway/routes.ts checks).
   *
   * `replicaCapacity` (optional, a whole number >= 1): requests in flight one replica is meant to carry (the
   * autoscaler's per-replica target). While a revision has replicas `starting` and every ready one carries that
   * many, a new request is held too (in the same queue and bounds) and goes out when a ready replica has room or
   * another becomes ready: a burst is spread over the replicas being started for it rather than queued behind
   * the first one (Knative's target burst capacity). With nothing starting, requests go out as usual.
   */
  activator?: { maxHeld: number; maxWaitMs: number; replicaCapacity?: number };
  revisions: RouteRevision[];
}

/**
 * Who may call private deployments: an invoker token of a tenant (any deployment of that tenant) or a key of one
 * deployment. The gateway never sees a plain token: it hashes what a request presents (sha256, hex) and looks it
 * up. Expired and revoked tokens are simply absent from the table.
 */
export interface RouteCaller {
  /** Stable id for logs, metrics and the rate limiter's bucket (the token's id, never the token). */
  id: string;
  /** sha256 of the plain token, lowercase hex. */
  hash: string;
  tenant: string;
  /** A per-deployment key: only this deployment (plain name, in `tenant`). Left out: every one of the tenant. */
  deployment?: string;
  /** Token bucket: sustained requests per second and burst; left out = no limit. */
  rateLimit?: { perSecond: number; burst: number };
  /** ms since the epoch after which the gateway refuses it (the control plane also drops it from the next table). */
  expiresAt?: number;
}

export interface RouteTable {
  deployments: RouteDeployment[];
  /** Left out = no callers (private deployments then answer 401 to everyone). */
  callers?: RouteCaller[];
}

/**
 * The route file of file + DNS discovery: what the gateway reads in a cluster (issue 12; src/gateway/discovery.ts
 * reads it from a file or a URL, discovery-table.ts parses and resolves it) and what the control plane serves it
 * on Docker Swarm (GET /v1/gateway/routes). A route table in JSON whose revisions name a DNS service instead of
 * listing replicas:
 *
 *   { "deployments": [ { "name": "iris", "public": true, "revisions": [
 *       { "revision": 3, "percent": 100, "shadow": 0, "servedName": "iris",
 *         "service": { "host": "iris-r3.ml.svc.cluster.local", "port": 8080 } } ] } ],
 *     "callers": [ ... as in a route table ... ] }
 *
 * | `service`                           | looked up as                      | a replica per                         |
 * |-------------------------------------|-----------------------------------|---------------------------------------|
 * | `{ "host": name, "port": p }`       | A and AAAA records of name        | address, at port p                    |
 * | `{ "srv": "_http._tcp.name" }`      | SRV records, then each target's A | record: its target's address and port |
 *
 * A Kubernetes headless Service answers both (A: one record per ready pod; SRV: per named port); Docker Swarm's
 * `tasks.<service>` answers A. The gateway keeps a resolved replica's state across resolutions and lets one that
 * vanishes drain (src/gateway/discovery-table.ts).
 */

/** Where a revision's replicas are found. */
export type DiscoveryService = { host: string; port: number } | { srv: string };

/**
 * A route revision with a service in place of its replicas. `idle: true`: the control plane runs none of its replicas
 * now (scaled to zero): the gateway takes it as having none, without asking DNS (a name with no task may not answer
 * at all, and the last addresses must not be kept), and holds its requests when the deployment has an activator.
 */
export type DiscoveryRevision = Omit<RouteRevision, 'replicas'> & {
  service: DiscoveryService;
  idle?: boolean;
};

export interface DiscoveryTable {
  deployments: Array<Omit<RouteDeployment, 'revisions'> & { revisions: DiscoveryRevision[] }>;
  /** As in a route table; left out = no callers. */
  callers?: RouteCaller[];
}

/**
 * The load of one revision over the period since the previous sample, as the gateway counts it (issue 11): what
 * the autoscaler decides on. Cheap to keep: per revision an in-flight counter, the time it last changed, the
 * integral of in-flight over time and an arrivals counter; no per-request allocation.
 */
export interface RevisionLoadSample {
  /** The deployment's key (src/core/tenant.ts). */
  deployment: string;
  revision: number;
  /** When the sample was taken (ms since the epoch). */
  at: number;
  /** The period it covers (ms). */
  periodMs: number;
  /** Average requests in flight to the revision's replicas over the period (shadow copies not counted). */
  concurrency: number;
  /** Requests routed to the revision during the period (retries not counted again). */
  arrivals: number;
}

/** Requests held by the activator for a deployment (no ready replica), at sampling time. */
export interface HeldSample {
  deployment: string;
  held: number;
}
