import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { parse } from 'yaml';
import { buildIrisModel, loadIris, predict, train } from './train.ts';

const dir = import.meta.dirname;
const committed = readFileSync(join(dir, 'model.onnx'));

interface TensorJson {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

describe('examples/iris', () => {
  let session: ort.InferenceSession;
  before(async () => {
    session = await ort.InferenceSession.create(committed, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  });
  after(() => session.release());

  async function run(rows: number[][]) {
    const input = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 4]);
    const { label, probabilities } = await session.run({ input });
    return { label: label!, probabilities: probabilities! };
  }

  it('declares input [N,4] FP32 and outputs label [N] INT64, probabilities [N,3] FP32', () => {
    assert.deepEqual(session.inputMetadata, [
      { name: 'input', isTensor: true, type: 'float32', shape: ['N', 4] },
    ]);
    assert.deepEqual(session.outputMetadata, [
      { name: 'label', isTensor: true, type: 'int64', shape: ['N'] },
      { name: 'probabilities', isTensor: true, type: 'float32', shape: ['N', 3] },
    ]);
  });

  it('classifies the whole data set with accuracy >= 0.9, in agreement with the JS model', async () => {
    const data = loadIris();
    const { label, probabilities } = await run(data.features);
    const labels = Array.from(label.data as BigInt64Array, Number);
    const correct = labels.filter((l, i) => l === data.labels[i]).length;
    assert.ok(correct / labels.length >= 0.9, `accuracy ${correct / labels.length}`);
    assert.deepEqual(labels, predict(train(data), data.features));
    const p = probabilities.data as Float32Array;
    for (let n = 0; n < labels.length; n++) {
      const row = [p[3 * n]!, p[3 * n + 1]!, p[3 * n + 2]!];
      assert.ok(Math.abs(row[0]! + row[1]! + row[2]! - 1) < 1e-5, `row ${n} sums to 1`);
      assert.equal(row.indexOf(Math.max(...row)), labels[n], `row ${n}: label is the most probable class`);
    }
  });

  it('answers every example of ferry.yaml with its expected response, within tolerance', async () => {
    const spec = parse(readFileSync(join(dir, 'ferry.yaml'), 'utf8'));
    assert.equal(spec.model.file, 'model.onnx');
    const names = spec.examples.map((e: { name: string }) => e.name);
    assert.deepEqual(names, ['setosa', 'versicolor', 'virginica', 'batch']);
    for (const example of spec.examples) {
      const read = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));
      const request: { inputs: TensorJson[] } = read(example.requestFile);
      const expected: { outputs: TensorJson[] } = read(example.responseFile);
      assert.equal(typeof example.tolerance, 'number');
      const [input] = request.inputs;
      assert.equal(input!.name, 'input');
      const rows = Array.from({ length: input!.shape[0]! }, (_, n) => input!.data.slice(4 * n, 4 * n + 4));
      const got = await run(rows);
      const [label, probabilities] = expected.outputs;
      assert.deepEqual([label!.name, label!.datatype, label!.shape], ['label', 'INT64', [rows.length]]);
      assert.deepEqual(Array.from(got.label.data as BigInt64Array, Number), label!.data, example.name);
      assert.deepEqual(
        [probabilities!.name, probabilities!.datatype, probabilities!.shape],
        ['probabilities', 'FP32', [rows.length, 3]],
      );
      const p = got.probabilities.data as Float32Array;
      probabilities!.data.forEach((want, i) => {
        assert.ok(
          Math.abs(p[i]! - want) <= example.tolerance,
          `${example.name}: probabilities[${i}] ${p[i]} vs ${want}`,
        );
      });
    }
  });

  it('has one single-row example per class, taken from the data set', () => {
    const data = loadIris();
    for (const [name, label] of [
      ['setosa', 0],
      ['versicolor', 1],
      ['virginica', 2],
    ] as const) {
      const request = JSON.parse(readFileSync(join(dir, 'requests', `${name}.json`), 'utf8'));
      const row: number[] = request.inputs[0].data;
      const index = data.features.findIndex((f) => f.every((v, i) => v === row[i]));
      assert.ok(index >= 0, `${name} request is a row of the data set`);
      assert.equal(data.labels[index], label);
    }
  });

  it('retrains to a model byte-identical to the committed model.onnx', () => {
    assert.deepEqual(buildIrisModel(), new Uint8Array(committed));
  });
});
