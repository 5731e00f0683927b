import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { identityModel } from '../../../tools/onnx/models.ts';
import { TINY_MODEL_BASE64 } from '../backends/onnx-tensors.ts';
import { WorkerPool } from './pool.ts';
import {
  discardPreloaded,
  looksOnnx,
  preloadPending,
  preloadSettled,
  preloadWorker,
  takePreloaded,
} from './preload.ts';

const IRIS = new URL('../../../examples/iris', import.meta.url).pathname;

test('the embedded tiny model is the identity model of tools/onnx', () => {
  assert.deepEqual(Buffer.from(TINY_MODEL_BASE64, 'base64'), Buffer.from(identityModel('FP32')));
});

test("an ONNX model is recognised from its ferry.yaml's text; anything else is not", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-preload-'));
  try {
    assert.equal(looksOnnx(IRIS), true);
    const spec = (text: string) => {
      writeFileSync(join(dir, 'ferry.yaml'), text);
      return looksOnnx(dir);
    };
    assert.equal(spec('model:\n  format: "onnx"\n'), true);
    assert.equal(spec("model: { name: m, format: 'onnx', file: m.onnx }\n"), true);
    assert.equal(spec('model:\n  format: onnx # the default runtime\n'), true);
    assert.equal(spec('model:\n  format: handler\n  file: model.onnx.ts\n'), false);
    assert.equal(spec('model:\n  format: onnxish\n'), false);
    assert.equal(looksOnnx(join(dir, 'missing')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the pool's first ONNX worker is the preloaded one (taken once), and it serves the model it is told", async () => {
  assert.equal(takePreloaded('onnx'), undefined, 'nothing preloaded yet');
  await preloadSettled(); // nothing to wait for
  preloadWorker(IRIS, 1);
  assert.equal(preloadPending(), false, 'not on one core');
  preloadWorker(IRIS, 2);
  assert.equal(preloadPending(), true);
  await preloadSettled();
  assert.equal(
    preloadPending(),
    true,
    "settled by the worker's 'warmed' (out of onnxruntime's setup), not its exit",
  );
  assert.equal(takePreloaded('handler'), undefined, 'not for a handler');
  const pool = await WorkerPool.start(
    {
      format: 'onnx',
      options: {
        dir: IRIS,
        file: join(IRIS, 'model.onnx'),
        inputs: null,
        outputs: null,
        threads: 1,
        env: {},
        gpu: 0,
      },
      nice: 0,
    },
    2,
  );
  try {
    assert.equal(preloadPending(), false, 'taken by the pool');
    assert.equal(pool.preloaded, true);
    assert.equal(pool.size, 2, 'the second worker started as before');
    assert.deepEqual(
      pool.inputs.map((t) => t.name),
      ['input'],
    );
    const [out] = await pool.run(
      [
        {
          inputs: [
            { name: 'input', datatype: 'FP32', shape: [1, 4], data: new Float32Array([5.1, 3.5, 1.4, 0.2]) },
          ],
        },
      ],
      true,
    );
    assert.ok(Array.isArray(out), String(out));
    const label = out.find((t) => t.name === 'label');
    assert.ok(label, 'a label output');
    assert.equal(Number((label.data as BigInt64Array)[0]), 0, 'setosa');
    preloadWorker(IRIS, 2);
    assert.equal(takePreloaded('onnx'), undefined, 'one preloaded worker per process');
  } finally {
    await pool.close();
    discardPreloaded();
  }
});
