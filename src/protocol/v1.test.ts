import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError } from '../core/errors.ts';
import type { ModelMetadata, Tensor } from './types.ts';
import { decodeV1Request, encodeV1Response } from './v1.ts';

const iris: ModelMetadata = {
  name: 'iris',
  versions: ['1'],
  platform: 'onnx',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }],
};

const multi: ModelMetadata = {
  name: 'multi',
  versions: ['1'],
  platform: 'handler',
  inputs: [
    { name: 'ids', datatype: 'INT64', shape: [-1, -1] },
    { name: 'text', datatype: 'BYTES', shape: [-1] },
  ],
  outputs: [],
};

const body = (value: unknown) => Buffer.from(JSON.stringify(value));

function expectError(fn: () => unknown, code: string, pattern: RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof FerryError, String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('KServe v1 requests', () => {
  it('stacks rows of a single-input model under a batch dimension', () => {
    const request = decodeV1Request(
      body({
        instances: [
          [5.1, 3.5, 1.4, 0.2],
          [6, 3, 4.8, 1.8],
        ],
      }),
      iris,
    );
    const input = request.inputs[0]!;
    assert.equal(input.name, 'input');
    assert.equal(input.datatype, 'FP32');
    assert.deepEqual(input.shape, [2, 4]);
    assert.deepEqual(
      Array.from(input.data as Float32Array),
      [5.1, 3.5, 1.4, 0.2, 6, 3, 4.8, 1.8].map(Math.fround),
    );
    // The same rows keyed by input name.
    const keyed = decodeV1Request(body({ instances: [{ input: [1, 2, 3, 4] }] }), iris);
    assert.deepEqual(keyed.inputs[0]!.shape, [1, 4]);
  });

  it('reads multi-input instances keyed by name, with exact INT64 and b64 BYTES', () => {
    const text =
      '{"instances":[{"ids":[1,9007199254740993],"text":"héllo"},{"ids":[3,4],"text":{"b64":"AAEC"}}]}';
    const request = decodeV1Request(Buffer.from(text), multi);
    assert.deepEqual(request.inputs[0]!.shape, [2, 2]);
    assert.deepEqual(Array.from(request.inputs[0]!.data as BigInt64Array), [1n, 9007199254740993n, 3n, 4n]);
    assert.deepEqual(request.inputs[1]!.shape, [2]);
    const texts = request.inputs[1]!.data as Uint8Array[];
    assert.equal(Buffer.from(texts[0]!).toString(), 'héllo');
    assert.deepEqual(Array.from(texts[1]!), [0, 1, 2]);
  });

  it('rejects bad instances, naming where', () => {
    expectError(() => decodeV1Request(body({ inputs: [] }), iris), 'FERRY_BAD_REQUEST', /"instances" array/);
    expectError(
      () => decodeV1Request(body({ instances: [] }), iris),
      'FERRY_INVALID_INPUT',
      /"instances" is empty/,
    );
    expectError(
      () => decodeV1Request(Buffer.from('{"instances":'), iris),
      'FERRY_BAD_REQUEST',
      /not valid JSON/,
    );
    expectError(
      () =>
        decodeV1Request(
          body({
            instances: [
              [1, 2, 3, 4],
              [1, 2, 3],
            ],
          }),
          iris,
        ),
      'FERRY_INVALID_INPUT',
      /instances\[1\]: input "input" rows must all be shaped \[4\]/,
    );
    expectError(
      () => decodeV1Request(body({ instances: [5] }), iris),
      'FERRY_INVALID_INPUT',
      /instances\[0\]: input "input" is shaped \[-1,4\], so each row must be an array nested 1 deep/,
    );
    expectError(
      () => decodeV1Request(body({ instances: [[1, 2, 3, 'x']] }), iris),
      'FERRY_INVALID_INPUT',
      /input "input": element 3 of data is "x"/,
    );
    expectError(
      () => decodeV1Request(body({ instances: [{ ids: [1] }] }), multi),
      'FERRY_INVALID_INPUT',
      /instances\[0\] has no "text"/,
    );
    expectError(
      () => decodeV1Request(body({ instances: [{ ids: [1], text: 'a', other: 1 }] }), multi),
      'FERRY_INVALID_INPUT',
      /instances\[0\] has "other", which is not an input of the model/,
    );
    expectError(
      () => decodeV1Request(body({ instances: [[1]] }), multi),
      'FERRY_INVALID_INPUT',
      /instances\[0\] must be an object keyed by input name/,
    );
    expectError(
      () => decodeV1Request(body({ instances: [{ ids: [1], text: 5 }] }), multi),
      'FERRY_INVALID_INPUT',
      /input "text": element 0 is 5; BYTES takes strings or \{"b64"/,
    );
  });
});

describe('KServe v1 responses', () => {
  const label: Tensor = {
    name: 'label',
    datatype: 'INT64',
    shape: [3],
    data: new BigInt64Array([0n, 2n, 2n ** 60n]),
  };
  const probs: Tensor = {
    name: 'probs',
    datatype: 'FP32',
    shape: [3, 2],
    data: new Float32Array([0.9, 0.1, 0.5, 0.5, 0, 1]),
  };

  it('gives one prediction per row for one output', () => {
    assert.equal(
      encodeV1Response({ model_name: 'm', outputs: [label] }).toString(),
      '{"predictions":[0,2,1152921504606846976]}',
    );
    assert.deepEqual(JSON.parse(encodeV1Response({ model_name: 'm', outputs: [probs] }).toString()), {
      predictions: [
        [0.9, 0.1],
        [0.5, 0.5],
        [0, 1],
      ],
    });
  });

  it('gives objects keyed by output for several outputs', () => {
    assert.deepEqual(
      JSON.parse(encodeV1Response({ model_name: 'm', outputs: [label, probs] }).toString()).predictions[1],
      {
        label: 2,
        probs: [0.5, 0.5],
      },
    );
    const short: Tensor = { ...probs, name: 'short', shape: [1, 6] };
    expectError(
      () => encodeV1Response({ model_name: 'm', outputs: [label, short] }),
      'FERRY_INFERENCE_FAILED',
      /label: 3, short: 1/,
    );
  });

  it('nests higher-rank rows and writes BYTES and BOOL', () => {
    const cube: Tensor = {
      name: 'c',
      datatype: 'INT32',
      shape: [1, 2, 2],
      data: new Int32Array([1, 2, 3, 4]),
    };
    assert.equal(
      encodeV1Response({ model_name: 'm', outputs: [cube] }).toString(),
      '{"predictions":[[[1,2],[3,4]]]}',
    );
    const words: Tensor = {
      name: 'w',
      datatype: 'BYTES',
      shape: [2],
      data: [Buffer.from('a"b'), Buffer.from('ü')],
    };
    assert.deepEqual(
      JSON.parse(encodeV1Response({ model_name: 'm', outputs: [words] }).toString()).predictions,
      ['a"b', 'ü'],
    );
    const flags: Tensor = { name: 'f', datatype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) };
    assert.equal(
      encodeV1Response({ model_name: 'm', outputs: [flags] }).toString(),
      '{"predictions":[true,false]}',
    );
  });
});
