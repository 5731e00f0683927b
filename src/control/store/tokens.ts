/**
 * API tokens in the store: shown once, kept as their sha256, compared in constant time, scoped to a tenant and
 * a role, with an optional expiry; deleting one revokes it. Invoker tokens (role `invoker`) are for the data
 * plane: the gateway gets their hashes (`invokerKeys`), never the tokens; one made for a single deployment is
 * that deployment's key.
 *
 * A token looks like `ferry_<16 hex id>_<43 base64url>`; the id finds the row, the hash decides.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { FerryError } from '../../core/errors.ts';
import { qualify, splitKey } from '../../core/tenant.ts';

/** viewer: reads; deployer: reads and changes; admin: also tokens and secrets of its tenant; platform-admin:
 * every tenant, and tenants themselves; invoker: the data plane only (the gateway), no control-plane access;
 * gateway: a gateway's own token (Swarm), which reads the route file of every tenant (GET /v1/gateway/routes)
 * and nothing else; only a platform admin makes one, in the default tenant; metrics: Prometheus's token, which reads
 * the control plane's metrics, the scrape targets and every replica's metrics (every tenant's), and nothing else;
 * only a platform admin makes one, in the default tenant. */
export const ROLES = [
  'viewer',
  'deployer',
  'admin',
  'platform-admin',
  'invoker',
  'gateway',
  'metrics',
] as const;
export type Role = (typeof ROLES)[number];

export interface RateLimit {
  /** Sustained requests per second. */
  perSecond: number;
  /** Requests allowed at once after a quiet spell. */
  burst: number;
}

export interface TokenOptions {
  /** ms since the epoch; null or left out: never. */
  expiresAt?: number | null;
  /** invoker only: the plain name of the one deployment (in the token's tenant) it may call. */
  deployment?: string | null;
  /** invoker only: the gateway's token bucket for requests made with it. */
  rateLimit?: RateLimit | null;
}

export interface TokenRecord {
  id: string;
  /** The token's key (its plain name in the default tenant, tenant/name elsewhere). */
  name: string;
  tenant: string;
  role: string;
  createdAt: number;
  expiresAt: number | null;
  deployment: string | null;
  rateLimit: RateLimit | null;
}

export interface CreatedToken extends TokenRecord {
  /** The plain token. Shown once; only its hash is stored. */
  token: string;
}

/** Who a valid token belongs to. */
export interface VerifiedToken {
  id: string;
  /** The token's key. */
  name: string;
  tenant: string;
  role: string;
  deployment: string | null;
}

/** An invoker token as the gateway needs it: its hash (hex), scope and limit; never the token. */
export interface InvokerKey {
  id: string;
  hash: string;
  tenant: string;
  deployment: string | null;
  rateLimit: RateLimit | null;
  expiresAt: number | null;
}

interface TokenRow {
  id: string;
  name: string;
  tenant: string;
  role: string;
  hash: Buffer;
  created_at: number;
  expires_at: number | null;
  deployment: string | null;
  rate_limit: string | null;
}

const TOKEN_RE = /^ferry_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();
// Compared against when a token is malformed or unknown, so that path costs the same as a real compare.
const DUMMY_HASH = sha256('ferry-no-such-token');

function badRequest(message: string, hint?: string): FerryError {
  return new FerryError('FERRY_BAD_REQUEST', message, hint === undefined ? {} : { hint });
}

const toRecord = (r: TokenRow): TokenRecord => ({
  id: r.id,
  name: r.name,
  tenant: r.tenant,
  role: r.role,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  deployment: r.deployment,
  rateLimit: r.rate_limit === null ? null : (JSON.parse(r.rate_limit) as RateLimit),
});

function checkOptions(role: string, o: TokenOptions): void {
  if (o.expiresAt != null && !Number.isSafeInteger(o.expiresAt))
    throw badRequest(`expiresAt ${JSON.stringify(o.expiresAt)} is not a time in ms`);
  if (role !== 'invoker' && (o.deployment != null || o.rateLimit != null))
    throw badRequest(
      `A ${role} token cannot have a deployment or a rate limit: those scope invoker (data-plane) tokens`,
      'Make an invoker token for calling models.',
    );
  const r = o.rateLimit;
  if (
    r != null &&
    !(Number.isFinite(r.perSecond) && r.perSecond > 0 && Number.isInteger(r.burst) && r.burst >= 1)
  )
    throw badRequest(
      `rateLimit ${JSON.stringify(r)} is not allowed`,
      'perSecond must be a positive number and burst an integer >= 1.',
    );
}

export function tokenTable(
  db: Database.Database,
  now: () => number,
  checkKey: (what: string, key: string) => string,
) {
  const q = {
    insert: db.prepare(
      `INSERT INTO api_tokens (id, name, tenant, role, hash, created_at, expires_at, deployment, rate_limit)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    byId: db.prepare<[string], TokenRow>('SELECT * FROM api_tokens WHERE id = ?'),
    byName: db.prepare<[string], { id: string }>('SELECT id FROM api_tokens WHERE name = ?'),
    all: db.prepare<[], TokenRow>('SELECT * FROM api_tokens ORDER BY name'),
    ofTenant: db.prepare<[string], TokenRow>('SELECT * FROM api_tokens WHERE tenant = ? ORDER BY name'),
    invokers: db.prepare<[], TokenRow>("SELECT * FROM api_tokens WHERE role = 'invoker' ORDER BY id"),
    remove: db.prepare('DELETE FROM api_tokens WHERE name = ?'),
    removeKeys: db.prepare('DELETE FROM api_tokens WHERE tenant = ? AND deployment = ?'),
  };

  /** `key` names the token and its tenant (src/core/tenant.ts). */
  function createToken(key: string, role: string, options: TokenOptions = {}): CreatedToken {
    checkKey('Token name', key);
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role))
      throw badRequest(`Token role ${JSON.stringify(role)} is not valid`, `Use one of: ${ROLES.join(', ')}.`);
    checkOptions(role, options);
    const { tenant } = splitKey(key);
    if (options.deployment != null) checkKey('deployment', qualify(tenant, options.deployment));
    if (q.byName.get(key))
      throw new FerryError(
        'FERRY_CONFLICT',
        `A token named ${JSON.stringify(splitKey(key).name)} already exists`,
        {
          hint: 'Delete it first (ferry token delete) or pick another name.',
        },
      );
    const id = randomBytes(8).toString('hex');
    const token = `ferry_${id}_${randomBytes(32).toString('base64url')}`;
    const createdAt = now();
    const expiresAt = options.expiresAt ?? null;
    const deployment = options.deployment ?? null;
    const rateLimit = options.rateLimit ?? null;
    q.insert.run(
      id,
      key,
      tenant,
      role,
      sha256(token),
      createdAt,
      expiresAt,
      deployment,
      rateLimit === null ? null : JSON.stringify(rateLimit),
    );
    return { id, name: key, tenant, role, createdAt, expiresAt, deployment, rateLimit, token };
  }

  /** The token's owner, or null when it is malformed, unknown, revoked or expired (all in about the same time). */
  function verifyToken(plain: string): VerifiedToken | null {
    const match = typeof plain === 'string' ? TOKEN_RE.exec(plain) : null;
    const row = match ? q.byId.get(match[1] as string) : undefined;
    const given = sha256(typeof plain === 'string' ? plain : '');
    const expected = row && row.hash.length === given.length ? row.hash : DUMMY_HASH;
    const equal = timingSafeEqual(given, expected);
    if (!row || !equal) return null;
    if (row.expires_at !== null && row.expires_at <= now()) return null;
    return { id: row.id, name: row.name, tenant: row.tenant, role: row.role, deployment: row.deployment };
  }

  return {
    createToken,
    verifyToken,
    /** Every token, or those of one tenant. */
    listTokens: (tenant?: string): TokenRecord[] =>
      (tenant === undefined ? q.all.all() : q.ofTenant.all(tenant)).map(toRecord),
    /** Revokes the token with this key; false when there is none. */
    deleteToken: (key: string): boolean => q.remove.run(key).changes > 0,
    /** Revokes the keys made for one deployment (by its key), when it is deleted. */
    deleteDeploymentKeys: (deploymentKey: string): number => {
      const { tenant, name } = splitKey(deploymentKey);
      return q.removeKeys.run(tenant, name).changes;
    },
    /** Invoker tokens that have not expired, as the gateway's route table carries them. */
    invokerKeys: (): InvokerKey[] => {
      const at = now();
      return q.invokers
        .all()
        .filter((r) => r.expires_at === null || r.expires_at > at)
        .map((r) => ({
          id: r.id,
          hash: r.hash.toString('hex'),
          tenant: r.tenant,
          deployment: r.deployment,
          rateLimit: r.rate_limit === null ? null : (JSON.parse(r.rate_limit) as RateLimit),
          expiresAt: r.expires_at,
        }));
    },
  };
}
