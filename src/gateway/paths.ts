/**
 * Which request paths the gateway knows, as a pure function of the URL. Model paths carry a
 * deployment name that the proxy replaces by the chosen revision's served model name:
 *
 * | path (query string kept)                                  | result                        |
 * |-----------------------------------------------------------|-------------------------------|
 * | /v2/health/live, /v2/health/ready, /v2, /metrics          | answered by the gateway       |
 * | /v2/models/{name}[/versions/{v}][/infer or /ready]        | routed by deployment {name}   |
 * | /v1/models/{name} and /v1/models/{name}:predict           | routed by deployment {name}   |
 * | /t/{tenant}/ + any model path above without its leading / | the same, in tenant {tenant}  |
 * | /t/{tenant}/v2, /t/{tenant}/v2/health/live and /ready     | answered by the gateway       |
 * | anything else                                             | 404 FERRY_ROUTE_NOT_FOUND     |
 *
 * Tenants (src/core/tenant.ts): an unprefixed model path addresses the default tenant, or the tenant
 * its Host names when the gateway has a `tenantHostSuffix` (`tenantFromHost`); `/t/{tenant}/...`
 * addresses {tenant}, so a plain curl or an OIP client given the base URL `http://gw/t/acme` works,
 * and the OIP paths inside the prefix stay standard. The health and server-metadata routes under a
 * prefix are the gateway's own, the same for every tenant (an OIP client checks them before it
 * calls a model); they say nothing about the tenant, not even whether it exists. /metrics is not
 * served under a prefix. A name or tenant that decodes to something containing '/' (`%2F`) never
 * matches: it could otherwise spell another tenant's key.
 */

export type LocalRoute = 'live' | 'ready' | 'server' | 'metrics';

export type ParsedPath =
  | { kind: 'local'; route: LocalRoute }
  /** Upstream path = `${before}${encodeURIComponent(servedName)}${after}` (after includes the query). */
  | {
      kind: 'model';
      /** From a `/t/{tenant}` prefix; null when the path has none (default tenant, or the Host's). */
      tenant: string | null;
      deployment: string;
      before: string;
      after: string;
    }
  | { kind: 'unknown' };

const LOCAL = new Map<string, LocalRoute>([
  ['/v2/health/live', 'live'],
  ['/v2/health/ready', 'ready'],
  ['/v2', 'server'],
  ['/v2/', 'server'],
  ['/metrics', 'metrics'],
]);

const UNKNOWN: ParsedPath = { kind: 'unknown' };
const V2 = '/v2/models/';
const V1 = '/v1/models/';

const TENANT_PREFIX = '/t/';

/** A decoded path segment; null when it does not decode or decodes to something with '/' (another key). */
function decode(segment: string): string | null {
  if (!segment.includes('%')) return segment;
  let out: string;
  try {
    out = decodeURIComponent(segment);
  } catch {
    return null;
  }
  return out.includes('/') ? null : out;
}

/** True for '', '/infer', '/ready' (a model path's ending). */
function isAction(s: string): boolean {
  return s === '' || s === '/infer' || s === '/ready';
}

export function parsePath(url: string): ParsedPath {
  if (url.startsWith(TENANT_PREFIX)) return tenantPath(url);
  return modelOrLocal(url, null, true);
}

/** `/t/{tenant}/rest`: rest parsed as an unprefixed path, in {tenant}. */
function tenantPath(url: string): ParsedPath {
  const slash = url.indexOf('/', TENANT_PREFIX.length);
  if (slash === -1) return UNKNOWN;
  const raw = url.slice(TENANT_PREFIX.length, slash);
  if (raw === '' || raw.includes('?')) return UNKNOWN;
  const tenant = decode(raw);
  if (tenant === null || tenant === '') return UNKNOWN;
  return modelOrLocal(url.slice(slash), tenant, false);
}

function modelOrLocal(url: string, tenant: string | null, metrics: boolean): ParsedPath {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (path.startsWith(V2)) {
    const slash = path.indexOf('/', V2.length);
    const raw = slash === -1 ? path.slice(V2.length) : path.slice(V2.length, slash);
    const rest = slash === -1 ? '' : path.slice(slash);
    if (raw === '') return UNKNOWN;
    if (!isAction(rest)) {
      // /versions/{v}[/infer|/ready]
      if (!rest.startsWith('/versions/')) return UNKNOWN;
      const vEnd = rest.indexOf('/', 10);
      const version = vEnd === -1 ? rest.slice(10) : rest.slice(10, vEnd);
      if (version === '' || !isAction(vEnd === -1 ? '' : rest.slice(vEnd))) return UNKNOWN;
    }
    const deployment = decode(raw);
    if (deployment === null || deployment === '') return UNKNOWN;
    return { kind: 'model', tenant, deployment, before: V2, after: rest + query };
  }
  if (path.startsWith(V1)) {
    const target = path.slice(V1.length);
    if (target === '' || target.includes('/')) return UNKNOWN;
    const colon = target.lastIndexOf(':');
    let raw = target;
    let verb = '';
    if (colon !== -1) {
      verb = target.slice(colon);
      if (verb !== ':predict') return UNKNOWN;
      raw = target.slice(0, colon);
    }
    const deployment = raw === '' ? null : decode(raw);
    if (deployment === null || deployment === '') return UNKNOWN;
    return { kind: 'model', tenant, deployment, before: V1, after: verb + query };
  }
  const route = LOCAL.get(path);
  if (route === undefined || (route === 'metrics' && !metrics)) return UNKNOWN;
  return route === 'live' ? LIVE : route === 'ready' ? READY : route === 'server' ? SERVER : METRICS;
}

const LIVE: ParsedPath = { kind: 'local', route: 'live' };
const READY: ParsedPath = { kind: 'local', route: 'ready' };
const SERVER: ParsedPath = { kind: 'local', route: 'server' };
const METRICS: ParsedPath = { kind: 'local', route: 'metrics' };

/** A tenant name as a Host label can carry it (a DNS label: the API's name rule). */
const TENANT_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The tenant a Host header names under `suffix` (e.g. '.models.example.com', leading dot included):
 * `acme.models.example.com[:port]` -> 'acme' (case-insensitive). undefined when the host is not under
 * the suffix (an IP, localhost, another name: the default tenant, so direct access keeps working);
 * null when it is under the suffix but the label before it is not one tenant name (`a.b.` or empty):
 * such a request matches no route.
 */
export function tenantFromHost(host: string | undefined, suffix: string): string | null | undefined {
  if (host === undefined || suffix === '') return undefined;
  let h = host.toLowerCase();
  if (!h.startsWith('[')) {
    const colon = h.lastIndexOf(':');
    if (colon !== -1) h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1); // an absolute name, `acme.models.example.com.`
  if (!h.endsWith(suffix)) return undefined;
  const label = h.slice(0, h.length - suffix.length);
  return TENANT_LABEL.test(label) ? label : null;
}

/**
 * The tenant a model request addresses: the path's `/t/{tenant}` prefix, else the Host's tenant, else the
 * default one. null (no route) when the Host names a tenant under the suffix and the prefix names another
 * (a proxy in front may admit a Host per tenant; a prefix must not reach past it), or when the Host is under
 * the suffix without naming one tenant.
 */
export function addressedTenant(
  pathTenant: string | null,
  hostTenant: string | null | undefined,
  defaultTenant: string,
): string | null {
  if (hostTenant === null) return null;
  if (hostTenant === undefined) return pathTenant ?? defaultTenant;
  if (pathTenant !== null && pathTenant !== hostTenant) return null;
  return hostTenant;
}
