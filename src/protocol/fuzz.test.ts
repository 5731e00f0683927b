/**
 * Property/fuzz tests for decodeInferRequest: whatever arrives, it returns a request whose tensors are
 * consistent (elementCount(shape) === data length, and the request re-encodes and decodes to the same data)
 * or throws a FerryError with a 4xx status. Never anything else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../core/errors.ts';
import { type BodyHeaders, decodeInferRequest, encodeInferRequest } from './codec.ts';
import { elementCount } from './datatypes.ts';
import {
  BINARY_HEADER,
  DATATYPES,
  type Datatype,
  type InferRequest,
  type Tensor,
  type TensorData,
} from './types.ts';

const LIMITS = { maxBodyBytes: 1 << 16 };

function plain(data: TensorData): unknown[] {
  return Array.isArray(data)
    ? data.map((b) => Buffer.from(b).toString('hex'))
    : Array.from(data as ArrayLike<unknown>);
}

/** Decodes and checks the invariant; returns the outcome for statistics. */
function decodeChecked(body: Buffer, headers: BodyHeaders): 'ok' | 'rejected' {
  let request: InferRequest;
  try {
    request = decodeInferRequest(body, headers, LIMITS);
  } catch (error) {
    if (!(error instanceof FerryError)) throw new Error(`untyped throw: ${error}`, { cause: error });
    assert.ok(error.status >= 400 && error.status < 500, `${error.code} (${error.status}): ${error.message}`);
    assert.ok(error.message.length > 0);
    return 'rejected';
  }
  for (const tensor of request.inputs) {
    assert.equal(elementCount(tensor.shape), tensor.data.length, `input ${tensor.name}`);
  }
  // A decoded request is well-formed: it re-encodes (binary, lossless) and decodes to the same tensors.
  const encoded = encodeInferRequest(request, { binary: true });
  const again = decodeInferRequest(
    encoded.body,
    { contentType: encoded.headers['content-type'], inferenceHeaderLength: encoded.headers[BINARY_HEADER] },
    { maxBodyBytes: Number.MAX_SAFE_INTEGER },
  );
  assert.equal(again.inputs.length, request.inputs.length);
  request.inputs.forEach((tensor, i) => {
    const other = again.inputs[i]!;
    assert.equal(other.datatype, tensor.datatype);
    assert.deepEqual(other.shape, tensor.shape);
    assert.deepEqual(plain(other.data), plain(tensor.data));
  });
  return 'ok';
}

const headersArb: fc.Arbitrary<BodyHeaders> = fc.record(
  {
    contentType: fc.constantFrom(
      'application/json',
      'application/octet-stream',
      'text/plain',
      'application/json; charset=utf-8',
    ),
    inferenceHeaderLength: fc.oneof(fc.nat(700).map(String), fc.string({ maxLength: 6 }), fc.constant('')),
  },
  { requiredKeys: [] },
);

const shapeArb = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 });

function valuesArb(datatype: Datatype, n: number): fc.Arbitrary<TensorData> {
  const exactly = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: n, maxLength: n });
  const int = (min: number, max: number) => exactly(fc.integer({ min, max }));
  switch (datatype) {
    case 'BOOL':
      return exactly(fc.boolean()).map((v) => Uint8Array.from(v, Number));
    case 'UINT8':
      return int(0, 255).map((v) => Uint8Array.from(v));
    case 'UINT16':
      return int(0, 65535).map((v) => Uint16Array.from(v));
    case 'UINT32':
      return int(0, 2 ** 32 - 1).map((v) => Uint32Array.from(v));
    case 'INT8':
      return int(-128, 127).map((v) => Int8Array.from(v));
    case 'INT16':
      return int(-32768, 32767).map((v) => Int16Array.from(v));
    case 'INT32':
      return int(-(2 ** 31), 2 ** 31 - 1).map((v) => Int32Array.from(v));
    case 'INT64':
      return exactly(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })).map((v) => BigInt64Array.from(v));
    case 'UINT64':
      return exactly(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })).map((v) => BigUint64Array.from(v));
    case 'FP16':
      return int(0, 0xffff).map((v) => Uint16Array.from(v));
    case 'FP32':
      return exactly(fc.float()).map((v) => Float32Array.from(v));
    case 'FP64':
      return exactly(fc.double()).map((v) => Float64Array.from(v));
    case 'BYTES':
      return exactly(fc.uint8Array({ maxLength: 6 }));
  }
}

const tensorArb: fc.Arbitrary<Tensor> = fc
  .record({
    datatype: fc.constantFrom(...DATATYPES),
    shape: shapeArb,
    name: fc.string({ minLength: 1, maxLength: 4 }),
  })
  .chain(({ datatype, shape, name }) =>
    valuesArb(datatype, elementCount(shape)).map((data) => ({ name, datatype, shape, data })),
  );

const requestArb: fc.Arbitrary<InferRequest> = fc
  .uniqueArray(tensorArb, { maxLength: 3, selector: (t) => t.name })
  .map((inputs) => ({ inputs }));

/** Ways to break an encoded request: the JSON document, the binary tail, the header length. */
type Mutation =
  | { kind: 'none' }
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'headerLength'; value: string }
  | { kind: 'shape'; input: number; shape: readonly unknown[] }
  | { kind: 'size'; input: number; size: unknown }
  | { kind: 'data'; input: number; data: unknown };

const weirdDim = fc.oneof(
  fc.integer({ min: -3, max: 5 }),
  fc.constantFrom(1e9, 2 ** 53, 2 ** 60, 1e300, 0.5, -0, Number.MAX_SAFE_INTEGER),
  fc.constantFrom('2', null, [], {}),
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(400) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(400), value: fc.nat(255) }),
  fc.record({
    kind: fc.constant('headerLength' as const),
    value: fc.oneof(
      fc.nat(500).map(String),
      fc.constantFrom('-1', '1e2', 'abc', '99999999999999999999', ' 8 '),
    ),
  }),
  fc.record({
    kind: fc.constant('shape' as const),
    input: fc.nat(2),
    shape: fc.oneof(fc.array(weirdDim, { maxLength: 4 }), fc.constant([1e9, 1e9])),
  }),
  fc.record({
    kind: fc.constant('size' as const),
    input: fc.nat(2),
    size: fc.oneof(fc.integer({ min: -4, max: 200 }), fc.constantFrom(2 ** 53, 1e300, 1.5, '8')),
  }),
  fc.record({ kind: fc.constant('data' as const), input: fc.nat(2), data: fc.jsonValue({ maxDepth: 2 }) }),
);

function applyMutation(
  body: Buffer,
  headers: Record<string, string>,
  mutation: Mutation,
): { body: Buffer; headers: BodyHeaders } {
  const out: BodyHeaders = {
    contentType: headers['content-type'],
    inferenceHeaderLength: headers[BINARY_HEADER],
  };
  const headerLength =
    out.inferenceHeaderLength === undefined ? body.length : Number(out.inferenceHeaderLength);
  switch (mutation.kind) {
    case 'none':
      return { body, headers: out };
    case 'truncate':
      return { body: body.subarray(0, Math.min(mutation.at, body.length)), headers: out };
    case 'flip': {
      const copy = Buffer.from(body);
      if (copy.length > 0) copy[mutation.at % copy.length] = mutation.value;
      return { body: copy, headers: out };
    }
    case 'headerLength':
      return { body, headers: { ...out, inferenceHeaderLength: mutation.value } };
    default: {
      const doc = JSON.parse(body.subarray(0, headerLength).toString());
      const input = doc.inputs[mutation.input];
      if (input === undefined) return { body, headers: out };
      if (mutation.kind === 'shape') input.shape = mutation.shape;
      if (mutation.kind === 'size')
        input.parameters = { ...input.parameters, binary_data_size: mutation.size };
      if (mutation.kind === 'data') input.data = mutation.data;
      const json = Buffer.from(JSON.stringify(doc));
      const tail = body.subarray(headerLength);
      const rebuilt = Buffer.concat([json, tail]);
      return {
        body: rebuilt,
        headers:
          out.inferenceHeaderLength === undefined
            ? out
            : { ...out, inferenceHeaderLength: String(json.length) },
      };
    }
  }
}

describe('decodeInferRequest fuzzing', () => {
  it('survives random bytes with random headers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), headersArb, (bytes, headers) => {
        decodeChecked(Buffer.from(bytes), headers);
      }),
      { numRuns: 2000 },
    );
  });

  it('survives random JSON values and random tensor-like objects', () => {
    const tensorLike = fc.record(
      {
        name: fc.oneof(fc.string({ maxLength: 3 }), fc.integer()),
        datatype: fc.oneof(fc.constantFrom(...DATATYPES), fc.string({ maxLength: 5 })),
        shape: fc.oneof(fc.array(weirdDim, { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
        data: fc.oneof(
          fc.array(
            fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.string({ maxLength: 3 }), fc.constant(null)),
            { maxLength: 8 },
          ),
          fc.jsonValue({ maxDepth: 3 }),
        ),
        parameters: fc.oneof(
          fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
          fc.jsonValue({ maxDepth: 1 }),
        ),
      },
      { requiredKeys: ['name', 'datatype', 'shape'] },
    );
    const doc = fc.oneof(
      fc.jsonValue(),
      fc.record(
        { inputs: fc.array(tensorLike, { maxLength: 3 }), id: fc.jsonValue({ maxDepth: 0 }) },
        { requiredKeys: ['inputs'] },
      ),
    );
    const outcomes = { ok: 0, rejected: 0 };
    fc.assert(
      fc.property(doc, (value) => {
        outcomes[
          decodeChecked(Buffer.from(JSON.stringify(value) ?? ''), { contentType: 'application/json' })
        ]++;
      }),
      { numRuns: 3000 },
    );
    assert.ok(outcomes.ok > 0 && outcomes.rejected > 0, JSON.stringify(outcomes));
  });

  it('survives mutated valid requests, JSON and binary', () => {
    const outcomes = { ok: 0, rejected: 0 };
    fc.assert(
      fc.property(requestArb, fc.boolean(), mutationArb, (request, binary, mutation) => {
        const encoded = encodeInferRequest(request, { binary });
        const mutated = applyMutation(encoded.body, encoded.headers, mutation);
        const outcome = decodeChecked(mutated.body, mutated.headers);
        outcomes[outcome]++;
        // Unmutated valid requests always decode.
        if (mutation.kind === 'none') assert.equal(outcome, 'ok');
      }),
      { numRuns: 3000 },
    );
    assert.ok(outcomes.ok > 0 && outcomes.rejected > 0, JSON.stringify(outcomes));
  });

  it('round-trips valid requests through JSON losslessly', () => {
    // JSON carries UTF-8 text for BYTES and one NaN per float type; compare with those normalised.
    const isHalfNaN = (bits: number) => (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
    const normalised = (tensor: Tensor) =>
      tensor.datatype === 'FP16'
        ? Array.from(tensor.data as Uint16Array, (bits) => (isHalfNaN(bits) ? 0x7e00 : bits))
        : plain(tensor.data);
    const utf8Request = requestArb.map((request) => ({
      inputs: request.inputs.map((t) =>
        t.datatype === 'BYTES'
          ? {
              ...t,
              data: (t.data as Uint8Array[]).map((b) => Buffer.from(Buffer.from(b).toString('utf8'), 'utf8')),
            }
          : t,
      ),
    }));
    fc.assert(
      fc.property(utf8Request, (request) => {
        const encoded = encodeInferRequest(request, { binary: false });
        const decoded = decodeInferRequest(encoded.body, { contentType: 'application/json' }, LIMITS);
        request.inputs.forEach((tensor, i) => {
          assert.deepEqual(decoded.inputs[i]!.shape, tensor.shape);
          assert.deepEqual(
            normalised(decoded.inputs[i]!),
            normalised(tensor),
            `${tensor.datatype} ${tensor.name}`,
          );
        });
      }),
      { numRuns: 1500 },
    );
  });

  it('rejects huge declared shapes without allocating them', () => {
    for (const shape of [[1e9, 1e9], [2 ** 40], [65536, 65536, 8]]) {
      for (const datatype of DATATYPES) {
        const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype, shape, data: [1] }] }));
        assert.throws(() => decodeInferRequest(body, {}, LIMITS), { code: 'FERRY_PAYLOAD_TOO_LARGE' });
        const header = Buffer.from(
          JSON.stringify({ inputs: [{ name: 'x', datatype, shape, parameters: { binary_data_size: 16 } }] }),
        );
        assert.throws(
          () =>
            decodeInferRequest(
              Buffer.concat([header, Buffer.alloc(16)]),
              { inferenceHeaderLength: String(header.length) },
              LIMITS,
            ),
          { code: 'FERRY_PAYLOAD_TOO_LARGE' },
        );
      }
    }
  });
});
