/**
 * The model server's HTTP server: the data path (inference, health) on plain node:http in data-front.ts,
 * and every other route (server and model metadata, the model repository extension, KServe v1 predict,
 * Prometheus metrics) in this Fastify app, which the front hands what it does not answer. Routes only
 * translate between HTTP and the data plane. Every error leaves as {"error": message, "code": FERRY_...}.
 * The factory does not listen; listen on port 0 in tests.
 */
import { createServer } from 'node:http';
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import { FerryError } from '../core/errors.ts';
import type { Tracing } from '../core/tracing.ts';
import { createDataFront } from './data-front.ts';
import type { DataPlane } from './data-plane.ts';
import { drainingReply, errorReply, toFerryError } from './http-errors.ts';
import type { ServerMetrics } from './metrics.ts';

export interface HttpAppOptions {
  dataPlane: DataPlane;
  metrics: ServerMetrics;
  logger: Logger;
  /** Largest body any route accepts (each model may set a lower limit). */
  maxBodyBytes: number;
  /** Tracing of the data path (OIP v2 infer), when on. */
  tracing?: Tracing | null;
}

interface ModelParams {
  name: string;
  version?: string;
}

const KEEP_ALIVE_MS = 65_000;

export function createHttpApp({ dataPlane, metrics, logger, maxBodyBytes, tracing }: HttpAppOptions) {
  const front = createDataFront({ dataPlane, metrics, logger, maxBodyBytes, tracing: tracing ?? null });
  const app = Fastify({
    serverFactory: (handler) => {
      const server = createServer((req, res) => {
        if (!front(req, res)) handler(req, res);
      });
      server.keepAliveTimeout = KEEP_ALIVE_MS;
      return server;
    },
    loggerInstance: logger,
    // No per-request access lines (they cost throughput); failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: maxBodyBytes,
    requestIdHeader: 'x-request-id',
    // Requests that arrive while draining get our own 503 (below), with a code and Connection: close.
    return503OnClosing: false,
    // Model versions may be up to 128 characters (docs/spec.md); leave room for names too.
    routerOptions: { maxParamLength: 256 },
    // Errors Fastify raises before routing (bad percent-escapes, over-long segments) use our body too.
    frameworkErrors: (error, request, reply) => {
      const ferry = toFerryError(error, request.headers['content-type']);
      request.log.warn({ code: ferry.code, url: request.url }, ferry.message);
      sendError(reply, ferry);
    },
  });

  // Bodies reach the codecs as raw bytes: JSON and binary tensor bodies are decoded by src/protocol.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  // Callback-style hooks: they run on every request, and avoid a promise each.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    if (dataPlane.draining && !request.url.startsWith('/v2/health/') && request.url !== '/metrics') {
      const { status, headers, body } = drainingReply();
      reply.code(status).headers(headers).send(body);
      return;
    }
    // In the shutdown delay the request is served, and its connection closes once the answer is out: the
    // header says so to the client, which opens its next connection elsewhere (data-front.ts does the same).
    if (dataPlane.delaying) reply.header('connection', 'close');
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.http(request.routeOptions.url ?? 'unmatched', reply.statusCode);
    // While draining, a connection whose answer is out closes: kept alive and idle, it would hold the
    // listener open until its keep-alive timeout, and the exit with it.
    if (dataPlane.draining) request.raw.socket?.end();
    done();
  });

  app.setErrorHandler((error: FastifyError | FerryError, request, reply) => {
    const ferry = toFerryError(error, request.headers['content-type']);
    const level = ferry.status >= 500 ? 'error' : 'warn';
    request.log[level](
      {
        code: ferry.code,
        status: ferry.status,
        url: request.url,
        err: ferry.status >= 500 ? error : undefined,
      },
      ferry.message,
    );
    sendError(reply, ferry);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(
      reply,
      new FerryError('FERRY_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url}`, {
        hint: 'See GET /v2 for the server and /v2/models/{name} for models.',
      }),
    );
  });

  app.get('/v2', async () => dataPlane.serverMetadata());
  app.get<{ Params: ModelParams }>('/v2/models/:name', async (request) =>
    dataPlane.modelMetadata(request.params.name),
  );
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version', async (request) =>
    dataPlane.modelMetadata(request.params.name, request.params.version),
  );
  const modelReady = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = request.params;
    const ready = dataPlane.modelReady(name, version);
    return reply.code(ready ? 200 : 503).send({ name, ready });
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', modelReady);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/ready', modelReady);

  // KServe v1: POST /v1/models/{name}:predict ({"instances": [...]} -> {"predictions": [...]}).
  app.post<{ Params: { target: string } }>('/v1/models/:target', async (request, reply) => {
    const match = /^(.+):predict$/.exec(request.params.target);
    if (!match) {
      throw new FerryError('FERRY_ROUTE_NOT_FOUND', `no route POST ${request.url}`, {
        hint: 'KServe v1 inference is POST /v1/models/{name}:predict.',
      });
    }
    const encoded = await dataPlane.infer({
      protocol: 'v1',
      name: match[1]!,
      body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
      contentType: request.headers['content-type'],
      receivedAt: performance.now(),
    });
    return reply.headers(encoded.headers).send(encoded.body);
  });
  app.get<{ Params: { target: string } }>('/v1/models/:target', async (request) => {
    const name = request.params.target;
    return { name, ready: dataPlane.modelReady(name) };
  });

  app.post('/v2/repository/index', async () => dataPlane.repository.index());
  app.post<{ Params: ModelParams }>('/v2/repository/models/:name/load', async (request) => {
    await dataPlane.repository.load(request.params.name);
    return {};
  });
  app.post<{ Params: ModelParams }>('/v2/repository/models/:name/unload', async (request) => {
    await dataPlane.repository.unload(request.params.name);
    return {};
  });

  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });

  return app;
}

function sendError(reply: FastifyReply, error: FerryError): void {
  const { status, headers, body } = errorReply(error);
  reply.code(status).headers(headers).send(body);
}
