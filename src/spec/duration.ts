/**
 * Durations in ferry.yaml: a number with a unit, Go style, e.g. "500us", "2ms", "1.5s", "1m30s".
 * Units: ns, us (or µs), ms, s, m, h, d (24 h). A bare 0 is allowed; any other bare number needs a unit.
 * Parsed to milliseconds (fractions allowed, exact to the nanosecond).
 */
import { SpecValueError, showValue } from './value-error.ts';

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
  d: 86_400e9,
};

export const DURATION_UNITS = ['ns', 'us', 'µs', 'ms', 's', 'm', 'h', 'd'] as const;

const PART = /(\d+(?:\.\d*)?|\.\d+)([a-zµμ]+)/gy;
const HINT = 'use a number with a unit (ns, us, ms, s, m, h, d), e.g. "2ms", "1.5s", "1m30s" or "30d"';
/** Largest duration accepted: about 104 days, where nanoseconds stop being exact. */
const MAX_NS = Number.MAX_SAFE_INTEGER;

/** Parses a duration to milliseconds. Throws SpecValueError (with a hint) when it is not one. */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') {
    if (text === 0) return 0;
    if (!Number.isFinite(text)) throw new SpecValueError(`${showValue(text)} is not a duration`, HINT);
    throw new SpecValueError(
      `${showValue(text)} has no unit`,
      `add a unit, e.g. "${text}ms" or "${text}s" (only 0 may be written without one)`,
    );
  }
  if (typeof text !== 'string') throw new SpecValueError(`${showValue(text)} is not a duration`, HINT);
  const source = text.trim();
  if (source === '0') return 0;
  if (source === '') throw new SpecValueError('an empty string is not a duration', HINT);
  if (source.startsWith('-')) throw new SpecValueError(`${showValue(text)} is negative`, HINT);
  if (/^\+?(\d+(\.\d*)?|\.\d+)$/.test(source)) {
    throw new SpecValueError(
      `${showValue(text)} has no unit`,
      `add a unit, e.g. "${source}ms" or "${source}s"`,
    );
  }
  let ns = 0;
  PART.lastIndex = 0;
  let end = 0;
  while (end < source.length) {
    PART.lastIndex = end;
    const match = PART.exec(source);
    if (match === null) throw new SpecValueError(`${showValue(text)} is not a duration`, HINT);
    const unit = UNIT_NS[match[2]!];
    if (unit === undefined) {
      throw new SpecValueError(`${showValue(text)} has an unknown unit "${match[2]}"`, HINT);
    }
    ns += Number(match[1]) * unit;
    end = PART.lastIndex;
  }
  ns = Math.round(ns);
  if (!(ns <= MAX_NS))
    throw new SpecValueError(`${showValue(text)} is too long`, 'the longest duration is 104 days');
  return ns / 1e6;
}

/** Formats milliseconds the way ferry.yaml writes them: 0, "250us", "2ms", "1.5s", "1m30s", "2h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0)
    throw new RangeError(`formatDuration: ${ms} is not a non-negative duration`);
  const ns = Math.round(ms * 1e6);
  if (ns === 0) return '0';
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${ns / 1e3}us`;
  if (ns < 1e9) return `${ns / 1e6}ms`;
  if (ns < 60e9) return `${ns / 1e9}s`;
  let rest = ns;
  let out = '';
  const hours = Math.floor(rest / 3600e9);
  if (hours > 0) {
    out += `${hours}h`;
    rest -= hours * 3600e9;
  }
  const minutes = Math.floor(rest / 60e9);
  if (minutes > 0) {
    out += `${minutes}m`;
    rest -= minutes * 60e9;
  }
  if (rest > 0) out += `${rest / 1e9}s`;
  return out;
}
