/**
 * Sizes and CPU quantities in ferry.yaml, in the Kubernetes style.
 * Bytes: an integer, or a number with a unit: k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024);
 * a trailing "B" is allowed ("64MiB", "1GB"). CPU: cores as a number ("2", 0.5) or millicores ("500m").
 */
import { SpecValueError, showValue } from './value-error.ts';

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

const BYTES_HINT =
  'use bytes as an integer, or a number with a unit k, M, G, T (1000s) or Ki, Mi, Gi, Ti (1024s), e.g. "64Mi"';
const SIZE = /^(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)$/;

/** Parses a size to a whole number of bytes. Throws SpecValueError (with a hint) when it is not one. */
export function parseBytes(text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isSafeInteger(text) && text >= 0) return text;
    throw new SpecValueError(`${showValue(text)} is not a whole number of bytes`, BYTES_HINT);
  }
  if (typeof text !== 'string') throw new SpecValueError(`${showValue(text)} is not a size`, BYTES_HINT);
  const source = text.trim();
  if (source.startsWith('-')) throw new SpecValueError(`${showValue(text)} is negative`, BYTES_HINT);
  const match = SIZE.exec(source);
  if (match === null) throw new SpecValueError(`${showValue(text)} is not a size`, BYTES_HINT);
  const number = match[1]!;
  let unit = match[2]!;
  if (unit.length > 1 && unit.endsWith('B')) unit = unit.slice(0, -1);
  else if (unit === 'B') unit = '';
  const factor = BYTE_UNITS[unit];
  if (factor === undefined) {
    const lower = unit.toLowerCase();
    const guess =
      lower === 'k' || lower === 'kb'
        ? `"${number}k" (1000 bytes each) or "${number}Ki" (1024)`
        : lower === 'm' || lower === 'mb'
          ? `"${number}M" (megabytes) or "${number}Mi" (mebibytes); a lowercase "m" is not a size unit`
          : lower === 'ki' || lower === 'mi' || lower === 'gi' || lower === 'ti'
            ? `"${number}${lower[0]!.toUpperCase()}i"`
            : undefined;
    throw new SpecValueError(
      `${showValue(text)} has an unknown size unit "${match[2]}"`,
      guess === undefined ? BYTES_HINT : `did you mean ${guess}?`,
    );
  }
  if (unit === '' && number.includes('.')) {
    throw new SpecValueError(`${showValue(text)} is not a whole number of bytes`, BYTES_HINT);
  }
  const bytes = Math.round(Number(number) * factor);
  if (!Number.isSafeInteger(bytes)) throw new SpecValueError(`${showValue(text)} is too large`, BYTES_HINT);
  return bytes;
}

/** Formats bytes with the largest binary unit that divides them exactly: 67108864 -> "64Mi". */
export function formatBytes(bytes: number): string {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki'] as const) {
    const factor = BYTE_UNITS[unit]!;
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

const CPU_HINT = 'use cores as a number ("2", 0.5) or millicores ("500m")';

/** Parses a CPU quantity to cores (0.5 for "500m"), to a precision of 1 millicore. Must be > 0. */
export function parseCpu(text: string | number): number {
  let cores: number;
  if (typeof text === 'number') {
    if (!Number.isFinite(text))
      throw new SpecValueError(`${showValue(text)} is not a CPU quantity`, CPU_HINT);
    cores = text;
  } else if (typeof text === 'string') {
    const source = text.trim();
    const match = /^(\d+(?:\.\d*)?|\.\d+)(m?)$/.exec(source);
    if (match === null) {
      throw new SpecValueError(
        `${showValue(text)} is not a CPU quantity`,
        source.startsWith('-') ? 'CPU must be more than 0' : CPU_HINT,
      );
    }
    if (match[2] === 'm') {
      if (match[1]!.includes('.')) {
        throw new SpecValueError(
          `${showValue(text)} has a fraction of a millicore`,
          'use whole millicores, e.g. "250m"',
        );
      }
      cores = Number(match[1]) / 1000;
    } else cores = Number(match[1]);
  } else throw new SpecValueError(`${showValue(text)} is not a CPU quantity`, CPU_HINT);
  if (cores < 0) throw new SpecValueError(`${showValue(text)} is negative`, 'CPU must be more than 0');
  const milli = Math.round(cores * 1000);
  if (milli <= 0) {
    throw new SpecValueError(
      `${showValue(text)} is less than 1 millicore`,
      'CPU must be at least "1m"; leave resources.cpu out (or null) for no limit',
    );
  }
  return milli / 1000;
}
