/**
 * Every error the model server answers leaves as {"error": message, "code": FERRY_..., "hint"?} with the
 * catalogue's status (docs/errors.md), whichever HTTP layer caught it (the data-path front or Fastify).
 */
import { ERROR_CODES, FerryError, isFerryError } from '../core/errors.ts';
import { DRAINING_HEADER } from '../core/replica.ts';

export interface ErrorReply {
  status: number;
  /** content-type, and retry-after when the error says when to retry. */
  headers: Record<string, string>;
  body: string;
}

export function errorReply(error: FerryError): ErrorReply {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (error.retryAfterSeconds !== undefined)
    headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterSeconds)));
  const body: Record<string, unknown> = { error: error.message, code: error.code };
  if (error.hint) body.hint = error.hint;
  if (error.code === 'FERRY_SPEC_INVALID' && error.details) body.details = error.details;
  return { status: ERROR_CODES[error.code].status, headers, body: JSON.stringify(body) };
}

/**
 * The answer to a request that arrives while the server drains: 503 FERRY_SHUTTING_DOWN, Retry-After 1,
 * Connection: close, and x-ferry-draining, which tells a gateway to try another replica (nothing ran).
 */
export function drainingReply(): ErrorReply {
  const reply = errorReply(
    new FerryError(
      'FERRY_SHUTTING_DOWN',
      'the server is shutting down; send the request to another replica',
      {
        retryAfterSeconds: 1,
      },
    ),
  );
  reply.headers[DRAINING_HEADER] = '1';
  reply.headers.connection = 'close';
  return reply;
}

/** Maps Fastify's own errors (body too large, bad content length, ...) and anything else into the catalogue. */
export function toFerryError(error: unknown, contentType?: string): FerryError {
  if (isFerryError(error)) return error;
  const fastify = error as { code?: string; message?: string; statusCode?: number };
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
