/**
 * The control-plane API's route table: method, URL, who may call it, the schemas of its path parameters,
 * query, body and response, and the handler. app.ts registers exactly these routes and openapi.ts documents
 * exactly these, so a route cannot exist without its schemas.
 *
 * Reads of models, versions, revisions, traffic and events go to the store; every change of desired state
 * and every question about live replicas goes to the ControlPlane (views.ts).
 */

import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ScalingSettings } from '../../autoscaler/types.ts';
import { FerryError, isFerryError } from '../../core/errors.ts';
import { DEFAULT_TENANT } from '../../core/tenant.ts';
import { artifactNotFound } from '../artifacts.ts';
import type { GatewayLoadReport } from '../gateway-load.ts';
import type { HistoryListener, HistoryView } from '../metrics-history/index.ts';
import type { GatewayRoutes } from '../route-file.ts';
import type { Secrets } from '../secrets.ts';
import type { DeploymentPatch, Store } from '../store/store.ts';
import { registerVersion, type VersionRegistryDeps } from '../versions.ts';
import type { ControlPlane, LogLine, LogQuery, StrategyInput } from '../views.ts';
import { callerOf } from './caller.ts';
import { SECURITY_HEADERS } from './headers.ts';
import { type PlatformStreams, STREAM_HEADERS } from './platform-stream.ts';
import {
  AddVersionBody,
  AliasParams,
  AliasResultSchema,
  ArtifactParams,
  ArtifactSchema,
  AuditEntrySchema,
  AuditQuery,
  AuditVerificationSchema,
  AuditVerifyQuery,
  CreatedTokenSchema,
  CreateModelBody,
  CreateTenantBody,
  CreateTokenBody,
  DeployBody,
  DeploymentParams,
  DeploymentViewSchema,
  DescribeViewSchema,
  EventSchema,
  EventsQuery,
  GatewayLoadBody,
  HealthSchema,
  type Info,
  InfoSchema,
  KeyRotationSchema,
  ListQuery,
  LogLineSchema,
  LogsQuery,
  MAX_PAGE,
  MetricsHistorySchema,
  MetricsQuery,
  ModelParams,
  ModelSchema,
  ModelVersionSchema,
  OpenApiDocumentSchema,
  PrometheusTargetGroupSchema,
  ReplicaParams,
  ReplicaSchema,
  RevisionSchema,
  RevisionsQuery,
  RolloutEnvelopeSchema,
  RolloutSchema,
  RouteFileSchema,
  ScaleBody,
  ScalingBody,
  SecretParams,
  SecretSchema,
  SecretSetSchema,
  SetAliasBody,
  SetQuotasBody,
  SetSecretBody,
  TenantParams,
  TenantSchema,
  type TenantView,
  TokenParams,
  TokenSchema,
  TrafficBody,
  TrafficSchema,
  UndoBody,
  UpdateBody,
  type WhoAmI,
  WhoAmISchema,
} from './schemas.ts';
import { type Scope, unscope } from './tenant-scope.ts';

/**
 * public: no token; read: viewer and up; write: deployer and up; admin: a tenant's admin or a platform admin;
 * platform: platform admins only; gateway: the gateways' route file, for gateway tokens and platform admins
 * (ROLES_FOR); metrics: the control plane's metrics, the scrape targets and the replicas' metrics, for metrics
 * tokens (Prometheus) and platform admins. Invoker tokens have no access here; gateway tokens none but the route
 * file; metrics tokens none but the metrics routes.
 */
export type Access = 'public' | 'read' | 'write' | 'admin' | 'platform' | 'gateway' | 'metrics';

/** Which roles may call a route of each access level (docs/security.md shows the same table). */
export const ROLES_FOR: Record<Exclude<Access, 'public'>, readonly string[]> = {
  read: ['viewer', 'deployer', 'admin', 'platform-admin'],
  write: ['deployer', 'admin', 'platform-admin'],
  admin: ['admin', 'platform-admin'],
  platform: ['platform-admin'],
  gateway: ['gateway', 'platform-admin'],
  metrics: ['metrics', 'platform-admin'],
};
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiDeps {
  store: Store;
  control: ControlPlane;
  info: Info;
  secrets?: Secrets;
  /** Artifacts and version registration; without them the artifact routes and POST .../versions answer 404. */
  versions?: VersionRegistryDeps;
  /** Milliseconds between heartbeats on a stream (a newline on followed logs, `: ping` on GET /v1/stream). */
  heartbeatMs: number;
  /** The live streams of GET /v1/stream (platform-stream.ts). */
  streams: PlatformStreams;
  /** The control plane's metrics; without them GET /metrics answers 404. */
  metrics?: { render(): Promise<{ contentType: string; body: string }> };
  /**
   * The gateways' route file (route-file.ts RouteFile), on a runtime whose gateways pull it (Docker Swarm);
   * without it GET /v1/gateway/routes answers 404 (the gateway is built in).
   */
  gatewayRoutes?: GatewayRoutes;
  /**
   * Where gateways that run elsewhere report their load (gateway-load.ts GatewayLoads), for the autoscaler; without it
   * POST /v1/gateway/load answers 404 (the gateway is built in). `held` true: requests wait, look at once.
   */
  gatewayLoad?: { report(r: GatewayLoadReport): boolean; wake(): void };
  /**
   * The metrics history (metrics-history/), by deployment key; without it GET /v1/deployments/{name}/metrics and its
   * stream answer 404.
   */
  metricsHistory?: {
    view(deployment: string, since?: number): HistoryView;
    subscribe(deployment: string, listener: HistoryListener): () => void;
  };
  /** The OpenAPI document (built once, on first use). */
  openapi: () => unknown;
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  request: FastifyRequest;
  reply: FastifyReply;
  deps: ApiDeps;
  /** The tenant the request acts in: names in, keys out (tenant-scope.ts). */
  scope: Scope;
}

/** A route as app.ts and openapi.ts see it. */
export interface RouteDef {
  method: Method;
  url: string;
  access: Access;
  operationId: string;
  summary: string;
  tag: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** The body may be left out (treated as {}). */
  bodyOptional?: boolean;
  /** The body is a stream of this media type, handed to the handler unread (request.body is a Readable). */
  rawBody?: { contentType: string; description: string };
  status: number;
  /** A registered schema (schemas.ts); `many` = an array of it. None for 204. */
  response?: { schema: z.ZodType; many?: boolean; ndjson?: boolean };
  /** The answer is a stream of server-sent events: per event name, the data's registered schema. */
  events?: Record<string, { schema: z.ZodType; many?: boolean; description: string }>;
  handler(input: RouteInput<unknown, unknown, unknown>): unknown;
}

interface TypedRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>
  extends Omit<RouteDef, 'handler' | 'params' | 'query' | 'body'> {
  params?: P;
  query?: Q;
  body?: B;
  handler(input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>): unknown;
}

function route<
  P extends z.ZodType = z.ZodType<Record<string, never>>,
  Q extends z.ZodType = z.ZodType<Record<string, never>>,
  B extends z.ZodType = z.ZodType<undefined>,
>(def: TypedRoute<P, Q, B>): RouteDef {
  return def as unknown as RouteDef;
}

const JSON_TYPE = 'application/json';

/**
 * If-None-Match against the current ETag (RFC 9110 13.1.2: a list, weak comparison, `*` for any): true when the
 * client already has it.
 */
function etagMatches(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const tags = [header]
    .flat()
    .flatMap((h) => h.split(','))
    .map((t) => t.trim());
  return tags.some((t) => t === '*' || t.replace(/^W\//, '') === etag.replace(/^W\//, ''));
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

const noContent = (): undefined => undefined;

/** A host for a scrape target's address: IPv6 in brackets, an IPv4-mapped one as IPv4. */
function addressHost(host: string): string {
  const h = host.startsWith('::ffff:') && host.includes('.') ? host.slice('::ffff:'.length) : host;
  return h.includes(':') ? `[${h}]` : h;
}

/** Hosts that mean "every interface": not an address to connect to. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '[::]', '::']);

type TargetGroup = { targets: string[]; labels: Record<string, string> };

/**
 * The http_sd answer (Prometheus's HTTP service discovery). Addresses: the control plane's own is where this
 * request arrived (the socket's local address: what the caller reached, never a header it sent); the gateway's
 * is its URL, a wildcard host (listening on every interface) replaced by the control plane's. Replicas are
 * scraped through the control plane (they listen on unix sockets): their address is the control plane's, their
 * `__metrics_path__` names them, and every label comes from the store and the controller.
 */
function prometheusTargets(deps: ApiDeps, request: FastifyRequest): TargetGroup[] {
  const localHost = addressHost(request.socket.localAddress ?? '127.0.0.1');
  const self = `${localHost}:${request.socket.localPort}`;
  const gateway = new URL(deps.info.gatewayUrl);
  const gatewayHost = WILDCARD_HOSTS.has(gateway.hostname) ? localHost : gateway.hostname;
  const gatewayPort = gateway.port || (gateway.protocol === 'https:' ? '443' : '80');
  const groups: TargetGroup[] = [
    {
      targets: [`${gatewayHost}:${gatewayPort}`],
      labels: {
        __metrics_path__: '/metrics',
        __scheme__: gateway.protocol.replace(':', ''),
        ferry_component: 'gateway',
      },
    },
    {
      targets: [self],
      labels: { __metrics_path__: '/metrics', __scheme__: 'http', ferry_component: 'control-plane' },
    },
  ];
  for (const r of deps.control.scrapeTargets())
    groups.push({
      targets: [self],
      labels: {
        __metrics_path__: `/v1/replicas/${encodeURIComponent(r.replica)}/metrics`,
        __scheme__: 'http',
        ferry_component: 'replica',
        instance: r.replica,
        tenant: r.tenant,
        deployment: r.deployment,
        revision: String(r.revision),
        replica: r.replica,
        model: r.model,
      },
    });
  return groups;
}

export const ROUTES: readonly RouteDef[] = [
  // ---- public
  route({
    method: 'GET',
    url: '/healthz',
    access: 'public',
    operationId: 'health',
    summary: 'Liveness of the control plane (no token needed)',
    tag: 'system',
    status: 200,
    response: { schema: HealthSchema },
    handler: ({ deps }) => ({ ok: true, version: deps.info.version }),
  }),
  route({
    method: 'GET',
    url: '/openapi.json',
    access: 'public',
    operationId: 'openapi',
    summary: 'This document (OpenAPI 3.1)',
    tag: 'system',
    status: 200,
    response: { schema: OpenApiDocumentSchema },
    handler: ({ deps }) => deps.openapi(),
  }),
  route({
    method: 'GET',
    url: '/metrics',
    access: 'metrics',
    operationId: 'metrics',
    summary:
      "The control plane's Prometheus metrics, text format (docs/metrics.md); every tenant's deployments, so metrics tokens and platform admins only",
    tag: 'system',
    status: 200,
    handler: async ({ deps, reply }) => {
      if (!deps.metrics)
        throw new FerryError('FERRY_ROUTE_NOT_FOUND', 'This control plane serves no metrics', {
          hint: 'The platform (ferry up) serves them.',
        });
      const { contentType, body } = await deps.metrics.render();
      return reply.code(200).type(contentType).send(body);
    },
  }),
  route({
    method: 'GET',
    url: '/v1/info',
    access: 'read',
    operationId: 'info',
    summary: 'Version, runtime and URLs of this Ferry',
    tag: 'system',
    status: 200,
    response: { schema: InfoSchema },
    handler: ({ deps }) => deps.info,
  }),

  route({
    method: 'GET',
    url: '/v1/whoami',
    access: 'read',
    operationId: 'whoami',
    summary: "The caller: its token's name and role, its tenant, and the access levels the role has",
    tag: 'system',
    status: 200,
    response: { schema: WhoAmISchema },
    handler: ({ request }): WhoAmI => {
      const caller = callerOf(request)!;
      const levels = ['read', 'write', 'admin', 'platform'] as const;
      return {
        name: caller.name,
        role: caller.role,
        home: caller.home,
        tenant: caller.tenant,
        access: levels.filter((level) => ROLES_FOR[level].includes(caller.role)),
      };
    },
  }),

  // ---- Prometheus (docs/prometheus.md)
  route({
    method: 'GET',
    url: '/v1/prometheus/targets',
    access: 'metrics',
    operationId: 'prometheusTargets',
    summary:
      "Prometheus HTTP service discovery (http_sd_configs): the gateway, the control plane, and every tenant's ready replicas, each scraped through GET /v1/replicas/{replica}/metrics on this address. Metrics tokens and platform admins",
    tag: 'metrics',
    status: 200,
    response: { schema: PrometheusTargetGroupSchema, many: true },
    handler: ({ deps, request }) => prometheusTargets(deps, request),
  }),
  route({
    method: 'GET',
    url: '/v1/replicas/:replica/metrics',
    access: 'metrics',
    operationId: 'replicaMetrics',
    summary:
      "A replica's Prometheus metrics (its GET /metrics, fetched over its socket), for a replica the controller knows; 502 FERRY_UPSTREAM_FAILED when it does not answer. Metrics tokens and platform admins",
    tag: 'metrics',
    params: ReplicaParams,
    status: 200,
    handler: async ({ deps, params, reply }) => {
      const { contentType, body } = await deps.control.replicaMetrics(params.replica);
      return reply.code(200).type(contentType).send(body);
    },
  }),

  // ---- gateways
  route({
    method: 'GET',
    url: '/v1/gateway/routes',
    access: 'gateway',
    operationId: 'gatewayRoutes',
    summary:
      "The gateways' route file on Docker Swarm (every tenant's routes; each revision names a DNS service), with an ETag; 304 when If-None-Match has it. Gateway tokens and platform admins",
    tag: 'gateway',
    status: 200,
    response: { schema: RouteFileSchema },
    handler: ({ deps, request, reply }) => {
      if (!deps.gatewayRoutes)
        throw new FerryError(
          'FERRY_ROUTE_NOT_FOUND',
          `This platform's runtime (${deps.info.runtime}) serves no route file: its gateway is built in and gets its routes directly`,
          {
            hint: `Use the built-in gateway (${deps.info.gatewayUrl}); ferry gateway --routes-url is for a Docker Swarm platform.`,
          },
        );
      const { body, etag } = deps.gatewayRoutes.current();
      reply.header('etag', etag).header('cache-control', 'no-store');
      if (etagMatches(request.headers['if-none-match'], etag)) return reply.code(304).send();
      return reply.code(200).type(JSON_TYPE).send(body);
    },
  }),

  route({
    method: 'POST',
    url: '/v1/gateway/load',
    access: 'gateway',
    operationId: 'gatewayLoad',
    summary:
      "A gateway's load since its last report (per revision: requests in flight on average and arrivals; per deployment: requests held), for the autoscaler. Gateway tokens",
    tag: 'gateway',
    body: GatewayLoadBody,
    status: 204,
    handler: ({ deps, body, reply }) => {
      if (!deps.gatewayLoad)
        throw new FerryError(
          'FERRY_ROUTE_NOT_FOUND',
          `This platform's runtime (${deps.info.runtime}) takes no gateway load: its gateway is built in and counts it directly`,
          { hint: `Use the built-in gateway (${deps.info.gatewayUrl}).` },
        );
      if (deps.gatewayLoad.report(body)) deps.gatewayLoad.wake();
      return reply.code(204).send();
    },
  }),

  // ---- models
  route({
    method: 'GET',
    url: '/v1/models',
    access: 'read',
    operationId: 'listModels',
    summary: 'Models with their versions and aliases',
    tag: 'models',
    query: ListQuery,
    status: 200,
    response: { schema: ModelSchema, many: true },
    handler: ({ deps, scope, query, reply }) =>
      page(deps.store.listModels(scope.tenant).map(unscope.model), query, (m) => m.name, reply),
  }),
  route({
    method: 'POST',
    url: '/v1/models',
    access: 'write',
    operationId: 'createModel',
    summary: 'Create a model',
    tag: 'models',
    body: CreateModelBody,
    status: 201,
    response: { schema: ModelSchema },
    handler: ({ deps, body, scope }) => unscope.model(deps.store.createModel(scope.key(body.name))),
  }),
  route({
    method: 'GET',
    url: '/v1/models/:model',
    access: 'read',
    operationId: 'getModel',
    summary: 'One model with its versions and aliases',
    tag: 'models',
    params: ModelParams,
    status: 200,
    response: { schema: ModelSchema },
    handler: ({ deps, params, scope }) => {
      const model = deps.store.getModel(scope.key(params.model));
      if (!model) {
        throw new FerryError('FERRY_MODEL_NOT_FOUND', `No model named ${JSON.stringify(params.model)}`, {
          hint: 'ferry get models lists them (API: GET /v1/models).',
        });
      }
      return unscope.model(model);
    },
  }),
  route({
    method: 'POST',
    url: '/v1/models/:model/versions',
    access: 'write',
    operationId: 'addVersion',
    summary: 'Add an immutable version (an image or an artifact directory)',
    tag: 'models',
    params: ModelParams,
    body: AddVersionBody,
    status: 201,
    response: { schema: ModelVersionSchema },
    handler: async ({ deps, params, body, scope }) =>
      unscope.version(await registerVersion(requireVersions(deps), scope.key(params.model), body)),
  }),
  route({
    method: 'GET',
    url: '/v1/artifacts/:digest',
    access: 'read',
    operationId: 'getArtifact',
    summary: 'Whether the platform has this artifact (404 when not): clients skip uploads it has',
    tag: 'models',
    params: ArtifactParams,
    status: 200,
    response: { schema: ArtifactSchema },
    handler: ({ deps, params, scope }) => {
      requireVersions(deps).artifacts.require(params.digest);
      if (!deps.store.ownsArtifact(params.digest, scope.tenant)) throw artifactNotFound(params.digest);
      return { digest: params.digest };
    },
  }),
  route({
    method: 'PUT',
    url: '/v1/artifacts/:digest',
    access: 'write',
    operationId: 'putArtifact',
    summary: 'Upload a model directory as a tar stream whose sha256 is the digest; kept read-only',
    tag: 'models',
    params: ArtifactParams,
    rawBody: {
      contentType: 'application/x-tar',
      description:
        'A tar of the model directory (regular files and directories only), as ferry deploy makes it',
    },
    status: 201,
    response: { schema: ArtifactSchema },
    handler: async ({ deps, params, request, scope }) => {
      const received = await requireVersions(deps).artifacts.receive(params.digest, request.body as Readable);
      deps.store.ownArtifact(received.digest, scope.tenant);
      return {
        digest: received.digest,
        files: received.files,
        bytes: received.bytes,
        created: received.created,
      };
    },
  }),
  route({
    method: 'PUT',
    url: '/v1/models/:model/aliases/:alias',
    access: 'write',
    operationId: 'setAlias',
    summary: 'Point an alias at a version; deployments following it roll out',
    tag: 'models',
    params: AliasParams,
    body: SetAliasBody,
    status: 200,
    response: { schema: AliasResultSchema },
    handler: ({ deps, params, body, scope }) => ({
      model: params.model,
      alias: params.alias,
      version: body.version,
      updated: unscope.aliasUpdates(
        deps.control.setAlias(scope.key(params.model), params.alias, body.version),
      ),
    }),
  }),

  // ---- deployments
  route({
    method: 'GET',
    url: '/v1/deployments',
    access: 'read',
    operationId: 'listDeployments',
    summary: 'Deployments with traffic, rollout and replica status',
    tag: 'deployments',
    query: ListQuery,
    status: 200,
    response: { schema: DeploymentViewSchema, many: true },
    handler: ({ deps, scope, query, reply }) =>
      page(deps.control.list(scope.tenant).map(unscope.deployment), query, (d) => d.name, reply),
  }),
  route({
    method: 'POST',
    url: '/v1/deployments',
    access: 'write',
    operationId: 'deploy',
    summary:
      "Create a deployment (revision 1, 100% traffic) and start its replicas; autoscaled on `scaling`, else on the version's ferry.yaml `scaling:`",
    tag: 'deployments',
    body: DeployBody,
    status: 201,
    response: { schema: DeploymentViewSchema },
    handler: ({ deps, body, scope }) => {
      const { version, strategy, name, model, scaling, ...rest } = body;
      return unscope.deployment(
        deps.control.deploy(
          dropUndefined({
            ...rest,
            name: scope.key(name),
            model: scope.key(model),
            versionRef: version,
            strategy: strategy as StrategyInput | undefined,
            scaling: scaling as Partial<ScalingSettings> | null | undefined,
          }),
        ),
      );
    },
  }),
  route({
    method: 'GET',
    url: '/v1/deployments/:name',
    access: 'read',
    operationId: 'getDeployment',
    summary: 'A deployment with its revisions and its last 20 events',
    tag: 'deployments',
    params: DeploymentParams,
    status: 200,
    response: { schema: DescribeViewSchema },
    handler: ({ deps, params, scope }) => {
      const key = scope.key(params.name);
      return {
        ...unscope.deployment(deps.control.view(key)),
        revisions: deps.store.listRevisions(key).map(unscope.revision),
        events: deps.store.listEvents({ deployment: key, limit: 20 }).map(unscope.event),
      };
    },
  }),
  route({
    method: 'PATCH',
    url: '/v1/deployments/:name',
    access: 'write',
    operationId: 'updateDeployment',
    summary: "Change the spec; a new revision rolls out with the deployment's strategy",
    tag: 'deployments',
    params: DeploymentParams,
    body: UpdateBody,
    status: 200,
    response: { schema: DeploymentViewSchema },
    handler: ({ deps, params, body, scope }) => {
      const { version, strategy, model, ...rest } = body;
      const patch: DeploymentPatch & { strategy?: StrategyInput } = dropUndefined({
        ...rest,
        model: model === undefined ? undefined : scope.key(model),
        versionRef: version,
        strategy: strategy as StrategyInput | undefined,
      });
      return unscope.deployment(deps.control.update(scope.key(params.name), patch));
    },
  }),
  route({
    method: 'DELETE',
    url: '/v1/deployments/:name',
    access: 'write',
    operationId: 'deleteDeployment',
    summary: 'Delete a deployment; its replicas are drained and removed',
    tag: 'deployments',
    params: DeploymentParams,
    status: 204,
    handler: ({ deps, params, scope }) => {
      deps.control.remove(scope.key(params.name));
      return noContent();
    },
  }),
  route({
    method: 'PUT',
    url: '/v1/deployments/:name/replicas',
    access: 'write',
    operationId: 'scale',
    summary: 'Set the desired replica count (same revision, no rollout)',
    tag: 'deployments',
    params: DeploymentParams,
    body: ScaleBody,
    status: 200,
    response: { schema: DeploymentViewSchema },
    handler: ({ deps, params, body, scope }) =>
      unscope.deployment(deps.control.scale(scope.key(params.name), body.replicas)),
  }),
  route({
    method: 'PUT',
    url: '/v1/deployments/:name/scaling',
    access: 'write',
    operationId: 'setScaling',
    summary: 'Autoscaling on (the given settings over the defaults; docs/autoscaling.md) or off (null)',
    tag: 'deployments',
    params: DeploymentParams,
    body: ScalingBody,
    status: 200,
    response: { schema: DeploymentViewSchema },
    handler: ({ deps, params, body, scope }) =>
      unscope.deployment(
        deps.control.setScaling(scope.key(params.name), body.scaling as Partial<ScalingSettings> | null),
      ),
  }),
  route({
    method: 'GET',
    url: '/v1/deployments/:name/replicas',
    access: 'read',
    operationId: 'replicas',
    summary: 'Live replicas of a deployment',
    tag: 'deployments',
    params: DeploymentParams,
    query: ListQuery,
    status: 200,
    response: { schema: ReplicaSchema, many: true },
    handler: ({ deps, params, scope, query, reply }) =>
      page(
        [...deps.control.view(scope.key(params.name)).replicaStatus].sort((a, b) =>
          a.name < b.name ? -1 : 1,
        ),
        query,
        (r) => r.name,
        reply,
      ),
  }),
  route({
    method: 'GET',
    url: '/v1/deployments/:name/traffic',
    access: 'read',
    operationId: 'getTraffic',
    summary: 'The traffic split between revisions',
    tag: 'traffic',
    params: DeploymentParams,
    status: 200,
    response: { schema: TrafficSchema },
    handler: ({ deps, params, scope }) => ({ traffic: deps.store.getTraffic(scope.key(params.name)) }),
  }),
  route({
    method: 'PUT',
    url: '/v1/deployments/:name/traffic',
    access: 'write',
    operationId: 'setTraffic',
    summary: 'Set the split by hand (A/B, shadow); refused while a rollout is in progress',
    tag: 'traffic',
    params: DeploymentParams,
    body: TrafficBody,
    status: 200,
    response: { schema: DeploymentViewSchema },
    handler: ({ deps, params, body, scope }) =>
      unscope.deployment(deps.control.setTraffic(scope.key(params.name), body.traffic)),
  }),
  route({
    method: 'GET',
    url: '/v1/deployments/:name/revisions',
    access: 'read',
    operationId: 'revisions',
    summary: 'Revisions of a deployment, oldest first',
    tag: 'rollouts',
    params: DeploymentParams,
    query: RevisionsQuery,
    status: 200,
    response: { schema: RevisionSchema, many: true },
    handler: ({ deps, params, scope, query, reply }) =>
      page(deps.store.listRevisions(scope.key(params.name)), query, (r) => r.number, reply).map(
        unscope.revision,
      ),
  }),
  route({
    method: 'GET',
    url: '/v1/deployments/:name/rollout',
    access: 'read',
    operationId: 'rollout',
    summary: 'The rollout in progress, or null',
    tag: 'rollouts',
    params: DeploymentParams,
    status: 200,
    response: { schema: RolloutEnvelopeSchema },
    handler: ({ deps, params, scope }) => {
      const rollout = deps.control.rollout(scope.key(params.name));
      return { rollout: rollout === null ? null : unscope.rollout(rollout) };
    },
  }),
  route({
    method: 'POST',
    url: '/v1/deployments/:name/rollout/promote',
    access: 'write',
    operationId: 'promote',
    summary: 'Go on past a paused canary step',
    tag: 'rollouts',
    params: DeploymentParams,
    status: 200,
    response: { schema: RolloutSchema },
    handler: ({ deps, params, scope }) => unscope.rollout(deps.control.promote(scope.key(params.name))),
  }),
  route({
    method: 'POST',
    url: '/v1/deployments/:name/rollout/abort',
    access: 'write',
    operationId: 'abort',
    summary: 'Move all traffic back to the stable revision',
    tag: 'rollouts',
    params: DeploymentParams,
    status: 200,
    response: { schema: RolloutSchema },
    handler: ({ deps, params, scope }) => unscope.rollout(deps.control.abort(scope.key(params.name))),
  }),
  route({
    method: 'POST',
    url: '/v1/deployments/:name/rollout/undo',
    access: 'write',
    operationId: 'undo',
    summary: 'Roll out an earlier revision (default: the one before the serving one)',
    tag: 'rollouts',
    params: DeploymentParams,
    body: UndoBody,
    bodyOptional: true,
    status: 200,
    response: { schema: RolloutSchema },
    handler: ({ deps, params, body, scope }) =>
      unscope.rollout(deps.control.undo(scope.key(params.name), body.revision)),
  }),
  route({
    method: 'GET',
    url: '/v1/deployments/:name/logs',
    access: 'read',
    operationId: 'logs',
    summary:
      'Replica logs: a JSON array, or with follow=true an NDJSON stream (one LogLine per line, an empty line as heartbeat)',
    tag: 'deployments',
    params: DeploymentParams,
    query: LogsQuery,
    status: 200,
    response: { schema: LogLineSchema, many: true, ndjson: true },
    handler: async ({ deps, params, query, request, reply, scope }) => {
      const key = scope.key(params.name);
      const logQuery: LogQuery = dropUndefined({ revision: query.revision, tail: query.tail });
      if (query.follow !== 'true') return deps.control.logs(key, logQuery);
      // Refuse an unknown deployment with a proper status before the stream's 200 goes out.
      if (!deps.store.getDeployment(key)) deps.control.view(key);
      await streamNdjson(request, reply, deps.heartbeatMs, (signal) =>
        deps.control.followLogs(key, logQuery, signal),
      );
      return reply;
    },
  }),
  route({
    method: 'GET',
    url: '/v1/deployments/:name/metrics',
    access: 'read',
    operationId: 'metricsHistory',
    summary:
      'Per-revision points of the last hour, one per step (5 s): requests/s by code, p50/p99, replicas, batch size, queue depth, cold starts (docs/metrics.md, Metrics history)',
    tag: 'deployments',
    params: DeploymentParams,
    query: MetricsQuery,
    status: 200,
    response: { schema: MetricsHistorySchema },
    handler: ({ deps, params, query, scope }) => {
      const key = scope.key(params.name);
      const history = historyOf(deps, key);
      return { deployment: params.name, ...history.view(key, query.since) };
    },
  }),
  route({
    method: 'GET',
    url: '/v1/deployments/:name/metrics/stream',
    access: 'read',
    operationId: 'metricsStream',
    summary:
      'Server-sent events: `snapshot` (the GET .../metrics body), then `point` ({revision, point}) per revision after each step, `deleted` when the deployment goes; `: ping` every 15 s',
    tag: 'deployments',
    params: DeploymentParams,
    status: 200,
    handler: ({ deps, params, request, reply, scope }) => {
      const key = scope.key(params.name);
      const history = historyOf(deps, key);
      streamHistory(request, reply, deps.heartbeatMs, params.name, key, history);
      return reply;
    },
  }),
  route({
    method: 'GET',
    url: '/v1/events',
    access: 'read',
    operationId: 'events',
    summary: 'Events, newest first',
    tag: 'deployments',
    query: EventsQuery,
    status: 200,
    response: { schema: EventSchema, many: true },
    handler: ({ deps, query, scope }) =>
      deps.store
        .listEvents(
          dropUndefined({
            limit: query.limit,
            before: query.before,
            ...(query.deployment === undefined
              ? { tenant: scope.tenant }
              : { deployment: scope.key(query.deployment) }),
          }),
        )
        .map(unscope.event),
  }),

  route({
    method: 'GET',
    url: '/v1/stream',
    access: 'read',
    operationId: 'stream',
    summary:
      "The tenant's deployments and events, live, as server-sent events (text/event-stream): `deployments` on connect and whenever it changed, `event` per event recorded after connect, a `: ping` comment every 15 s",
    tag: 'deployments',
    status: 200,
    events: {
      deployments: {
        schema: DeploymentViewSchema,
        many: true,
        description:
          'The body of GET /v1/deployments (every deployment of the tenant): on connect, then whenever it changed (looked at most every 500 ms; nothing when unchanged)',
      },
      event: {
        schema: EventSchema,
        description:
          'One event as GET /v1/events returns it, for each event recorded after connect, in order',
      },
    },
    handler: ({ deps, request, reply, scope }) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        ...STREAM_HEADERS,
        'x-request-id': String(request.id),
      });
      res.flushHeaders();
      deps.streams.open(scope.tenant, res);
      return reply;
    },
  }),

  // ---- tokens
  route({
    method: 'GET',
    url: '/v1/tokens',
    access: 'admin',
    operationId: 'listTokens',
    summary: "The tenant's tokens (names, roles, scopes, expiry; never the tokens)",
    tag: 'tokens',
    query: ListQuery,
    status: 200,
    response: { schema: TokenSchema, many: true },
    handler: ({ deps, scope, query, reply }) =>
      page(deps.store.listTokens(scope.tenant).map(unscope.token), query, (t) => t.name, reply),
  }),
  route({
    method: 'POST',
    url: '/v1/tokens',
    access: 'admin',
    operationId: 'createToken',
    summary: 'Create a token in the tenant; the answer holds the plain token, shown this once',
    tag: 'tokens',
    body: CreateTokenBody,
    status: 201,
    response: { schema: CreatedTokenSchema },
    handler: ({ deps, body, reply, request, scope }) => {
      const caller = callerOf(request);
      // They see every tenant (a gateway token: every tenant's routes; a metrics token: every tenant's
      // replicas and metrics), so none belongs to one.
      if (
        (body.role === 'platform-admin' || body.role === 'gateway' || body.role === 'metrics') &&
        (caller?.role !== 'platform-admin' || scope.tenant !== DEFAULT_TENANT)
      )
        throw new FerryError(
          'FERRY_FORBIDDEN',
          `Only a platform admin makes ${body.role} tokens, and only in the default tenant`,
          {
            hint:
              body.role === 'gateway'
                ? "A gateway token reads every tenant's routes: a platform admin makes it (leave --tenant out)."
                : body.role === 'metrics'
                  ? "A metrics token reads every tenant's metrics: a platform admin makes it (leave --tenant out)."
                  : 'Give the token role admin to administer one tenant.',
          },
        );
      if (body.deployment !== undefined && !deps.store.getDeployment(scope.key(body.deployment)))
        throw new FerryError('FERRY_NOT_FOUND', `No deployment named ${JSON.stringify(body.deployment)}`, {
          hint: 'A key is made for a deployment that exists: ferry get deployments lists them.',
        });
      reply.header('cache-control', 'no-store');
      const created = deps.store.createToken(scope.key(body.name), body.role, {
        expiresAt: body.expiresInSeconds === undefined ? null : Date.now() + body.expiresInSeconds * 1000,
        deployment: body.deployment ?? null,
        rateLimit: body.rateLimit ?? null,
      });
      if (created.role === 'invoker') deps.control.accessChanged();
      return unscope.token(created);
    },
  }),
  route({
    method: 'DELETE',
    url: '/v1/tokens/:name',
    access: 'admin',
    operationId: 'deleteToken',
    summary: 'Revoke a token of the tenant',
    tag: 'tokens',
    params: TokenParams,
    status: 204,
    handler: ({ deps, params, scope }) => {
      if (!deps.store.deleteToken(scope.key(params.name))) {
        throw new FerryError('FERRY_NOT_FOUND', `No token named ${JSON.stringify(params.name)}`, {
          hint: 'ferry token list lists them (API: GET /v1/tokens).',
        });
      }
      deps.control.accessChanged();
      return noContent();
    },
  }),

  // ---- tenants
  route({
    method: 'GET',
    url: '/v1/tenant',
    access: 'read',
    operationId: 'currentTenant',
    summary: 'The tenant this request acts in, with its quotas and what it uses',
    tag: 'tenants',
    status: 200,
    response: { schema: TenantSchema },
    handler: ({ deps, scope }) => tenantView(deps, scope.tenant),
  }),
  route({
    method: 'GET',
    url: '/v1/tenants',
    access: 'platform',
    operationId: 'listTenants',
    summary: 'Every tenant, with quotas and use (platform admins)',
    tag: 'tenants',
    query: ListQuery,
    status: 200,
    response: { schema: TenantSchema, many: true },
    handler: ({ deps, query, reply }) =>
      page(deps.store.listTenants(), query, (t) => t.name, reply).map((t) => tenantView(deps, t.name)),
  }),
  route({
    method: 'POST',
    url: '/v1/tenants',
    access: 'platform',
    operationId: 'createTenant',
    summary: 'Create a tenant, optionally with quotas (platform admins)',
    tag: 'tenants',
    body: CreateTenantBody,
    status: 201,
    response: { schema: TenantSchema },
    handler: ({ deps, body }) => {
      deps.store.createTenant(body.name, body.quotas ?? {});
      return tenantView(deps, body.name);
    },
  }),
  route({
    method: 'GET',
    url: '/v1/tenants/:tenant',
    access: 'platform',
    operationId: 'getTenant',
    summary: 'One tenant with its quotas and use (platform admins)',
    tag: 'tenants',
    params: TenantParams,
    status: 200,
    response: { schema: TenantSchema },
    handler: ({ deps, params }) => tenantView(deps, params.tenant),
  }),
  route({
    method: 'PUT',
    url: '/v1/tenants/:tenant/quotas',
    access: 'platform',
    operationId: 'setQuotas',
    summary: "Replace a tenant's quotas (what runs is not stopped; changes beyond them are refused)",
    tag: 'tenants',
    params: TenantParams,
    body: SetQuotasBody,
    status: 200,
    response: { schema: TenantSchema },
    handler: ({ deps, params, body }) => {
      deps.store.setQuotas(params.tenant, body.quotas);
      return tenantView(deps, params.tenant);
    },
  }),
  route({
    method: 'DELETE',
    url: '/v1/tenants/:tenant',
    access: 'platform',
    operationId: 'deleteTenant',
    summary: 'Delete an empty tenant (platform admins)',
    tag: 'tenants',
    params: TenantParams,
    status: 204,
    handler: ({ deps, params }) => {
      deps.store.deleteTenant(params.tenant);
      return noContent();
    },
  }),
  // ---- secrets (values go in, never out)
  route({
    method: 'GET',
    url: '/v1/secrets',
    access: 'read',
    operationId: 'listSecrets',
    summary: 'Secrets (names and dates; never the values)',
    tag: 'secrets',
    query: ListQuery,
    status: 200,
    response: { schema: SecretSchema, many: true },
    handler: ({ deps, scope, query, reply }) =>
      page(secretsOf(deps).list(scope.tenant).map(unscope.secret), query, (s) => s.name, reply),
  }),
  route({
    method: 'PUT',
    url: '/v1/secrets/:name',
    access: 'write',
    operationId: 'setSecret',
    summary:
      'Set a secret (a new version); deployments whose revision uses an older version roll out a new revision with it',
    tag: 'secrets',
    params: SecretParams,
    body: SetSecretBody,
    status: 200,
    response: { schema: SecretSetSchema },
    handler: ({ deps, params, body, scope }) => {
      const key = scope.key(params.name);
      deps.control.checkSecretChange(key);
      const record = secretsOf(deps).set(key, body.value);
      const rolledOut = unscope.aliasUpdates(deps.control.secretChanged(key));
      return { ...unscope.secret(record), rolledOut };
    },
  }),
  route({
    method: 'POST',
    url: '/v1/secrets/rotate-key',
    access: 'platform',
    operationId: 'rotateSecretKey',
    summary:
      'Seal every secret (every kept version, every tenant) again under a new key, then forget the old one; nothing stops',
    tag: 'secrets',
    status: 200,
    response: { schema: KeyRotationSchema },
    handler: ({ deps }) => secretsOf(deps).rotateKey(),
  }),
  route({
    method: 'DELETE',
    url: '/v1/secrets/:name',
    access: 'write',
    operationId: 'deleteSecret',
    summary: 'Delete a secret (running replicas keep the value they started with)',
    tag: 'secrets',
    params: SecretParams,
    status: 204,
    handler: ({ deps, params, scope }) => {
      secretsOf(deps).delete(scope.key(params.name));
      return noContent();
    },
  }),
  // ---- audit log (app.ts writes it: every mutation and every denied request)
  route({
    method: 'GET',
    url: '/v1/audit',
    access: 'admin',
    operationId: 'listAudit',
    summary:
      'Audit records, newest first (oldest first with after): every change and every denied request, hash-chained',
    tag: 'audit',
    query: AuditQuery,
    status: 200,
    response: { schema: AuditEntrySchema, many: true },
    // A tenant's admin reads its tenant's records; a platform admin reads every tenant's.
    handler: ({ deps, query, request, scope }) =>
      deps.store.audit.list(
        dropUndefined({
          ...query,
          tenant: callerOf(request)?.role === 'platform-admin' ? undefined : scope.tenant,
        }),
      ),
  }),
  route({
    method: 'GET',
    url: '/v1/audit/verify',
    // One chain runs through every tenant's records: checking it is the platform's business.
    access: 'platform',
    operationId: 'verifyAudit',
    summary:
      'Check the audit chain from the first record, and its end against the head kept beside the database',
    tag: 'audit',
    query: AuditVerifyQuery,
    status: 200,
    response: { schema: AuditVerificationSchema },
    handler: ({ deps, query }) => deps.store.audit.verify(query.head),
  }),
];

export const NEXT_PAGE_HEADER = 'x-ferry-next-after';

/**
 * One page of a list sorted by `keyOf`: the items after `query.after`, at most `query.limit` (default MAX_PAGE).
 * When more remain, the answer's `x-ferry-next-after` header holds the key to ask after.
 */
function page<T, K extends string | number>(
  items: readonly T[],
  query: { limit?: number | undefined; after?: K | undefined },
  keyOf: (item: T) => K,
  reply: FastifyReply,
): T[] {
  const limit = query.limit ?? MAX_PAGE;
  const after = query.after;
  const rest = after === undefined ? items : items.filter((item) => keyOf(item) > after);
  if (rest.length > limit) reply.header(NEXT_PAGE_HEADER, String(keyOf(rest[limit - 1]!)));
  return rest.slice(0, limit);
}

function tenantView(deps: ApiDeps, name: string): TenantView {
  const tenant = deps.store.getTenant(name);
  if (!tenant)
    throw new FerryError('FERRY_TENANT_NOT_FOUND', `No tenant named ${JSON.stringify(name)}`, {
      hint: 'ferry tenant list lists them.',
    });
  return { ...tenant, usage: deps.control.tenantUsage(name) };
}

function secretsOf(deps: ApiDeps): Secrets {
  if (!deps.secrets)
    throw new FerryError('FERRY_NOT_FOUND', 'This control plane has no secret store', {
      hint: 'ferry up runs one; an API built without `secrets` has none.',
    });
  return deps.secrets;
}

// ---------------------------------------------------------------------------------------------- metrics history

/** The history, once the deployment is known in the caller's tenant (404 FERRY_NOT_FOUND before anything else). */
function historyOf(deps: ApiDeps, key: string): NonNullable<ApiDeps['metricsHistory']> {
  if (!deps.store.getDeployment(key)) deps.control.view(key);
  if (!deps.metricsHistory)
    throw new FerryError('FERRY_ROUTE_NOT_FOUND', 'This control plane keeps no metrics history', {
      hint: 'The platform (ferry up) keeps one.',
    });
  return deps.metricsHistory;
}

/** A client further behind than this is cut off rather than buffered for. */
const MAX_SSE_BUFFER_BYTES = 1024 * 1024;

/**
 * The history of one deployment as server-sent events: `snapshot`, then `point` per revision and step, a `: ping`
 * comment every `pingMs`, `deleted` (and the end) when the deployment goes. A client that does not read (over
 * MAX_SSE_BUFFER_BYTES waiting) is disconnected.
 */
function streamHistory(
  request: FastifyRequest,
  reply: FastifyReply,
  pingMs: number,
  name: string,
  key: string,
  history: NonNullable<ApiDeps['metricsHistory']>,
): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { ...SECURITY_HEADERS, ...STREAM_HEADERS, 'x-request-id': String(request.id) });
  let unsubscribe = () => {};
  const ping = setInterval(() => send(': ping\n\n'), pingMs);
  const end = () => {
    clearInterval(ping);
    unsubscribe();
    if (!res.writableEnded) res.end();
  };
  const send = (text: string) => {
    if (res.writableEnded || res.destroyed) return;
    if (res.writableLength > MAX_SSE_BUFFER_BYTES) {
      request.log.warn({ deployment: key }, 'metrics stream: the client does not read; disconnected');
      clearInterval(ping);
      unsubscribe();
      res.destroy();
      return;
    }
    res.write(text);
  };
  res.on('close', end);
  send(`event: snapshot\ndata: ${JSON.stringify({ deployment: name, ...history.view(key) })}\n\n`);
  unsubscribe = history.subscribe(key, {
    point: (revision, point) => send(`event: point\ndata: ${JSON.stringify({ revision, point })}\n\n`),
    deleted: () => {
      send(`event: deleted\ndata: ${JSON.stringify({ deployment: name })}\n\n`);
      end();
    },
  });
}

// ---------------------------------------------------------------------------------------------- NDJSON

/**
 * Writes each item of the iterable as one JSON line, flushed as it comes, with an empty line every
 * `heartbeatMs` so proxies and clients see the connection alive. When the client goes away the signal given
 * to `open` aborts and the iterator is told to return. A failure after the 200 went out is sent as a last line
 * `{"error","code","hint"?}` (the client turns it into a FerryError).
 */
async function streamNdjson(
  request: FastifyRequest,
  reply: FastifyReply,
  heartbeatMs: number,
  open: (signal: AbortSignal) => AsyncIterable<LogLine>,
): Promise<void> {
  const controller = new AbortController();
  const { signal } = controller;
  const iterator = open(signal)[Symbol.asyncIterator]();
  reply.hijack();
  const res = reply.raw;
  res.on('close', () => controller.abort());
  res.writeHead(200, {
    'content-type': 'application/x-ndjson; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
    'x-request-id': String(request.id),
  });
  res.flushHeaders();
  const heartbeat = setInterval(() => {
    if (!res.writableEnded && !res.destroyed) res.write('\n');
  }, heartbeatMs);
  const aborted = new Promise<IteratorResult<LogLine>>((resolve) => {
    if (signal.aborted) resolve({ done: true, value: undefined });
    else signal.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true });
  });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done || signal.aborted) break;
      if (!res.write(`${JSON.stringify(next.value)}\n`)) {
        // Back-pressure: wait until the client reads (or leaves).
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
  } catch (error) {
    if (!signal.aborted) {
      const ferry = isFerryError(error)
        ? error
        : new FerryError(
            'FERRY_INTERNAL',
            `log stream failed: ${(error as Error)?.message ?? String(error)}`,
          );
      request.log[ferry.status >= 500 ? 'error' : 'warn']({ code: ferry.code, err: error }, ferry.message);
      res.write(
        `${JSON.stringify({ error: ferry.message, code: ferry.code, ...(ferry.hint ? { hint: ferry.hint } : {}) })}\n`,
      );
    }
  } finally {
    clearInterval(heartbeat);
    if (signal.aborted) {
      // The iterator may be waiting for a line that never comes; ask it to stop without waiting for it.
      iterator.return?.()?.catch(() => {});
    }
    controller.abort();
    if (!res.writableEnded) res.end();
  }
}

function requireVersions(deps: ApiDeps): VersionRegistryDeps {
  if (!deps.versions)
    throw new FerryError('FERRY_NOT_FOUND', 'This control plane keeps no artifacts', {
      hint: 'Start it with an artifact store (ferry up does).',
    });
  return deps.versions;
}
