/**
 * Typed client of the control-plane API over fetch. Errors are FerryErrors with the server's code, message,
 * hint and details; a server that cannot be reached is FERRY_CONNECTION_FAILED naming the URL. `followLogs`
 * reads the NDJSON stream line by line and stops when the signal aborts (the server sees the disconnect and
 * stops following); `stream` reads GET /v1/stream's server-sent events the same way.
 */

import type { ScalingSettings } from '../../autoscaler/types.ts';
import { ERROR_CODES, type ErrorCode, FerryError, isFerryError } from '../../core/errors.ts';
import type { AuditEntry, AuditVerification } from '../store/audit-log.ts';
import type {
  CreatedToken,
  EventRecord,
  ModelRecord,
  ModelVersion,
  SecretRecord,
  StoredRevision,
  TokenRecord,
  TrafficEntry,
} from '../store/store.ts';
import type { Quotas } from '../store/tenants.ts';
import type { DeploymentView, DescribeView, LogLine, ReplicaView, RolloutView } from '../views.ts';
import type {
  AddVersionBodyInput,
  AliasResult,
  AuditQueryInput,
  CreateTokenInput,
  DeployInput,
  EventsQueryInput,
  Health,
  Info,
  KeyRotation,
  LogsQueryInput,
  MetricsHistory,
  MetricsPoint,
  SecretSetResult,
  TenantView,
  TokenRole,
  UpdateInput,
  WhoAmI,
} from './schemas.ts';

export interface ControlClientOptions {
  /** Base URL of the control-plane API, e.g. http://127.0.0.1:7070 */
  url: string;
  /** API token (sent as `Authorization: Bearer <token>`). */
  token?: string;
  /** The tenant to act in (sent as X-Ferry-Tenant); left out: the token's own. Only a platform admin may name another. */
  tenant?: string;
  fetch?: typeof fetch;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const FALLBACK_CODES: Record<number, ErrorCode> = {
  400: 'FERRY_BAD_REQUEST',
  401: 'FERRY_UNAUTHORIZED',
  403: 'FERRY_FORBIDDEN',
  404: 'FERRY_NOT_FOUND',
  409: 'FERRY_CONFLICT',
  413: 'FERRY_PAYLOAD_TOO_LARGE',
  415: 'FERRY_UNSUPPORTED_MEDIA_TYPE',
};

const enc = encodeURIComponent;

export class ControlClient {
  readonly url: string;
  readonly #token: string | undefined;
  readonly #tenant: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(opts: ControlClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.#token = opts.token;
    this.#tenant = opts.tenant;
    this.#fetch = opts.fetch ?? globalThis.fetch;
  }

  // ---- system
  health(): Promise<Health> {
    return this.#json('GET', '/healthz');
  }
  info(): Promise<Info> {
    return this.#json('GET', '/v1/info');
  }
  /** The caller: its token's name, role, tenant and access levels. */
  whoami(): Promise<WhoAmI> {
    return this.#json('GET', '/v1/whoami');
  }
  openapi(): Promise<Record<string, unknown>> {
    return this.#json('GET', '/openapi.json');
  }

  // ---- Prometheus (metrics tokens and platform admins)
  /** Prometheus http_sd target groups: the gateway, the control plane, every ready replica. */
  prometheusTargets(): Promise<Array<{ targets: string[]; labels: Record<string, string> }>> {
    return this.#json('GET', '/v1/prometheus/targets');
  }

  // ---- models
  listModels(): Promise<ModelRecord[]> {
    return this.#all('/v1/models');
  }
  getModel(name: string): Promise<ModelRecord> {
    return this.#json('GET', `/v1/models/${enc(name)}`);
  }
  createModel(name: string): Promise<ModelRecord> {
    return this.#json('POST', '/v1/models', { name });
  }
  addVersion(model: string, input: AddVersionBodyInput): Promise<ModelVersion> {
    return this.#json('POST', `/v1/models/${enc(model)}/versions`, input);
  }
  /** True when the platform has this artifact already (an upload can be skipped). */
  async hasArtifact(digest: string): Promise<boolean> {
    try {
      await this.#request('GET', `/v1/artifacts/${enc(digest)}`);
      return true;
    } catch (error) {
      if (isFerryError(error) && error.code === 'FERRY_NOT_FOUND') return false;
      throw error;
    }
  }
  /** Uploads an artifact: `tar` yields its tar stream, whose sha256 must be `digest`. */
  uploadArtifact(digest: string, tar: AsyncIterable<Uint8Array>): Promise<ArtifactResult> {
    return this.#json('PUT', `/v1/artifacts/${enc(digest)}`, { raw: tar, contentType: 'application/x-tar' });
  }
  setAlias(model: string, alias: string, version: string): Promise<AliasResult> {
    return this.#json('PUT', `/v1/models/${enc(model)}/aliases/${enc(alias)}`, { version });
  }

  // ---- deployments
  listDeployments(): Promise<DeploymentView[]> {
    return this.#all('/v1/deployments');
  }
  getDeployment(name: string): Promise<DescribeView> {
    return this.#json('GET', `/v1/deployments/${enc(name)}`);
  }
  deploy(input: DeployInput): Promise<DeploymentView> {
    return this.#json('POST', '/v1/deployments', input);
  }
  update(name: string, patch: UpdateInput): Promise<DeploymentView> {
    return this.#json('PATCH', `/v1/deployments/${enc(name)}`, patch);
  }
  scale(name: string, replicas: number): Promise<DeploymentView> {
    return this.#json('PUT', `/v1/deployments/${enc(name)}/replicas`, { replicas });
  }
  /** Autoscaling on (settings over the defaults) or off (null). */
  setScaling(name: string, scaling: Partial<ScalingSettings> | null): Promise<DeploymentView> {
    return this.#json('PUT', `/v1/deployments/${enc(name)}/scaling`, { scaling });
  }
  async deleteDeployment(name: string): Promise<void> {
    await this.#request('DELETE', `/v1/deployments/${enc(name)}`);
  }
  async getTraffic(name: string): Promise<TrafficEntry[]> {
    const body = await this.#json<{ traffic: TrafficEntry[] }>('GET', `/v1/deployments/${enc(name)}/traffic`);
    return body.traffic;
  }
  setTraffic(name: string, entries: TrafficEntry[]): Promise<DeploymentView> {
    return this.#json('PUT', `/v1/deployments/${enc(name)}/traffic`, { traffic: entries });
  }
  revisions(name: string): Promise<StoredRevision[]> {
    return this.#all(`/v1/deployments/${enc(name)}/revisions`);
  }
  replicas(name: string): Promise<ReplicaView[]> {
    return this.#all(`/v1/deployments/${enc(name)}/replicas`);
  }

  // ---- rollouts
  async rollout(name: string): Promise<RolloutView | null> {
    const body = await this.#json<{ rollout: RolloutView | null }>(
      'GET',
      `/v1/deployments/${enc(name)}/rollout`,
    );
    return body.rollout;
  }
  promote(name: string): Promise<RolloutView> {
    return this.#json('POST', `/v1/deployments/${enc(name)}/rollout/promote`);
  }
  abort(name: string): Promise<RolloutView> {
    return this.#json('POST', `/v1/deployments/${enc(name)}/rollout/abort`);
  }
  undo(name: string, revision?: number): Promise<RolloutView> {
    return this.#json(
      'POST',
      `/v1/deployments/${enc(name)}/rollout/undo`,
      revision === undefined ? {} : { revision },
    );
  }

  // ---- logs, events
  logs(name: string, query: LogsQueryInput = {}): Promise<LogLine[]> {
    return this.#json('GET', `/v1/deployments/${enc(name)}/logs${queryString({ ...query })}`);
  }

  /** Lines as they come until `signal` aborts (then the iteration ends quietly) or the server ends the stream. */
  async *followLogs(name: string, query: LogsQueryInput = {}, signal?: AbortSignal): AsyncIterable<LogLine> {
    if (signal?.aborted) return;
    const path = `/v1/deployments/${enc(name)}/logs${queryString({ ...query, follow: 'true' })}`;
    let response: Response;
    try {
      response = await this.#request('GET', path, undefined, signal);
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    }
    const body = response.body;
    if (!body) return;
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (signal?.aborted) return;
          throw this.#connectionError('GET', path, error);
        }
        if (chunk.done) break;
        buffered += decoder.decode(chunk.value, { stream: true });
        let newline = buffered.indexOf('\n');
        while (newline !== -1) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== '') yield parseStreamLine(line);
          newline = buffered.indexOf('\n');
        }
      }
      const rest = (buffered + decoder.decode()).trim();
      if (rest !== '') yield parseStreamLine(rest);
    } finally {
      // Leaving early (break, abort, error) closes the connection: the server stops following.
      reader.cancel().catch(() => {});
    }
  }

  /**
   * GET /v1/stream: the tenant's deployments (on connect and whenever they changed) and each event recorded
   * after connect, as they come, until `signal` aborts (then the iteration ends quietly), the loop is left, or
   * the server ends the stream (the API closed, or the client was too slow: connect again). With `pings`, the
   * server's `: ping` comments come as `{type: "ping"}` too (to see the connection alive).
   */
  async *stream(signal?: AbortSignal, opts: { pings?: boolean } = {}): AsyncIterable<StreamMessage> {
    for await (const sse of this.#serverSentEvents('/v1/stream', signal)) {
      if (sse.comment !== undefined) {
        if (opts.pings && sse.comment.trim() === 'ping') yield { type: 'ping' };
      } else if (sse.event === 'deployments') {
        yield { type: 'deployments', deployments: parseStreamData<DeploymentView[]>(sse) };
      } else if (sse.event === 'event') {
        yield { type: 'event', event: parseStreamData<EventRecord>(sse) };
      }
      // Other event names are for newer clients: skipped.
    }
  }

  /**
   * The server-sent events of a GET of `path` until `signal` aborts (then the iteration ends quietly), the loop is
   * left or the server ends the stream; a broken connection is FERRY_CONNECTION_FAILED-style (#connectionError).
   */
  async *#serverSentEvents(path: string, signal?: AbortSignal): AsyncIterable<ServerSentEvent> {
    if (signal?.aborted) return;
    let response: Response;
    try {
      response = await this.#request('GET', path, undefined, signal, 'text/event-stream');
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    }
    if (!response.body) return;
    try {
      yield* readServerSentEvents(response.body);
    } catch (error) {
      if (signal?.aborted) return;
      throw isFerryError(error) ? error : this.#connectionError('GET', path, error);
    }
  }

  /** The deployment's metrics history (docs/metrics.md, Metrics history): points after `since` (ms), or all. */
  metricsHistory(name: string, since?: number): Promise<MetricsHistory> {
    return this.#json('GET', `/v1/deployments/${enc(name)}/metrics${queryString({ since })}`);
  }

  /**
   * The history's stream: a `snapshot` first, then a `point` per revision and step, until the signal aborts or the
   * deployment is deleted (a last `deleted`).
   */
  async *metricsStream(name: string, signal?: AbortSignal): AsyncIterable<MetricsStreamEvent> {
    for await (const sse of this.#serverSentEvents(`/v1/deployments/${enc(name)}/metrics/stream`, signal)) {
      if (sse.comment !== undefined) continue; // a ping
      if (sse.event === 'snapshot')
        yield { event: 'snapshot', history: parseStreamData<MetricsHistory>(sse) };
      else if (sse.event === 'point')
        yield { event: 'point', ...parseStreamData<{ revision: number; point: MetricsPoint }>(sse) };
      else if (sse.event === 'deleted') {
        yield { event: 'deleted' };
        return;
      }
    }
  }

  events(query: EventsQueryInput = {}): Promise<EventRecord[]> {
    return this.#json('GET', `/v1/events${queryString({ ...query })}`);
  }

  // ---- tokens
  listTokens(): Promise<TokenRecord[]> {
    return this.#all('/v1/tokens');
  }
  createToken(
    name: string,
    role: TokenRole,
    options: Omit<CreateTokenInput, 'name' | 'role'> = {},
  ): Promise<CreatedToken> {
    return this.#json('POST', '/v1/tokens', { name, role, ...options });
  }

  // ---- tenants
  currentTenant(): Promise<TenantView> {
    return this.#json('GET', '/v1/tenant');
  }
  listTenants(): Promise<TenantView[]> {
    return this.#all('/v1/tenants');
  }
  getTenant(name: string): Promise<TenantView> {
    return this.#json('GET', `/v1/tenants/${enc(name)}`);
  }
  createTenant(name: string, quotas?: Quotas): Promise<TenantView> {
    return this.#json('POST', '/v1/tenants', { name, ...(quotas ? { quotas } : {}) });
  }
  setQuotas(name: string, quotas: Quotas): Promise<TenantView> {
    return this.#json('PUT', `/v1/tenants/${enc(name)}/quotas`, { quotas });
  }
  async deleteTenant(name: string): Promise<void> {
    await this.#request('DELETE', `/v1/tenants/${enc(name)}`);
  }
  async deleteToken(name: string): Promise<void> {
    await this.#request('DELETE', `/v1/tokens/${enc(name)}`);
  }

  // ---- audit log (admins)
  /** Newest first (oldest first with `after`). */
  listAudit(query: AuditQueryInput = {}): Promise<AuditEntry[]> {
    return this.#json('GET', `/v1/audit${queryString({ ...query })}`);
  }
  /** Checks the chain; `head`: a head hash kept elsewhere, where the log must end. */
  verifyAudit(head?: string): Promise<AuditVerification> {
    return this.#json('GET', `/v1/audit/verify${queryString({ head })}`);
  }

  // ---- secrets (values go in, never come back)
  listSecrets(): Promise<SecretRecord[]> {
    return this.#all('/v1/secrets');
  }
  setSecret(name: string, value: string): Promise<SecretSetResult> {
    return this.#json('PUT', `/v1/secrets/${enc(name)}`, { value });
  }
  rotateSecretKey(): Promise<KeyRotation> {
    return this.#json('POST', '/v1/secrets/rotate-key');
  }
  async deleteSecret(name: string): Promise<void> {
    await this.#request('DELETE', `/v1/secrets/${enc(name)}`);
  }

  // ---- plumbing
  /** Every page of a list (the API pages at 1000; x-ferry-next-after says where the next page starts). */
  async #all<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let after: string | null = null;
    do {
      const response = await this.#request('GET', after === null ? path : `${path}?after=${enc(after)}`);
      items.push(...(await this.#parse<T[]>('GET', path, response)));
      after = response.headers.get('x-ferry-next-after');
    } while (after !== null);
    return items;
  }

  async #json<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const response = await this.#request(
      method,
      path,
      isRaw(body) ? new RawBody(body.raw, body.contentType) : body,
    );
    return this.#parse<T>(method, path, response);
  }

  async #parse<T>(method: Method, path: string, response: Response): Promise<T> {
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new FerryError(
        'FERRY_UPSTREAM_FAILED',
        `${method} ${this.url}${path} answered ${response.status} with a body that is not JSON: ${snippet(text)}`,
        { hint: 'Is the URL a Ferry control plane?', details: { status: response.status } },
      );
    }
  }

  async #request(
    method: Method,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    accept = 'application/json',
  ): Promise<Response> {
    const headers: Record<string, string> = { accept };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    if (this.#tenant !== undefined) headers['x-ferry-tenant'] = this.#tenant;
    const raw = body instanceof RawBody ? body : undefined;
    if (body !== undefined) headers['content-type'] = raw ? raw.contentType : 'application/json';
    let response: Response;
    try {
      response = await this.#fetch(`${this.url}${path}`, {
        method,
        headers,
        ...(body === undefined
          ? {}
          : raw
            ? { body: raw.stream(), duplex: 'half' }
            : { body: JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      } as RequestInit);
    } catch (error) {
      if (signal?.aborted) throw error;
      throw this.#connectionError(method, path, error);
    }
    if (!response.ok) throw await errorFromResponse(response, method, `${this.url}${path}`);
    return response;
  }

  #connectionError(method: Method, path: string, error: unknown): FerryError {
    if (isFerryError(error)) return error;
    const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error | undefined)?.message ?? String(error);
    return new FerryError(
      'FERRY_CONNECTION_FAILED',
      `Cannot reach the Ferry control plane at ${this.url} (${method} ${path}): ${reason}`,
      {
        hint: 'Start Ferry with `ferry up`, or check the URL and that the port is the API port.',
        cause: error,
        details: { url: this.url },
      },
    );
  }
}

/** What metricsStream yields. */
export type MetricsStreamEvent =
  | { event: 'snapshot'; history: MetricsHistory }
  | { event: 'point'; revision: number; point: MetricsPoint }
  | { event: 'deleted' };

function queryString(query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** A streamed request body (an artifact upload), sent as is. */
class RawBody {
  constructor(
    readonly source: AsyncIterable<Uint8Array>,
    readonly contentType: string,
  ) {}
  stream(): ReadableStream<Uint8Array> {
    const iterator = this.source[Symbol.asyncIterator]();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await iterator.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await iterator.return?.();
      },
    });
  }
}

function isRaw(body: unknown): body is { raw: AsyncIterable<Uint8Array>; contentType: string } {
  return typeof body === 'object' && body !== null && 'raw' in body && 'contentType' in body;
}

export interface ArtifactResult {
  digest: string;
  files?: number;
  bytes?: number;
  created?: boolean;
}

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

function parseStreamLine(line: string): LogLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new FerryError(
      'FERRY_UPSTREAM_FAILED',
      `The log stream sent a line that is not JSON: ${snippet(line)}`,
    );
  }
  const record = value as Record<string, unknown>;
  if (typeof record.error === 'string' && isErrorCode(record.code)) {
    throw new FerryError(record.code, record.error, {
      ...(typeof record.hint === 'string' ? { hint: record.hint } : {}),
    });
  }
  return value as LogLine;
}

/** What GET /v1/stream sends (ControlClient.stream). */
export type StreamMessage =
  | { type: 'deployments'; deployments: DeploymentView[] }
  | { type: 'event'; event: EventRecord }
  | { type: 'ping' };

/** One server-sent event (`event` defaults to "message"), or a comment line. */
export type ServerSentEvent = { event: string; data: string; comment?: undefined } | { comment: string };

/**
 * Reads a text/event-stream body (the WHATWG rules: fields `event` and `data`, a blank line ends an event, a
 * line starting with ":" is a comment; `id` and `retry` are ignored) until it ends. Leaving the loop early
 * cancels the body, which closes the connection.
 */
export async function* readServerSentEvents(
  body: ReadableStream<Uint8Array>,
): AsyncIterable<ServerSentEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let event = '';
  let data: string[] = [];
  try {
    for (;;) {
      const chunk = await reader.read();
      buffered += chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
      for (;;) {
        const end = buffered.search(/\r\n|\r|\n/);
        // A lone \r at the end of the buffer may be the first half of \r\n: wait for the next chunk.
        if (end === -1 || (end === buffered.length - 1 && buffered[end] === '\r' && !chunk.done)) break;
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + (buffered.startsWith('\r\n', end) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) yield { event: event === '' ? 'message' : event, data: data.join('\n') };
          event = '';
          data = [];
        } else if (line.startsWith(':')) {
          yield { comment: line.slice(1) };
        } else {
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          let value = colon === -1 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'event') event = value;
          else if (field === 'data') data.push(value);
        }
      }
      if (chunk.done) return; // an event not ended by a blank line is dropped, as the standard says
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parseStreamData<T>(sse: { event: string; data: string }): T {
  try {
    return JSON.parse(sse.data) as T;
  } catch {
    throw new FerryError(
      'FERRY_UPSTREAM_FAILED',
      `The stream sent a ${sse.event} whose data is not JSON: ${snippet(sse.data)}`,
    );
  }
}

function snippet(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/** A non-2xx answer as a FerryError: the server's code, message, hint and details, else one from the status. */
async function errorFromResponse(response: Response, method: string, url: string): Promise<FerryError> {
  const text = await response.text().catch(() => '');
  let body: Record<string, unknown> | undefined;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  if (body && isErrorCode(body.code) && typeof body.error === 'string') {
    return new FerryError(body.code, body.error, {
      ...(typeof body.hint === 'string' ? { hint: body.hint } : {}),
      ...(body.details === undefined ? {} : { details: body.details }),
    });
  }
  const code =
    FALLBACK_CODES[response.status] ??
    (response.status >= 500 ? 'FERRY_UPSTREAM_FAILED' : 'FERRY_BAD_REQUEST');
  return new FerryError(code, `${method} ${url} answered ${response.status}: ${snippet(text)}`, {
    details: { status: response.status },
  });
}
