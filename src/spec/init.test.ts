import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../core/errors.ts';
import { DATATYPES, type TensorSpec } from '../protocol/types.ts';
import { initModelName, modelNameFromFile, renderInitialSpec, sampleRequest } from './init.ts';
import { formatSpecProblems, parseSpec } from './load.ts';
import { MODEL_NAME_RE } from './schema.ts';

const inputs: TensorSpec[] = [
  { name: 'input', datatype: 'FP32', shape: [-1, 4] },
  { name: 'mask: 0', datatype: 'BOOL', shape: [-1, 2, -1] },
];
const outputs: TensorSpec[] = [{ name: 'label', datatype: 'INT64', shape: [-1] }];

function load(text: string) {
  const result = parseSpec(text, 'ferry.yaml', '/m');
  assert.deepEqual(result.problems, [], `${formatSpecProblems(result.problems)}\n---\n${text}`);
  assert.deepEqual(result.warnings, []);
  return result;
}

describe('renderInitialSpec', () => {
  it('writes an onnx spec that loads with the defaults (tensors as comments)', () => {
    const text = renderInitialSpec({ name: 'iris', file: 'model.onnx', inputs, outputs });
    assert.match(text, /^# ferry\.yaml/);
    assert.match(text, /# {3}- \{ name: "mask: 0", datatype: BOOL, shape: \[-1, 2, -1\] \}/);
    const { spec } = load(text);
    assert.equal(spec?.model.name, 'iris');
    assert.equal(spec?.model.format, 'onnx');
    assert.equal(spec?.model.inputs, null);
    assert.equal(spec?.serving.timeoutMs, 30_000);
    assert.equal(spec?.serving.batching?.auto, true, 'batching left out: automatic');
  });

  it('writes a handler spec whose declared tensors load back', () => {
    const text = renderInitialSpec({
      name: 'echo',
      file: 'src/handler.ts',
      inputs,
      outputs,
      requestFile: 'examples/x y.json',
    });
    const result = load(text);
    assert.deepEqual(result.spec?.model.inputs, inputs);
    assert.deepEqual(result.spec?.model.outputs, outputs);
    assert.deepEqual(result.exampleFiles, [{ example: 0, field: 'request', file: 'examples/x y.json' }]);
  });

  it('writes a handler spec without tensors that loads (empty lists to fill in)', () => {
    const result = load(renderInitialSpec({ name: 'echo', file: 'handler.mjs' }));
    assert.deepEqual(result.spec?.model.inputs, []);
  });

  it('loads for any tensor names and shapes', () => {
    const tensor = fc.record({
      name: fc.string({ minLength: 1, maxLength: 20 }),
      datatype: fc.constantFrom(...DATATYPES),
      shape: fc.array(fc.integer({ min: -1, max: 100 }), { maxLength: 4 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(tensor, { selector: (t) => t.name, maxLength: 4 }), (generated) => {
        const tensors = generated.map((t) => ({ ...t })); // plain objects, as the spec holds
        const text = renderInitialSpec({ name: 'm', file: 'h.ts', inputs: tensors, outputs: tensors });
        const result = parseSpec(text, 'ferry.yaml', '/m');
        assert.deepEqual(result.problems, [], formatSpecProblems(result.problems));
        assert.deepEqual(result.spec?.model.inputs, tensors);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses an invalid name or an unknown file type', () => {
    assert.throws(
      () => renderInitialSpec({ name: 'My Model', file: 'm.onnx' }),
      (e: unknown) => {
        assert.ok(e instanceof FerryError);
        assert.equal(e.code, 'FERRY_SPEC_INVALID');
        assert.match(e.hint ?? '', /"my-model"/);
        return true;
      },
    );
    assert.throws(
      () => renderInitialSpec({ name: 'm', file: 'model.pt' }),
      /neither an \.onnx file nor a JS\/TS module/,
    );
  });
});

describe('sampleRequest', () => {
  const tensors: TensorSpec[] = [
    { name: 'x', datatype: 'FP32', shape: [-1, 12] },
    { name: 'm', datatype: 'BOOL', shape: [2, -1] },
    { name: 't', datatype: 'BYTES', shape: [-1] },
    { name: 's', datatype: 'INT64', shape: [] },
    { name: 'e', datatype: 'UINT8', shape: [0, 3] },
    { name: 'ids', datatype: 'INT32', shape: [1, 3] },
  ];

  it('uses batch 1 and a fixed, not all-zero pattern of the right type and count (what ferry init writes)', () => {
    assert.deepEqual(sampleRequest(tensors), {
      inputs: [
        {
          name: 'x',
          datatype: 'FP32',
          shape: [1, 12],
          data: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 0.1, 0.2],
        },
        { name: 'm', datatype: 'BOOL', shape: [2, 1], data: [true, true] },
        { name: 't', datatype: 'BYTES', shape: [1], data: ['hello'] },
        { name: 's', datatype: 'INT64', shape: [], data: [1] },
        { name: 'e', datatype: 'UINT8', shape: [0, 3], data: [] },
        { name: 'ids', datatype: 'INT32', shape: [1, 3], data: [1, 1, 1] },
      ],
    });
    assert.deepEqual(sampleRequest(tensors), sampleRequest(tensors), 'deterministic');
  });

  it('zeros: the same request zero-filled (the server warm-up)', () => {
    assert.deepEqual(
      sampleRequest(tensors, 'zeros').inputs.map((t) => t.data),
      [new Array(12).fill(0), [false, false], [''], [0], [], [0, 0, 0]],
    );
  });

  it('is accepted as an example request by the spec', () => {
    const request = sampleRequest(inputs);
    const text = `apiVersion: ferry.dev/v1alpha1
kind: Model
model: { name: m, format: onnx, file: m.onnx }
examples: [{ name: sample, request: ${JSON.stringify(request)} }]
`;
    assert.deepEqual(load(text).spec?.examples[0]?.request, request);
  });
});

describe('initModelName', () => {
  const table: [string, string, string][] = [
    ['/work/my-model', '/elsewhere/model.onnx', 'my-model'],
    ['/work/My Classifier_v2', '/elsewhere/model.onnx', 'my-classifier-v2'],
    ['/work/2024', '/elsewhere/model.onnx', 'model-2024'],
    ['/work/___', '/elsewhere/resnet50.onnx', 'resnet50'],
    ['/', '/elsewhere/resnet50.onnx', 'resnet50'],
  ];
  for (const [dir, file, name] of table)
    it(`ferry init ${dir} --from ${file} -> ${name}`, () => assert.equal(initModelName(dir, file), name));
});

describe('modelNameFromFile', () => {
  const table: [string, string][] = [
    ['model.onnx', 'model'],
    ['models/ResNet50_v2.onnx', 'resnet50-v2'],
    ['/abs/path/My Cool Model!!.onnx', 'my-cool-model'],
    ['2024-classifier.onnx', 'model-2024-classifier'],
    ['___.onnx', 'model'],
    [`${'a'.repeat(70)}.onnx`, 'a'.repeat(63)],
    [`${'a'.repeat(62)}_b.onnx`, 'a'.repeat(62)],
  ];
  for (const [file, name] of table)
    it(`${file} -> ${name}`, () => assert.equal(modelNameFromFile(file), name));

  it('always gives a valid name', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (file) =>
        assert.match(modelNameFromFile(file), MODEL_NAME_RE),
      ),
    );
  });
});
