/**
 * What the API writes to the audit log (issue 10), and when: app.ts calls `record` from one onResponse hook,
 * so every answered request passes here, whichever route, handler or error produced the answer. Recorded:
 *  - every request to a route that changes something (POST, PUT, PATCH, DELETE), whatever its outcome;
 *  - every denied request (401, 403) on any route, reads included.
 * Not recorded: successful and failed reads, and requests to no route at all (404 FERRY_ROUTE_NOT_FOUND).
 *
 * A record holds names only: the token's *name* as actor, the route's operationId as action, the path with
 * its parameters as object (plus, for a POST that creates something, the `name` or `version` of its body
 * when the body was read: a request refused before, e.g. denied, has none),
 * never a body value, a header or a token. Anything in the object that looks like a Ferry token is cut to
 * its public id all the same.
 *
 * When a record cannot be written, the request it describes has been answered already (onResponse). The
 * record is kept in memory and the failure logged at error level with the record; from then on, every
 * request that would change something is refused with 503 FERRY_AUDIT_UNAVAILABLE (and kept too) until the
 * kept records can be written, which is tried first on each such request. Reads still work. So at most one
 * change per failure goes unrecorded in the database, and it is in the log and in memory.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { FerryError } from '../../core/errors.ts';
import { DEFAULT_TENANT } from '../../core/tenant.ts';
import type { AuditOutcome, AuditRecord } from '../audit-chain.ts';
import type { AuditLog } from '../store/audit-log.ts';

/** Records waiting to be written are kept up to this many; past it the oldest are dropped (and logged). */
export const MAX_PENDING_AUDIT = 1000;

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const MAX_OBJECT = 512;
/** A Ferry token (store.ts): its public id is kept, the secret part never. */
const TOKEN_LIKE = /ferry_([0-9a-f]{16})_[A-Za-z0-9_-]+/g;
/** Identifiers taken from a creating POST's body: names and versions, never other fields. */
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface RouteFacts {
  /** The route's operationId; undefined: no route matched. */
  operationId: string | undefined;
  /** The route's URL template, e.g. /v1/deployments/:name. */
  url: string | undefined;
}

export interface AuditInput {
  request: FastifyRequest;
  route: RouteFacts;
  status: number;
  code: string | undefined;
  caller: { name: string; role: string; tenant: string } | undefined;
}

export function isMutating(method: string): boolean {
  return MUTATING.has(method);
}

/** Whether this answered request gets an audit record. */
export function audited(method: string, route: RouteFacts, status: number): boolean {
  if (status === 401 || status === 403) return true;
  return route.operationId !== undefined && isMutating(method);
}

export function outcomeOf(status: number): AuditOutcome {
  if (status === 401 || status === 403) return 'denied';
  return status >= 400 ? 'failed' : 'allowed';
}

const cutTokens = (text: string) => text.replace(TOKEN_LIKE, 'ferry_$1_[redacted]');

/** `deployments/iris/rollout/promote` from the template and the path parameters; names only. */
export function objectOf(request: FastifyRequest, route: RouteFacts): string {
  const params = (request.params ?? {}) as Record<string, unknown>;
  const template = route.url ?? request.url.split('?')[0] ?? '';
  let object = template
    .replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => String(params[name] ?? ''))
    .replace(/^\/(v1\/)?/, '');
  if (request.method === 'POST' && route.url && !/:[A-Za-z0-9_]+$/.test(route.url)) {
    const body = request.body as Record<string, unknown> | undefined;
    if (body && typeof body === 'object' && !Array.isArray(body)) {
      for (const key of ['name', 'version']) {
        const value = body[key];
        if (typeof value === 'string' && IDENTIFIER.test(value)) object += `/${value}`;
      }
    }
  }
  object = cutTokens(object);
  return object.length > MAX_OBJECT ? `${object.slice(0, MAX_OBJECT)}...` : object;
}

export function auditRecord(input: AuditInput, at: Date): AuditRecord {
  const { request, route, status, code, caller } = input;
  const record: AuditRecord = {
    at: at.toISOString(),
    actor: caller?.name ?? 'anonymous',
    tenant: caller?.tenant ?? DEFAULT_TENANT,
    action: route.operationId ?? `${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}`,
    object: objectOf(request, route),
    outcome: outcomeOf(status),
    status,
    source: request.ip,
    requestId: String(request.id),
  };
  if (caller) record.role = caller.role;
  if (code !== undefined) record.code = code;
  return record;
}

export interface AuditRecorder {
  /** Writes the record of an answered request (if it gets one); never throws. */
  record(input: AuditInput): void;
  /** Before a request that would change something: throws FERRY_AUDIT_UNAVAILABLE while records wait. */
  gate(request: FastifyRequest): void;
  /** Records not written yet. */
  readonly pending: number;
}

/** Where a failure to write is reported: the API's logger, else stderr (never nowhere). */
type Report = (fields: Record<string, unknown>, message: string) => void;

function reporter(logger: FastifyBaseLogger | undefined): Report {
  if (logger) return (fields, message) => logger.error(fields, message);
  return (fields, message) => {
    const { err, ...rest } = fields;
    const error = err instanceof Error ? { err: err.message } : {};
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: message, ...rest, ...error })}\n`);
  };
}

export function auditRecorder(log: AuditLog, logger: FastifyBaseLogger | undefined): AuditRecorder {
  const report = reporter(logger);
  const waiting: AuditRecord[] = [];
  let dropped = 0;

  /** Writes the waiting records, oldest first; false when one fails (it stays first in line). */
  function flush(): boolean {
    while (waiting.length > 0) {
      try {
        log.append(waiting[0]!);
      } catch (error) {
        report(
          { err: error, waiting: waiting.length, dropped },
          'the audit log cannot be written: changes are refused until it can',
        );
        return false;
      }
      waiting.shift();
    }
    if (dropped > 0) {
      report({ dropped }, `${dropped} audit records were dropped while the audit log could not be written`);
      dropped = 0;
    }
    return true;
  }

  return {
    get pending() {
      return waiting.length;
    },
    record(input) {
      const { request, route, status } = input;
      if (!audited(request.method, route, status)) return;
      const record = auditRecord(input, new Date());
      if (waiting.length >= MAX_PENDING_AUDIT) {
        const lost = waiting.shift();
        dropped++;
        report({ audit: lost }, 'audit record dropped: too many wait to be written');
      }
      waiting.push(record);
      if (!flush()) report({ audit: record }, 'audit record not written yet (kept in memory)');
    },
    gate(request) {
      if (waiting.length === 0 || !isMutating(request.method)) return;
      if (flush()) return;
      throw new FerryError(
        'FERRY_AUDIT_UNAVAILABLE',
        `The audit log cannot be written (${waiting.length} records wait): changes are refused until it can`,
        {
          hint: "The control plane's log says why (disk full, state directory not writable, ...); reads still work.",
          retryAfterSeconds: 5,
        },
      );
    },
  };
}
