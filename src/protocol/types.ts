/**
 * Open Inference Protocol v2 types, transport-neutral.
 * Tensors carry their data as typed arrays (decoded once, at the edge), never as JS number arrays.
 */

export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

export type NumericTensorData =
  | Uint8Array // BOOL (0/1) and UINT8
  | Uint16Array // UINT16, and FP16 as raw IEEE-754 half bits
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/** BYTES tensors: one Uint8Array per element (row-major). */
export type BytesTensorData = Uint8Array[];

export type TensorData = NumericTensorData | BytesTensorData;

export type ParameterValue = string | number | boolean;
export type Parameters = Record<string, ParameterValue>;

export interface Tensor {
  name: string;
  datatype: Datatype;
  /** Concrete shape; the product equals the element count of `data`. */
  shape: number[];
  data: TensorData;
  parameters?: Parameters;
}

export interface RequestedOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferRequest {
  id?: string;
  parameters?: Parameters;
  inputs: Tensor[];
  /** When present, only these outputs are returned. */
  outputs?: RequestedOutput[];
}

export interface InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: Tensor[];
}

/** A tensor as the model declares it: -1 marks a dynamic dimension. */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/** One row of the model repository index (repository extension). */
export interface RepositoryIndexEntry {
  name: string;
  version: string;
  state: 'UNAVAILABLE' | 'LOADING' | 'READY' | 'UNLOADING' | 'FAILED';
  reason: string;
}

/** Request and response header for the binary tensor data extension. */
export const BINARY_HEADER = 'inference-header-content-length';
