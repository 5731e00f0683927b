/**
 * The binary half of the codec: Triton's binary tensor data extension
 * (triton-inference-server/server docs/protocol/extension_binary_data.md).
 *
 * Body = JSON header (length in `Inference-Header-Content-Length`) + raw tensor bytes, little-endian,
 * row-major, no padding, in the order of the tensors that carry `parameters.binary_data_size`.
 * BYTES elements are a 4-byte little-endian length followed by the bytes; BOOL is one byte each.
 *
 * Reading: a region whose absolute offset is a multiple of the element size is viewed in place (no copy;
 * the tensor keeps the body alive); a misaligned region is copied once. Our encoders pad the JSON header
 * with spaces to a multiple of 8 so the other side can always view.
 * Assumes a little-endian host (x86-64, arm64), like onnxruntime-node.
 */
import { FerryError } from '../core/errors.ts';
import { ELEMENT_BYTES, type NumericDatatype, typedArrayConstructor } from './datatypes.ts';
import type { TensorHeader } from './json-codec.ts';
import type { Datatype, NumericTensorData, TensorData } from './types.ts';

export const OCTET_STREAM = 'application/octet-stream';
export const JSON_TYPE = 'application/json';
/** Header padding: JSON headers we write are a multiple of this many bytes. */
export const HEADER_ALIGNMENT = 8;

/** Parses `Inference-Header-Content-Length`: an integer from 0 to the body length. */
export function parseHeaderLength(value: string, bodyLength: number): number {
  const trimmed = value.trim();
  const n = /^\d{1,15}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > bodyLength) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `Inference-Header-Content-Length is ${JSON.stringify(value)}; it must be an integer from 0 to the body length (${bodyLength})`,
      { hint: 'It gives the byte length of the JSON header at the start of the body.' },
    );
  }
  return n;
}

/** Reads one tensor's binary region starting at `offset`; returns the data and the offset after it. */
export function readBinaryTensor(
  header: TensorHeader,
  body: Buffer,
  offset: number,
): { data: TensorData; next: number } {
  const size = header.binaryDataSize!;
  const end = offset + size;
  if (end > body.length) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `${header.label}: parameters.binary_data_size is ${size} but only ${body.length - offset} bytes of the body remain at offset ${offset}`,
      {
        hint: 'The binary tensor data is truncated, or binary_data_size / Inference-Header-Content-Length is wrong.',
      },
    );
  }
  if (header.datatype === 'BYTES') return { data: readBytesElements(header, body, offset, end), next: end };
  const elementSize = ELEMENT_BYTES[header.datatype];
  const expected = header.count * elementSize;
  if (size !== expected) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${header.label}: parameters.binary_data_size is ${size} but shape ${JSON.stringify(header.shape)} of ${header.datatype} needs ${expected} bytes (${header.count} x ${elementSize})`,
    );
  }
  const data = viewOrCopy(header.datatype, body, offset, header.count);
  if (header.datatype === 'BOOL') {
    const bools = data as Uint8Array;
    for (let i = 0; i < bools.length; i++) {
      if (bools[i]! > 1) {
        throw new FerryError(
          'FERRY_INVALID_INPUT',
          `${header.label}: BOOL element ${i} is byte ${bools[i]}; BOOL elements are one byte, 0 or 1`,
        );
      }
    }
  }
  return { data, next: end };
}

/** A typed array over `count` elements at body[offset..]: a view when aligned, else a copy. */
export function viewOrCopy(
  datatype: NumericDatatype,
  body: Buffer,
  offset: number,
  count: number,
): NumericTensorData {
  const Ctor = typedArrayConstructor(datatype);
  const size = ELEMENT_BYTES[datatype];
  const absolute = body.byteOffset + offset;
  if (absolute % size === 0)
    return new Ctor(body.buffer as ArrayBuffer, absolute, count) as NumericTensorData;
  const copy = new Ctor(count) as NumericTensorData;
  new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength).set(
    body.subarray(offset, offset + count * size),
  );
  return copy;
}

function readBytesElements(header: TensorHeader, body: Buffer, start: number, end: number): Uint8Array[] {
  const n = header.count;
  // Every element needs at least its 4-byte length: check before allocating n slots.
  if (n * 4 > end - start) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${header.label}: shape ${JSON.stringify(header.shape)} needs ${n} BYTES elements (at least ${n * 4} bytes), but parameters.binary_data_size is ${end - start}`,
    );
  }
  const out: Uint8Array[] = new Array(n);
  let at = start;
  for (let i = 0; i < n; i++) {
    if (at + 4 > end) throw bytesOverrun(header, i, end - start);
    const length = body.readUInt32LE(at);
    at += 4;
    if (at + length > end) throw bytesOverrun(header, i, end - start);
    out[i] = body.subarray(at, at + length);
    at += length;
  }
  if (at !== end) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${header.label}: the ${n} BYTES elements use ${at - start} bytes but parameters.binary_data_size is ${end - start}`,
    );
  }
  return out;
}

function bytesOverrun(header: TensorHeader, index: number, size: number): FerryError {
  return new FerryError(
    'FERRY_INVALID_INPUT',
    `${header.label}: BYTES element ${index} runs past parameters.binary_data_size (${size}); each element is a 4-byte little-endian length followed by that many bytes`,
  );
}

// ---- writing ---------------------------------------------------------------------------------------------

/** The binary encoding of a tensor's data as one or more buffers (numeric data is not copied). */
export function binaryParts(
  datatype: Datatype,
  data: TensorData,
  label: string,
): { parts: Buffer[]; size: number } {
  if (datatype === 'BYTES') {
    if (!Array.isArray(data)) throw wrongData(label, datatype, 'an array of Uint8Array');
    let size = 0;
    for (const element of data) size += 4 + element.byteLength;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const element of data) {
      out.writeUInt32LE(element.byteLength, at);
      out.set(element, at + 4);
      at += 4 + element.byteLength;
    }
    return { parts: [out], size };
  }
  const Ctor = typedArrayConstructor(datatype);
  if (!(data instanceof Ctor)) throw wrongData(label, datatype, Ctor.name);
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { parts: [view], size: view.length };
}

function wrongData(label: string, datatype: Datatype, expected: string): FerryError {
  return new FerryError('FERRY_INTERNAL', `${label}: ${datatype} data must be ${expected}`);
}

/** Pads a JSON header with spaces (legal JSON whitespace) to a multiple of HEADER_ALIGNMENT bytes. */
export function paddedHeader(json: string): Buffer {
  const length = Buffer.byteLength(json, 'utf8');
  const padded = Math.ceil(length / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  const out = Buffer.allocUnsafe(padded);
  out.write(json, 0, 'utf8');
  out.fill(0x20, length);
  return out;
}
