/**
 * The route table the control plane hands the gateway (`setRoutes`), and its light validation.
 * The control plane produces this shape whenever replicas or traffic change; the gateway never
 * edits it, it compiles it into its own per-request structures (see state.ts).
 */
import { FerryError } from '../core/errors.ts';
import { socketPathOf } from '../core/replica.ts';

import type { RouteCaller, RouteTable } from '../core/route-table.ts';
import { DEFAULT_TENANT, qualify } from '../core/tenant.ts';
import { rateLimitProblems } from './rate-limit.ts';

export type {
  RouteCaller,
  RouteDeployment,
  RouteReplica,
  RouteRevision,
  RouteTable,
} from '../core/route-table.ts';

const SUM_TOLERANCE = 1e-6;

function isShare(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 100;
}

/**
 * Every problem with a route table, each naming where (`deployments[i].revisions[j]...`) and what
 * is allowed. Light on purpose: the control plane built the table; this catches wiring bugs
 * (duplicate names, shares out of range, a replica URL that is neither http://host:port nor
 * unix:<absolute socket path>).
 */
export function routeTableProblems(table: RouteTable): string[] {
  const problems: string[] = [];
  if (table === null || typeof table !== 'object' || !Array.isArray(table.deployments))
    return ['routes: expected { deployments: [...] }'];
  const names = new Set<string>();
  const replicaIds = new Set<string>();
  table.deployments.forEach((d, i) => {
    const at = `deployments[${i}]`;
    if (typeof d?.name !== 'string' || d.name === '' || d.name.includes('/')) {
      problems.push(`${at}.name: must be a non-empty name without '/'`);
      return;
    }
    if (d.tenant !== undefined && !isPlainName(d.tenant))
      problems.push(`${at}.tenant: must be left out or a non-empty name without '/'`);
    if (d.public !== undefined && typeof d.public !== 'boolean')
      problems.push(`${at}.public: must be left out, true or false`);
    // Names are unique per tenant: the same name in two tenants is two deployments.
    const key = qualify(typeof d.tenant === 'string' ? d.tenant : DEFAULT_TENANT, d.name);
    if (names.has(key))
      problems.push(`${at}.name: '${d.name}' appears twice in tenant '${d.tenant ?? DEFAULT_TENANT}'`);
    names.add(key);
    if (d.activator !== undefined) activatorProblems(d.activator, `${at}.activator`, problems);
    if (!Array.isArray(d.revisions)) {
      problems.push(`${at}.revisions: must be a list`);
      return;
    }
    const revisions = new Set<number>();
    let sum = 0;
    d.revisions.forEach((r, j) => {
      const rat = `${at}.revisions[${j}]`;
      if (!Number.isInteger(r?.revision) || r.revision < 0)
        problems.push(`${rat}.revision: must be a non-negative integer`);
      else if (revisions.has(r.revision)) problems.push(`${rat}.revision: ${r.revision} appears twice`);
      else revisions.add(r.revision);
      if (!isShare(r?.percent)) problems.push(`${rat}.percent: must be a number from 0 to 100`);
      else sum += r.percent;
      if (!isShare(r?.shadow)) problems.push(`${rat}.shadow: must be a number from 0 to 100`);
      if (typeof r?.servedName !== 'string' || r.servedName === '')
        problems.push(`${rat}.servedName: must be a non-empty model name`);
      if (r?.starting !== undefined && !(Number.isInteger(r.starting) && r.starting >= 0))
        problems.push(`${rat}.starting: ${String(r.starting)} is not a whole number of replicas, 0 or more`);
      if (r?.unavailable !== undefined && (typeof r.unavailable !== 'string' || r.unavailable === ''))
        problems.push(`${rat}.unavailable: must be left out or a non-empty text`);
      if (r?.replicaLimit !== undefined && !(Number.isInteger(r.replicaLimit) && r.replicaLimit >= 1))
        problems.push(
          `${rat}.replicaLimit: ${String(r.replicaLimit)} is not a whole number of requests, 1 or more`,
        );
      if (!Array.isArray(r?.replicas)) {
        problems.push(`${rat}.replicas: must be a list`);
        return;
      }
      r.replicas.forEach((p, k) => {
        const pat = `${rat}.replicas[${k}]`;
        if (typeof p?.id !== 'string' || p.id === '') problems.push(`${pat}.id: must be a non-empty string`);
        else if (replicaIds.has(p.id)) problems.push(`${pat}.id: '${p.id}' appears twice in the table`);
        else replicaIds.add(p.id);
        if (typeof p?.ready !== 'boolean') problems.push(`${pat}.ready: must be true or false`);
        if (parseReplicaUrl(p?.url) === null)
          problems.push(
            `${pat}.url: '${String(p?.url)}' is neither http://<host>:<port> nor unix:<absolute socket path> (at most 107 bytes, no '.' or '..')`,
          );
      });
    });
    if (sum !== 0 && Math.abs(sum - 100) > SUM_TOLERANCE)
      problems.push(
        `${at}: serving percents sum to ${Number(sum.toFixed(6))}; they must sum to 100 (or all be 0)`,
      );
  });
  callerProblems(table.callers, problems);
  return problems;
}

/** The longest a held request may wait for a replica (a cold start that takes longer is not one to wait for). */
export const MAX_ACTIVATOR_WAIT_MS = 3_600_000;

function activatorProblems(a: unknown, at: string, problems: string[]): void {
  if (a === null || typeof a !== 'object') {
    problems.push(`${at}: must be left out or { maxHeld, maxWaitMs, replicaCapacity? }`);
    return;
  }
  const { maxHeld, maxWaitMs, replicaCapacity } = a as {
    maxHeld?: unknown;
    maxWaitMs?: unknown;
    replicaCapacity?: unknown;
  };
  if (
    replicaCapacity !== undefined &&
    !(Number.isInteger(replicaCapacity) && (replicaCapacity as number) >= 1)
  )
    problems.push(
      `${at}.replicaCapacity: ${String(replicaCapacity)} is not a whole number of requests, 1 or more`,
    );
  if (!Number.isInteger(maxHeld) || (maxHeld as number) < 1)
    problems.push(`${at}.maxHeld: ${String(maxHeld)} is not a whole number of requests, 1 or more`);
  if (
    typeof maxWaitMs !== 'number' ||
    !Number.isFinite(maxWaitMs) ||
    maxWaitMs <= 0 ||
    maxWaitMs > MAX_ACTIVATOR_WAIT_MS
  )
    problems.push(
      `${at}.maxWaitMs: ${String(maxWaitMs)} is not a time in ms above 0 and at most ${MAX_ACTIVATOR_WAIT_MS}`,
    );
}

function isPlainName(x: unknown): x is string {
  return typeof x === 'string' && x !== '' && !x.includes('/');
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The callers' problems (never quoting a hash: it stands for a secret). */
function callerProblems(callers: RouteCaller[] | undefined, problems: string[]): void {
  if (callers === undefined) return;
  if (!Array.isArray(callers)) {
    problems.push('callers: must be left out or a list');
    return;
  }
  const ids = new Set<string>();
  const hashes = new Set<string>();
  callers.forEach((c, i) => {
    const at = `callers[${i}]`;
    if (typeof c?.id !== 'string' || c.id === '') problems.push(`${at}.id: must be a non-empty string`);
    else if (ids.has(c.id)) problems.push(`${at}.id: '${c.id}' appears twice`);
    else ids.add(c.id);
    if (typeof c?.hash !== 'string' || !SHA256_HEX.test(c.hash))
      problems.push(`${at}.hash: must be a sha256 in 64 lowercase hex digits`);
    else if (hashes.has(c.hash)) problems.push(`${at}.hash: the same hash as an earlier caller`);
    else hashes.add(c.hash);
    if (!isPlainName(c?.tenant)) problems.push(`${at}.tenant: must be a non-empty name without '/'`);
    if (c?.deployment !== undefined && !isPlainName(c.deployment))
      problems.push(`${at}.deployment: must be left out or a non-empty name without '/'`);
    if (c?.expiresAt !== undefined && !Number.isFinite(c.expiresAt))
      problems.push(`${at}.expiresAt: must be left out or a time in ms`);
    const limit = c?.rateLimit;
    if (limit !== undefined) {
      if (limit === null || typeof limit !== 'object')
        problems.push(`${at}.rateLimit: must be left out or { perSecond, burst }`);
      else
        for (const p of rateLimitProblems({ ratePerSecond: limit.perSecond, burst: limit.burst }))
          problems.push(`${at}.rateLimit: ${p.replace('ratePerSecond', 'perSecond')}`);
    }
  });
}

/** Throws FERRY_BAD_REQUEST listing every problem when the table is unusable. */
export function assertRouteTable(table: RouteTable): void {
  const problems = routeTableProblems(table);
  if (problems.length > 0)
    throw new FerryError('FERRY_BAD_REQUEST', `invalid route table: ${problems.join('; ')}`, {
      details: problems,
    });
}

/**
 * Where a replica listens: host and port of an http:// URL (a path in it is ignored), or the socket path of a
 * `unix:<path>` URL (then host is that path and port 0: the upstream client connects to a path when host
 * starts with '/'). null when it is neither.
 */
export function parseReplicaUrl(url: unknown): { host: string; port: number; socketPath?: string } | null {
  if (typeof url !== 'string') return null;
  const socketPath = socketPathOf(url);
  if (socketPath !== null) return { host: socketPath, port: 0, socketPath };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' || u.hostname === '') return null;
  const port = u.port === '' ? 80 : Number(u.port);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port };
}
