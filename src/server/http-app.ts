/**
 * HTTP routes of the model server (Open Inference Protocol v2 REST, the binary tensor extension,
 * the model repository extension, KServe v1 predict, Prometheus metrics). Routes only translate:
 * decode -> data plane -> encode. Every error leaves as {"error": message, "code": FERRY_...}.
 * The factory does not listen; tests use inject() or listen on port 0.
 */
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import { ERROR_CODES, FerryError, isFerryError } from '../core/errors.ts';
import { DRAINING_HEADER } from '../core/replica.ts';
import {
  decodeInferRequest,
  decodeV1Request,
  encodeInferResponse,
  encodeV1Response,
} from '../protocol/index.ts';
import type { DataPlane } from './data-plane.ts';
import { checkInferMediaType } from './media-type.ts';
import type { ServerMetrics } from './metrics.ts';

export interface HttpAppOptions {
  dataPlane: DataPlane;
  metrics: ServerMetrics;
  logger: Logger;
  /** Largest body any route accepts (each model may set a lower limit). */
  maxBodyBytes: number;
}

interface ModelParams {
  name: string;
  version?: string;
}

const JSON_TYPE = 'application/json';

export function createHttpApp({ dataPlane, metrics, logger, maxBodyBytes }: HttpAppOptions) {
  const app = Fastify({
    loggerInstance: logger,
    // No per-request access lines (they cost throughput); failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: maxBodyBytes,
    requestIdHeader: 'x-request-id',
    keepAliveTimeout: 65_000,
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
      // The header tells a gateway to try another replica (nothing was processed); it never reads the body.
      reply.header('connection', 'close');
      reply.header(DRAINING_HEADER, '1');
      sendError(
        reply,
        new FerryError(
          'FERRY_SHUTTING_DOWN',
          'the server is shutting down; send the request to another replica',
          { retryAfterSeconds: 1 },
        ),
      );
      return;
    }
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
  app.get('/v2/health/live', async () => ({ live: dataPlane.live() }));
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = dataPlane.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });

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

  const infer = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const receivedAt = performance.now();
    const { name, version } = request.params;
    const target = dataPlane.target(name, version);
    const model = target.metrics;
    try {
      checkInferMediaType(request.headers['content-type'], 'v2');
      const decoded = decodeInferRequest(bodyOf(request), headersOf(request), target.spec.serving.limits);
      const response = await dataPlane.infer(target, decoded, receivedAt);
      const encoded = encodeInferResponse(response, decoded);
      model.request(200, (performance.now() - receivedAt) / 1000);
      return reply.headers(encoded.headers).send(encoded.body);
    } catch (error) {
      model.request(toFerryError(error).status, (performance.now() - receivedAt) / 1000);
      throw error;
    }
  };
  app.post<{ Params: ModelParams }>('/v2/models/:name/infer', infer);
  app.post<{ Params: ModelParams }>('/v2/models/:name/versions/:version/infer', infer);

  // KServe v1: POST /v1/models/{name}:predict ({"instances": [...]} -> {"predictions": [...]}).
  app.post<{ Params: { target: string } }>('/v1/models/:target', async (request, reply) => {
    const receivedAt = performance.now();
    const match = /^(.+):predict$/.exec(request.params.target);
    if (!match) {
      throw new FerryError('FERRY_ROUTE_NOT_FOUND', `no route POST ${request.url}`, {
        hint: 'KServe v1 inference is POST /v1/models/{name}:predict.',
      });
    }
    const target = dataPlane.target(match[1]!);
    const model = target.metrics;
    try {
      checkInferMediaType(request.headers['content-type'], 'v1');
      const decoded = decodeV1Request(bodyOf(request), target.metadata!);
      const response = await dataPlane.infer(target, decoded, receivedAt);
      model.request(200, (performance.now() - receivedAt) / 1000);
      return reply.type(JSON_TYPE).send(encodeV1Response(response));
    } catch (error) {
      model.request(toFerryError(error).status, (performance.now() - receivedAt) / 1000);
      throw error;
    }
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

function bodyOf(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

function headersOf(request: FastifyRequest): { contentType?: string; inferenceHeaderLength?: string } {
  const length = request.headers['inference-header-content-length'];
  return {
    contentType: request.headers['content-type'],
    inferenceHeaderLength: Array.isArray(length) ? length[0] : length,
  };
}

/** Maps Fastify's own errors (body too large, bad content length, ...) into the catalogue. */
export function toFerryError(error: unknown, contentType?: string): FerryError {
  if (isFerryError(error)) return error;
  const fastify = error as Partial<FastifyError>;
  switch (fastify.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FerryError(
        'FERRY_PAYLOAD_TOO_LARGE',
        `request body is larger than the server's limit: ${fastify.message}`,
        {
          hint: 'Raise serving.limits.maxBodySize in ferry.yaml, or send tensors with the binary extension (smaller).',
        },
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FerryError(
        'FERRY_UNSUPPORTED_MEDIA_TYPE',
        `Content-Type ${JSON.stringify(contentType ?? '')} is not supported; use application/json, or application/octet-stream with Inference-Header-Content-Length for binary tensors`,
        { hint: "With curl, add -H 'Content-Type: application/json'." },
      );
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new FerryError('FERRY_BAD_REQUEST', fastify.message ?? 'bad request');
  }
  if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return new FerryError('FERRY_BAD_REQUEST', fastify.message ?? 'bad request');
  }
  return new FerryError('FERRY_INTERNAL', `internal error: ${(error as Error)?.message ?? String(error)}`, {
    cause: error,
  });
}

function sendError(reply: FastifyReply, error: FerryError): void {
  if (error.retryAfterSeconds !== undefined)
    reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  const body: Record<string, unknown> = { error: error.message, code: error.code };
  if (error.hint) body.hint = error.hint;
  if (error.code === 'FERRY_SPEC_INVALID' && error.details) body.details = error.details;
  reply.code(ERROR_CODES[error.code].status).type(JSON_TYPE).send(body);
}
