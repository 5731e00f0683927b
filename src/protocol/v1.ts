/**
 * KServe v1 prediction protocol: POST /v1/models/{name}:predict with {"instances": [...]}, answered with
 * {"predictions": [...]}. Pure.
 *
 * - Single-input models: each instance is one row of the input without its batch (first) dimension,
 *   e.g. [5.1, 3.5, 1.4, 0.2] for an input shaped [-1, 4]. An object keyed by the input name also works.
 * - Multi-input models: each instance is an object keyed by input name, each value one row of that input.
 * - Rows must be rectangular; the row shape comes from the data, the batch size from the number of instances,
 *   the datatype from the model. BYTES rows hold strings, or {"b64": "..."} for raw bytes.
 * - Predictions: one output gives one entry per batch row; several outputs give objects keyed by output name.
 */
import { FerryError } from '../core/errors.ts';
import { describeValue } from './datatypes.ts';
import {
  decodeJsonData,
  elementTextFn,
  isPlainObject,
  parseJsonText,
  rewriteLongIntegers,
  type TensorHeader,
} from './json-codec.ts';
import type { InferRequest, InferResponse, ModelMetadata, Tensor, TensorSpec } from './types.ts';

const MAX_RANK = 32;

interface Collected {
  shape: number[];
  values: unknown[];
}

export function decodeV1Request(body: Buffer, model: ModelMetadata): InferRequest {
  const text = body.toString('utf8');
  const doc = parseJsonText(text, 'the request body');
  const first = collectAll(doc, model);
  let exact: Map<string, Collected> | undefined;
  const inputs: Tensor[] = model.inputs.map((spec, index) => {
    const { shape, values } = first.get(spec.name)!;
    const header: TensorHeader = {
      where: `instances (input ${JSON.stringify(spec.name)})`,
      label: `input ${JSON.stringify(spec.name)}`,
      index,
      name: spec.name,
      datatype: spec.datatype,
      shape,
      count: values.length,
      parameters: undefined,
      binaryDataSize: undefined,
      data: spec.datatype === 'BYTES' ? values.map(bytesValue(spec)) : values,
    };
    const data =
      spec.datatype === 'BYTES'
        ? (header.data as Uint8Array[])
        : decodeJsonData(header, () => {
            exact ??= collectAll(JSON.parse(rewriteLongIntegers(text)), model);
            return exact.get(spec.name)!.values;
          });
    return { name: spec.name, datatype: spec.datatype, shape, data };
  });
  return { inputs };
}

function bytesValue(spec: TensorSpec) {
  return (value: unknown, index: number): Uint8Array => {
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    if (isPlainObject(value) && typeof value.b64 === 'string' && Object.keys(value).length === 1) {
      return Buffer.from(value.b64, 'base64');
    }
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `input ${JSON.stringify(spec.name)}: element ${index} is ${describeValue(value)}; BYTES takes strings or {"b64": "<base64>"}`,
    );
  };
}

function collectAll(doc: unknown, model: ModelMetadata): Map<string, Collected> {
  if (!isPlainObject(doc) || !Array.isArray(doc.instances)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      'the request body must be a JSON object with an "instances" array',
      {
        hint: 'KServe v1: {"instances": [row, row, ...]}; for several inputs each row is {"<input>": value, ...}.',
      },
    );
  }
  const instances = doc.instances;
  if (instances.length === 0) {
    throw new FerryError('FERRY_INVALID_INPUT', '"instances" is empty; send at least one instance');
  }
  if (model.inputs.length === 0) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `model "${model.name}" has no inputs to fill from "instances"`,
    );
  }
  const names = new Set(model.inputs.map((spec) => spec.name));
  // Several inputs: instances are keyed by input name. One input: rows, unless the first instance is an
  // object holding that input's name.
  const first = instances[0];
  const keyed =
    model.inputs.length > 1 || (isPlainObject(first) && Object.hasOwn(first, model.inputs[0]!.name));
  const result = new Map<string, Collected>();
  if (keyed) {
    instances.forEach((instance, i) => {
      if (!isPlainObject(instance)) {
        throw new FerryError(
          'FERRY_INVALID_INPUT',
          `instances[${i}] must be an object keyed by input name (the model has inputs ${[...names].map((n) => `"${n}"`).join(', ')}), got ${describeValue(instance)}`,
        );
      }
      for (const key of Object.keys(instance)) {
        if (!names.has(key)) {
          throw new FerryError(
            'FERRY_INVALID_INPUT',
            `instances[${i}] has ${JSON.stringify(key)}, which is not an input of the model (inputs: ${[...names].map((n) => `"${n}"`).join(', ')})`,
          );
        }
      }
    });
  }
  for (const spec of model.inputs) {
    const rows = keyed
      ? instances.map((instance, i) => {
          const row = (instance as Record<string, unknown>)[spec.name];
          if (row === undefined) {
            throw new FerryError(
              'FERRY_INVALID_INPUT',
              `instances[${i}] has no ${JSON.stringify(spec.name)} (input ${JSON.stringify(spec.name)} is required)`,
            );
          }
          return row;
        })
      : instances;
    result.set(spec.name, collectRows(spec, rows, keyed));
  }
  return result;
}

/** Stacks rows into one tensor's flat values: shape [rows, ...row shape]; rows must be rectangular. */
function collectRows(spec: TensorSpec, rows: unknown[], keyed: boolean): Collected {
  const label = `input ${JSON.stringify(spec.name)}`;
  const where = (i: number) => (keyed ? `instances[${i}].${spec.name}` : `instances[${i}]`);
  if (spec.shape.length === 0) {
    if (rows.length !== 1) {
      throw new FerryError(
        'FERRY_INVALID_INPUT',
        `${label} is a scalar; send exactly one instance, got ${rows.length}`,
      );
    }
    return { shape: [], values: [rows[0]] };
  }
  const rowRank = Math.min(spec.shape.length - 1, MAX_RANK);
  const rowShape: number[] = [];
  let probe = rows[0];
  for (let d = 0; d < rowRank; d++) {
    if (!Array.isArray(probe)) {
      throw new FerryError(
        'FERRY_INVALID_INPUT',
        `${where(0)}: ${label} is shaped [${spec.shape.join(',')}], so each row must be an array nested ${rowRank} deep (shape [${spec.shape.slice(1).join(',')}]), got ${describeValue(probe)} at depth ${d}`,
      );
    }
    rowShape.push(probe.length);
    probe = probe[0];
  }
  const values: unknown[] = [];
  for (let i = 0; i < rows.length; i++) flattenStrict(rows[i], rowShape, 0, values, where(i), label);
  return { shape: [rows.length, ...rowShape], values };
}

function flattenStrict(
  value: unknown,
  shape: number[],
  depth: number,
  out: unknown[],
  where: string,
  label: string,
) {
  if (depth === shape.length) {
    if (Array.isArray(value)) {
      throw new FerryError(
        'FERRY_INVALID_INPUT',
        `${where}: ${label} rows are shaped [${shape.join(',')}] (from instances[0]), but this one is nested deeper`,
      );
    }
    out.push(value);
    return;
  }
  if (!Array.isArray(value) || value.length !== shape[depth]) {
    throw new FerryError(
      'FERRY_INVALID_INPUT',
      `${where}: ${label} rows must all be shaped [${shape.join(',')}] (from instances[0]); this one differs at depth ${depth} (${Array.isArray(value) ? `${value.length} elements` : describeValue(value)})`,
    );
  }
  for (const element of value) flattenStrict(element, shape, depth + 1, out, where, label);
}

// ---- response ------------------------------------------------------------------------------------------

function rowsText(tensor: Tensor): string[] {
  const element = elementTextFn(tensor.datatype);
  const { data, shape } = tensor;
  if (shape.length === 0) return [element(data, 0)];
  const rowShape = shape.slice(1);
  let rowSize = 1;
  for (const dim of rowShape) rowSize *= dim;
  const rows: string[] = new Array(shape[0]!);
  for (let r = 0; r < shape[0]!; r++) rows[r] = nestedText(data, r * rowSize, rowShape, 0, element);
  return rows;
}

function nestedText(
  data: Tensor['data'],
  start: number,
  shape: number[],
  depth: number,
  element: (data: Tensor['data'], index: number) => string,
): string {
  if (depth === shape.length) return element(data, start);
  let stride = 1;
  for (let d = depth + 1; d < shape.length; d++) stride *= shape[d]!;
  let s = '[';
  for (let i = 0; i < shape[depth]!; i++) {
    if (i > 0) s += ',';
    s += nestedText(data, start + i * stride, shape, depth + 1, element);
  }
  return `${s}]`;
}

export function encodeV1Response(response: InferResponse): Buffer {
  const outputs = response.outputs;
  for (const output of outputs) {
    let count = 1;
    for (const dim of output.shape) count *= dim;
    if (output.data.length !== count) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `output ${JSON.stringify(output.name)}: shape [${output.shape.join(',')}] needs ${count} elements but its data has ${output.data.length}`,
      );
    }
  }
  if (outputs.length === 1)
    return Buffer.from(`{"predictions":[${rowsText(outputs[0]!).join(',')}]}`, 'utf8');
  const texts = outputs.map(rowsText);
  const batch = texts[0]?.length ?? 0;
  if (texts.some((rows) => rows.length !== batch)) {
    throw new FerryError(
      'FERRY_INFERENCE_FAILED',
      `the model's outputs have different batch sizes (${outputs.map((o, i) => `${o.name}: ${texts[i]!.length}`).join(', ')}); KServe v1 predictions need one per instance`,
      { hint: 'Use the v2 endpoint POST /v2/models/{name}/infer for this model.' },
    );
  }
  const names = outputs.map((o) => JSON.stringify(o.name));
  const predictions: string[] = new Array(batch);
  for (let r = 0; r < batch; r++) {
    predictions[r] = `{${names.map((name, o) => `${name}:${texts[o]![r]}`).join(',')}}`;
  }
  return Buffer.from(`{"predictions":[${predictions.join(',')}]}`, 'utf8');
}
