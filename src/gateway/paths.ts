/**
 * Which request paths the gateway knows, as a pure function of the URL. Model paths carry a
 * deployment name that the proxy replaces by the chosen revision's served model name:
 *
 * | path (query string kept)                                  | result                        |
 * |-----------------------------------------------------------|-------------------------------|
 * | /v2/health/live, /v2/health/ready, /v2, /metrics          | answered by the gateway       |
 * | /v2/models/{name}[/versions/{v}][/infer or /ready]        | routed by deployment {name}   |
 * | /v1/models/{name} and /v1/models/{name}:predict           | routed by deployment {name}   |
 * | anything else                                             | 404 FERRY_ROUTE_NOT_FOUND     |
 */

export type LocalRoute = 'live' | 'ready' | 'server' | 'metrics';

export type ParsedPath =
  | { kind: 'local'; route: LocalRoute }
  /** Upstream path = `${before}${encodeURIComponent(servedName)}${after}` (after includes the query). */
  | { kind: 'model'; deployment: string; before: string; after: string }
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

function decode(segment: string): string | null {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** True for '', '/infer', '/ready' (a model path's ending). */
function isAction(s: string): boolean {
  return s === '' || s === '/infer' || s === '/ready';
}

export function parsePath(url: string): ParsedPath {
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
    if (deployment === null) return UNKNOWN;
    return { kind: 'model', deployment, before: V2, after: rest + query };
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
    if (deployment === null) return UNKNOWN;
    return { kind: 'model', deployment, before: V1, after: verb + query };
  }
  const route = LOCAL.get(path);
  return route === undefined ? UNKNOWN : { kind: 'local', route };
}
