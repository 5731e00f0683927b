/**
 * Entry points of the OIP v2 codec: requests and responses, JSON or binary tensor extension.
 * Server side: decodeInferRequest / encodeInferResponse. Client side: encodeInferRequest / decodeInferResponse.
 * Everything a client can get wrong throws FerryError (4xx); nothing else escapes for bad input.
 */
import { FerryError } from '../core/errors.ts';
import {
  binaryParts,
  JSON_TYPE,
  OCTET_STREAM,
  paddedHeader,
  parseHeaderLength,
  readBinaryTensor,
} from './binary-codec.ts';
import { ELEMENT_BYTES } from './datatypes.ts';
import {
  decodeJsonData,
  isPlainObject,
  jsonDataText,
  parseJsonText,
  readOptionalString,
  readParameters,
  readTensorHeaders,
  rewriteLongIntegers,
  type TensorHeader,
  type TensorRole,
  tensorHeadText,
} from './json-codec.ts';
import {
  BINARY_HEADER,
  type InferRequest,
  type InferResponse,
  type Parameters,
  type RequestedOutput,
  type Tensor,
} from './types.ts';

export interface BodyHeaders {
  /** Content-Type header value. */
  contentType?: string | undefined;
  /** Inference-Header-Content-Length header value (binary tensor extension). */
  inferenceHeaderLength?: string | undefined;
}

export interface DecodeLimits {
  /** Largest body, and largest total decoded tensor size, in bytes. */
  maxBodyBytes: number;
}

export interface EncodedBody {
  body: Buffer;
  headers: Record<string, string>;
}

export interface EncodeRequestOptions {
  /** Send input tensors as binary data (binary tensor extension). */
  binary: boolean;
  /** Ask the server for binary outputs (request-level binary_data_output). */
  binaryOutputs?: boolean;
}

interface ParsedBody {
  doc: Record<string, unknown>;
  /** JSON header text (the whole body for JSON requests). */
  text: string;
  /** Where binary tensor data starts; undefined for plain JSON bodies. */
  binaryStart: number | undefined;
}

function mediaType(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semicolon = contentType.indexOf(';');
  return (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/** curl -d sends this by default; Triton and KServe read such bodies as JSON, and so do we. */
const CURL_DEFAULT_TYPE = 'application/x-www-form-urlencoded';

function isJsonMedia(type: string): boolean {
  return (
    type === JSON_TYPE ||
    type === CURL_DEFAULT_TYPE ||
    type === 'text/plain' ||
    (type.startsWith('application/') && type.endsWith('+json'))
  );
}

function parseBody(body: Buffer, headers: BodyHeaders, what: string): ParsedBody {
  const type = mediaType(headers.contentType);
  if (type !== '' && !isJsonMedia(type) && type !== OCTET_STREAM) {
    throw new FerryError(
      'FERRY_UNSUPPORTED_MEDIA_TYPE',
      `Content-Type ${JSON.stringify(headers.contentType)} is not supported; use ${JSON_TYPE}, or ${OCTET_STREAM} with the Inference-Header-Content-Length header for binary tensors`,
      { hint: "With curl, add -H 'Content-Type: application/json'." },
    );
  }
  const headerLength = headers.inferenceHeaderLength;
  let binaryStart: number | undefined;
  let text: string;
  if (headerLength !== undefined && headerLength !== '') {
    binaryStart = parseHeaderLength(headerLength, body.length);
    text = body.toString('utf8', 0, binaryStart);
  } else {
    text = body.toString('utf8');
  }
  const doc = parseJsonText(text, binaryStart === undefined ? what : `${what} JSON header`);
  if (!isPlainObject(doc)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `${what} must be a JSON object, got ${Array.isArray(doc) ? 'an array' : typeof doc}`,
    );
  }
  return { doc, text, binaryStart };
}

/** Decodes every tensor's data: binary regions in order after the header, the rest from JSON. */
function decodeTensors(
  headers: TensorHeader[],
  parsed: ParsedBody,
  body: Buffer,
  role: TensorRole,
  maxDecodedBytes: number,
): Tensor[] {
  // Sizes first: nothing is allocated before the declared sizes are known to fit.
  let total = 0;
  for (const header of headers) {
    const bytes = header.count * (header.datatype === 'BYTES' ? 1 : ELEMENT_BYTES[header.datatype]);
    total += bytes;
    if (bytes > maxDecodedBytes || total > maxDecodedBytes) {
      throw new FerryError(
        'FERRY_PAYLOAD_TOO_LARGE',
        `${header.label}: shape ${JSON.stringify(header.shape)} of ${header.datatype} declares ${bytes} bytes${bytes === total ? '' : ` (${total} bytes with the ${role}s before it)`}, over the limit of ${maxDecodedBytes} bytes`,
        { hint: 'Split the request, or raise serving.limits.maxBodyBytes in ferry.yaml.' },
      );
    }
    if (header.binaryDataSize !== undefined && parsed.binaryStart === undefined) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `${header.label}: ${header.where}.parameters.binary_data_size is set but the request has no Inference-Header-Content-Length header`,
        {
          hint: 'Binary tensor data needs the Inference-Header-Content-Length header giving the JSON length.',
        },
      );
    }
    if (header.binaryDataSize !== undefined && header.data !== undefined) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `${header.label}: ${header.where} has both "data" and parameters.binary_data_size; give one`,
      );
    }
  }
  let exactDoc: Record<string, unknown> | undefined;
  const exactData = (index: number) => () => {
    exactDoc ??= JSON.parse(rewriteLongIntegers(parsed.text)) as Record<string, unknown>;
    const list = exactDoc[`${role}s`] as Record<string, unknown>[];
    return list[index]?.data;
  };
  const tensors: Tensor[] = new Array(headers.length);
  let offset = parsed.binaryStart ?? 0;
  for (let i = 0; i < headers.length; i++) {
    const header = headers[i]!;
    let data: Tensor['data'];
    if (header.binaryDataSize !== undefined) {
      const read = readBinaryTensor(header, body, offset);
      data = read.data;
      offset = read.next;
    } else {
      data = decodeJsonData(header, exactData(i));
    }
    const tensor: Tensor = { name: header.name, datatype: header.datatype, shape: header.shape, data };
    if (header.parameters !== undefined) tensor.parameters = header.parameters;
    tensors[i] = tensor;
  }
  if (parsed.binaryStart !== undefined && offset !== body.length) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `the body has ${body.length - offset} bytes after the last binary tensor (the JSON header is ${parsed.binaryStart} bytes, binary_data_size values add up to ${offset - parsed.binaryStart}, the body is ${body.length})`,
      { hint: 'Check Inference-Header-Content-Length and each parameters.binary_data_size.' },
    );
  }
  return tensors;
}

function readRequestedOutputs(value: unknown): RequestedOutput[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      '"outputs" must be an array of {"name": ..., "parameters": {...}}',
    );
  }
  const seen = new Set<string>();
  return value.map((entry, i) => {
    const where = `outputs[${i}]`;
    if (!isPlainObject(entry) || typeof entry.name !== 'string' || entry.name === '') {
      throw new FerryError('FERRY_BAD_REQUEST', `${where} must be an object with a non-empty string "name"`);
    }
    if (seen.has(entry.name)) {
      throw new FerryError(
        'FERRY_INVALID_INPUT',
        `${where}: output ${JSON.stringify(entry.name)} is requested twice`,
      );
    }
    seen.add(entry.name);
    const output: RequestedOutput = { name: entry.name };
    const parameters = readParameters(entry.parameters, `${where}.parameters`);
    if (parameters !== undefined) output.parameters = parameters;
    return output;
  });
}

/** Decodes an inference request body (JSON or binary tensor extension), checking sizes before allocating. */
export function decodeInferRequest(body: Buffer, headers: BodyHeaders, limits: DecodeLimits): InferRequest {
  if (body.length > limits.maxBodyBytes) {
    throw new FerryError(
      'FERRY_PAYLOAD_TOO_LARGE',
      `the request body is ${body.length} bytes, over the limit of ${limits.maxBodyBytes} bytes`,
      { hint: 'Split the request, or raise serving.limits.maxBodyBytes in ferry.yaml.' },
    );
  }
  const parsed = parseBody(body, headers, 'the request body');
  const { doc } = parsed;
  const id = readOptionalString(doc.id, '"id"');
  const parameters = readParameters(doc.parameters, '"parameters"');
  const tensorHeaders = readTensorHeaders(doc.inputs, 'input');
  const outputs = readRequestedOutputs(doc.outputs);
  const inputs = decodeTensors(tensorHeaders, parsed, body, 'input', limits.maxBodyBytes);
  const request: InferRequest = { inputs };
  if (id !== undefined) request.id = id;
  if (parameters !== undefined) request.parameters = parameters;
  if (outputs !== undefined) request.outputs = outputs;
  return request;
}

/** Decodes an inference response (client side). A malformed response is FERRY_INTERNAL (the server's fault). */
export function decodeInferResponse(body: Buffer, headers: BodyHeaders): InferResponse {
  try {
    const parsed = parseBody(body, headers, 'the response body');
    const { doc } = parsed;
    if (typeof doc.model_name !== 'string') {
      throw new FerryError('FERRY_BAD_REQUEST', '"model_name" must be a string');
    }
    const response: InferResponse = {
      model_name: doc.model_name,
      outputs: decodeTensors(
        readTensorHeaders(doc.outputs, 'output'),
        parsed,
        body,
        'output',
        Number.MAX_SAFE_INTEGER,
      ),
    };
    const version = readOptionalString(doc.model_version, '"model_version"');
    if (version !== undefined) response.model_version = version;
    const id = readOptionalString(doc.id, '"id"');
    if (id !== undefined) response.id = id;
    const parameters = readParameters(doc.parameters, '"parameters"');
    if (parameters !== undefined) response.parameters = parameters;
    return response;
  } catch (error) {
    if (!(error instanceof FerryError)) throw error;
    throw new FerryError(
      'FERRY_INTERNAL',
      `the server sent an invalid inference response: ${error.message}`,
      {
        cause: error,
      },
    );
  }
}

function checkConsistent(tensor: Tensor, label: string): void {
  let count = 1;
  for (const dim of tensor.shape) count *= dim;
  if (tensor.data.length !== count) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `${label}: shape ${JSON.stringify(tensor.shape)} needs ${count} elements but its data has ${tensor.data.length}`,
    );
  }
}

/** Whether the request asked for this output in binary: per-output binary_data wins over binary_data_output. */
function wantsBinary(name: string, request: InferRequest | undefined): boolean {
  if (request === undefined) return false;
  const requested = request.outputs?.find((o) => o.name === name)?.parameters?.binary_data;
  if (requested !== undefined) return requested === true;
  return request.parameters?.binary_data_output === true;
}

function withoutBinaryKeys(parameters: Parameters | undefined): Parameters | undefined {
  if (parameters === undefined) return undefined;
  if (!('binary_data_size' in parameters) && !('binary_data' in parameters)) return parameters;
  const { binary_data_size: _size, binary_data: _flag, ...rest } = parameters;
  return rest;
}

/**
 * Writes tensors as a JSON list; the ones marked binary carry parameters.binary_data_size and their bytes
 * go to `parts`, in order.
 */
function tensorsText(
  tensors: readonly Tensor[],
  binary: (tensor: Tensor) => boolean,
  role: TensorRole,
  parts: Buffer[],
) {
  let s = '[';
  for (let i = 0; i < tensors.length; i++) {
    const tensor = tensors[i]!;
    const label = `${role} ${JSON.stringify(tensor.name)}`;
    checkConsistent(tensor, label);
    if (i > 0) s += ',';
    const parameters = withoutBinaryKeys(tensor.parameters);
    if (binary(tensor)) {
      const encoded = binaryParts(tensor.datatype, tensor.data, label);
      parts.push(...encoded.parts);
      s += `${tensorHeadText(tensor.name, tensor.datatype, tensor.shape, { ...parameters, binary_data_size: encoded.size })}}`;
    } else {
      s += `${tensorHeadText(tensor.name, tensor.datatype, tensor.shape, parameters)},"data":${jsonDataText(tensor.datatype, tensor.data)}}`;
    }
  }
  return `${s}]`;
}

function finish(json: string, parts: Buffer[]): EncodedBody {
  if (parts.length === 0) {
    return { body: Buffer.from(json, 'utf8'), headers: { 'content-type': JSON_TYPE } };
  }
  const header = paddedHeader(json);
  return {
    body: Buffer.concat([header, ...parts]),
    headers: { 'content-type': OCTET_STREAM, [BINARY_HEADER]: String(header.length) },
  };
}

/** Encodes a response, in binary for the outputs the request asked that way, else as plain JSON. */
export function encodeInferResponse(response: InferResponse, request: InferRequest | undefined): EncodedBody {
  const parts: Buffer[] = [];
  let json = `{"model_name":${JSON.stringify(response.model_name)}`;
  if (response.model_version !== undefined)
    json += `,"model_version":${JSON.stringify(response.model_version)}`;
  if (response.id !== undefined) json += `,"id":${JSON.stringify(response.id)}`;
  if (response.parameters !== undefined) json += `,"parameters":${JSON.stringify(response.parameters)}`;
  json += `,"outputs":${tensorsText(response.outputs, (t) => wantsBinary(t.name, request), 'output', parts)}}`;
  return finish(json, parts);
}

/** Encodes a request for a server (client side); binary inputs get a header padded to a multiple of 8 bytes. */
export function encodeInferRequest(request: InferRequest, options: EncodeRequestOptions): EncodedBody {
  const parts: Buffer[] = [];
  let parameters = request.parameters;
  let outputs = request.outputs;
  if (options.binaryOutputs) {
    parameters = { ...parameters, binary_data_output: true };
    outputs = outputs?.map((o) => ({ ...o, parameters: { ...o.parameters, binary_data: true } }));
  }
  let json = '{';
  if (request.id !== undefined) json += `"id":${JSON.stringify(request.id)},`;
  if (parameters !== undefined) json += `"parameters":${JSON.stringify(parameters)},`;
  json += `"inputs":${tensorsText(request.inputs, () => options.binary, 'input', parts)}`;
  if (outputs !== undefined) json += `,"outputs":${JSON.stringify(outputs)}`;
  json += '}';
  return finish(json, parts);
}
