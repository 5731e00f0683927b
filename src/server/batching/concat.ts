/**
 * Turning a batch of requests into one model call and back: inputs are concatenated along the first
 * (batch) dimension, outputs are sliced along it. Pure.
 *
 * Only requests with equal batchKey() can be concatenated (same input names, datatypes and dimensions
 * after the first); give the Batcher `keyOf: (r) => batchKey(r)` so it never mixes them.
 *
 * splitBatch returns zero-copy views (subarray) into the model's output buffers: the slices of one
 * output share one ArrayBuffer, so never transfer or detach a slice's buffer.
 */
import { FerryError } from '../../core/errors.ts';
import type {
  BytesTensorData,
  InferRequest,
  NumericTensorData,
  Tensor,
  TensorData,
} from '../../protocol/types.ts';

/**
 * A string equal for requests that can share a batch: input names, datatypes and the dimensions after
 * the first, independent of the order the inputs are listed in.
 */
export function batchKey(request: InferRequest): string {
  const inputs = request.inputs;
  if (inputs.length === 1) return keyPart(inputs[0]!);
  const parts = inputs.map(keyPart);
  parts.sort();
  return parts.join('');
}

function keyPart(tensor: Tensor): string {
  // Length-prefixed name, so no name can imitate another part.
  return `${tensor.name.length}:${tensor.name}/${tensor.datatype}[${tensor.shape.slice(1).join(',')}]`;
}

/** Samples in a request: the first dimension of its first input (0 for a request without inputs). */
export function samplesOf(request: InferRequest): number {
  return request.inputs[0]?.shape[0] ?? 0;
}

/**
 * Concatenates each named input of the requests along dim 0. `sizes[i]` is the first dimension of
 * request i (the same for all of its inputs). One request is passed through without copying.
 */
export function concatBatch(
  requests: InferRequest[],
  inputNames: string[],
): { inputs: Tensor[]; sizes: number[] } {
  const count = requests.length;
  const sizes = new Array<number>(count);
  const inputs: Tensor[] = [];
  for (let k = 0; k < inputNames.length; k++) {
    const name = inputNames[k]!;
    const parts = new Array<Tensor>(count);
    for (let i = 0; i < count; i++) {
      const tensor = findInput(requests[i]!, name);
      if (tensor === undefined) {
        throw new FerryError('FERRY_INVALID_INPUT', `${describe(requests[i]!, i)} has no input "${name}"`, {
          hint: `The model's inputs are: ${inputNames.join(', ')}.`,
        });
      }
      const rows = batchRows(tensor, requests[i]!, i);
      if (k === 0) sizes[i] = rows;
      else if (sizes[i] !== rows) {
        throw new FerryError(
          'FERRY_INVALID_INPUT',
          `${describe(requests[i]!, i)}: input "${name}" has ${rows} rows in its first dimension but input "${inputNames[0]}" has ${sizes[i]}; with batching on, every input's first dimension is the batch size and must agree`,
        );
      }
      parts[i] = tensor;
    }
    inputs.push(count === 1 ? parts[0]! : concatTensors(name, parts, requests));
  }
  return { inputs, sizes };
}

function findInput(request: InferRequest, name: string): Tensor | undefined {
  for (const tensor of request.inputs) if (tensor.name === name) return tensor;
  return undefined;
}

function describe(request: InferRequest, index: number): string {
  return request.id === undefined ? `request #${index} of the batch` : `request "${request.id}"`;
}

/** The first dimension of a tensor, checked against its element count. */
function batchRows(tensor: Tensor, request: InferRequest, index: number): number {
  if (tensor.shape.length === 0) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${describe(request, index)}: input "${tensor.name}" is a scalar (shape []), but batching needs a first (batch) dimension`,
      { hint: `Send shape [1] (or [n, ...]), or turn batching off (serving.batching: false).` },
    );
  }
  const rows = tensor.shape[0]!;
  if (tensor.data.length !== rows * rowSize(tensor.shape)) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${describe(request, index)}: input "${tensor.name}" has shape [${tensor.shape.join(', ')}] but ${tensor.data.length} elements`,
    );
  }
  return rows;
}

/** Elements per row: the product of the dimensions after the first. */
function rowSize(shape: number[]): number {
  let size = 1;
  for (let d = 1; d < shape.length; d++) size *= shape[d]!;
  return size;
}

function sameTrailingDims(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let d = 1; d < a.length; d++) if (a[d] !== b[d]) return false;
  return true;
}

function concatTensors(name: string, parts: Tensor[], requests: InferRequest[]): Tensor {
  const first = parts[0]!;
  let rows = 0;
  let elements = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part.datatype !== first.datatype || !sameTrailingDims(part.shape, first.shape)) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `cannot batch input "${name}": ${describe(requests[i]!, i)} has ${part.datatype} [${part.shape.join(', ')}] but ${describe(requests[0]!, 0)} has ${first.datatype} [${first.shape.join(', ')}]; only requests with equal batchKey() may share a batch`,
      );
    }
    rows += part.shape[0]!;
    elements += part.data.length;
  }
  const shape = first.shape.slice();
  shape[0] = rows;
  return { name, datatype: first.datatype, shape, data: concatData(first.data, parts, elements, name) };
}

function concatData(first: TensorData, parts: Tensor[], elements: number, name: string): TensorData {
  if (Array.isArray(first)) {
    const out: BytesTensorData = new Array(elements);
    let offset = 0;
    for (const part of parts) {
      const data = part.data as BytesTensorData;
      for (let j = 0; j < data.length; j++) out[offset++] = data[j]!;
    }
    return out;
  }
  const Ctor = first.constructor as new (length: number) => NumericTensorData;
  const out = new Ctor(elements);
  let offset = 0;
  for (const part of parts) {
    if (part.data.constructor !== Ctor) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `cannot batch input "${name}": its data arrays differ (${Ctor.name} and ${part.data.constructor.name}) for one datatype`,
      );
    }
    // Same constructor, so the set() below copies element for element (bigint arrays included).
    (out as Float64Array).set(part.data as Float64Array, offset);
    offset += part.data.length;
  }
  return out;
}

/**
 * Slices each output along dim 0 back into one list of outputs per request (`sizes` from concatBatch).
 * Numeric data are zero-copy subarray views; BYTES arrays are sliced (the element buffers are shared).
 */
export function splitBatch(outputs: Tensor[], sizes: number[]): Tensor[][] {
  let total = 0;
  for (const size of sizes) total += size;
  const result: Tensor[][] = sizes.map(() => new Array<Tensor>(outputs.length));
  for (let k = 0; k < outputs.length; k++) {
    const output = outputs[k]!;
    if (output.shape.length === 0 || output.shape[0] !== total) {
      throw new FerryError(
        'FERRY_INFERENCE_FAILED',
        `output "${output.name}" has shape [${output.shape.join(', ')}] for a batch of ${total} samples from ${sizes.length} requests: with batching on, the model's first dimension must be the batch dimension (the output's first dimension must equal the sum of the inputs' first dimensions)`,
        {
          hint: 'Turn batching off for this model (serving.batching: false), or export it with a leading batch dimension.',
        },
      );
    }
    const perRow = rowSize(output.shape);
    if (output.data.length !== total * perRow) {
      throw new FerryError(
        'FERRY_INFERENCE_FAILED',
        `output "${output.name}" has shape [${output.shape.join(', ')}] but ${output.data.length} elements`,
      );
    }
    let row = 0;
    for (let i = 0; i < sizes.length; i++) {
      const rows = sizes[i]!;
      const start = row * perRow;
      const end = start + rows * perRow;
      const data = Array.isArray(output.data)
        ? output.data.slice(start, end)
        : output.data.subarray(start, end);
      const shape = output.shape.slice();
      shape[0] = rows;
      result[i]![k] = { name: output.name, datatype: output.datatype, shape, data };
      row += rows;
    }
  }
  return result;
}
