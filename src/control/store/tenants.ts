/**
 * Tenants in the store: a name and its quotas. The default tenant always exists (migration 5) and has no
 * quotas unless a platform admin sets some. A tenant is deleted only when nothing belongs to it any more.
 */
import type Database from 'better-sqlite3';
import { FerryError } from '../../core/errors.ts';
import { DEFAULT_TENANT, KEY_SEPARATOR } from '../../core/tenant.ts';

/** Limits on what a tenant's deployments may ask for together; a limit left out is not enforced. */
export interface Quotas {
  deployments?: number;
  /** Desired replicas over all deployments. */
  replicas?: number;
  /** CPU cores over all replicas (each replica counts its CPU limit). */
  cpu?: number;
  /** Memory over all replicas, bytes. */
  memoryBytes?: number;
}

export const QUOTA_NAMES = ['deployments', 'replicas', 'cpu', 'memoryBytes'] as const;

export interface TenantRecord {
  name: string;
  quotas: Quotas;
  createdAt: number;
}

function badRequest(message: string, hint?: string): FerryError {
  return new FerryError('FERRY_BAD_REQUEST', message, hint === undefined ? {} : { hint });
}

export function checkQuotas(value: unknown): Quotas {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badRequest('quotas must be an object');
  const out: Quotas = {};
  for (const [k, v] of Object.entries(value)) {
    if (!(QUOTA_NAMES as readonly string[]).includes(k))
      throw badRequest(`quotas.${k} is not a quota`, `Quotas: ${QUOTA_NAMES.join(', ')}.`);
    if (v === undefined || v === null) continue;
    const whole = k !== 'cpu';
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (whole && !Number.isSafeInteger(v)))
      throw badRequest(
        `quotas.${k} ${JSON.stringify(v)} is not allowed`,
        whole ? 'Use a whole number >= 0.' : 'Use a number of cores >= 0.',
      );
    out[k as keyof Quotas] = v;
  }
  return out;
}

export function tenantTable(
  db: Database.Database,
  now: () => number,
  checkName: (what: string, v: unknown) => string,
) {
  const q = {
    one: db.prepare<[string], { name: string; quotas: string; created_at: number }>(
      'SELECT * FROM tenants WHERE name = ?',
    ),
    all: db.prepare<[], { name: string; quotas: string; created_at: number }>(
      'SELECT * FROM tenants ORDER BY name',
    ),
    insert: db.prepare('INSERT INTO tenants (name, quotas, created_at) VALUES (?, ?, ?)'),
    setQuotas: db.prepare('UPDATE tenants SET quotas = ? WHERE name = ?'),
    remove: db.prepare('DELETE FROM tenants WHERE name = ?'),
    owned: db.prepare<[string, string, string, string], { n: number }>(
      `SELECT (SELECT COUNT(*) FROM models WHERE name LIKE ? ESCAPE '\\')
            + (SELECT COUNT(*) FROM deployments WHERE name LIKE ? ESCAPE '\\')
            + (SELECT COUNT(*) FROM secrets WHERE name LIKE ? ESCAPE '\\')
            + (SELECT COUNT(*) FROM api_tokens WHERE tenant = ?) AS n`,
    ),
  };
  const toRecord = (r: { name: string; quotas: string; created_at: number }): TenantRecord => ({
    name: r.name,
    quotas: JSON.parse(r.quotas) as Quotas,
    createdAt: r.created_at,
  });
  const notFound = (name: string) =>
    new FerryError('FERRY_TENANT_NOT_FOUND', `No tenant named ${JSON.stringify(name)}`, {
      hint: 'A platform admin lists them with ferry tenant list and makes one with ferry tenant create.',
    });

  return {
    getTenant: (name: string): TenantRecord | undefined => {
      const row = q.one.get(name);
      return row ? toRecord(row) : undefined;
    },
    listTenants: (): TenantRecord[] => q.all.all().map(toRecord),
    createTenant: (name: string, quotas: Quotas = {}): TenantRecord => {
      checkName('Tenant name', name);
      const checked = checkQuotas(quotas);
      if (q.one.get(name))
        throw new FerryError('FERRY_CONFLICT', `A tenant named ${JSON.stringify(name)} already exists`);
      q.insert.run(name, JSON.stringify(checked), now());
      return toRecord(q.one.get(name)!);
    },
    setQuotas: (name: string, quotas: Quotas): TenantRecord => {
      const checked = checkQuotas(quotas);
      if (q.setQuotas.run(JSON.stringify(checked), name).changes === 0) throw notFound(name);
      return toRecord(q.one.get(name)!);
    },
    /** Refused while models, deployments, secrets or tokens still belong to it; the default tenant stays. */
    deleteTenant: (name: string): void => {
      if (!q.one.get(name)) throw notFound(name);
      if (name === DEFAULT_TENANT)
        throw new FerryError('FERRY_CONFLICT', 'The default tenant cannot be deleted');
      const prefix = `${name.replace(/[\\%_]/g, (c) => `\\${c}`)}${KEY_SEPARATOR}%`;
      const { n } = q.owned.get(prefix, prefix, prefix, name)!;
      if (n > 0)
        throw new FerryError(
          'FERRY_CONFLICT',
          `Tenant ${JSON.stringify(name)} still owns ${n} object(s) (models, deployments, secrets, tokens)`,
          { hint: 'Delete them first: a tenant is removed only when it is empty.' },
        );
      q.remove.run(name);
    },
  };
}
