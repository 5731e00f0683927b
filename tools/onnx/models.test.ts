import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { DATATYPES, type Datatype } from '../../src/protocol/types.ts';
import { buildModel, decodeModel } from './builder.ts';
import {
  addModel,
  identityModel,
  imageMeanModel,
  matmulStack,
  matmulStackWeights,
  mulberry32,
} from './models.ts';

function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

function randomFloats(count: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: count }, () => random() * 2 - 1);
}

describe('addModel', () => {
  it('doubles its input for any batch size', async () => {
    const s = await session(addModel());
    assert.deepEqual(s.inputMetadata[0], { name: 'x', isTensor: true, type: 'float32', shape: ['N', 4] });
    for (const batch of [1, 7]) {
      const x = randomFloats(batch * 4, batch);
      const { y } = await s.run({ x: new ort.Tensor('float32', x, [batch, 4]) });
      assert.deepEqual(y!.dims, [batch, 4]);
      assert.deepEqual(
        y!.data,
        x.map((v) => v + v),
      );
    }
  });

  it('has a fixed first dimension when given one, and rejects other batch sizes', async () => {
    const s = await session(addModel({ batch: 1 }));
    assert.deepEqual(s.inputMetadata[0], { name: 'x', isTensor: true, type: 'float32', shape: [1, 4] });
    const { y } = await s.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]) });
    assert.deepEqual(y!.data, new Float32Array([2, 4, 6, 8]));
    await assert.rejects(s.run({ x: new ort.Tensor('float32', new Float32Array(8), [2, 4]) }));
  });
});

describe('identityModel', () => {
  // One sample of [1,3] per datatype, with the extremes of each range.
  const samples: Record<Datatype, [ort.Tensor.Type, ort.Tensor.DataType]> = {
    BOOL: ['bool', new Uint8Array([1, 0, 1])],
    UINT8: ['uint8', new Uint8Array([0, 1, 255])],
    UINT16: ['uint16', new Uint16Array([0, 1, 65535])],
    UINT32: ['uint32', new Uint32Array([0, 1, 4294967295])],
    UINT64: ['uint64', new BigUint64Array([0n, 1n, 18446744073709551615n])],
    INT8: ['int8', new Int8Array([-128, 0, 127])],
    INT16: ['int16', new Int16Array([-32768, 0, 32767])],
    INT32: ['int32', new Int32Array([-2147483648, 0, 2147483647])],
    INT64: ['int64', new BigInt64Array([-9223372036854775808n, 0n, 9223372036854775807n])],
    FP16: ['float16', new Uint16Array([0x3c00, 0x7bff, 0xfc00])], // 1, 65504, -Infinity as half bits
    FP32: ['float32', new Float32Array([-1.5, 0, 3.4028234663852886e38])],
    FP64: ['float64', new Float64Array([-1.5, 0, Number.MAX_VALUE])],
    BYTES: ['string', ['', 'a', 'héllo ✓']],
  };

  for (const datatype of DATATYPES) {
    it(`passes ${datatype} through unchanged`, async () => {
      const [type, data] = samples[datatype];
      const s = await session(identityModel(datatype));
      assert.deepEqual(s.inputMetadata[0], { name: 'x', isTensor: true, type, shape: ['N', 3] });
      assert.deepEqual(s.outputMetadata[0], { name: 'y', isTensor: true, type, shape: ['N', 3] });
      const { y } = await s.run({ x: new ort.Tensor(type, data, [1, 3]) });
      assert.equal(y!.type, type);
      assert.deepEqual(y!.dims, [1, 3]);
      assert.deepEqual(y!.data, data);
    });
  }
});

/** JS reference of matmulStack in float64: h = relu(h @ W) per layer. */
function matmulStackReference(
  x: Float32Array,
  batch: number,
  width: number,
  weights: Float32Array[],
): Float64Array {
  let h = Float64Array.from(x);
  for (const w of weights) {
    const next = new Float64Array(batch * width);
    for (let n = 0; n < batch; n++) {
      for (let k = 0; k < width; k++) {
        const a = h[n * width + k]!;
        for (let j = 0; j < width; j++) next[n * width + j]! += a * w[k * width + j]!;
      }
    }
    h = next.map((v) => Math.max(0, v));
  }
  return h;
}

describe('matmulStack', () => {
  it('matches a JS reference on a small width', async () => {
    const options = { layers: 3, width: 16, seed: 7 };
    const s = await session(matmulStack(options));
    const batch = 5;
    const x = randomFloats(batch * 16, 99);
    const { y } = await s.run({ x: new ort.Tensor('float32', x, [batch, 16]) });
    const expected = matmulStackReference(x, batch, 16, matmulStackWeights(options));
    assert.deepEqual(y!.dims, [batch, 16]);
    const got = y!.data as Float32Array;
    assert.ok(
      expected.some((v) => v > 0),
      'reference output is not all zero',
    );
    for (let i = 0; i < expected.length; i++) {
      assert.ok(Math.abs(got[i]! - expected[i]!) <= 1e-5, `y[${i}] = ${got[i]}, expected ${expected[i]}`);
    }
  });

  it('is deterministic per seed and differs between seeds', () => {
    assert.deepEqual(matmulStack({ width: 8, seed: 3 }), matmulStack({ width: 8, seed: 3 }));
    assert.notDeepEqual(matmulStackWeights({ width: 8, seed: 3 }), matmulStackWeights({ width: 8, seed: 4 }));
  });

  it('keeps activations finite and of the input magnitude at the default size', async () => {
    const bytes = matmulStack();
    const model = decodeModel(bytes);
    const initializers = model.graph!.initializer!;
    assert.equal(initializers.length, 4);
    assert.deepEqual(initializers[0]!.dims!.map(Number), [1024, 1024]);
    const s = await session(bytes);
    const x = randomFloats(2 * 1024, 5);
    const { y } = await s.run({ x: new ort.Tensor('float32', x, [2, 1024]) });
    const out = y!.data as Float32Array;
    assert.equal(out.length, 2 * 1024);
    const rms = (a: Float32Array) => Math.sqrt(a.reduce((sum, v) => sum + v * v, 0) / a.length);
    assert.ok(
      out.every((v) => Number.isFinite(v) && v >= 0),
      'finite, non-negative',
    );
    const ratio = rms(out) / rms(x);
    assert.ok(ratio > 0.1 && ratio < 10, `rms(y)/rms(x) = ${ratio}`);
  });
});

describe('imageMeanModel', () => {
  it('returns the per-channel mean of a 224x224 image and a small one', async () => {
    for (const [height, width] of [
      [224, 224],
      [4, 6],
    ] as const) {
      const s = await session(height === 224 ? imageMeanModel() : imageMeanModel({ height, width }));
      assert.deepEqual(s.inputMetadata[0], {
        name: 'image',
        isTensor: true,
        type: 'float32',
        shape: ['N', 3, height, width],
      });
      const batch = 2;
      const plane = height * width;
      const image = randomFloats(batch * 3 * plane, plane);
      const { mean } = await s.run({ image: new ort.Tensor('float32', image, [batch, 3, height, width]) });
      assert.deepEqual(mean!.dims, [batch, 3]);
      for (let c = 0; c < batch * 3; c++) {
        let sum = 0;
        for (let i = 0; i < plane; i++) sum += image[c * plane + i]!;
        const got = (mean!.data as Float32Array)[c]!;
        assert.ok(Math.abs(got - sum / plane) < 1e-5, `mean[${c}] = ${got}, expected ${sum / plane}`);
      }
    }
  });
});

describe('buildModel', () => {
  it('writes ir_version 8, opset 17, metadata and deterministic bytes', () => {
    const describeModel = () =>
      buildModel({
        inputs: [{ name: 'x', elemType: 'FLOAT', dims: ['N', 2] }],
        outputs: [{ name: 'y', elemType: 'FLOAT' }],
        nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
        metadata: { classes: 'a,b' },
      });
    const bytes = describeModel();
    assert.equal(
      Object.getPrototypeOf(bytes),
      Uint8Array.prototype,
      'a plain Uint8Array, not a pooled Buffer',
    );
    assert.deepEqual(bytes, describeModel());
    const model = decodeModel(bytes);
    assert.equal(Number(model.irVersion), 8);
    assert.deepEqual(
      model.opsetImport.map((o) => [o.domain, Number(o.version)]),
      [['', 17]],
    );
    assert.deepEqual(
      model.metadataProps.map((p) => [p.key, p.value]),
      [['classes', 'a,b']],
    );
    const dims = model.graph!.input![0]!.type!.tensorType!.shape!.dim!;
    assert.deepEqual(
      dims.map((d) => d.dimParam || Number(d.dimValue)),
      ['N', 2],
    );
  });

  it('stores INT64, FLOAT16, BOOL and STRING initializers and typed attributes that ORT runs', async () => {
    // x FP32 [2,3] -> Reshape(shape INT64 [3,2]) -> LeakyRelu(alpha=1, forced float) -> y
    // plus constant outputs straight from initializers of the other types.
    const half = new Uint16Array([0x3c00, 0xc000]); // 1, -2
    const bytes = buildModel({
      inputs: [{ name: 'x', elemType: 'FLOAT', dims: [2, 3] }],
      outputs: [
        { name: 'y', elemType: 'FLOAT', dims: [3, 2] },
        { name: 'h', elemType: 'FLOAT16', dims: [2] },
        { name: 'b', elemType: 'BOOL', dims: [2] },
        { name: 's', elemType: 'STRING', dims: [2] },
        { name: 'c', elemType: 'FLOAT', dims: [2] },
      ],
      initializers: [
        { name: 'shape', dims: [2], data: new BigInt64Array([3n, 2n]) },
        { name: 'half', dims: [2], data: half, elemType: 'FLOAT16' },
        { name: 'flags', dims: [2], data: new Uint8Array([1, 0]), elemType: 'BOOL' },
        { name: 'words', dims: [2], data: ['ferry', 'ünïcode'] },
      ],
      nodes: [
        { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['r'] },
        { op: 'LeakyRelu', inputs: ['r'], outputs: ['y'], attributes: { alpha: { float: 1 } } },
        { op: 'Identity', inputs: ['half'], outputs: ['h'] },
        { op: 'Identity', inputs: ['flags'], outputs: ['b'] },
        { op: 'Identity', inputs: ['words'], outputs: ['s'] },
        {
          op: 'Constant',
          inputs: [],
          outputs: ['c'],
          attributes: { value: { tensor: { dims: [2], data: new Float32Array([0.5, -1]) } } },
        },
      ],
    });
    const s = await session(bytes);
    const x = new Float32Array([-1, 2, -3, 4, -5, 6]);
    const out = await s.run({ x: new ort.Tensor('float32', x, [2, 3]) });
    assert.deepEqual(out.y!.dims, [3, 2]);
    assert.deepEqual(out.y!.data, x); // alpha = 1 keeps negatives: proves the attribute is a FLOAT
    assert.deepEqual(out.h!.data, half);
    assert.deepEqual(out.b!.data, new Uint8Array([1, 0]));
    assert.deepEqual(out.s!.data, ['ferry', 'ünïcode']);
    assert.deepEqual(out.c!.data, new Float32Array([0.5, -1]));
  });

  it('rejects malformed descriptions naming the field', () => {
    const base = {
      outputs: [{ name: 'y', elemType: 'FLOAT' as const }],
      nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
    };
    assert.throws(
      () => buildModel({ ...base, inputs: [{ name: 'x', elemType: 'FLOAT', dims: [-1] }] }),
      /inputs\.x\.dims\[0\]: -1 is not a size/,
    );
    assert.throws(
      () => buildModel({ ...base, inputs: [{ name: 'x', elemType: 'COMPLEX64' as 'FLOAT' }] }),
      /inputs\.x: unknown element type "COMPLEX64"/,
    );
    assert.throws(
      () =>
        buildModel({
          ...base,
          inputs: [],
          initializers: [{ name: 'x', dims: [2, 2], data: new Float32Array(3) }],
        }),
      /initializers\.x: dims \[2,2\] hold 4 elements but data has 3/,
    );
    assert.throws(
      () =>
        buildModel({
          ...base,
          inputs: [],
          initializers: [{ name: 'x', dims: [1], data: new Float32Array(1), elemType: 'INT64' }],
        }),
      /initializers\.x: elemType INT64 cannot be stored from data of element type FLOAT/,
    );
  });
});
