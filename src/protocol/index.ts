/** Open Inference Protocol v2 (+ KServe v1): types, JSON and binary tensor codecs, validation. Pure. */
export {
  type BodyHeaders,
  type DecodeLimits,
  decodeInferRequest,
  decodeInferResponse,
  type EncodedBody,
  type EncodeRequestOptions,
  encodeInferRequest,
  encodeInferResponse,
} from './codec.ts';
export {
  allocate,
  dataLength,
  describeValue,
  ELEMENT_BYTES,
  elementByteSize,
  elementCount,
  fp16ToNumber,
  isDatatype,
  type NumericArrayConstructor,
  type NumericDatatype,
  numberToFp16,
  typedArrayConstructor,
} from './datatypes.ts';
export * from './types.ts';
export { decodeV1Request, encodeV1Response } from './v1.ts';
export { compileValidator, describeSpec, validateInferRequest } from './validate.ts';
