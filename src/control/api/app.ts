/**
 * The control-plane HTTP API as a Fastify app (the factory does not listen; tests use inject() or port 0).
 * JSON over HTTP; every route but GET /healthz and GET /openapi.json needs `Authorization: Bearer <token>`,
 * checked with the store's hashed tokens. A request acts in its token's tenant; a platform admin names another
 * with the `X-Ferry-Tenant` header (a tenant's token naming any tenant but its own is refused). Roles, per
 * tenant: viewer reads; deployer also changes; admin also manages tokens; platform-admin all of it in every
 * tenant, and tenants; invoker nothing here (the gateway only); gateway (a gateway's own token, in the default
 * tenant) only GET /v1/gateway/routes. The table is ROLES_FOR in routes.ts and docs/security.md.
 * Bodies, path parameters and queries are validated with the zod schemas of schemas.ts (strict: unknown
 * fields are refused). Every error leaves as {"error", "code", "hint"?, "details"?} with the code's status.
 *
 * Tokens never reach the logs: request lines carry method, URL and id only (no headers), and the logger's
 * redaction drops the Authorization header wherever it could appear.
 *
 * Every change (POST, PUT, PATCH, DELETE) and every denied request goes to the audit log from one onResponse
 * hook, whatever answered it (audit.ts says what a record holds and what happens when it cannot be written).
 * A request's id is the client's x-request-id when it is a short plain string, else a fresh UUID; every
 * answer carries it back in x-request-id.
 */
import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { FerryError, isFerryError } from '../../core/errors.ts';
import { DEFAULT_TENANT, plainName } from '../../core/tenant.ts';
import type { Secrets } from '../secrets.ts';
import type { Store } from '../store/store.ts';
import type { VersionRegistryDeps } from '../versions.ts';
import type { ControlPlane } from '../views.ts';
import { auditRecorder } from './audit.ts';
import { callerOf, setCaller } from './caller.ts';
import { SECURITY_HEADERS } from './headers.ts';
import { buildOpenApi } from './openapi.ts';
import { PlatformStreams } from './platform-stream.ts';
import { type Access, type ApiDeps, ROLES_FOR, ROUTES, type RouteDef } from './routes.ts';
import type { Info } from './schemas.ts';
import { scopeOf, unscopeText } from './tenant-scope.ts';
import { registerUi } from './ui.ts';

export interface ControlApiOptions {
  store: Store;
  control: ControlPlane;
  info: Info;
  /** Default: no logging. */
  logger?: Logger | false;
  /**
   * Milliseconds between heartbeats on streams: newlines on followed logs, `: ping` on GET /v1/stream.
   * Default 15000.
   */
  followHeartbeatMs?: number;
  /** GET /v1/stream: a client with more than this many bytes unsent is dropped (platform-stream.ts). Default 4 MiB. */
  streamMaxBufferedBytes?: number;
  /** The secret store behind /v1/secrets; without it those routes answer 404 FERRY_NOT_FOUND. */
  secrets?: Secrets;
  /** The artifact store and version registration (POST .../versions, /v1/artifacts). */
  versions?: VersionRegistryDeps;
  /** Served at GET /metrics (platform admins); without it that route answers 404. */
  metrics?: ApiDeps['metrics'];
  /**
   * The gateways' route file (src/control/route-file.ts RouteFile), served at GET /v1/gateway/routes on a runtime
   * whose gateways pull it (Docker Swarm); without it that route answers 404.
   */
  gatewayRoutes?: ApiDeps['gatewayRoutes'];
  gatewayLoad?: ApiDeps['gatewayLoad'];
  /** The built dashboard (dist/web), served at /ui/ (ui.ts); without it /ui answers 404. */
  ui?: { dir: string };
  /** The metrics history (metrics-history/); without it GET /v1/deployments/{name}/metrics answers 404. */
  metricsHistory?: ApiDeps['metricsHistory'];
}

/** Paths the logger censors (the Authorization header, however a serializer shapes it). */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'request.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  'value',
  'body.value',
  '*.token',
];

const JSON_TYPE = 'application/json';
export const TENANT_HEADER = 'x-ferry-tenant';
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

export { SECURITY_HEADERS };

const TENANT_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const BEARER_RE = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export { type Caller, callerOf } from './caller.ts';

/** The FERRY_... code of each error answer (for the audit record). */
const errorCodes = new WeakMap<FastifyRequest, string>();
const REQUEST_ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
/** A token pasted as a request id would reach the audit log: such an id is replaced. */
const TOKEN_IN_ID_RE = /ferry_[0-9a-f]{16}_/;

export function buildControlApi(opts: ControlApiOptions): FastifyInstance {
  const logger = opts.logger
    ? opts.logger.child({}, { redact: { paths: REDACTED_PATHS, censor: '[redacted]' } })
    : undefined;
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    exposeHeadRoutes: false,
    // close() cuts every connection. With the default ('idle'), a keep-alive socket left by a log follow the
    // client ended is never seen as idle (fastify#7044 and kin), and close(), so `ferry down`, waited out
    // the 72 s keep-alive timeout. API calls are short; at shutdown one in flight fails and can be retried.
    forceCloseConnections: true,
    // JSON bodies: the largest real one (a deployment with env and serving overrides) is a few KiB. Artifact
    // uploads are streams, bounded by the artifact store instead.
    bodyLimit: MAX_JSON_BODY_BYTES,
    routerOptions: { maxParamLength: 256 },
    // The client's x-request-id when it is a short plain string (it goes into the audit log), else a UUID.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) && !TOKEN_IN_ID_RE.test(given)
        ? given
        : randomUUID();
    },
    frameworkErrors: (error, request, reply) => {
      const ferry = toApiError(error, request.headers['content-type']);
      request.log.warn({ code: ferry.code, url: request.url }, ferry.message);
      sendError(reply, ferry);
    },
  }) as unknown as FastifyInstance;

  let openapi: unknown;
  const heartbeatMs = opts.followHeartbeatMs ?? 15_000;
  const streams = new PlatformStreams({
    control: opts.control,
    pingMs: heartbeatMs,
    ...(opts.streamMaxBufferedBytes === undefined ? {} : { maxBufferedBytes: opts.streamMaxBufferedBytes }),
    log: app.log,
  });
  // Live streams end cleanly before Fastify cuts the connections (forceCloseConnections below).
  app.addHook('preClose', (done) => {
    streams.close();
    done();
  });
  const deps: ApiDeps = {
    store: opts.store,
    control: opts.control,
    info: opts.info,
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
    ...(opts.versions ? { versions: opts.versions } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.gatewayRoutes ? { gatewayRoutes: opts.gatewayRoutes } : {}),
    ...(opts.gatewayLoad ? { gatewayLoad: opts.gatewayLoad } : {}),
    ...(opts.metricsHistory ? { metricsHistory: opts.metricsHistory } : {}),
    heartbeatMs,
    streams,
    openapi: () => {
      openapi ??= buildOpenApi(ROUTES, {
        version: opts.info.version,
        ...(opts.info.apiUrl ? { apiUrl: opts.info.apiUrl } : {}),
      });
      return openapi;
    },
  };

  app.setErrorHandler((error: FastifyError | FerryError, request, reply) => {
    const ferry = toApiError(error, request.headers['content-type']);
    const level = ferry.status >= 500 ? 'error' : 'warn';
    request.log[level](
      { code: ferry.code, status: ferry.status, err: ferry.status >= 500 ? error : undefined },
      ferry.message,
    );
    sendError(reply, ferry);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(
      reply,
      new FerryError('FERRY_ROUTE_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`, {
        hint: 'GET /openapi.json lists the routes.',
      }),
    );
  });

  // The audit log: one record per change and per denial, written once the answer is out (audit.ts).
  const audit = auditRecorder(opts.store.audit, logger);
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    try {
      if (request.routeOptions.url !== undefined) audit.gate(request);
      done();
    } catch (error) {
      done(error as Error);
    }
  });
  app.addHook('onResponse', (request, reply, done) => {
    const config = request.routeOptions.config as { operationId?: string } | undefined;
    audit.record({
      request,
      route: { operationId: config?.operationId, url: request.routeOptions.url },
      status: reply.statusCode,
      code: errorCodes.get(request),
      caller: callerOf(request),
    });
    done();
  });

  app.addHook('onSend', (_request, reply, payload, done) => {
    // The dashboard's files (ui.ts) set their own policy and caching; everything else gets these.
    for (const [name, value] of Object.entries(SECURITY_HEADERS))
      if (!reply.hasHeader(name)) reply.header(name, value);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    done(null, payload);
  });

  // Routes are added in a plugin so that hooks the caller adds before ready() (e.g. onRoute) see them.
  app.register(async (instance) => {
    // Streamed bodies (artifact uploads) reach their handler unread; the handler bounds what it reads.
    for (const type of new Set(ROUTES.flatMap((r) => (r.rawBody ? [r.rawBody.contentType] : []))))
      instance.addContentTypeParser(type, (_request, payload, done) => done(null, payload));
    for (const def of ROUTES) registerRoute(instance, def, deps);
  });
  const ui = opts.ui;
  if (ui) app.register(async (instance) => registerUi(instance, ui.dir));
  return app;
}

function registerRoute(app: FastifyInstance, def: RouteDef, deps: ApiDeps): void {
  const { access } = def;
  app.route({
    method: def.method,
    url: def.url,
    config: { operationId: def.operationId },
    ...(access === 'public'
      ? {}
      : {
          onRequest: (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
            try {
              authorize(request, access, deps.store);
              done();
            } catch (error) {
              done(error as Error);
            }
          },
        }),
    handler: async (request, reply) => {
      const params = parse(def.params ?? EMPTY, request.params ?? {}, 'path');
      const query = parse(def.query ?? EMPTY, request.query ?? {}, 'query');
      let body: unknown;
      if (def.rawBody) {
        const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== def.rawBody.contentType)
          throw new FerryError(
            'FERRY_UNSUPPORTED_MEDIA_TYPE',
            `${def.method} ${def.url} takes ${def.rawBody.contentType}, not ${JSON.stringify(type)}`,
          );
        body = request.body;
      } else if (def.body) {
        body = parse(def.body, request.body ?? (def.bodyOptional ? {} : undefined), 'body');
      } else if (request.body !== undefined && !isEmptyObject(request.body)) {
        throw new FerryError('FERRY_BAD_REQUEST', `${def.method} ${def.url} takes no body`, {
          hint: 'Leave the body out.',
        });
      }
      const scope = scopeOf(callerOf(request)?.tenant ?? DEFAULT_TENANT);
      const result = await def.handler({ params, query, body, request, reply, deps, scope });
      if (result === reply || reply.sent) return reply;
      if (def.status === 204) return reply.code(204).send();
      return reply.code(def.status).type(JSON_TYPE).send(result);
    },
  });
}

const EMPTY = z.strictObject({});

function isEmptyObject(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0
  );
}

function authorize(request: FastifyRequest, access: Exclude<Access, 'public'>, store: Store): void {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    throw new FerryError('FERRY_UNAUTHORIZED', 'No bearer token: send Authorization: Bearer <token>', {
      hint: 'ferry up prints the first admin token and saves it for the CLI; an admin makes more with ferry token create (API: POST /v1/tokens).',
    });
  }
  const match = BEARER_RE.exec(header);
  const caller = match ? store.verifyToken(match[1] as string) : null;
  if (!caller) {
    throw new FerryError(
      'FERRY_UNAUTHORIZED',
      match
        ? 'The bearer token is unknown, expired or revoked'
        : 'The Authorization header is not "Bearer <token>"',
      {
        hint: 'Check the token; an admin lists tokens with ferry token list and makes new ones with ferry token create.',
      },
    );
  }
  const name = plainName(caller.name);
  const asked = request.headers[TENANT_HEADER];
  let tenant = caller.tenant;
  if (asked !== undefined) {
    if (typeof asked !== 'string' || !TENANT_RE.test(asked))
      throw new FerryError('FERRY_BAD_REQUEST', `The ${TENANT_HEADER} header is not a tenant name`, {
        hint: 'Use 1-63 lowercase letters, digits and "-".',
      });
    if (asked !== caller.tenant && caller.role !== 'platform-admin')
      throw new FerryError(
        'FERRY_FORBIDDEN',
        `Token ${JSON.stringify(name)} belongs to tenant ${JSON.stringify(caller.tenant)}; it cannot act in another`,
        { hint: 'Leave --tenant out, or use a token of that tenant.' },
      );
    tenant = asked;
  }
  setCaller(request, { id: caller.id, name, role: caller.role, home: caller.tenant, tenant });
  if (!ROLES_FOR[access].includes(caller.role)) {
    const what =
      access === 'platform'
        ? 'do this (tenants, quotas, the sealing key, verifying the audit chain: platform admins only)'
        : access === 'gateway'
          ? "read the gateways' route file (gateway tokens and platform admins only)"
          : access === 'metrics'
            ? 'read metrics or scrape targets (metrics tokens and platform admins only)'
            : access === 'admin'
              ? 'manage tokens or read the audit log'
              : access === 'write'
                ? 'change anything'
                : 'use the control plane';
    throw new FerryError(
      'FERRY_FORBIDDEN',
      `Token ${JSON.stringify(name)} has role ${JSON.stringify(caller.role)}, which may not ${what} (${request.method} ${request.url.split('?')[0]})`,
      {
        hint: `This needs a token with role ${ROLES_FOR[access].join(' or ')}.`,
      },
    );
  }
  if (tenant !== caller.tenant && !store.getTenant(tenant))
    throw new FerryError('FERRY_TENANT_NOT_FOUND', `No tenant named ${JSON.stringify(tenant)}`, {
      hint: 'ferry tenant list lists them; ferry tenant create makes one.',
    });
}

export interface FieldProblem {
  /** Field path, e.g. `traffic[0].percent`; empty for the whole body. */
  path: string;
  message: string;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Validates with a zod schema; failures are FERRY_BAD_REQUEST naming every field (details: FieldProblem[]). */
function parse(schema: z.ZodType, value: unknown, where: 'path' | 'query' | 'body'): unknown {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems: FieldProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ path: formatPath([...issue.path, key]), message: 'unknown field' });
      }
    } else {
      problems.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  const label = where === 'path' ? 'URL' : where === 'query' ? 'query string' : 'body';
  const text = problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`)).join('; ');
  const allowed = allowedFields(schema);
  return throwBad(
    `Invalid ${label}: ${text}`,
    problems,
    problems.some((p) => p.message === 'unknown field') && allowed
      ? `Allowed ${where === 'body' ? 'fields' : 'parameters'}: ${allowed}.`
      : `See GET /openapi.json for the ${label}'s schema.`,
  );
}

function allowedFields(schema: z.ZodType): string | undefined {
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  if (!shape) return undefined;
  const keys = Object.keys(shape);
  return keys.length === 0 ? 'none' : keys.join(', ');
}

function throwBad(message: string, details: FieldProblem[], hint: string): never {
  throw new FerryError('FERRY_BAD_REQUEST', message, { hint, details });
}

/** Maps Fastify's own errors (bad JSON, body too large, wrong content type) into the catalogue. */
export function toApiError(error: unknown, contentType?: string): FerryError {
  if (isFerryError(error)) return error;
  const fastify = error as Partial<FastifyError>;
  switch (fastify.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FerryError('FERRY_PAYLOAD_TOO_LARGE', `The request body is too large: ${fastify.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FerryError(
        'FERRY_UNSUPPORTED_MEDIA_TYPE',
        `Content-Type ${JSON.stringify(contentType ?? '')} is not supported; send application/json`,
        { hint: "With curl, add -H 'Content-Type: application/json'." },
      );
  }
  if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return new FerryError('FERRY_BAD_REQUEST', `Bad request: ${fastify.message ?? 'unreadable'}`, {
      hint: 'Send a JSON body with Content-Type: application/json.',
    });
  }
  // An error nobody shaped for a caller may carry internals (paths, SQL): the answer says only that it
  // happened; the log (setErrorHandler) has the error and its stack, under the same request id.
  return new FerryError('FERRY_INTERNAL', "Internal error; the control plane's log has the details", {
    cause: error,
    hint: 'Quote the x-request-id of this answer when reporting it.',
  });
}

function sendError(reply: FastifyReply, error: FerryError): void {
  errorCodes.set(reply.request, error.code);
  if (error.code === 'FERRY_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="ferry"');
  if (error.retryAfterSeconds !== undefined)
    reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  // Keys of the caller's own tenant read as the plain names it knows (tenant-scope.ts unscopeText).
  const tenant = callerOf(reply.request)?.tenant ?? DEFAULT_TENANT;
  const body: Record<string, unknown> = { error: unscopeText(error.message, tenant), code: error.code };
  if (error.hint) body.hint = unscopeText(error.hint, tenant);
  if (
    error.details !== undefined &&
    (error.code === 'FERRY_BAD_REQUEST' || error.code === 'FERRY_SPEC_INVALID')
  )
    body.details = error.details;
  reply.code(error.status).type(JSON_TYPE).send(body);
}
