/** Every OIP datatype round-trips through a real ONNX Identity model, in JSON and in binary. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
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

describe('pipelined binary requests', () => {
  let server: TestServer;
  const dir = tempDir();
  before(async () => {
    writeModelDir(join(dir.path, 'echo'), onnxSpec('echo'), { 'model.onnx': identityModel('FP32') });
    server = await serve([dir.path]);
  });
  after(async () => {
    await server.close();
    dir.remove();
  });

  test('two binary requests in one TCP write each get their own tensor back (bodies that share a read buffer)', async () => {
    // Each body is ~8 KB, so both arrive in one socket read of ~17 KB. A body's tensor may be transferred to the
    // model's thread without a copy (worker/messages.ts ownBuffers), which would break the other request if the
    // two bodies were views into one buffer (node:http copies each body chunk into its own; this keeps it checked).
    const rows = 700;
    const bodies = [1, 2].map((seed) => {
      const data = Float32Array.from({ length: rows * 3 }, (_, i) => seed * 1000 + i);
      const header = Buffer.from(
        JSON.stringify({
          inputs: [
            {
              name: 'x',
              datatype: 'FP32',
              shape: [rows, 3],
              parameters: { binary_data_size: data.byteLength },
            },
          ],
        }),
      );
      return { seed, header, payload: Buffer.from(data.buffer) };
    });
    const { port } = new URL(server.url);
    const wire = Buffer.concat(
      bodies.map(({ header, payload }) =>
        Buffer.concat([
          Buffer.from(
            `POST /v2/models/echo/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n` +
              `inference-header-content-length: ${header.length}\r\ncontent-length: ${header.length + payload.length}\r\n\r\n`,
          ),
          header,
          payload,
        ]),
      ),
    );
    const complete = (text: string) => {
      const answers = text.split(/(?=HTTP\/1\.1 )/).filter(Boolean);
      return (
        answers.length === 2 &&
        answers.every((a) => {
          const length = Number(/content-length: (\d+)/i.exec(a)?.[1]);
          const body = a.indexOf('\r\n\r\n');
          return body >= 0 && a.length - body - 4 >= length;
        })
      );
    };
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(wire));
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        received += chunk;
        if (complete(received)) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
    });
    const answers = text.split(/(?=HTTP\/1\.1 )/).filter(Boolean);
    assert.equal(answers.length, 2, text.slice(0, 500));
    for (const [i, answer] of answers.entries()) {
      assert.match(answer, /^HTTP\/1\.1 200/, answer.slice(0, 300));
      const json = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      const y = json.outputs[0];
      assert.deepEqual(y.shape, [rows, 3]);
      assert.equal(y.data[0], bodies[i]!.seed * 1000, `request ${i + 1} got its own tensor`);
      assert.equal(y.data.at(-1), bodies[i]!.seed * 1000 + rows * 3 - 1);
    }
  });
});
