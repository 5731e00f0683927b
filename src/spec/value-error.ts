import { FerryError } from '../core/errors.ts';

/**
 * A single value in ferry.yaml (or a flag) that does not parse: a duration, a size, a CPU quantity.
 * The spec schema turns it into a SpecProblem (message + hint); other callers may show it as is.
 */
export class SpecValueError extends FerryError {
  constructor(message: string, hint?: string) {
    super('FERRY_SPEC_INVALID', message, hint === undefined ? {} : { hint });
    this.name = 'SpecValueError';
  }
}

/** How a value is shown in a message: strings quoted, everything else as JSON, cut to a readable length. */
export function showValue(value: unknown, max = 60): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'number' || typeof value === 'boolean' || value === null) text = String(value);
  else if (value === undefined) text = 'nothing';
  else if (typeof value === 'bigint') text = value.toString();
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
