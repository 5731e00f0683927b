import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DATATYPES,
  type Datatype,
  type InferRequest,
  type Tensor,
  type TensorData,
} from '../../protocol/types.ts';
import { batchKey, concatBatch, samplesOf, splitBatch } from './concat.ts';

/** Element values 0..count-1 (plus an offset) in the array type of each datatype. */
function data(datatype: Datatype, count: number, offset = 0): TensorData {
  const values = Array.from({ length: count }, (_, i) => i + offset);
  switch (datatype) {
    case 'BOOL':
      return Uint8Array.from(values, (v) => v % 2);
    case 'UINT8':
      return Uint8Array.from(values);
    case 'UINT16':
    case 'FP16':
      return Uint16Array.from(values);
    case 'UINT32':
      return Uint32Array.from(values);
    case 'UINT64':
      return BigUint64Array.from(values, (v) => BigInt(v) + 2n ** 63n);
    case 'INT8':
      return Int8Array.from(values, (v) => -v);
    case 'INT16':
      return Int16Array.from(values, (v) => -v);
    case 'INT32':
      return Int32Array.from(values, (v) => -v);
    case 'INT64':
      return BigInt64Array.from(values, (v) => -(2n ** 62n) - BigInt(v));
    case 'FP32':
      return Float32Array.from(values, (v) => v + 0.5);
    case 'FP64':
      return Float64Array.from(values, (v) => v + 0.25);
    case 'BYTES':
      return values.map((v) => new TextEncoder().encode(`s${v}`));
  }
}

function tensor(name: string, datatype: Datatype, shape: number[], offset = 0): Tensor {
  return {
    name,
    datatype,
    shape,
    data: data(
      datatype,
      shape.reduce((a, b) => a * b, 1),
      offset,
    ),
  };
}

function request(...inputs: Tensor[]): InferRequest {
  return { inputs };
}

const ALL: readonly Datatype[] = DATATYPES;

describe('concatBatch / splitBatch', () => {
  for (const datatype of ALL) {
    test(`${datatype}: concatenates along dim 0 and splits back to the same tensors`, () => {
      const parts = [
        tensor('x', datatype, [1, 3], 0),
        tensor('x', datatype, [2, 3], 10),
        tensor('x', datatype, [0, 3]),
      ];
      const { inputs, sizes } = concatBatch(
        parts.map((p) => request(p)),
        ['x'],
      );
      assert.deepEqual(sizes, [1, 2, 0]);
      const [x] = inputs;
      assert.deepEqual(x!.shape, [3, 3]);
      assert.equal(x!.datatype, datatype);
      assert.equal(x!.data.constructor, parts[0]!.data.constructor);
      assert.deepEqual([...x!.data], [...parts[0]!.data, ...parts[1]!.data]);

      const split = splitBatch([{ ...x!, name: 'y' }], sizes);
      assert.equal(split.length, 3);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(split[i], [{ name: 'y', datatype, shape: parts[i]!.shape, data: parts[i]!.data }]);
      }
    });
  }

  test('split slices are zero-copy views into the output buffer', () => {
    const output = tensor('y', 'FP32', [3, 2]);
    const [a, b] = splitBatch([output], [1, 2]);
    const data = output.data as Float32Array;
    assert.equal((a![0]!.data as Float32Array).buffer, data.buffer);
    assert.equal((b![0]!.data as Float32Array).byteOffset, 2 * 4);
    data[2] = 42;
    assert.equal((b![0]!.data as Float32Array)[0], 42);
  });

  test('BYTES elements are shared, not copied', () => {
    const x = tensor('x', 'BYTES', [2, 1]);
    const out = concatBatch([request(x), request(tensor('x', 'BYTES', [1, 1]))], ['x']).inputs[0]!;
    assert.equal((out.data as Uint8Array[])[1], (x.data as Uint8Array[])[1]);
  });

  test('concatenates every named input in the given order, whatever order requests list them in', () => {
    const r1 = request(tensor('b', 'INT64', [1]), tensor('a', 'FP32', [1, 2]));
    const r2 = request(tensor('a', 'FP32', [2, 2], 2), tensor('b', 'INT64', [2], 1));
    const { inputs, sizes } = concatBatch([r1, r2], ['a', 'b']);
    assert.deepEqual(sizes, [1, 2]);
    assert.deepEqual(
      inputs.map((t) => [t.name, t.shape]),
      [
        ['a', [3, 2]],
        ['b', [3]],
      ],
    );
    assert.deepEqual([...(inputs[0]!.data as Float32Array)], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
  });

  test('a single request passes through without copying', () => {
    const x = tensor('x', 'FP32', [2, 2]);
    const { inputs, sizes } = concatBatch([request(x)], ['x']);
    assert.equal(inputs[0], x);
    assert.deepEqual(sizes, [2]);
  });

  test('0-sized trailing dimensions', () => {
    const { inputs, sizes } = concatBatch(
      [request(tensor('x', 'FP32', [2, 0])), request(tensor('x', 'FP32', [1, 0]))],
      ['x'],
    );
    assert.deepEqual(inputs[0]!.shape, [3, 0]);
    assert.equal(inputs[0]!.data.length, 0);
    const split = splitBatch(
      [{ name: 'y', datatype: 'INT64', shape: [3, 0], data: new BigInt64Array(0) }],
      sizes,
    );
    assert.deepEqual(
      split.map((outs) => outs[0]!.shape),
      [
        [2, 0],
        [1, 0],
      ],
    );
  });

  test('requests with different trailing dims or datatypes are refused (FERRY_INTERNAL: the caller must group by batchKey)', () => {
    assert.throws(
      () => concatBatch([request(tensor('x', 'FP32', [1, 3])), request(tensor('x', 'FP32', [1, 4]))], ['x']),
      {
        code: 'FERRY_INTERNAL',
        message: /input "x".*FP32 \[1, 4\].*FP32 \[1, 3\].*batchKey/,
      },
    );
    assert.throws(
      () => concatBatch([request(tensor('x', 'FP32', [1, 3])), request(tensor('x', 'FP64', [1, 3]))], ['x']),
      {
        code: 'FERRY_INTERNAL',
      },
    );
  });

  test('user errors: missing input, scalar input, inputs disagreeing on the batch size', () => {
    const ok = tensor('a', 'FP32', [1, 2]);
    assert.throws(
      () => concatBatch([request(ok), { id: 'r7', inputs: [tensor('b', 'FP32', [1, 2])] }], ['a']),
      {
        code: 'FERRY_INVALID_INPUT',
        message: /request "r7" has no input "a"/,
      },
    );
    assert.throws(() => concatBatch([request(ok), request(tensor('a', 'FP32', []))], ['a']), {
      code: 'FERRY_INVALID_INPUT',
      message: /request #1 of the batch: input "a" is a scalar/,
    });
    assert.throws(
      () =>
        concatBatch(
          [
            request(ok, tensor('b', 'FP32', [1])),
            request(tensor('a', 'FP32', [2, 2]), tensor('b', 'FP32', [3])),
          ],
          ['a', 'b'],
        ),
      { code: 'FERRY_INVALID_INPUT', message: /input "b" has 3 rows .* input "a" has 2/ },
    );
    assert.throws(() => concatBatch([request(ok), request({ ...ok, shape: [2, 2] })], ['a']), {
      code: 'FERRY_INVALID_INPUT',
      message: /shape \[2, 2\] but 2 elements/,
    });
  });

  test('an output whose first dimension is not the batch size is FERRY_INFERENCE_FAILED, saying why', () => {
    assert.throws(() => splitBatch([tensor('scores', 'FP32', [1, 10])], [1, 2]), {
      code: 'FERRY_INFERENCE_FAILED',
      message:
        /output "scores" has shape \[1, 10\] for a batch of 3 samples from 2 requests.*first dimension must be the batch dimension/,
    });
    assert.throws(() => splitBatch([tensor('s', 'FP32', [])], [1]), { code: 'FERRY_INFERENCE_FAILED' });
    assert.throws(
      () => splitBatch([{ name: 'y', datatype: 'FP32', shape: [2, 2], data: new Float32Array(3) }], [1, 1]),
      {
        code: 'FERRY_INFERENCE_FAILED',
        message: /but 3 elements/,
      },
    );
  });

  test('splits several outputs per request', () => {
    const y = tensor('y', 'INT32', [3]);
    const z = tensor('z', 'BYTES', [3, 2]);
    const split = splitBatch([y, z], [2, 1]);
    assert.deepEqual(
      split.map((outs) => outs.map((t) => `${t.name}${JSON.stringify(t.shape)}`)),
      [
        ['y[2]', 'z[2,2]'],
        ['y[1]', 'z[1,2]'],
      ],
    );
    assert.deepEqual([...(split[1]![0]!.data as Int32Array)], [-2]);
    assert.equal((split[1]![1]!.data as Uint8Array[])[0], (z.data as Uint8Array[])[4]);
  });
});

describe('batchKey', () => {
  const key = (...inputs: Tensor[]) => batchKey(request(...inputs));

  test('equal for compatible requests: any first dimension, any input order', () => {
    assert.equal(key(tensor('x', 'FP32', [1, 3])), key(tensor('x', 'FP32', [7, 3])));
    assert.equal(
      key(tensor('a', 'FP32', [1, 3]), tensor('b', 'INT64', [1])),
      key(tensor('b', 'INT64', [4]), tensor('a', 'FP32', [4, 3])),
    );
  });

  test('differs by name, datatype, trailing dims, rank and the set of inputs', () => {
    const base = key(tensor('x', 'FP32', [1, 3]));
    assert.notEqual(base, key(tensor('y', 'FP32', [1, 3])));
    assert.notEqual(base, key(tensor('x', 'FP64', [1, 3])));
    assert.notEqual(base, key(tensor('x', 'FP32', [1, 4])));
    assert.notEqual(base, key(tensor('x', 'FP32', [1, 3, 1])));
    assert.notEqual(base, key(tensor('x', 'FP32', [1, 3]), tensor('z', 'FP32', [1])));
    // A name cannot imitate the separators of another key.
    assert.notEqual(
      key(tensor('a', 'FP32', [1]), tensor('b', 'FP32', [1])),
      key(tensor('a/FP32[]1:b', 'FP32', [1])),
    );
  });

  test('samplesOf is the first input’s first dimension', () => {
    assert.equal(samplesOf(request(tensor('x', 'FP32', [5, 2]))), 5);
    assert.equal(samplesOf(request()), 0);
  });
});
