/**
 * Header rewriting for the proxy, on Node's raw header arrays ([name, value, name, value, ...]),
 * so no header object is built per request. Hop-by-hop headers (RFC 9110 7.6.1) never cross the
 * gateway: `connection` and the headers it names, `keep-alive`, `proxy-connection`,
 * `transfer-encoding` (each hop frames the body itself), `te`, `trailer`, `upgrade`, and the
 * proxy credentials. `host` is set to the replica's; `expect` is dropped because the gateway's own
 * server already answered `100 Continue`. `authorization` never reaches a replica either: it carries the
 * caller's Ferry token (access.ts reads it here), on public deployments too, where the gateway does not read
 * it but cannot tell a Ferry token from any other.
 */
import { randomUUID } from 'node:crypto';
import type { GatewayTrace } from './tracing.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

const AUTHORIZATION = 'authorization';
const REQUEST_DROP = new Set([...HOP_BY_HOP, 'host', 'expect', AUTHORIZATION]);
/** Upstream copies of the headers the gateway sets itself are dropped, never duplicated. */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'x-ferry-revision', 'x-ferry-replica']);

export const REVISION_HEADER = 'x-ferry-revision';
export const REPLICA_HEADER = 'x-ferry-replica';
export const REQUEST_ID_HEADER = 'x-request-id';

export interface ForwardedRequest {
  /** The headers for the replica as `name: value\r\n` lines, without host (set per attempt). */
  block: string;
  /** The client's x-request-id, or a fresh one (already in `block`). */
  requestId: string;
  /** The `x-ferry-revision` pin, if any. */
  pin: string | undefined;
  /** The client framed its body with chunked encoding (no content-length): so does the gateway. */
  chunked: boolean;
  /** The Authorization header's value (never in `block`); the first one when repeated. */
  authorization: string | undefined;
  /** Authorization came more than once (the access check refuses that). */
  authorizationRepeated: boolean;
  /** Tracing on: the request's trace (tracing.ts), set by the server; `block` then has no traceparent. */
  trace?: GatewayTrace;
}

const NO_TOKENS: string[] = [];

/** Tokens of a Connection header that name further hop-by-hop headers (beyond close / keep-alive). */
function connectionTokens(value: string): string[] {
  if (value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close') return NO_TOKENS;
  }
  const out: string[] = [];
  for (const t of value.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '' && token !== 'close' && token !== 'keep-alive') out.push(token);
  }
  return out;
}

/**
 * The client's headers for the replica. Values are passed on as Node's parser gave them (latin1
 * strings of the original bytes, never containing CR or LF).
 */
export function forwardRequestHeaders(raw: readonly string[]): ForwardedRequest {
  let block = '';
  let requestId: string | undefined;
  let pin: string | undefined;
  let named: string[] | null = null;
  let chunked = false;
  let authorization: string | undefined;
  let authorizationRepeated = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (REQUEST_DROP.has(lower)) {
      if (lower === 'connection') {
        const tokens = connectionTokens(value);
        if (tokens.length > 0) named = named === null ? tokens : [...named, ...tokens];
      } else if (lower === 'transfer-encoding') chunked = true;
      else if (lower === AUTHORIZATION) {
        if (authorization === undefined) authorization = value;
        else authorizationRepeated = true;
      }
      continue;
    }
    if (lower === REQUEST_ID_HEADER) {
      if (requestId !== undefined || value === '') continue; // one id only
      requestId = value;
    } else if (lower === REVISION_HEADER) pin = value.trim();
    block += `${name}: ${value}\r\n`;
  }
  if (named !== null) {
    const drop = new Set(named);
    let kept = '';
    for (const line of block.split('\r\n')) {
      if (line === '') continue;
      if (!drop.has(line.slice(0, line.indexOf(':')).toLowerCase())) kept += `${line}\r\n`;
    }
    block = kept;
  }
  if (requestId === undefined) {
    requestId = randomUUID();
    block += `${REQUEST_ID_HEADER}: ${requestId}\r\n`;
  }
  return { block, requestId, pin, chunked, authorization, authorizationRepeated };
}

/** The request head for one attempt: request line, host, the forwarded headers, blank line. */
export function requestHead(
  method: string,
  path: string,
  host: string,
  block: string,
  chunked: boolean,
): string {
  return `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n${block}${chunked ? 'transfer-encoding: chunked\r\n' : ''}\r\n`;
}

/**
 * The response headers for the client: the replica's minus hop-by-hop ones, plus which revision
 * and replica answered and the request id (when the replica did not echo it).
 */
export function forwardResponseHeaders(
  raw: readonly string[],
  revision: string,
  replicaId: string,
  requestId: string,
  closing: boolean,
): string[] {
  const out: string[] = [];
  let named: Set<string> | null = null;
  let sawRequestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (RESPONSE_DROP.has(lower)) {
      if (lower === 'connection') {
        const tokens = connectionTokens(raw[i + 1]!);
        if (tokens.length > 0) named = new Set([...(named ?? []), ...tokens]);
      }
      continue;
    }
    if (lower === REQUEST_ID_HEADER) sawRequestId = true;
    out.push(name, raw[i + 1]!);
  }
  if (named !== null) {
    const drop = named;
    for (let i = out.length - 2; i >= 0; i -= 2) if (drop.has(out[i]!.toLowerCase())) out.splice(i, 2);
  }
  out.push(REVISION_HEADER, revision, REPLICA_HEADER, replicaId);
  if (!sawRequestId) out.push(REQUEST_ID_HEADER, requestId);
  if (closing) out.push('connection', 'close');
  return out;
}
