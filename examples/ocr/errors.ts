/**
 * The error this handler throws. Ferry answers an error whose `code` is one of its codes (docs/errors.md)
 * with that code's status: FERRY_INVALID_INPUT becomes a 400 naming the problem, not a 500.
 */
export type HandlerErrorCode = 'FERRY_INVALID_INPUT' | 'FERRY_MODEL_LOAD_FAILED' | 'FERRY_INFERENCE_FAILED';

export class HandlerError extends Error {
  readonly code: HandlerErrorCode;
  readonly hint: string | undefined;

  constructor(code: HandlerErrorCode, message: string, options: { hint?: string } = {}) {
    super(message);
    this.name = 'HandlerError';
    this.code = code;
    this.hint = options.hint;
  }
}
