/**
 * A small ONNX model builder for tests, benchmarks and examples: describe a graph in plain TypeScript,
 * get ModelProto bytes back. Wraps the protobufjs classes of the `onnx-proto` package.
 *
 *   const bytes = buildModel({
 *     inputs: [{ name: 'x', elemType: 'FLOAT', dims: ['N', 4] }],
 *     outputs: [{ name: 'y', elemType: 'FLOAT', dims: ['N', 4] }],
 *     nodes: [{ op: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
 *   });
 *
 * Encoding is deterministic: the same description always gives the same bytes.
 */
import { endianness } from 'node:os';
import onnxProto from 'onnx-proto';
import type { Datatype } from '../../src/protocol/types.ts';

const { onnx } = onnxProto;

/** ONNX tensor element types (names of onnx.TensorProto.DataType). */
export type ElemType =
  | 'FLOAT'
  | 'UINT8'
  | 'INT8'
  | 'UINT16'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'STRING'
  | 'BOOL'
  | 'FLOAT16'
  | 'DOUBLE'
  | 'UINT32'
  | 'UINT64';

/** The ONNX element type that carries each Open Inference Protocol datatype (BYTES -> STRING). */
export const ELEM_TYPE_FOR_DATATYPE: Readonly<Record<Datatype, ElemType>> = {
  BOOL: 'BOOL',
  UINT8: 'UINT8',
  UINT16: 'UINT16',
  UINT32: 'UINT32',
  UINT64: 'UINT64',
  INT8: 'INT8',
  INT16: 'INT16',
  INT32: 'INT32',
  INT64: 'INT64',
  FP16: 'FLOAT16',
  FP32: 'FLOAT',
  FP64: 'DOUBLE',
  BYTES: 'STRING',
};

/** A dimension: a fixed size, or a name for a symbolic (dynamic) one such as 'N'. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: ElemType;
  /** Omit to leave the shape unknown (rank included). */
  dims?: Dim[];
}

export type InitializerData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

/** A constant tensor stored in the graph (weights, biases, normalisation constants). */
export interface Initializer {
  name: string;
  dims: number[];
  data: InitializerData;
  /**
   * Needed only where the array type is ambiguous: Uint8Array defaults to UINT8 (say 'BOOL' for booleans),
   * Uint16Array defaults to UINT16 (say 'FLOAT16' for raw half-precision bits).
   */
  elemType?: ElemType;
}

/**
 * Attribute values. A number is an INT when it is an integer and a FLOAT otherwise, likewise for arrays;
 * wrap in { float } / { floats } to force floats (e.g. alpha = 1), and use { tensor } for a TENSOR attribute.
 */
export type AttributeValue =
  | number
  | number[]
  | string
  | string[]
  | { float: number }
  | { floats: number[] }
  | { tensor: Omit<Initializer, 'name'> };

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
  /** Defaults to `<op>_<index>`. */
  name?: string;
  /** Operator domain; '' (the default ONNX domain) unless told. */
  domain?: string;
}

export interface ModelDescription {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  initializers?: Initializer[];
  /** Default-domain opset version. Default 17. */
  opset?: number;
  /** ModelProto.ir_version. Default 8. */
  irVersion?: number;
  /** Graph name. Default 'ferry'. */
  graphName?: string;
  docString?: string;
  /** Written to ModelProto.metadata_props, in key order as given. */
  metadata?: Record<string, string>;
}

export const DEFAULT_OPSET = 17;
export const DEFAULT_IR_VERSION = 8;

/** Builds the serialised ModelProto. Throws an Error naming the offending field on malformed input. */
export function buildModel(description: ModelDescription): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: description.irVersion ?? DEFAULT_IR_VERSION,
    producerName: 'ferry-tools-onnx',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: description.opset ?? DEFAULT_OPSET }],
    docString: description.docString ?? '',
    metadataProps: Object.entries(description.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: description.graphName ?? 'ferry',
      input: description.inputs.map((v) => valueInfo(v, 'inputs')),
      output: description.outputs.map((v) => valueInfo(v, 'outputs')),
      initializer: (description.initializers ?? []).map((init) =>
        tensorProto(init, `initializers.${init.name}`),
      ),
      node: description.nodes.map((node, index) => nodeProto(node, index)),
    },
  });
  // protobufjs hands back a Node Buffer, possibly a slice of a shared pool: copy into a plain Uint8Array.
  return new Uint8Array(onnx.ModelProto.encode(model).finish());
}

/** Decodes ModelProto bytes (for tests and debugging). */
export function decodeModel(bytes: Uint8Array): InstanceType<typeof onnx.ModelProto> {
  return onnx.ModelProto.decode(bytes);
}

function elemTypeCode(elemType: ElemType, where: string): number {
  if (!Object.hasOwn(COMPATIBLE, elemType)) {
    const allowed = Object.keys(COMPATIBLE).join(', ');
    throw new Error(`${where}: unknown element type ${JSON.stringify(elemType)}; allowed: ${allowed}`);
  }
  return onnx.TensorProto.DataType[elemType];
}

function valueInfo(v: ValueInfo, where: string) {
  const path = `${where}.${v.name}`;
  const tensorType: { elemType: number; shape?: { dim: object[] } } = {
    elemType: elemTypeCode(v.elemType, path),
  };
  if (v.dims !== undefined) {
    tensorType.shape = {
      dim: v.dims.map((d, i) => {
        if (typeof d === 'string') return { dimParam: d };
        if (!Number.isInteger(d) || d < 0) {
          throw new Error(
            `${path}.dims[${i}]: ${d} is not a size; use a non-negative integer or a name like 'N'`,
          );
        }
        return { dimValue: d };
      }),
    };
  }
  return { name: v.name, type: { tensorType } };
}

/** Element type implied by a typed array (ambiguous ones resolved by `elemType`). */
function inferElemType(data: InitializerData): ElemType {
  if (Array.isArray(data)) return 'STRING';
  if (data instanceof Float32Array) return 'FLOAT';
  if (data instanceof Float64Array) return 'DOUBLE';
  if (data instanceof Int8Array) return 'INT8';
  if (data instanceof Uint8Array) return 'UINT8';
  if (data instanceof Int16Array) return 'INT16';
  if (data instanceof Uint16Array) return 'UINT16';
  if (data instanceof Int32Array) return 'INT32';
  if (data instanceof Uint32Array) return 'UINT32';
  if (data instanceof BigInt64Array) return 'INT64';
  return 'UINT64';
}

/** Array types each element type may be stored from. */
const COMPATIBLE: Record<ElemType, ElemType[]> = {
  FLOAT: ['FLOAT'],
  DOUBLE: ['DOUBLE'],
  INT8: ['INT8'],
  UINT8: ['UINT8'],
  BOOL: ['UINT8'],
  INT16: ['INT16'],
  UINT16: ['UINT16'],
  FLOAT16: ['UINT16'],
  INT32: ['INT32'],
  UINT32: ['UINT32'],
  INT64: ['INT64'],
  UINT64: ['UINT64'],
  STRING: ['STRING'],
};

function tensorProto(init: Omit<Initializer, 'name'> & { name?: string }, where: string) {
  const arrayType = inferElemType(init.data);
  const elemType = init.elemType ?? arrayType;
  const dataType = elemTypeCode(elemType, where);
  if (!COMPATIBLE[elemType].includes(arrayType)) {
    throw new Error(`${where}: elemType ${elemType} cannot be stored from data of element type ${arrayType}`);
  }
  const count = init.dims.reduce((a, b) => a * b, 1);
  if (count !== init.data.length) {
    throw new Error(`${where}: dims [${init.dims}] hold ${count} elements but data has ${init.data.length}`);
  }
  const base = { name: init.name ?? '', dims: init.dims, dataType };
  if (Array.isArray(init.data)) {
    const encoder = new TextEncoder();
    return { ...base, stringData: init.data.map((s) => encoder.encode(s)) };
  }
  // raw_data is little-endian by definition; typed arrays use the host's byte order.
  if (endianness() !== 'LE') throw new Error('tools/onnx builder: big-endian hosts are not supported');
  const bytes = new Uint8Array(init.data.buffer, init.data.byteOffset, init.data.byteLength);
  return { ...base, rawData: bytes.slice() };
}

const isIntegers = (xs: number[]) => xs.every((x) => Number.isInteger(x));

function attributeProto(name: string, value: AttributeValue, where: string) {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    if (value.every((v): v is string => typeof v === 'string')) {
      const encoder = new TextEncoder();
      return { name, type: T.STRINGS, strings: value.map((s) => encoder.encode(s)) };
    }
    const numbers = value as number[];
    return isIntegers(numbers)
      ? { name, type: T.INTS, ints: numbers }
      : { name, type: T.FLOATS, floats: numbers };
  }
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  if ('tensor' in value) return { name, type: T.TENSOR, t: tensorProto(value.tensor, `${where}.${name}`) };
  throw new Error(`${where}.${name}: unsupported attribute value ${JSON.stringify(value)}`);
}

function nodeProto(node: Node, index: number) {
  const name = node.name ?? `${node.op}_${index}`;
  const where = `nodes[${index}] (${name}).attributes`;
  return {
    name,
    opType: node.op,
    domain: node.domain ?? '',
    input: node.inputs,
    output: node.outputs,
    attribute: Object.entries(node.attributes ?? {}).map(([key, value]) => attributeProto(key, value, where)),
  };
}
