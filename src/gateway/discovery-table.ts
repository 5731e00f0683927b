/**
 * The route file of file + DNS discovery (issue 12: the gateway in a cluster, with no control plane and no cluster
 * API; discovery.ts reads and resolves it). Pure: parsing with problems that say where, the names to resolve, and
 * the route table for a set of resolved endpoints.
 *
 * The file's format (a route table whose revisions name a DNS service instead of listing replicas) and its types,
 * DiscoveryTable, DiscoveryRevision and DiscoveryService, are in src/core/route-table.ts, next to the route table:
 * the control plane writes such a file too (Swarm: GET /v1/gateway/routes) and does not import the gateway. They
 * are re-exported here.
 *
 * A replica's id is `<service key>/<address>:<port>`, stable across resolutions, so a replica that stays keeps
 * its outstanding count and ejection state, and one that vanishes drains out (the gateway keeps it until its
 * requests finish, and sends it no new one).
 */
import { isIP } from 'node:net';
import type { DiscoveryService, DiscoveryTable, RouteTable } from '../core/route-table.ts';
import { routeTableProblems } from './routes.ts';

export type { DiscoveryRevision, DiscoveryService, DiscoveryTable } from '../core/route-table.ts';

/** One address a service resolved to. */
export interface Endpoint {
  address: string;
  port: number;
}

/** The key a service is resolved and cached by: `host:port` or `srv:name`. */
export function serviceKey(service: DiscoveryService): string {
  return 'srv' in service ? `srv:${service.srv}` : `${service.host}:${service.port}`;
}

/** A DNS name as Kubernetes and Swarm give them: labels of letters, digits, '-' and '_' (SRV), dots between. */
const DNS_NAME =
  /^(?=.{1,253}\.?$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

function serviceProblems(value: unknown, at: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${at}: must be { "host": <DNS name>, "port": <1-65535> } or { "srv": <DNS name> }`];
  const s = value as Record<string, unknown>;
  const keys = Object.keys(s).sort().join(',');
  if (keys === 'srv')
    return typeof s.srv === 'string' && DNS_NAME.test(s.srv)
      ? []
      : [`${at}.srv: ${JSON.stringify(s.srv)} is not a DNS name`];
  if (keys !== 'host,port')
    return [`${at}: has ${keys || 'no fields'}; expected host and port, or srv alone`];
  const problems: string[] = [];
  if (typeof s.host !== 'string' || !(DNS_NAME.test(s.host) || isIP(s.host) !== 0))
    problems.push(`${at}.host: ${JSON.stringify(s.host)} is not a DNS name or an IP address`);
  if (!Number.isInteger(s.port) || (s.port as number) < 1 || (s.port as number) > 65535)
    problems.push(`${at}.port: ${JSON.stringify(s.port)} is not a port (1-65535)`);
  return problems;
}

/**
 * The file's table, or every problem with it, each naming where (`<source>: deployments[0].revisions[1].service.port:
 * ...`). The rest of the table is checked as the gateway checks any route table.
 */
export function parseDiscoveryFile(
  text: string,
  source: string,
): { table: DiscoveryTable } | { problems: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { problems: [`${source}: not JSON (${(e as Error).message})`] };
  }
  if (typeof json !== 'object' || json === null || !Array.isArray((json as DiscoveryTable).deployments))
    return { problems: [`${source}: must be an object with a deployments list`] };
  const table = json as DiscoveryTable;
  const problems: string[] = [];
  table.deployments.forEach((d, i) => {
    if (!Array.isArray(d?.revisions)) return; // routeTableProblems says so
    d.revisions.forEach((r, j) => {
      const at = `deployments[${i}].revisions[${j}]`;
      if (r !== null && typeof r === 'object' && 'replicas' in r)
        problems.push(
          `${at}.replicas: a route file names a service instead (the gateway finds the replicas)`,
        );
      problems.push(...serviceProblems(r?.service, `${at}.service`));
      if (r !== null && typeof r === 'object' && 'idle' in r && typeof r.idle !== 'boolean')
        problems.push(`${at}.idle: ${JSON.stringify(r.idle)} is not true or false`);
    });
  });
  if (problems.length === 0) problems.push(...routeTableProblems(resolvedTable(table, new Map())));
  return problems.length === 0 ? { table } : { problems: problems.map((p) => `${source}: ${p}`) };
}

/** The services a table names, once each, by serviceKey. */
export function servicesOf(table: DiscoveryTable): Map<string, DiscoveryService> {
  const out = new Map<string, DiscoveryService>();
  for (const d of table.deployments)
    for (const r of d.revisions) if (r.idle !== true) out.set(serviceKey(r.service), r.service);
  return out;
}

function replicaUrl(e: Endpoint): string {
  return `http://${isIP(e.address) === 6 ? `[${e.address}]` : e.address}:${e.port}`;
}

/** The route table with each revision's replicas at the endpoints its service resolved to (none when unknown). */
export function resolvedTable(
  table: DiscoveryTable,
  endpoints: ReadonlyMap<string, readonly Endpoint[]>,
): RouteTable {
  return {
    deployments: table.deployments.map((d) => ({
      ...d,
      revisions: d.revisions.map(({ service, idle, ...r }) => {
        const key = serviceKey(service);
        const found = [...(idle === true ? [] : (endpoints.get(key) ?? []))].sort((a, b) =>
          a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1,
        );
        return {
          ...r,
          replicas: found.map((e) => ({
            id: `${key}/${e.address}:${e.port}`,
            url: replicaUrl(e),
            ready: true,
          })),
        };
      }),
    })),
    ...(table.callers === undefined ? {} : { callers: table.callers }),
  };
}
