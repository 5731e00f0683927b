/**
 * The gateway's HTTP server: one port in front of every deployment's replicas. Plain node:http
 * (no framework on the hot path) on the client side, and upstream.ts (keep-alive pools) to the
 * replicas. Per request:
 * parse the path (paths.ts) -> tenant (path prefix or Host) and deployment -> access check for a private
 * deployment (access.ts: bearer token, caller, rate limit) -> revision (traffic.ts pickRevision, header
 * `x-ferry-revision` pins) -> replica (balancer.ts) -> Exchange (proxy.ts) streams it through.
 * The control plane calls `setRoutes` whenever replicas or traffic change, and drains a replica
 * by removing it from the table and then awaiting `waitIdle([id])`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { FerryError } from '../core/errors.ts';
import type { HeldSample, RevisionLoadSample } from '../core/route-table.ts';
import { DEFAULT_TENANT } from '../core/tenant.ts';
import type { Tracing } from '../core/tracing.ts';
import { FERRY_VERSION } from '../core/version.ts';
import { AccessTable, type Denied, WWW_AUTHENTICATE, WWW_AUTHENTICATE_INVALID } from './access.ts';
import { Activator, cannotStart, hasReadyReplica } from './activator.ts';
import type { EjectionPolicy } from './ejection.ts';
import { forwardRequestHeaders, REQUEST_ID_HEADER } from './headers.ts';
import { GatewayMetrics } from './metrics.ts';
import { addressedTenant, parsePath, tenantFromHost } from './paths.ts';
import { type BalancerName, Exchange, type ProxyContext, pickReplica } from './proxy.ts';
import { evenlySpread, type Random } from './random.ts';
import { sendError, sendJson } from './reply.ts';
import { DEFAULT_RETRY_BUDGET, type RetryBudgetPolicy, recordRequest } from './retry-budget.ts';
import { assertRouteTable, type RouteTable } from './routes.ts';
import { type DeploymentState, RouteState } from './state.ts';
import { GatewayTrace } from './tracing.ts';
import { type PickOptions, pickRevision, shadowTargets } from './traffic.ts';
import { UpstreamClient } from './upstream.ts';

/** Five failures in a row eject a replica for 30 s, doubling up to 5 min; at most half at once. */
export const DEFAULT_EJECTION_POLICY: EjectionPolicy = {
  consecutiveFailures: 5,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectedPercent: 50,
};

export interface GatewayOptions {
  /** Default 'least-outstanding'. */
  balancer?: BalancerName;
  /** Whole request, retries included; default 60 s. Past it: 504 FERRY_DEADLINE_EXCEEDED. */
  requestTimeoutMs?: number;
  /** Default DEFAULT_RETRY_BUDGET. */
  retryBudget?: RetryBudgetPolicy;
  /** Attempts per request, the first one included; default 3. */
  maxAttempts?: number;
  /** Default DEFAULT_EJECTION_POLICY. */
  ejection?: EjectionPolicy;
  logger?: Logger;
  /** Balancing and shadow draws. Default Math.random; seed it (seededRandom) in tests. */
  random?: Random;
  /** The traffic split's draws. Default evenlySpread(): shares hold over any window of requests. */
  splitRandom?: Random;
  /**
   * Host-based tenant addressing: with '.models.example.com', `Host: acme.models.example.com` addresses tenant
   * acme with unprefixed paths (a `/t/{tenant}` prefix, when also given, must name the same tenant). Hosts not
   * under the suffix (an IP, localhost) address the default tenant. Default: none (tenants by prefix only).
   */
  tenantHostSuffix?: string;
  /**
   * Milliseconds clock for ejection, the retry budget, rate limits, load samples and the activator's deadlines
   * (checked when the queue's timer fires); default Date.now.
   */
  now?: () => number;
  /** Request bodies up to this size are kept for retries and shadow copies; default 16 MiB. */
  maxRetryBodyBytes?: number;
  /** close(): how long in-flight requests may take before their connections are cut; default 10 s. */
  closeGraceMs?: number;
  /** Initial route table (default: empty). */
  routes?: RouteTable;
  /**
   * Called at once, with the deployment's key, whenever the activator holds a request because its revision has
   * no ready replica (scale from zero): the platform nudges the autoscaler with it. Called for every held request;
   * the receiver coalesces. It must not throw (an error is logged and ignored).
   */
  onHeld?: (deployment: string) => void;
  /**
   * Tracing (docs/tracing.md, core/tracing.ts startTracing), or null/absent: off, and then a request's traceparent
   * is forwarded like any header. The gateway owns it: close() shuts it down (what was recorded is sent).
   */
  tracing?: Tracing | null;
}

export interface Gateway {
  /** Starts listening; resolves with the base URL, e.g. http://127.0.0.1:8080. */
  listen(port: number, host?: string): Promise<string>;
  /** Stops accepting, lets in-flight requests finish within the grace period, then cuts the rest. */
  close(): Promise<void>;
  /** Replaces the route table; throws FERRY_BAD_REQUEST listing the problems of an unusable one. */
  setRoutes(table: RouteTable): void;
  /** Requests in flight to this replica (shadow copies included); 0 for an unknown id. */
  outstanding(replicaId: string): number;
  /** True once all of them have nothing in flight; false when timeoutMs passed first. */
  waitIdle(replicaIds: readonly string[], timeoutMs: number): Promise<boolean>;
  /**
   * Per revision in the table (and per revision that left it with requests in flight or unreported activity):
   * the average requests in flight and the arrivals since the previous call (or since the revision first appeared),
   * then a new period starts. Held requests count as in flight. `now` defaults to the gateway's clock.
   */
  loadSamples(now?: number): RevisionLoadSample[];
  /** Requests held by the activator, per deployment with an activator in the table (0 included) or with any held. */
  heldSamples(): HeldSample[];
  /** prom-client registry, also served at GET /metrics. */
  readonly metrics: Registry;
}

const HOST = 'host';

/** The Host header from raw headers (usually the first one). */
function hostHeader(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === HOST) return raw[i + 1];
  return undefined;
}

/** The answer to a request for a deployment before the gateway has its first route table. */
const NO_ROUTES_YET = new FerryError(
  'FERRY_NO_READY_REPLICA',
  'this gateway is starting: it has no route table yet',
  {
    hint: 'Retry in a moment (Retry-After); it loads its routes from the control plane.',
    retryAfterSeconds: 1,
  },
);

/** '.models.example.com' (lower case, leading dot), or '' for none; throws on a suffix that cannot work. */
function hostSuffix(suffix: string | undefined): string {
  if (suffix === undefined || suffix === '') return '';
  const s = suffix.toLowerCase();
  if (!/^(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(s))
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `gateway: tenantHostSuffix '${suffix}' is not a DNS suffix with a leading dot`,
      { hint: "e.g. '.models.example.com': Host acme.models.example.com then addresses tenant acme." },
    );
  return s;
}

const SERVER_METADATA = JSON.stringify({ name: 'ferry-gateway', version: FERRY_VERSION, extensions: [] });
const EMPTY_PICK: PickOptions = {};

export function createGateway(options: GatewayOptions = {}): Gateway {
  const logger = options.logger;
  const metrics = new GatewayMetrics();
  const state = new RouteState({
    metrics,
    ejection: options.ejection ?? DEFAULT_EJECTION_POLICY,
    retryBudget: options.retryBudget ?? DEFAULT_RETRY_BUDGET,
    logger,
  });
  const upstream = new UpstreamClient();
  const random = options.random ?? Math.random;
  const splitRandom = options.splitRandom ?? evenlySpread();
  const now = options.now ?? Date.now;
  const ctx: ProxyContext = {
    state,
    upstream,
    random,
    now,
    balancer: options.balancer ?? 'least-outstanding',
    maxAttempts: Math.max(1, Math.floor(options.maxAttempts ?? 3)),
    maxRetryBodyBytes: options.maxRetryBodyBytes ?? 16 * 1024 * 1024,
    requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    logger,
    closing: false,
  };
  const closeGraceMs = options.closeGraceMs ?? 10_000;
  const tracing = options.tracing ?? null;
  const tenantSuffix = hostSuffix(options.tenantHostSuffix);
  const access = new AccessTable();
  /**
   * False until the first route table: a gateway that fetches its table (Swarm, Kubernetes with a URL, the
   * platform's before its first pass) answers 503 + Retry-After then, not 404: it does not know yet.
   */
  let hasRoutes = options.routes !== undefined;
  if (options.routes) {
    assertRouteTable(options.routes);
    state.set(options.routes, now());
    access.set(options.routes.callers, now());
  }

  function notFound(tenant: string, name: string): FerryError {
    const known = state.publicNames(tenant);
    const where = tenant === DEFAULT_TENANT ? '' : ` in tenant '${tenant}'`;
    // Only the addressed tenant's public deployments are named: never a private one, never another tenant's.
    return new FerryError('FERRY_MODEL_NOT_FOUND', `no deployment '${name}'${where} behind this gateway`, {
      hint:
        known.length === 0
          ? 'Check the name, and the tenant (/t/{tenant}/ before the path for one but the default); private deployments are not listed.'
          : `Public deployments here: ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', ...' : ''} (private ones are not listed).`,
    });
  }

  /** The access check's refusal of a request to private deployment `dep`. */
  function deny(
    res: ServerResponse,
    dep: DeploymentState,
    denied: Denied,
    requestId: string,
    startedAt: number,
  ): void {
    const seconds = (performance.now() - startedAt) / 1000;
    if (denied.kind === 'unauthorized') {
      metrics.denied(dep.name, 'unauthorized');
      metrics.unrouted(dep.name, 401, seconds);
      const message =
        denied.why === 'missing'
          ? `deployment '${dep.plainName}' is private: send Authorization: Bearer <token>`
          : denied.why === 'malformed'
            ? 'the Authorization header is not one "Bearer <token>"'
            : 'the bearer token is unknown, expired or revoked';
      sendError(
        res,
        new FerryError('FERRY_UNAUTHORIZED', message, {
          hint: "Use an invoker token of the deployment's tenant or a key of this deployment, in the Authorization header only (never in the URL).",
        }),
        requestId,
        ['www-authenticate', denied.why === 'missing' ? WWW_AUTHENTICATE : WWW_AUTHENTICATE_INVALID],
      );
      return;
    }
    metrics.denied(dep.name, 'forbidden');
    metrics.unrouted(dep.name, 403, seconds);
    logger?.debug(
      { deployment: dep.name, caller: denied.caller.id },
      'gateway: caller may not call deployment',
    );
    sendError(
      res,
      new FerryError(
        'FERRY_FORBIDDEN',
        `token '${denied.caller.id}' may not call deployment '${dep.plainName}'`,
        {
          hint: "An invoker token calls its own tenant's deployments; a deployment key only its deployment.",
        },
      ),
      requestId,
    );
  }

  const activator = new Activator({
    ctx,
    state,
    metrics,
    splitRandom,
    random,
    onHeld: options.onHeld,
    logger,
    notFound,
  });

  function local(req: IncomingMessage, res: ServerResponse, route: string): void {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      sendError(
        res,
        new FerryError('FERRY_ROUTE_NOT_FOUND', `no route ${method} ${req.url}`, {
          hint: 'The gateway answers GET on /v2, /v2/health/live, /v2/health/ready and /metrics.',
        }),
        undefined,
      );
      return;
    }
    if (route === 'live') {
      sendJson(res, 200, { live: true }, undefined);
      return;
    }
    if (route === 'ready') {
      sendJson(res, 200, { ready: !ctx.closing }, undefined);
      return;
    }
    if (route === 'server') {
      res.writeHead(200, ['content-type', 'application/json; charset=utf-8']);
      res.end(SERVER_METADATA);
      return;
    }
    metrics.render().then(
      ({ contentType, body }) => {
        res.writeHead(200, ['content-type', contentType]);
        res.end(body);
      },
      (e: unknown) =>
        sendError(res, new FerryError('FERRY_INTERNAL', `metrics: ${(e as Error).message}`), undefined),
    );
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    const url = req.url ?? '/';
    const parsed = parsePath(url);
    if (parsed.kind === 'local') {
      local(req, res, parsed.route);
      return;
    }
    if (parsed.kind === 'unknown') {
      metrics.unrouted('', 404, (performance.now() - startedAt) / 1000);
      sendError(
        res,
        new FerryError('FERRY_ROUTE_NOT_FOUND', `no route ${req.method} ${url}`, {
          hint: 'Models are at /v2/models/{deployment}[/versions/{v}][/infer|/ready] and /v1/models/{deployment}[:predict].',
        }),
        undefined,
      );
      return;
    }
    const tenant =
      tenantSuffix === ''
        ? (parsed.tenant ?? DEFAULT_TENANT)
        : addressedTenant(
            parsed.tenant,
            tenantFromHost(hostHeader(req.rawHeaders), tenantSuffix),
            DEFAULT_TENANT,
          );
    if (tenant === null) {
      metrics.unrouted('', 404, (performance.now() - startedAt) / 1000);
      sendError(
        res,
        new FerryError('FERRY_ROUTE_NOT_FOUND', `no route ${req.method} ${url} for this Host`, {
          hint: `The Host names one tenant (<tenant>${tenantSuffix}); a /t/{tenant}/ prefix must name the same one.`,
        }),
        undefined,
      );
      return;
    }
    const dep = state.lookup(tenant, parsed.deployment);
    if (dep === undefined) {
      const error = hasRoutes ? notFound(tenant, parsed.deployment) : NO_ROUTES_YET;
      metrics.unrouted('', error.status, (performance.now() - startedAt) / 1000);
      sendError(res, error, undefined);
      return;
    }
    const fwd = forwardRequestHeaders(req.rawHeaders);
    if (tracing !== null) {
      fwd.trace = new GatewayTrace(tracing, req, res, startedAt);
      if (req.headers.traceparent !== undefined) fwd.block = GatewayTrace.strip(fwd.block);
    }
    if (!dep.public) {
      const at = now();
      const decision = access.check(
        fwd.authorization,
        fwd.authorizationRepeated,
        dep.tenant,
        dep.plainName,
        at,
      );
      if (decision.kind !== 'caller') {
        deny(res, dep, decision, fwd.requestId, startedAt);
        return;
      }
      const wait = access.take(decision, at);
      if (wait > 0) {
        metrics.denied(dep.name, 'rate_limited');
        metrics.unrouted(dep.name, 429, (performance.now() - startedAt) / 1000);
        sendError(
          res,
          new FerryError('FERRY_RATE_LIMITED', `token '${decision.id}' is over its rate limit`, {
            hint: `It may send ${decision.limit!.ratePerSecond}/s (bursts of ${decision.limit!.burst}); retry after ${wait} s.`,
            retryAfterSeconds: wait,
          }),
          fwd.requestId,
        );
        return;
      }
    }
    const routeAt = fwd.trace === undefined ? 0 : performance.now();
    const pick = pickRevision(
      dep.targets,
      fwd.pin === undefined ? EMPTY_PICK : { pinnedRevision: fwd.pin },
      splitRandom,
    );
    if ('error' in pick) {
      const revisions = dep.targets.map((t) => t.revision).join(', ');
      metrics.unrouted(
        dep.name,
        pick.error === 'unknown-revision' ? 404 : 503,
        (performance.now() - startedAt) / 1000,
      );
      if (pick.error === 'unknown-revision') {
        sendError(
          res,
          new FerryError(
            'FERRY_NOT_FOUND',
            `deployment '${dep.name}' has no revision '${pick.revision}' (header x-ferry-revision)`,
            { hint: `Revisions of '${dep.name}': ${revisions || 'none'}.` },
          ),
          fwd.requestId,
        );
        return;
      }
      sendError(
        res,
        new FerryError('FERRY_NO_READY_REPLICA', `deployment '${dep.name}' has no revision taking traffic`, {
          hint: `Every revision (${revisions || 'none'}) is at 0 percent; pin one with x-ferry-revision or change the traffic split.`,
          retryAfterSeconds: 1,
        }),
        fwd.requestId,
      );
      return;
    }
    const revision = dep.revisions.get(pick.revision)!;
    dep.budget = recordRequest(dep.budget, now());
    const replica = pickReplica(ctx, revision);
    if (fwd.trace !== undefined)
      fwd.trace.route(routeAt, dep.name, revision.key, pick.pinned, replica?.id ?? null);
    if (
      replica !== null &&
      dep.activator !== null &&
      !ctx.closing &&
      activator.mustWait(dep, revision, replica)
    ) {
      activator.hold(dep, revision, pick.pinned, req, res, parsed, fwd, startedAt);
      return;
    }
    if (replica === null) {
      if (revision.unavailable !== null && !hasReadyReplica(revision)) {
        revision.load.arriveAndLeave();
        revision.metrics.request(503, (performance.now() - startedAt) / 1000);
        sendError(res, cannotStart(dep, revision, revision.unavailable), fwd.requestId, [
          'x-ferry-revision',
          revision.key,
        ]);
        return;
      }
      if (dep.activator !== null && !ctx.closing && !hasReadyReplica(revision)) {
        activator.hold(dep, revision, pick.pinned, req, res, parsed, fwd, startedAt);
        return;
      }
      revision.load.arriveAndLeave();
      revision.metrics.request(503, (performance.now() - startedAt) / 1000);
      sendError(
        res,
        new FerryError(
          'FERRY_NO_READY_REPLICA',
          `revision ${revision.key} of deployment '${dep.name}' has no ready replica (${revision.replicas.length} known)`,
          {
            hint: 'Replicas are starting, draining or ejected; retry after the Retry-After delay.',
            retryAfterSeconds: 1,
          },
        ),
        fwd.requestId,
        ['x-ferry-revision', revision.key],
      );
      return;
    }
    const shadows = dep.hasShadow ? shadowTargets(dep.targets, random) : null;
    new Exchange(
      ctx,
      req,
      res,
      revision,
      parsed,
      fwd,
      startedAt,
      shadows !== null && shadows.length > 0 ? shadows : null,
    ).start(replica);
  }

  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      logger?.error({ err: e, url: req.url }, 'gateway: request handler failed');
      if (!res.headersSent)
        sendError(
          res,
          new FerryError('FERRY_INTERNAL', `gateway: ${(e as Error).message}`),
          req.headers[REQUEST_ID_HEADER] as string | undefined,
        );
      else res.destroy();
    }
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && err.code !== 'ECONNRESET')
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  let closed: Promise<void> | null = null;

  return {
    metrics: metrics.registry,
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        const onError = (e: Error) => reject(e);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.removeListener('error', onError);
          const address = server.address() as AddressInfo;
          const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          const url = `http://${h}:${address.port}`;
          logger?.info({ url }, 'gateway: listening');
          resolve(url);
        });
      });
    },
    close() {
      if (closed) return closed;
      ctx.closing = true;
      activator.closeAll();
      closed = new Promise<void>((resolve) => {
        const grace = setTimeout(() => server.closeAllConnections(), closeGraceMs);
        server.close(() => {
          clearTimeout(grace);
          state.settleWaiters();
          upstream.close();
          if (tracing === null) resolve();
          else tracing.shutdown().then(resolve, resolve);
        });
        server.closeIdleConnections();
      });
      return closed;
    },
    setRoutes(table) {
      assertRouteTable(table);
      hasRoutes = true;
      const at = now();
      state.set(table, at);
      access.set(table.callers, at);
      activator.routesChanged();
    },
    loadSamples: (at) => state.loadSamples(at ?? now()),
    heldSamples: () => activator.heldSamples(),
    outstanding: (id) => state.outstanding(id),
    waitIdle: (ids, timeoutMs) => state.waitIdle(ids, timeoutMs),
  };
}
