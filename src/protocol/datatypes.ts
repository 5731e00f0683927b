/**
 * Per-datatype facts of the Open Inference Protocol: element sizes, typed-array constructors,
 * safe element counts and IEEE-754 half-precision (FP16) conversion. Pure.
 */
import { FerryError } from '../core/errors.ts';
import { DATATYPES, type Datatype, type NumericTensorData, type TensorData } from './types.ts';

export type NumericDatatype = Exclude<Datatype, 'BYTES'>;

/** Bytes per element in the binary tensor format; BYTES is variable (4-byte length + bytes per element). */
export const ELEMENT_BYTES: Readonly<Record<NumericDatatype, number>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
};

export type NumericArrayConstructor =
  | Uint8ArrayConstructor
  | Uint16ArrayConstructor
  | Uint32ArrayConstructor
  | BigUint64ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;

const CONSTRUCTORS: Readonly<Record<NumericDatatype, NumericArrayConstructor>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array, // raw half bits
  FP32: Float32Array,
  FP64: Float64Array,
};

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && DATATYPE_SET.has(value);
}

/** Bytes per element, or undefined for BYTES (variable length). */
export function elementByteSize(datatype: Datatype): number | undefined {
  return datatype === 'BYTES' ? undefined : ELEMENT_BYTES[datatype];
}

export function typedArrayConstructor(datatype: NumericDatatype): NumericArrayConstructor {
  return CONSTRUCTORS[datatype];
}

/** A zero-filled tensor buffer of n elements (BYTES: n empty byte strings). */
export function allocate(datatype: 'BYTES', n: number): Uint8Array[];
export function allocate(datatype: NumericDatatype, n: number): NumericTensorData;
export function allocate(datatype: Datatype, n: number): TensorData;
export function allocate(datatype: Datatype, n: number): TensorData {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `allocate(${datatype}, ${n}): element count must be a non-negative integer`,
    );
  }
  if (datatype === 'BYTES') {
    const empty = new Uint8Array(0);
    return Array.from({ length: n }, () => empty);
  }
  return new CONSTRUCTORS[datatype](n);
}

/** Number of elements in a tensor's data (BYTES: array length). */
export function dataLength(data: TensorData): number {
  return data.length;
}

/**
 * Element count of a shape. Rejects dims that are not non-negative safe integers (FERRY_INVALID_INPUT)
 * and products beyond Number.MAX_SAFE_INTEGER (FERRY_PAYLOAD_TOO_LARGE). `where` names the shape in messages.
 */
export function elementCount(shape: readonly unknown[], where = 'shape'): number {
  let hasZero = false;
  for (let i = 0; i < shape.length; i++) {
    const dim = shape[i];
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw new FerryError(
        'FERRY_INVALID_INPUT',
        `${where}[${i}] is ${describeValue(dim)}; dimensions must be integers >= 0 (shape ${describeValue(shape)})`,
      );
    }
    if (dim === 0) hasZero = true;
  }
  if (hasZero) return 0;
  let count = 1;
  for (const dim of shape as number[]) {
    count *= dim;
    if (count > Number.MAX_SAFE_INTEGER) {
      throw new FerryError(
        'FERRY_PAYLOAD_TOO_LARGE',
        `${where} ${describeValue(shape)} has more than ${Number.MAX_SAFE_INTEGER} elements`,
      );
    }
  }
  return count;
}

/** A short, safe rendering of a user-supplied value for messages (never recurses more than one level). */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) {
    if (value.length > 16) return 'an array';
    return `[${value.map(describeScalar).join(',')}]`;
  }
  return describeScalar(value);
}

function describeScalar(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (Array.isArray(value)) return 'an array';
  if (value === null || typeof value !== 'object') return String(value);
  return 'an object';
}

// ---- FP16 ----------------------------------------------------------------------------------------------

const TWO_POW_24 = 2 ** 24;
const TWO_POW_MINUS_14 = 2 ** -14;

/** Decodes IEEE-754 half bits (0..0xffff) into a number. Exact. */
export function fp16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return (sign * fraction) / TWO_POW_24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Encodes a number as IEEE-754 half bits, rounding to nearest even (directly from the double: no double rounding). */
export function numberToFp16(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a === Number.POSITIVE_INFINITY) return sign | 0x7c00;
  if (a < TWO_POW_MINUS_14) {
    // Subnormal (or rounds up to the smallest normal: m === 1024 continues into the exponent field).
    return sign | roundHalfEven(a * TWO_POW_24);
  }
  let exponent = Math.floor(Math.log2(a));
  if (2 ** exponent > a) exponent--;
  else if (2 ** (exponent + 1) <= a) exponent++;
  let mantissa = roundHalfEven((a / 2 ** exponent - 1) * 1024);
  if (mantissa === 1024) {
    mantissa = 0;
    exponent++;
  }
  if (exponent > 15) return sign | 0x7c00;
  return sign | ((exponent + 15) << 10) | mantissa;
}
