/**
 * The model server's data path on plain node:http: inference (OIP v2 infer, with or without a version),
 * the health probes and the autoscaler's load report (GET /ferry/load, src/core/replica.ts). Everything else (metadata, repository, KServe v1, /metrics) goes on to the Fastify app
 * (http-app.ts), which owns the rest of the API; both answer errors the same way (http-errors.ts).
 *
 * Why not Fastify here: under load the main thread is the server's bottleneck, and a framework's generic
 * request and reply objects, hooks and promises cost more than the protocol work itself. This front only
 * moves bytes: it matches the path without a router, reads the body, hands it to dataPlane.infer (which
 * decodes, validates, queues, encodes and counts), and answers with one write: status line, precomputed
 * headers and body together. Listeners are module functions; a request's state is one small object.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { FerryError } from '../core/errors.ts';
import { LOAD_PATH } from '../core/replica.ts';
import type { Tracing } from '../core/tracing.ts';
import type { DataPlane } from './data-plane.ts';
import { drainingReply, errorReply, toFerryError } from './http-errors.ts';
import type { GaugeChild } from './metric-families.ts';
import type { RouteCounter, ServerMetrics } from './metrics.ts';
import { endRequestTrace, type RequestTrace, startRequestTrace } from './tracing.ts';

export interface DataFrontOptions {
  dataPlane: DataPlane;
  metrics: ServerMetrics;
  logger: Logger;
  /** Largest body accepted, in bytes (each model may set a lower limit, checked when decoding). */
  maxBodyBytes: number;
  /** Tracing on (core/tracing.ts startTracing), or null: then nothing but this check is done per request. */
  tracing?: Tracing | null;
}

/** Answers the request and returns true, or returns false to leave it to the next handler. */
export type DataFront = (req: IncomingMessage, res: ServerResponse) => boolean;

const INFER_ROUTE = '/v2/models/:name/infer';
const INFER_VERSION_ROUTE = '/v2/models/:name/versions/:version/infer';
const LIVE = Buffer.from('{"live":true}');
const READY = Buffer.from('{"ready":true}');
const NOT_READY = Buffer.from('{"ready":false}');
const JSON_TYPE = 'application/json; charset=utf-8';

/** One inference request in flight: what the body listeners and the answer need. */
interface Exchange {
  front: Front;
  res: ServerResponse;
  route: RouteCounter;
  name: string;
  version: string | undefined;
  requestId: string;
  receivedAt: number;
  chunks: Buffer[];
  size: number;
  tooLarge: boolean;
  /** Tracing on: the request's span (server/tracing.ts); undefined otherwise. */
  trace: RequestTrace | undefined;
}

const EXCHANGE = Symbol('ferry.exchange');
type WithExchange = IncomingMessage & { [EXCHANGE]?: Exchange };

class Front {
  readonly #dataPlane: DataPlane;
  readonly #logger: Logger;
  readonly maxBodyBytes: number;
  readonly #infer: RouteCounter;
  readonly #inferVersion: RouteCounter;
  readonly #live: RouteCounter;
  readonly #ready: RouteCounter;
  readonly #load: RouteCounter;
  readonly #inFlight: GaugeChild;
  readonly #tracing: Tracing | null;
  #readyAnswer: Buffer | null = null;
  #nextId = 0;

  constructor({ dataPlane, metrics, logger, maxBodyBytes, tracing }: DataFrontOptions) {
    this.#dataPlane = dataPlane;
    this.#tracing = tracing ?? null;
    this.#logger = logger;
    this.maxBodyBytes = maxBodyBytes;
    this.#infer = metrics.route(INFER_ROUTE);
    this.#inferVersion = metrics.route(INFER_VERSION_ROUTE);
    this.#live = metrics.route('/v2/health/live');
    this.#ready = metrics.route('/v2/health/ready');
    this.#load = metrics.route(LOAD_PATH);
    this.#inFlight = metrics.inFlight();
  }

  /**
   * `{"ready":true,"startup":{...}}`: when startup reached each step (DataPlane.startup), made once. The platform
   * reads it once per replica, for the phases of a cold start; OIP clients look at the status only.
   */
  #readyBody(): Buffer {
    if (this.#readyAnswer !== null) return this.#readyAnswer;
    const startup = this.#dataPlane.startup();
    if (startup === null) return READY;
    this.#readyAnswer = Buffer.from(JSON.stringify({ ready: true, startup }));
    return this.#readyAnswer;
  }

  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (req.method === 'GET' || req.method === 'HEAD') {
      // HEAD: the same status and headers; node:http leaves the body out.
      if (path === '/v2/health/ready') {
        const ready = this.#dataPlane.ready();
        this.#probe(req, res, this.#ready, ready ? 200 : 503, ready ? this.#readyBody() : NOT_READY);
        return true;
      }
      if (path === '/v2/health/live') {
        this.#probe(req, res, this.#live, 200, LIVE);
        return true;
      }
      if (path === LOAD_PATH) {
        // The autoscaler's poll (about once a second): numbers kept anyway, one small JSON.
        this.#probe(req, res, this.#load, 200, Buffer.from(JSON.stringify(this.#dataPlane.loadReport())));
        return true;
      }
      return false;
    }
    if (req.method !== 'POST' || !path.startsWith('/v2/models/') || !path.endsWith('/infer')) return false;
    // /v2/models/{name}/infer or /v2/models/{name}/versions/{version}/infer; anything else is Fastify's.
    const parts = path.slice(11, -6).split('/');
    let name: string | undefined;
    let version: string | undefined;
    let route: RouteCounter;
    if (parts.length === 1) {
      name = parts[0];
      route = this.#infer;
    } else if (parts.length === 3 && parts[1] === 'versions') {
      name = parts[0];
      version = parts[2];
      route = this.#inferVersion;
    } else {
      return false;
    }
    if (!name || version === '') return false;
    if (name.includes('%') || version?.includes('%')) {
      try {
        name = decodeURIComponent(name);
        if (version !== undefined) version = decodeURIComponent(version);
      } catch {
        return false; // a bad escape: Fastify answers it
      }
    }
    const requestId = this.#requestId(req);
    const receivedAt = performance.now();
    const tracing = this.#tracing;
    const exchange: Exchange = {
      front: this,
      res,
      route,
      name,
      version,
      requestId,
      receivedAt,
      chunks: [],
      size: 0,
      tooLarge: false,
      trace:
        tracing === null
          ? undefined
          : startRequestTrace(tracing, req.headers.traceparent, receivedAt, path, name, version, requestId),
    };
    if (this.#dataPlane.draining) {
      const { status, headers, body } = drainingReply();
      this.#answer(exchange, status, headers, body);
      req.resume();
      return true;
    }
    const declared = Number(req.headers['content-length']);
    if (declared > this.maxBodyBytes) {
      // Refused from the header alone: the connection closes rather than read what was announced.
      exchange.tooLarge = true;
      this.fail(exchange, tooLarge(declared, this.maxBodyBytes), true);
      return true;
    }
    (req as WithExchange)[EXCHANGE] = exchange;
    req.on('data', onData);
    req.on('end', onEnd);
    return true;
  }

  /** The whole body is in: infer and answer. */
  infer(req: IncomingMessage, exchange: Exchange): void {
    const { chunks } = exchange;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, exchange.size);
    const headers = req.headers;
    const length = headers['inference-header-content-length'];
    let pending: Promise<{ body: Buffer; headers: Record<string, string> }>;
    const inFlight = this.#inFlight;
    inFlight.inc();
    try {
      pending = this.#dataPlane.infer({
        protocol: 'v2',
        name: exchange.name,
        version: exchange.version,
        body,
        contentType: headers['content-type'],
        inferenceHeaderLength: Array.isArray(length) ? length[0] : length,
        receivedAt: exchange.receivedAt,
        trace: exchange.trace,
      });
    } catch (error) {
      inFlight.dec();
      this.fail(exchange, error, false);
      return;
    }
    pending.then(
      (reply) => {
        inFlight.dec();
        this.#answer(exchange, 200, reply.headers, reply.body);
      },
      (error: unknown) => {
        inFlight.dec();
        this.fail(exchange, error, false);
      },
    );
  }

  fail(exchange: Exchange, error: unknown, closeConnection: boolean): void {
    const ferry = toFerryError(error);
    const { status, headers, body } = errorReply(ferry);
    const fields = {
      reqId: exchange.requestId,
      code: ferry.code,
      status,
      url: exchange.res.req.url,
      err: status >= 500 ? error : undefined,
    };
    this.#logger[status >= 500 ? 'error' : 'warn'](fields, ferry.message);
    if (closeConnection) headers.connection = 'close';
    this.#answer(exchange, status, headers, body, ferry.code);
  }

  #answer(
    exchange: Exchange,
    status: number,
    headers: Record<string, string>,
    body: Buffer | string,
    errorCode?: string,
  ): void {
    const { res } = exchange;
    if (exchange.trace !== undefined) {
      endRequestTrace(exchange.trace, res.destroyed ? 499 : status, errorCode);
      exchange.trace = undefined;
    }
    if (res.destroyed || res.headersSent) return;
    exchange.route.count(status);
    // One writeHead with a flat list, then end(body): Node sends the head and the body in one write.
    const head: string[] = [
      'content-length',
      String(typeof body === 'string' ? Buffer.byteLength(body) : body.length),
      'x-request-id',
      exchange.requestId,
    ];
    for (const key in headers) head.push(key, headers[key]!);
    // While draining, a connection whose answer is out closes: kept alive and idle, it would hold the
    // listener open until its keep-alive timeout, and the exit with it. In the shutdown delay too: the
    // client learns it from the header, so it opens its next connection elsewhere (graceful connection
    // draining) rather than finding this one gone under a request it sends on it later.
    const plane = this.#dataPlane;
    if ((plane.draining || plane.delaying) && headers.connection === undefined)
      head.push('connection', 'close');
    res.writeHead(status, head);
    res.end(body);
  }

  #probe(req: IncomingMessage, res: ServerResponse, route: RouteCounter, status: number, body: Buffer): void {
    route.count(status);
    const head = [
      'content-type',
      JSON_TYPE,
      'content-length',
      String(body.length),
      'x-request-id',
      this.#requestId(req),
    ];
    // In the shutdown delay a prober's kept-alive connection closes as every other one does (#answer).
    if (this.#dataPlane.delaying) head.push('connection', 'close');
    res.writeHead(status, head);
    res.end(body);
    req.resume();
  }

  /** The client's x-request-id, or a fresh one (as Fastify makes them for the other routes). */
  #requestId(req: IncomingMessage): string {
    const given = req.headers['x-request-id'];
    if (typeof given === 'string' && given !== '') return given;
    return `req-${(++this.#nextId).toString(36)}`;
  }
}

function onData(this: WithExchange, chunk: Buffer): void {
  const exchange = this[EXCHANGE]!;
  if (exchange.tooLarge) return;
  exchange.size += chunk.length;
  if (exchange.size > exchange.front.maxBodyBytes) {
    // Answered now; the rest of the body is read and dropped, so the client, still sending, gets the answer
    // (closing under it would reset the connection and lose it). Node's request timeout bounds the wait.
    exchange.tooLarge = true;
    exchange.chunks = [];
    exchange.front.fail(exchange, tooLarge(exchange.size, exchange.front.maxBodyBytes), false);
    return;
  }
  exchange.chunks.push(chunk);
}

function onEnd(this: WithExchange): void {
  const exchange = this[EXCHANGE]!;
  if (exchange.tooLarge) return;
  exchange.front.infer(this, exchange);
}

function tooLarge(size: number, limit: number): FerryError {
  return new FerryError(
    'FERRY_PAYLOAD_TOO_LARGE',
    `request body is larger than the server's limit: ${size} bytes, over ${limit}`,
    {
      hint: 'Raise serving.limits.maxBodySize in ferry.yaml, or send tensors with the binary extension (smaller).',
    },
  );
}

export function createDataFront(options: DataFrontOptions): DataFront {
  const front = new Front(options);
  return (req, res) => front.handle(req, res);
}
