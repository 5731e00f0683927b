/**
 * The JSON half of the Open Inference Protocol v2 codec: reading request/response documents (one
 * JSON.parse, typed arrays filled straight from the parsed arrays) and writing tensors as JSON text by
 * string building. Pure.
 *
 * Value conventions (both directions):
 * - INT64/UINT64 become BigInt64Array/BigUint64Array and are printed exactly as digits (never through
 *   Number). JSON numbers beyond 2^53 are read exactly: when one is seen, the document text is re-read with
 *   long integer literals quoted (see rewriteLongIntegers). Decimal strings ("123") are accepted too.
 * - Integer types accept only JSON numbers that are integers within the type's range.
 * - NaN and +-Infinity are not valid JSON. Ferry writes them as the strings "NaN", "Infinity" and
 *   "-Infinity" (lossless, and what JSON-based ML tooling such as pandas' to_json(...) round-trips by name),
 *   and accepts those strings for FP16/FP32/FP64 elements. Writing null would lose the distinction.
 *   Negative zero is written as -0.
 * - BOOL is true/false (0 and 1 are accepted on input). BYTES elements are UTF-8 strings; bytes that are
 *   not valid UTF-8 cannot round-trip through JSON (use the binary extension for them).
 * - FP32 tensors of up to SHORT_FLOAT_LIMIT elements are printed in the shortest form that reads back
 *   as the same float32 (0.1, not 0.10000000149011612); larger ones use the faster native double
 *   printer. Both read back to identical float32 values.
 */
import { FerryError } from '../core/errors.ts';
import {
  allocate,
  describeValue,
  elementCount,
  fp16ToNumber,
  isDatatype,
  numberToFp16,
} from './datatypes.ts';
import { DATATYPES, type Datatype, type Parameters, type TensorData } from './types.ts';

/** Which list a tensor sits in; decides message wording ("input"/"output") and field paths. */
export type TensorRole = 'input' | 'output';

/** A tensor's fields as read from JSON, before its data is decoded. */
export interface TensorHeader {
  /** e.g. `inputs[1]` */
  where: string;
  /** e.g. `input "x"` */
  label: string;
  index: number;
  name: string;
  datatype: Datatype;
  shape: number[];
  count: number;
  /** Parameters without the transport-only keys (binary_data_size). */
  parameters: Parameters | undefined;
  /** parameters.binary_data_size when present. */
  binaryDataSize: number | undefined;
  /** The raw `data` field (undefined when absent). */
  data: unknown;
}

export const SHORT_FLOAT_LIMIT = 1024;
const MAX_NESTING = 64;

// ---- reading ---------------------------------------------------------------------------------------------

export function parseJsonText(text: string, what: string): unknown {
  if (text.trim() === '') {
    throw new FerryError('FERRY_BAD_REQUEST', `${what} is empty; expected a JSON object`, {
      hint: 'Send {"inputs": [{"name": ..., "datatype": ..., "shape": [...], "data": [...]}]}.',
    });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FerryError('FERRY_BAD_REQUEST', `${what} is not valid JSON: ${(error as Error).message}`, {
      hint: 'Check the body with a JSON linter; NaN and Infinity must be written as strings ("NaN").',
    });
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parameters: an object whose values are strings, numbers or booleans. */
export function readParameters(value: unknown, where: string): Parameters | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `${where} must be an object of strings, numbers and booleans, got ${describeValue(value)}`,
    );
  }
  for (const key in value) {
    const v = value[key];
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `${where}.${key} is ${describeValue(v)}; parameter values must be strings, numbers or booleans`,
      );
    }
  }
  return value as Parameters;
}

export function readOptionalString(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new FerryError('FERRY_BAD_REQUEST', `${where} must be a string, got ${describeValue(value)}`);
  }
  return value;
}

/** Reads one entry of `inputs`/`outputs` (name, datatype, shape, parameters), checking the declared size. */
export function readTensorHeader(value: unknown, index: number, role: TensorRole): TensorHeader {
  const where = `${role}s[${index}]`;
  if (!isPlainObject(value)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `${where} must be an object with name, datatype, shape and data`,
    );
  }
  const name = value.name;
  if (typeof name !== 'string' || name === '') {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${where}.name must be a non-empty string, got ${describeValue(name)}`,
    );
  }
  const label = `${role} ${JSON.stringify(name)}`;
  const datatype = value.datatype;
  if (!isDatatype(datatype)) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${label}: ${where}.datatype is ${describeValue(datatype)}; allowed: ${DATATYPES.join(', ')}`,
    );
  }
  const shape = value.shape;
  if (!Array.isArray(shape)) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${label}: ${where}.shape must be an array of integers >= 0, got ${describeValue(shape)}`,
    );
  }
  let count: number;
  try {
    count = elementCount(shape, `${where}.shape`);
  } catch (error) {
    const ferry = error as FerryError;
    throw new FerryError(ferry.code, `${label}: ${ferry.message}`);
  }
  const raw = readParameters(value.parameters, `${where}.parameters`);
  let parameters = raw;
  let binaryDataSize: number | undefined;
  if (raw !== undefined && 'binary_data_size' in raw) {
    const size = raw.binary_data_size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `${label}: ${where}.parameters.binary_data_size must be a byte count (integer >= 0), got ${describeValue(size)}`,
      );
    }
    binaryDataSize = size;
    const { binary_data_size: _, ...rest } = raw;
    parameters = Object.keys(rest).length > 0 ? rest : undefined;
  }
  return {
    where,
    label,
    index,
    name,
    datatype,
    shape: shape as number[],
    count,
    parameters,
    binaryDataSize,
    data: value.data,
  };
}

/** Reads the `inputs`/`outputs` array, rejecting duplicate names. */
export function readTensorHeaders(value: unknown, role: TensorRole): TensorHeader[] {
  const key = `${role}s`;
  if (!Array.isArray(value)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      value === undefined
        ? `"${key}" is missing; expected an array of tensors`
        : `"${key}" must be an array of tensors, got ${describeValue(value)}`,
      { hint: `Send {"${key}": [{"name": ..., "datatype": ..., "shape": [...], "data": [...]}]}.` },
    );
  }
  const headers: TensorHeader[] = new Array(value.length);
  const seen = new Set<string>();
  for (let i = 0; i < value.length; i++) {
    const header = readTensorHeader(value[i], i, role);
    if (seen.has(header.name)) {
      throw new FerryError(
        'FERRY_INVALID_INPUT',
        `${header.label}: ${header.where} repeats the name; each ${role} appears once`,
      );
    }
    seen.add(header.name);
    headers[i] = header;
  }
  return headers;
}

/**
 * Decodes a tensor's JSON `data` (flat or nested arrays) into its typed array.
 * `exactData` returns the same tensor's `data` re-read with long integers preserved (see rewriteLongIntegers);
 * it is only called when an INT64/UINT64 element is beyond 2^53.
 */
export function decodeJsonData(header: TensorHeader, exactData: () => unknown): TensorData {
  const values = flattenData(header, header.data);
  const data = fillData(header, values, false);
  if (data !== undefined) return data;
  const exact = fillData(header, flattenData(header, exactData()), true);
  if (exact === undefined)
    throw new FerryError('FERRY_INTERNAL', `${header.label}: exact integer decoding failed`);
  return exact;
}

function flattenData(header: TensorHeader, data: unknown): unknown[] {
  if (!Array.isArray(data)) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      data === undefined
        ? `${header.label}: ${header.where}.data is missing (and no parameters.binary_data_size was given)`
        : `${header.label}: ${header.where}.data must be an array, got ${describeValue(data)}`,
    );
  }
  let values: unknown[] = data;
  if (data.length > 0 && Array.isArray(data[0])) {
    values = [];
    flattenInto(values, data, 1, header);
  }
  if (values.length !== header.count) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${header.label}: shape ${describeValue(header.shape)} needs ${header.count} elements, got ${values.length}`,
    );
  }
  return values;
}

function flattenInto(out: unknown[], values: unknown[], depth: number, header: TensorHeader): void {
  if (depth > MAX_NESTING) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${header.label}: ${header.where}.data is nested more than ${MAX_NESTING} deep`,
    );
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Array.isArray(v)) flattenInto(out, v, depth + 1, header);
    else out.push(v);
  }
}

const INT_RANGES = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
} as const;

const BIG_RANGES = {
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
  UINT64: [0n, 2n ** 64n - 1n],
} as const;

const FLOATS_ALLOWED = 'numbers or the strings "NaN", "Infinity", "-Infinity"';

function badElement(header: TensorHeader, index: number, value: unknown, allowed: string): FerryError {
  return new FerryError(
    'FERRY_INVALID_INPUT',
    `${header.label}: element ${index} of data is ${describeValue(value)}; ${header.datatype} takes ${allowed}`,
  );
}

/** Returns undefined when a 64-bit integer needs the exact (re-read) path and `exact` is false. */
function fillData(header: TensorHeader, values: unknown[], exact: boolean): TensorData | undefined {
  const n = values.length;
  const { datatype } = header;
  switch (datatype) {
    case 'FP32':
    case 'FP64': {
      const out = datatype === 'FP32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        out[i] = typeof v === 'number' ? v : specialFloat(header, i, v);
      }
      return out;
    }
    case 'FP16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        out[i] = numberToFp16(typeof v === 'number' ? v : specialFloat(header, i, v));
      }
      return out;
    }
    case 'INT8':
    case 'INT16':
    case 'INT32':
    case 'UINT8':
    case 'UINT16':
    case 'UINT32': {
      const [min, max] = INT_RANGES[datatype];
      const out = allocate(datatype, n) as Int32Array;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v === 'number' && v >= min && v <= max && Number.isInteger(v)) out[i] = v;
        else throw badElement(header, i, v, `integers from ${min} to ${max}`);
      }
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const [min, max] = BIG_RANGES[datatype];
      const out = datatype === 'INT64' ? new BigInt64Array(n) : new BigUint64Array(n);
      const allowed = `integers from ${min} to ${max} (JSON numbers or decimal strings)`;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        let big: bigint;
        if (typeof v === 'number') {
          if (!Number.isInteger(v)) throw badElement(header, i, v, allowed);
          if (!Number.isSafeInteger(v) && !exact) return undefined;
          big = BigInt(v);
        } else if (typeof v === 'string' && v.length <= 21 && /^-?\d+$/.test(v)) {
          big = BigInt(v);
        } else {
          throw badElement(header, i, v, allowed);
        }
        if (big < min || big > max) throw badElement(header, i, v, allowed);
        out[i] = big;
      }
      return out;
    }
    case 'BOOL': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === true || v === 1) out[i] = 1;
        else if (v !== false && v !== 0) throw badElement(header, i, v, 'true or false');
      }
      return out;
    }
    case 'BYTES': {
      const out: Uint8Array[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'string') throw badElement(header, i, v, 'strings (UTF-8)');
        out[i] = Buffer.from(v, 'utf8');
      }
      return out;
    }
  }
}

function specialFloat(header: TensorHeader, index: number, value: unknown): number {
  if (value === 'NaN') return Number.NaN;
  if (value === 'Infinity') return Number.POSITIVE_INFINITY;
  if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
  throw badElement(header, index, value, FLOATS_ALLOWED);
}

/**
 * Quotes integer literals of 16 or more digits outside strings, so JSON.parse keeps their exact digits.
 * Only used on text that already parsed, and only when a 64-bit integer beyond 2^53 was seen.
 */
export function rewriteLongIntegers(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"|(?<![\w.+-])-?\d{16,}(?![\w.+-])/g, (match) =>
    match.charCodeAt(0) === 34 ? match : `"${match}"`,
  );
}

// ---- writing ---------------------------------------------------------------------------------------------

function floatText(v: number): string {
  if (v - v === 0) return v === 0 && 1 / v < 0 ? '-0' : `${v}`;
  return v > 0 ? '"Infinity"' : v < 0 ? '"-Infinity"' : '"NaN"';
}

/** Shortest decimal that reads back as the same float32. */
function float32Text(v: number): string {
  if (v - v !== 0 || v === 0) return floatText(v);
  // Integers below 2^24 are exact in float32 and print as they are.
  if (Number.isInteger(v) && v < 16777216 && v > -16777216) return `${v}`;
  for (let p = 6; p < 9; p++) {
    const t = +v.toPrecision(p);
    if (Math.fround(t) === v) return `${t}`;
  }
  return `${+v.toPrecision(9)}`;
}

/** Shortest decimal that reads back as the same half. */
function fp16Text(bits: number): string {
  const v = fp16ToNumber(bits);
  if (v - v !== 0 || v === 0) return floatText(v);
  for (let p = 3; p < 6; p++) {
    const t = +v.toPrecision(p);
    if (numberToFp16(t) === bits) return `${t}`;
  }
  return `${v}`;
}

/** True when every element prints the same through JSON.stringify (no NaN, +-Infinity or -0). */
function allPlain(data: Float32Array | Float64Array): boolean {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0 || (v === 0 && 1 / v < 0)) return false;
  }
  return true;
}

function loopText<T>(data: ArrayLike<T>, text: (v: T) => string): string {
  const n = data.length;
  if (n === 0) return '[]';
  let s = `[${text(data[0]!)}`;
  for (let i = 1; i < n; i++) s += `,${text(data[i]!)}`;
  return `${s}]`;
}

const boolText = (v: number) => (v ? 'true' : 'false');
const bytesText = (v: Uint8Array) =>
  JSON.stringify(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8'));

/** A tensor's data as a flat JSON array text. */
export function jsonDataText(datatype: Datatype, data: TensorData): string {
  switch (datatype) {
    case 'BYTES':
      return loopText(data as Uint8Array[], bytesText);
    case 'BOOL':
      return loopText(data as Uint8Array, boolText);
    case 'FP16':
      return loopText(data as Uint16Array, fp16Text);
    case 'FP32': {
      const f = data as Float32Array;
      if (f.length <= SHORT_FLOAT_LIMIT) return loopText(f, float32Text);
      return allPlain(f) ? JSON.stringify(Array.from(f)) : loopText(f, floatText);
    }
    case 'FP64': {
      const f = data as Float64Array;
      return allPlain(f) ? JSON.stringify(Array.from(f)) : loopText(f, floatText);
    }
    case 'INT64':
    case 'UINT64':
      // BigInt arrays join as exact decimal digits.
      return `[${(data as BigInt64Array).join(',')}]`;
    default:
      if (Array.isArray(data)) return JSON.stringify(data);
      return JSON.stringify(Array.from(data as Int32Array));
  }
}

/** Element renderer for nested output (KServe v1); same conventions as jsonDataText. */
export function elementTextFn(datatype: Datatype): (data: TensorData, index: number) => string {
  switch (datatype) {
    case 'BYTES':
      return (data, i) => bytesText((data as Uint8Array[])[i]!);
    case 'BOOL':
      return (data, i) => boolText((data as Uint8Array)[i]!);
    case 'FP16':
      return (data, i) => fp16Text((data as Uint16Array)[i]!);
    case 'FP32':
      return (data, i) => float32Text((data as Float32Array)[i]!);
    case 'FP64':
      return (data, i) => floatText((data as Float64Array)[i]!);
    default:
      return (data, i) => `${(data as Int32Array)[i]}`;
  }
}

/** `{"name":..,"datatype":..,"shape":[..],"parameters":{..}` without the closing brace (callers add data). */
export function tensorHeadText(
  name: string,
  datatype: Datatype,
  shape: readonly number[],
  parameters: Parameters | undefined,
) {
  let s = `{"name":${JSON.stringify(name)},"datatype":"${datatype}","shape":${JSON.stringify(shape)}`;
  if (parameters !== undefined && Object.keys(parameters).length > 0)
    s += `,"parameters":${JSON.stringify(parameters)}`;
  return s;
}
