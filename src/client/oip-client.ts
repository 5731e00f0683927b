/**
 * A typed HTTP client for Open Inference Protocol v2 servers (Ferry, Triton, KServe, MLServer), using
 * global fetch. Errors are FerryErrors: the server's own code when it answers {"error", "code": "FERRY_..."},
 * a code derived from the HTTP status otherwise, FERRY_CONNECTION_FAILED when the server cannot be reached
 * and FERRY_DEADLINE_EXCEEDED when it does not answer within timeoutMs. `details` carries { status, url }.
 */
import { ERROR_CODES, type ErrorCode, FerryError } from '../core/errors.ts';
import {
  BINARY_HEADER,
  decodeInferResponse,
  encodeInferRequest,
  type InferRequest,
  type InferResponse,
  type ModelMetadata,
  type RepositoryIndexEntry,
  type ServerMetadata,
} from '../protocol/index.ts';

export interface OipClientOptions {
  /** Per-request timeout in milliseconds (default 60 000). */
  timeoutMs?: number;
  /** Extra headers on every request (e.g. authorization). */
  headers?: Record<string, string>;
}

export interface InferOptions {
  version?: string;
  /** Send inputs with the binary tensor extension (default false: JSON). */
  binary?: boolean;
  /** Ask for outputs with the binary tensor extension. */
  binaryOutputs?: boolean;
}

interface Sent {
  method: 'GET' | 'POST';
  path: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
}

export class OipClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(baseUrl: string, options: OipClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new FerryError('FERRY_BAD_REQUEST', `server URL ${JSON.stringify(baseUrl)} is not a valid URL`, {
        hint: 'Use a URL like http://127.0.0.1:8080.',
      });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `server URL ${JSON.stringify(baseUrl)} must start with http:// or https://`,
      );
    }
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.headers = { ...options.headers };
  }

  serverMetadata(): Promise<ServerMetadata> {
    return this.json<ServerMetadata>({ method: 'GET', path: '/v2' });
  }

  /** True when the server answers 200 to /v2/health/live, false for a 5xx answer. */
  live(): Promise<boolean> {
    return this.probe('/v2/health/live');
  }

  /** True when the server answers 200 to /v2/health/ready, false for a 5xx answer (e.g. 503 not ready). */
  ready(): Promise<boolean> {
    return this.probe('/v2/health/ready');
  }

  modelMetadata(name: string, version?: string): Promise<ModelMetadata> {
    return this.json<ModelMetadata>({ method: 'GET', path: modelPath(name, version) });
  }

  /** True when the model version is ready; false for 503; throws for an unknown model (404). */
  modelReady(name: string, version?: string): Promise<boolean> {
    return this.probe(`${modelPath(name, version)}/ready`);
  }

  async infer(name: string, request: InferRequest, options: InferOptions = {}): Promise<InferResponse> {
    const encoded = encodeInferRequest(request, {
      binary: options.binary ?? false,
      binaryOutputs: options.binaryOutputs ?? false,
    });
    const response = await this.send({
      method: 'POST',
      path: `${modelPath(name, options.version)}/infer`,
      body: encoded.body,
      headers: encoded.headers,
    });
    const body = Buffer.from(await this.read(response));
    return decodeInferResponse(body, {
      contentType: response.headers.get('content-type') ?? undefined,
      inferenceHeaderLength: response.headers.get(BINARY_HEADER) ?? undefined,
    });
  }

  /** Raw JSON passthrough: posts `body` as the inference request and returns the parsed JSON answer. */
  inferJson(name: string, body: unknown, version?: string): Promise<unknown> {
    return this.json({
      method: 'POST',
      path: `${modelPath(name, version)}/infer`,
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
  }

  /** KServe v1: POST /v1/models/{name}:predict. */
  predictV1(name: string, instances: unknown[]): Promise<{ predictions: unknown[] }> {
    return this.json({
      method: 'POST',
      path: `/v1/models/${encodeURIComponent(name)}:predict`,
      body: JSON.stringify({ instances }),
      headers: { 'content-type': 'application/json' },
    });
  }

  repositoryIndex(): Promise<RepositoryIndexEntry[]> {
    return this.json({ method: 'POST', path: '/v2/repository/index', body: '{}', headers: JSON_HEADERS });
  }

  async loadModel(name: string): Promise<void> {
    await this.json({
      method: 'POST',
      path: `/v2/repository/models/${encodeURIComponent(name)}/load`,
      body: '{}',
      headers: JSON_HEADERS,
    });
  }

  async unloadModel(name: string): Promise<void> {
    await this.json({
      method: 'POST',
      path: `/v2/repository/models/${encodeURIComponent(name)}/unload`,
      body: '{}',
      headers: JSON_HEADERS,
    });
  }

  // ---- plumbing ----------------------------------------------------------------------------------------

  private async probe(path: string): Promise<boolean> {
    const url = this.baseUrl + path;
    const response = await this.fetch({ method: 'GET', path }, url);
    if (response.ok) {
      await response.arrayBuffer().catch(() => undefined);
      return true;
    }
    if (response.status >= 500) {
      await response.arrayBuffer().catch(() => undefined);
      return false;
    }
    throw await errorFromResponse(response, 'GET', url);
  }

  private async json<T>(sent: Sent): Promise<T> {
    const response = await this.send(sent);
    const text = Buffer.from(await this.read(response)).toString('utf8');
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new FerryError(
        'FERRY_INTERNAL',
        `${sent.method} ${this.baseUrl + sent.path} answered ${response.status} with a body that is not JSON: ${snippet(text)}`,
        { details: { status: response.status, url: this.baseUrl + sent.path } },
      );
    }
  }

  /** Sends and throws a FerryError for non-2xx answers. */
  private async send(sent: Sent): Promise<Response> {
    const url = this.baseUrl + sent.path;
    const response = await this.fetch(sent, url);
    if (!response.ok) throw await errorFromResponse(response, sent.method, url);
    return response;
  }

  private async fetch(sent: Sent, url: string): Promise<Response> {
    try {
      return await fetch(url, {
        method: sent.method,
        headers: { accept: 'application/json, application/octet-stream', ...this.headers, ...sent.headers },
        body: sent.body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw this.networkError(error, sent.method, url);
    }
  }

  private async read(response: Response): Promise<ArrayBuffer> {
    try {
      return await response.arrayBuffer();
    } catch (error) {
      throw this.networkError(error, 'reading the answer of', response.url);
    }
  }

  private networkError(error: unknown, method: string, url: string): FerryError {
    const name = (error as Error | undefined)?.name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      return new FerryError(
        'FERRY_DEADLINE_EXCEEDED',
        `${method} ${url} did not answer within ${this.timeoutMs} ms`,
        {
          hint: 'Raise the client timeout, or check whether the server is overloaded.',
          cause: error,
          details: { url },
        },
      );
    }
    const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error | undefined)?.message ?? String(error);
    return new FerryError('FERRY_CONNECTION_FAILED', `cannot reach ${url} (${method}): ${reason}`, {
      hint: 'Is the server running, and are the host and port right?',
      cause: error,
      details: { url },
    });
  }
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function modelPath(name: string, version: string | undefined): string {
  const base = `/v2/models/${encodeURIComponent(name)}`;
  return version === undefined ? base : `${base}/versions/${encodeURIComponent(version)}`;
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat;
}

const STATUS_CODES: Record<number, ErrorCode> = {
  400: 'FERRY_BAD_REQUEST',
  404: 'FERRY_ROUTE_NOT_FOUND',
  413: 'FERRY_PAYLOAD_TOO_LARGE',
  415: 'FERRY_UNSUPPORTED_MEDIA_TYPE',
  502: 'FERRY_CONNECTION_FAILED',
  503: 'FERRY_MODEL_NOT_READY',
  504: 'FERRY_DEADLINE_EXCEEDED',
};

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** Maps a non-2xx answer to a FerryError: the server's code when it sent one, else one from the status. */
export async function errorFromResponse(
  response: Response,
  method: string,
  url: string,
): Promise<FerryError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The body is optional for the error; the status is enough.
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const retryAfter = Number(response.headers.get('retry-after'));
  const options = {
    details: { status: response.status, url },
    ...(typeof fields.hint === 'string' ? { hint: fields.hint } : {}),
    ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
  };
  const message = typeof fields.error === 'string' ? fields.error : undefined;
  if (isErrorCode(fields.code) && message !== undefined) return new FerryError(fields.code, message, options);
  const code =
    STATUS_CODES[response.status] ?? (response.status >= 500 ? 'FERRY_INTERNAL' : 'FERRY_BAD_REQUEST');
  const what = message ?? (snippet(text) || response.statusText);
  return new FerryError(code, `${method} ${url} answered ${response.status}: ${what}`, options);
}
