/**
 * Who may call a private deployment, and how often (issue 10). The route table lists callers by the sha256 of
 * their token (src/core/route-table.ts `RouteCaller`); the gateway hashes what a request presents in
 * `Authorization: Bearer <token>` and looks the hash up. Nothing else carries a token: not the query string,
 * not another header. Per request on a private deployment: one regex, one sha256 (about 0.2 us with
 * crypto.hash), one Map lookup, and a token bucket when the caller has a limit.
 *
 * | request                                                    | answer                                  |
 * |------------------------------------------------------------|-----------------------------------------|
 * | deployment public                                          | passes; no token read, no limit         |
 * | no Authorization header                                    | 401 FERRY_UNAUTHORIZED                  |
 * | not `Bearer <token>`, or Authorization twice               | 401 FERRY_UNAUTHORIZED (invalid_token)  |
 * | token hash not in the table (unknown, revoked), or expired | 401 FERRY_UNAUTHORIZED (invalid_token)  |
 * | caller of another tenant, or a key of another deployment   | 403 FERRY_FORBIDDEN                     |
 * | caller allowed, bucket empty                               | 429 FERRY_RATE_LIMITED + Retry-After    |
 * | caller allowed                                             | passes                                  |
 *
 * Buckets belong to a caller id and outlive route tables: a new table (every replica or traffic change
 * brings one) neither refills nor resets them; a caller that leaves the table loses its bucket.
 */
import * as crypto from 'node:crypto';
import type { RouteCaller } from '../core/route-table.ts';
import { type Bucket, newBucket, type RateLimit, takeToken } from './rate-limit.ts';

/** The scheme is case-insensitive (RFC 9110 11.1); one token, nothing after it. As the control-plane API. */
const BEARER_RE = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export const WWW_AUTHENTICATE = 'Bearer realm="ferry"';
export const WWW_AUTHENTICATE_INVALID = 'Bearer realm="ferry", error="invalid_token"';

/** The token of an Authorization header value, or null when it is not `Bearer <token>`. */
export function bearerToken(header: string): string | null {
  const m = BEARER_RE.exec(header);
  return m === null ? null : m[1]!;
}

/** sha256 of the token's UTF-8 bytes, lowercase hex: what the table's `hash` holds. */
export const tokenHash: (token: string) => string =
  typeof crypto.hash === 'function'
    ? (token) => crypto.hash('sha256', token, 'hex')
    : (token) => crypto.createHash('sha256').update(token).digest('hex');

export interface CallerState {
  kind: 'caller';
  id: string;
  tenant: string;
  /** A per-deployment key's deployment (plain name); undefined for a tenant's invoker token. */
  deployment: string | undefined;
  limit: RateLimit | undefined;
  bucket: Bucket | undefined;
  /** ms since the epoch; from then on the token is unknown here (the control plane's next table drops it too). */
  expiresAt: number | undefined;
}

export type Denied =
  /** missing: no header; malformed: not a bearer token, or repeated; unknown: no caller has its hash. */
  | { kind: 'unauthorized'; why: 'missing' | 'malformed' | 'unknown' }
  | { kind: 'forbidden'; caller: CallerState };

/** The allowed caller itself (nothing allocated on the way through), or why not. */
export type AccessDecision = CallerState | Denied;

/** True when `caller` may call deployment `name` of `tenant`. */
export function mayCall(caller: CallerState, tenant: string, name: string): boolean {
  return caller.tenant === tenant && (caller.deployment === undefined || caller.deployment === name);
}

/** The callers of the current route table, by hash, with their rate-limit buckets. */
export class AccessTable {
  #byHash = new Map<string, CallerState>();
  /** By caller id; kept across tables. */
  readonly #buckets = new Map<string, Bucket>();

  /** Replaces the callers (already validated); a caller that stays keeps its bucket as it is. */
  set(callers: readonly RouteCaller[] | undefined, now: number): void {
    const next = new Map<string, CallerState>();
    const kept = new Set<string>();
    for (const c of callers ?? []) {
      let limit: RateLimit | undefined;
      let bucket: Bucket | undefined;
      if (c.rateLimit !== undefined) {
        limit = { ratePerSecond: c.rateLimit.perSecond, burst: c.rateLimit.burst };
        bucket = this.#buckets.get(c.id);
        if (bucket === undefined) {
          bucket = newBucket(limit, now);
          this.#buckets.set(c.id, bucket);
        } else if (bucket.tokens > limit.burst) bucket.tokens = limit.burst; // a lowered burst applies now
        kept.add(c.id);
      }
      next.set(c.hash, {
        kind: 'caller',
        id: c.id,
        tenant: c.tenant,
        deployment: c.deployment,
        limit,
        bucket,
        expiresAt: c.expiresAt,
      });
    }
    for (const id of this.#buckets.keys()) if (!kept.has(id)) this.#buckets.delete(id);
    this.#byHash = next;
  }

  /**
   * Whether the request's Authorization header (undefined: none; `repeated`: sent more than once) lets it call
   * deployment `name` of `tenant`.
   */
  check(
    authorization: string | undefined,
    repeated: boolean,
    tenant: string,
    name: string,
    now: number,
  ): AccessDecision {
    if (authorization === undefined) return MISSING;
    const token = repeated ? null : bearerToken(authorization);
    if (token === null) return MALFORMED;
    const caller = this.#byHash.get(tokenHash(token));
    if (caller === undefined || (caller.expiresAt !== undefined && caller.expiresAt <= now)) return UNKNOWN;
    return mayCall(caller, tenant, name) ? caller : { kind: 'forbidden', caller };
  }

  /** 0 when the caller may send this request now, else the seconds for Retry-After (>= 1). */
  take(caller: CallerState, now: number): number {
    return caller.bucket === undefined ? 0 : takeToken(caller.bucket, caller.limit!, now);
  }

  /** Callers with a bucket (tests: buckets are dropped with their caller). */
  get bucketCount(): number {
    return this.#buckets.size;
  }
}

const MISSING: Denied = { kind: 'unauthorized', why: 'missing' };
const MALFORMED: Denied = { kind: 'unauthorized', why: 'malformed' };
const UNKNOWN: Denied = { kind: 'unauthorized', why: 'unknown' };
