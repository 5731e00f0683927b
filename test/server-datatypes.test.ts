/** Every OIP datatype round-trips through a real ONNX Identity model, in JSON and in binary. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Datatype, InferRequest, Tensor } from '../src/protocol/types.ts';
import { identityModel } from '../tools/onnx/models.ts';
import { onnxSpec, serve, type TestServer, tempDir, writeModelDir } from './helpers.ts';

const SAMPLES: Record<Datatype, Tensor['data']> = {
  BOOL: new Uint8Array([1, 0, 1, 0, 0, 1]),
  UINT8: new Uint8Array([0, 1, 255, 7, 8, 9]),
  UINT16: new Uint16Array([0, 1, 65535, 7, 8, 9]),
  UINT32: new Uint32Array([0, 1, 4294967295, 7, 8, 9]),
  UINT64: new BigUint64Array([0n, 1n, 18446744073709551615n, 7n, 8n, 9n]),
  INT8: new Int8Array([-128, 127, 0, -1, 5, 6]),
  INT16: new Int16Array([-32768, 32767, 0, -1, 5, 6]),
  INT32: new Int32Array([-2147483648, 2147483647, 0, -1, 5, 6]),
  INT64: new BigInt64Array([-9223372036854775808n, 9223372036854775807n, 9007199254740993n, -1n, 5n, 6n]),
  FP16: new Uint16Array([0x3c00, 0xc000, 0x0000, 0x7bff, 0x3800, 0x3555]), // 1, -2, 0, 65504, 0.5, ~0.333
  FP32: new Float32Array([1.5, -2.25, 0, 3.4e38, 1e-30, 7]),
  FP64: new Float64Array([1.5, -2.25, 0, 1.7e308, 1e-300, Math.PI]),
  BYTES: ['a', 'béta', '', '日本', 'x y', '{"j":1}'].map((s) => new TextEncoder().encode(s)),
};

const DATATYPES = Object.keys(SAMPLES) as Datatype[];
const modelName = (d: Datatype) => `id-${d.toLowerCase()}`;

function plain(data: Tensor['data']): unknown[] {
  return Array.isArray(data)
    ? data.map((b) => Buffer.from(b).toString('utf8'))
    : Array.from(data as ArrayLike<unknown>);
}

describe('all datatypes through Identity models', () => {
  let server: TestServer;
  const dir = tempDir();
  before(async () => {
    for (const datatype of DATATYPES) {
      writeModelDir(join(dir.path, modelName(datatype)), onnxSpec(modelName(datatype)), {
        'model.onnx': identityModel(datatype),
      });
    }
    server = await serve([dir.path]);
  });
  after(async () => {
    await server.close();
    dir.remove();
  });

  for (const datatype of DATATYPES) {
    for (const binary of [false, true]) {
      test(`${datatype} ${binary ? 'binary' : 'JSON'}`, async () => {
        const request: InferRequest = {
          inputs: [{ name: 'x', datatype, shape: [2, 3], data: SAMPLES[datatype] }],
        };
        const response = await server.client.infer(modelName(datatype), request, {
          binary,
          binaryOutputs: binary,
        });
        const y = response.outputs.find((o) => o.name === 'y');
        assert.ok(y, 'output y');
        assert.equal(y.datatype, datatype);
        assert.deepEqual(y.shape, [2, 3]);
        assert.deepEqual(plain(y.data), plain(SAMPLES[datatype]));
      });
    }
  }
});
