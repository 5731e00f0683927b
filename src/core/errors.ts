/**
 * One error type for everything a user can cause, with a documented code catalogue.
 * Every code here is described in docs/errors.md; a test checks both directions.
 * Codes are never reused once retired.
 */

export interface ErrorCodeInfo {
  /** HTTP status when the error crosses an HTTP boundary. */
  readonly status: number;
  /** One line for docs/errors.md. */
  readonly summary: string;
}

export const ERROR_CODES = {
  // Requests (model server, gateway)
  FERRY_BAD_REQUEST: {
    status: 400,
    summary: 'The request body or URL is malformed (not JSON, wrong types).',
  },
  FERRY_INVALID_INPUT: {
    status: 400,
    summary: 'An input tensor does not match the model: name, datatype, shape or element count.',
  },
  FERRY_PAYLOAD_TOO_LARGE: {
    status: 413,
    summary: 'The body or a declared tensor size is over the configured limit.',
  },
  FERRY_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    summary: 'The Content-Type is not JSON or the binary tensor format.',
  },
  FERRY_ROUTE_NOT_FOUND: { status: 404, summary: 'No such endpoint.' },
  FERRY_MODEL_NOT_FOUND: { status: 404, summary: 'No model with that name is in the repository.' },
  FERRY_VERSION_NOT_FOUND: { status: 404, summary: 'The model exists but not that version.' },
  FERRY_MODEL_NOT_READY: { status: 503, summary: 'The model is loading, unloading or failed to load.' },
  FERRY_QUEUE_FULL: {
    status: 503,
    summary: 'The batching queue is full; retry after the Retry-After delay.',
  },
  FERRY_SHUTTING_DOWN: {
    status: 503,
    summary: 'The server is draining before exit; send the request elsewhere.',
  },
  FERRY_DEADLINE_EXCEEDED: {
    status: 504,
    summary: 'The request could not finish within its timeout (rejected early when it cannot).',
  },
  FERRY_INFERENCE_FAILED: { status: 500, summary: 'The backend raised an error while running the model.' },
  FERRY_INTERNAL: { status: 500, summary: 'A bug in Ferry; the message and logs say where.' },
  // Model repository
  FERRY_MODEL_LOAD_FAILED: {
    status: 500,
    summary: 'A model version could not be loaded; it does not serve.',
  },
  // Spec (ferry.yaml) and CLI
  FERRY_SPEC_NOT_FOUND: {
    status: 400,
    summary: 'No ferry.yaml in the given directory, or the file is unreadable.',
  },
  FERRY_SPEC_INVALID: {
    status: 400,
    summary: 'ferry.yaml does not parse or does not validate; every problem is listed.',
  },
  FERRY_FILE_NOT_FOUND: {
    status: 400,
    summary: 'A file named on the command line or in ferry.yaml does not exist.',
  },
  FERRY_CONNECTION_FAILED: {
    status: 502,
    summary: 'The client could not reach the server at the given URL.',
  },
  // Platform (control-plane API, gateway, images, runtimes)
  FERRY_UNAUTHORIZED: {
    status: 401,
    summary: 'No bearer token, or the token is unknown, expired or revoked.',
  },
  FERRY_FORBIDDEN: {
    status: 403,
    summary: "The token's role may not do this (e.g. a viewer writing), or may not call this deployment.",
  },
  FERRY_TENANT_NOT_FOUND: { status: 404, summary: 'No tenant with that name (control-plane API).' },
  FERRY_QUOTA_EXCEEDED: {
    status: 403,
    summary: 'The change would take the tenant over a quota (deployments, replicas, CPU or memory).',
  },
  FERRY_RATE_LIMITED: {
    status: 429,
    summary: "The token's rate limit at the gateway is spent; retry after the Retry-After delay.",
  },
  FERRY_NOT_FOUND: {
    status: 404,
    summary: 'No deployment, model, version, revision or token with that name.',
  },
  FERRY_CONFLICT: {
    status: 409,
    summary: 'The request clashes with the current state (name taken, rollout in progress, ...).',
  },
  FERRY_AUDIT_UNAVAILABLE: {
    status: 503,
    summary: 'The audit log could not be written; changes are refused until it can be (the logs say why).',
  },
  FERRY_NO_READY_REPLICA: {
    status: 503,
    summary: 'The gateway has no ready replica for the deployment or revision; retry later.',
  },
  FERRY_UPSTREAM_FAILED: {
    status: 502,
    summary: 'A replica failed or closed the connection and the request could not be retried.',
  },
  FERRY_REPLICA_UNAVAILABLE: {
    status: 503,
    summary: 'The replica is known but cannot be asked now: not ready, being removed, or out of reach.',
  },
  FERRY_REGISTRY_ERROR: {
    status: 502,
    summary: 'A container registry refused or failed a request (auth, missing image, network).',
  },
  FERRY_ENGINE_FAILED: {
    status: 500,
    summary: 'The container engine or the process runtime failed to start, list or stop a replica.',
  },
  FERRY_PORT_IN_USE: {
    status: 500,
    summary: 'A port Ferry was asked to listen on is taken by another program.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FerryErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  /** Seconds a client should wait before retrying (sent as Retry-After). */
  retryAfterSeconds?: number;
  cause?: unknown;
  /** Structured details (e.g. a list of spec problems). Must never contain secrets. */
  details?: unknown;
}

/** Brand shared by every copy of this module (a handler loaded through tsx gets its own copy). */
const BRAND = Symbol.for('ferry.FerryError');

export class FerryError extends Error {
  readonly [BRAND] = true;
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.hint = options.hint;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }
}

/** True when `code` is one of the catalogue's codes (e.g. a code that crossed a process boundary). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** True for a FerryError from any copy of this module (not just `instanceof` this one). */
export function isFerryError(value: unknown): value is FerryError {
  return (
    value instanceof Error &&
    (value as unknown as Record<symbol, unknown>)[BRAND] === true &&
    typeof (value as FerryError).code === 'string' &&
    (value as FerryError).code in ERROR_CODES
  );
}
