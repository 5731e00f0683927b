/**
 * Answers the gateway writes itself, in the model server's format: JSON
 * `{"error": message, "code": "FERRY_...", "hint"?}`, with `Retry-After` when the error carries one.
 */
import type { ServerResponse } from 'node:http';
import type { FerryError } from '../core/errors.ts';
import { REQUEST_ID_HEADER } from './headers.ts';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  requestId: string | undefined,
  extra?: readonly string[],
): void {
  const text = JSON.stringify(body);
  // The gateway's own answers (errors, health, metadata) are never sniffed or cached; the models' answers pass
  // through as the replicas wrote them.
  const headers = [
    'content-type',
    'application/json; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(text)),
    'x-content-type-options',
    'nosniff',
    'cache-control',
    'no-store',
  ];
  if (requestId !== undefined) headers.push(REQUEST_ID_HEADER, requestId);
  if (extra !== undefined) headers.push(...extra);
  res.writeHead(status, headers);
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  error: FerryError,
  requestId: string | undefined,
  extra?: readonly string[],
): void {
  const body: { error: string; code: string; hint?: string } = { error: error.message, code: error.code };
  if (error.hint !== undefined) body.hint = error.hint;
  const headers = extra ? [...extra] : [];
  if (error.retryAfterSeconds !== undefined) headers.push('retry-after', String(error.retryAfterSeconds));
  sendJson(res, error.status, body, requestId, headers);
}
