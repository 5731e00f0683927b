/**
 * The batcher in front of a real onnxruntime session: a burst of requests of different sizes is
 * concatenated into batches, run, and split back, and every request gets exactly its own answer.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { addModel, identityModel } from '../../../tools/onnx/models.ts';
import type { InferRequest, Tensor } from '../../protocol/types.ts';
import { loadOnnxBackend } from '../backends/onnx.ts';
import type { Backend } from '../backends/types.ts';
import { Batcher, type BatchInfo, systemClock } from './batcher.ts';
import { batchKey, concatBatch, samplesOf, splitBatch } from './concat.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-batching-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(name: string, model: Uint8Array): Promise<Backend> {
  const file = join(dir, `${name}.onnx`);
  await writeFile(file, model);
  return loadOnnxBackend({ dir, file, inputs: null, outputs: null, threads: 1, env: {}, gpu: 0 });
}

function batcherFor(backend: Backend, batches: BatchInfo[]) {
  return new Batcher<InferRequest, Tensor[]>({
    policy: { maxBatchSize: 16, maxQueueDelayMs: 0, preferredBatchSizes: [], maxQueueSize: 100 },
    clock: systemClock,
    concurrency: 1,
    // What the worker pool does for a batched model: concatenate, one model call, split.
    execute: async (batch) => {
      const { inputs, sizes } = concatBatch(
        batch,
        backend.inputs.map((t) => t.name),
      );
      return splitBatch(await backend.runBatch!(inputs), sizes);
    },
    samplesOf,
    keyOf: batchKey,
    onBatch: (info) => batches.push(info),
  });
}

test('add model: a burst is batched up to maxBatchSize samples and each request gets its own rows', async () => {
  const backend = await load('add', addModel());
  const batches: BatchInfo[] = [];
  const batcher = batcherFor(backend, batches);
  const rows = [1, 3, 2, 5, 1, 4, 2, 1, 6, 2];
  const requests = rows.map(
    (n, r): InferRequest => ({
      id: `r${r}`,
      inputs: [
        {
          name: 'x',
          datatype: 'FP32',
          shape: [n, 4],
          data: Float32Array.from({ length: n * 4 }, (_, i) => r * 100 + i),
        },
      ],
    }),
  );
  const expected = requests.map((req) => Array.from(req.inputs[0]!.data as Float32Array, (v) => v * 2));
  const results = await Promise.all(requests.map((req) => batcher.submit(req, Number.POSITIVE_INFINITY)));
  for (let r = 0; r < rows.length; r++) {
    const [y] = results[r]!;
    assert.equal(y!.name, 'y');
    assert.deepEqual(y!.shape, [rows[r], 4]);
    assert.deepEqual([...(y!.data as Float32Array)], expected[r], `request r${r}`);
  }
  // First request alone (free executor, no delay), then the queued samples in FIFO batches of <= 16:
  // 3+2+5+1+4 = 15 (the next 2 would make 17), then 2+1+6+2 = 11.
  assert.deepEqual(
    batches.map((b) => [b.size, b.samples]),
    [
      [1, 1],
      [5, 15],
      [4, 11],
    ],
  );
  await batcher.close();
  await backend.unload();
});

test('identity model: INT64 and BYTES requests are batched and split back exactly', async () => {
  for (const [datatype, make] of [
    [
      'INT64',
      (r: number, n: number) =>
        BigInt64Array.from({ length: n * 3 }, (_, i) => BigInt(r) * 1000n + BigInt(i) - 2n ** 40n),
    ],
    [
      'BYTES',
      (r: number, n: number) =>
        Array.from({ length: n * 3 }, (_, i) => new TextEncoder().encode(`r${r}-${i}`)),
    ],
  ] as const) {
    const backend = await load(`identity-${datatype}`, identityModel(datatype));
    const batches: BatchInfo[] = [];
    const batcher = batcherFor(backend, batches);
    const rows = [2, 1, 3, 2];
    const requests = rows.map(
      (n, r): InferRequest => ({ inputs: [{ name: 'x', datatype, shape: [n, 3], data: make(r, n) }] }),
    );
    const results = await Promise.all(requests.map((req) => batcher.submit(req, Number.POSITIVE_INFINITY)));
    for (let r = 0; r < rows.length; r++) {
      const [y] = results[r]!;
      assert.equal(y!.datatype, datatype);
      assert.deepEqual(y!.shape, [rows[r], 3]);
      assert.deepEqual([...y!.data], [...make(r, rows[r]!)], `${datatype} request ${r}`);
    }
    assert.deepEqual(
      batches.map((b) => b.size),
      [1, 3],
      `${datatype}: the first alone, the other three together`,
    );
    await batcher.close();
    await backend.unload();
  }
});
