/**
 * The OTLP relay of one sealed replica (docs/tracing.md "Docker replicas", docs/security.md): a unix socket in
 * the replica's own socket directory (`<dir>/otlp.sock`, /run/ferry/otlp.sock in the container, which has no
 * network) on which the platform takes the replica's span exports and forwards them to the platform's own
 * traces endpoint, adding the endpoint's headers (OTEL_EXPORTER_OTLP_HEADERS: credentials the replica never
 * sees) and, for https, its certificates (trusted roots, a client certificate). It is a way out of the sandbox, so it does one thing only:
 *
 *   - `POST /v1/traces` only (404 for another path, 405 for another method), with an OTLP content type
 *     (application/json or application/x-protobuf, else 415) and no content encoding but gzip (else 415);
 *   - to the one configured URL, nowhere else (the replica chooses no host, path or header; a redirect is not
 *     followed: 502);
 *   - at most `maxBodyBytes` per request (default 4 MiB: 413), `maxConcurrent` forwards at a time (default 4:
 *     429 beyond, which the exporter retries), `maxConnections` connections (default 8), `timeoutMs` per forward
 *     (default 10 s: 504); the upstream unreachable: 502. The replica gets the upstream's status and (at most
 *     64 KiB of) its body.
 *
 * The socket is created 0666 (umask around the bind, never a chmod by path: the directory is writable by the
 * container): who may connect is decided by the directories, as for ferry.sock (docker-runtime.ts). close()
 * stops listening, cuts connections and aborts forwards in flight.
 */

import { rm } from 'node:fs/promises';
import {
  createServer,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export const OTLP_RELAY_FILE = 'otlp.sock';
export const OTLP_RELAY_PATH = '/v1/traces';

export interface OtlpRelayTarget {
  /** The platform's traces endpoint (tracingConfig(...).url): every forward goes there. */
  url: string;
  /** Added to every forward (the platform's OTEL_EXPORTER_OTLP_HEADERS / _TRACES_HEADERS). */
  headers: Record<string, string>;
  /**
   * For an https endpoint: the platform's OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE (trusted roots),
   * _CLIENT_CERTIFICATE and _CLIENT_KEY (mutual TLS), read from their files.
   */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  maxBodyBytes?: number;
  maxConcurrent?: number;
  maxConnections?: number;
  timeoutMs?: number;
}

const MAX_ANSWER_BYTES = 64 * 1024;
const CONTENT_TYPES = new Set(['application/json', 'application/x-protobuf']);

export class OtlpRelay {
  #inFlight = 0;
  readonly #abort = new AbortController();
  #closed: Promise<void> | undefined;
  /** Counts of what it answered, by status (tests and logs). */
  readonly answered = new Map<number, number>();

  private readonly url: URL;
  /** Keep-alive connections to the endpoint, at most maxConcurrent. */
  private readonly agent: HttpAgent;

  private constructor(
    readonly path: string,
    private readonly server: Server,
    private readonly target: Required<OtlpRelayTarget>,
  ) {
    this.url = new URL(target.url);
    const options = { keepAlive: true, maxSockets: target.maxConcurrent };
    this.agent =
      this.url.protocol === 'https:' ? new HttpsAgent({ ...options, ...target.tls }) : new HttpAgent(options);
  }

  /**
   * Listens on `path` (whatever is there is removed first: the directory is the replica's). Main thread only:
   * the umask is set around the (synchronous) bind.
   */
  static async listen(path: string, target: OtlpRelayTarget): Promise<OtlpRelay> {
    if (!/^https?:\/\/[^/]/.test(target.url))
      throw new Error(`OTLP relay: the target ${JSON.stringify(target.url)} is not an http(s) URL`);
    const full: Required<OtlpRelayTarget> = {
      maxBodyBytes: 4 * 1024 * 1024,
      maxConcurrent: 4,
      maxConnections: 8,
      timeoutMs: 10_000,
      tls: {},
      ...target,
    };
    let relay: OtlpRelay | undefined;
    const server = createServer(
      { maxHeaderSize: 16 * 1024, requestTimeout: 30_000, headersTimeout: 10_000 },
      (req, res) => relay!.handle(req, res),
    );
    server.maxConnections = full.maxConnections;
    relay = new OtlpRelay(path, server, full);
    await rm(path, { recursive: true, force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const old = process.umask(0o111);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(old);
      }
    });
    // A client's socket error (reset mid-request) is that request's end, not the relay's.
    server.on('clientError', (_e, socket) => socket.destroy());
    return relay;
  }

  private answer(
    res: ServerResponse,
    status: number,
    body: string | Buffer = '',
    headers: Record<string, string> = {},
  ): void {
    this.answered.set(status, (this.answered.get(status) ?? 0) + 1);
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }).end(body);
  }

  /** Refuses and closes the connection (the request's body is not read). */
  private refuse(res: ServerResponse, status: number, why: string, headers: Record<string, string> = {}) {
    this.answer(res, status, `${why}\n`, { 'content-type': 'text/plain', connection: 'close', ...headers });
  }

  /** Why a request is not relayed (status, reason, headers), or null: it may be. */
  private refusal(req: IncomingMessage): [number, string, Record<string, string>?] | null {
    const t = this.target;
    if (req.url !== OTLP_RELAY_PATH) return [404, `only ${OTLP_RELAY_PATH} is relayed`];
    if (req.method !== 'POST') return [405, 'only POST is relayed', { allow: 'POST' }];
    if (!CONTENT_TYPES.has(contentTypeOf(req)))
      return [415, 'OTLP bodies only (application/json, application/x-protobuf)'];
    if (!['identity', 'gzip'].includes(encodingOf(req))) return [415, 'content encoding gzip or none only'];
    if (Number(req.headers['content-length'] ?? 0) > t.maxBodyBytes)
      return [413, `at most ${t.maxBodyBytes} bytes`];
    if (this.#inFlight >= t.maxConcurrent) return [429, 'too many exports at once', { 'retry-after': '1' }];
    return null;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const t = this.target;
    const refused = this.refusal(req);
    if (refused !== null) {
      this.refuse(res, ...refused);
      return;
    }
    const contentType = contentTypeOf(req);
    const encoding = encodingOf(req);
    this.#inFlight++;
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        this.#inFlight--;
      }
    };
    res.once('close', finish);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > t.maxBodyBytes) {
        finish();
        chunks.length = 0;
        // The answer first, then the connection is cut (the rest of the body is never read).
        res.once('finish', () => req.socket.destroy());
        this.refuse(res, 413, `at most ${t.maxBodyBytes} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', finish);
    req.on('end', () => {
      if (done) return;
      void this.forward(Buffer.concat(chunks), contentType, encoding, res).finally(finish);
    });
  }

  private forward(body: Buffer, contentType: string, encoding: string, res: ServerResponse): Promise<void> {
    const t = this.target;
    return new Promise<void>((resolve) => {
      let settled = false;
      const settle = (answer: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        answer();
        resolve();
      };
      const fail = (status: number, why: string) => settle(() => this.refuse(res, status, why));
      const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          signal: this.#abort.signal,
          headers: {
            ...t.headers,
            'content-type': contentType,
            'content-length': body.length,
            ...(encoding === 'gzip' ? { 'content-encoding': 'gzip' } : {}),
          },
        },
        (upstream) => {
          const status = upstream.statusCode ?? 502;
          // node:http follows no redirect; the relay does not either.
          if (status >= 300 && status < 400) {
            upstream.destroy();
            return fail(502, 'the endpoint redirects; the relay follows no redirect');
          }
          const chunks: Buffer[] = [];
          let size = 0;
          upstream.on('data', (chunk: Buffer) => {
            // At most MAX_ANSWER_BYTES kept; the rest is read and dropped (the timer bounds the whole exchange).
            const part = chunk.subarray(0, MAX_ANSWER_BYTES - size);
            if (part.length > 0) chunks.push(part);
            size += part.length;
          });
          upstream.on('error', () => fail(502, "the endpoint's answer failed"));
          upstream.on('end', () => {
            const headers: Record<string, string> = {};
            const type = upstream.headers['content-type'];
            if (type !== undefined) headers['content-type'] = type;
            const retryAfter = upstream.headers['retry-after'];
            if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
            settle(() => this.answer(res, status, Buffer.concat(chunks), headers));
          });
        },
      );
      const timer = setTimeout(() => {
        fail(504, 'the endpoint did not answer in time');
        req.destroy();
      }, t.timeoutMs);
      req.on('error', () => fail(502, 'the endpoint is unreachable'));
      req.end(body);
    });
  }

  /** Stops listening, closes its connections, aborts forwards in flight. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#abort.abort();
      this.agent.destroy();
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
      // The closed listener removes its socket file; a replaced file is the replica's own business, but gone too.
      await rm(this.path, { force: true }).catch(() => undefined);
    })();
    return this.#closed;
  }
}

function contentTypeOf(req: IncomingMessage): string {
  return String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
}

function encodingOf(req: IncomingMessage): string {
  return String(req.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase();
}
