import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../core/errors.ts';
import { loadSpec, parseServingOverrides, servingOverrideProblems } from './load.ts';
import type { SpecProblem } from './types.ts';

const HEAD = 'apiVersion: ferry.dev/v1alpha1\nkind: Model\n';
let root: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ferry-spec-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A model directory with the given files (text), returning its path. */
async function modelDir(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(root, name);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  await mkdir(dir, { recursive: true });
  return dir;
}

async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FerryError, String(error));
    return error;
  }
  assert.fail('expected a FerryError');
}

describe('loadSpec', () => {
  it('loads a directory and inlines example request and response files', async () => {
    const request = {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
    };
    const response = { outputs: [{ name: 'label', datatype: 'INT64', shape: [1], data: [0] }] };
    const dir = await modelDir('iris', {
      'ferry.yaml': `${HEAD}model: { name: iris, format: onnx, file: model.onnx, files: [data/labels.txt] }
examples:
  - { name: json, requestFile: examples/setosa.json, responseFile: examples/setosa.out.json }
  - { name: yaml, requestFile: examples/setosa.yaml }
`,
      'model.onnx': 'not really onnx; the spec only checks that it exists',
      'data/labels.txt': 'setosa\n',
      'examples/setosa.json': JSON.stringify(request),
      'examples/setosa.out.json': JSON.stringify(response),
      'examples/setosa.yaml':
        'inputs: [{ name: input, datatype: FP32, shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }]\n',
    });
    const loaded = await loadSpec(dir);
    assert.equal(loaded.file, join(dir, 'ferry.yaml'));
    assert.equal(loaded.dir, dir);
    assert.deepEqual(loaded.warnings, []);
    assert.deepEqual(loaded.spec.examples, [
      { name: 'json', request, response, tolerance: 1e-5 },
      { name: 'yaml', request, tolerance: 1e-5 },
    ]);
    // The file itself works as well as its directory.
    assert.deepEqual((await loadSpec(join(dir, 'ferry.yaml'))).spec, loaded.spec);
  });

  it('reports a missing path with FERRY_SPEC_NOT_FOUND and a hint', async () => {
    const error = await rejection(loadSpec(join(root, 'nowhere')));
    assert.equal(error.code, 'FERRY_SPEC_NOT_FOUND');
    assert.match(error.message, /nowhere does not exist/);
    assert.match(error.hint ?? '', /ferry init/);
  });

  it('reports a directory without ferry.yaml, suggesting ferry init or the .yml rename', async () => {
    const empty = await modelDir('empty', { 'model.onnx': 'x' });
    const error = await rejection(loadSpec(empty));
    assert.equal(error.code, 'FERRY_SPEC_NOT_FOUND');
    assert.match(error.message, /has no ferry\.yaml/);
    assert.match(error.hint ?? '', /ferry init/);
    const yml = await modelDir('yml', { 'ferry.yml': HEAD });
    assert.match((await rejection(loadSpec(yml))).hint ?? '', /rename ferry\.yml/);
  });

  it('throws FERRY_SPEC_INVALID with every problem listed in the message and the details', async () => {
    const dir = await modelDir('bad', {
      'ferry.yaml': `${HEAD}model: { name: Bad, format: onnx, file: model.onnx }\nserving: { timeout: 5 parsecs }\n`,
    });
    const error = await rejection(loadSpec(dir));
    assert.equal(error.code, 'FERRY_SPEC_INVALID');
    const problems = error.details as SpecProblem[];
    assert.deepEqual(
      problems.map((p) => p.path),
      ['model.name', 'serving.timeout'],
    );
    const lines = error.message.split('\n');
    assert.match(lines[0]!, /ferry\.yaml has 2 problems:$/);
    assert.match(lines[1]!, /ferry\.yaml:3:16 model\.name: "Bad" is not a valid model name; /);
    assert.match(lines[2]!, /ferry\.yaml:4:21 serving\.timeout: "5 parsecs" is not a duration; /);
  });

  it('names each missing model file, with a suggestion when a close name exists', async () => {
    const dir = await modelDir('missing', {
      'ferry.yaml': `${HEAD}model:
  name: m
  format: onnx
  file: modle.onnx
  files: [vocab.txt, data]
examples:
  - { name: a, requestFile: examples/a.json }
`,
      'model.onnx': 'x',
      'data/x.bin': 'x',
    });
    const error = await rejection(loadSpec(dir));
    const problems = error.details as SpecProblem[];
    assert.deepEqual(
      problems.map((p) => [p.path, p.line]),
      [
        ['model.file', 6],
        ['model.files[0]', 7],
        ['model.files[1]', 7],
        ['examples[0].requestFile', 9],
      ],
    );
    assert.match(problems[0]!.message, /"modle\.onnx" does not exist in /);
    assert.equal(problems[0]!.hint, 'did you mean "model.onnx"?');
    assert.match(problems[2]!.message, /"data" is a directory/);
    assert.match(problems[3]!.message, /"examples\/a\.json" does not exist/);
  });

  it('reports example files that are not JSON or not an inference request', async () => {
    const dir = await modelDir('examples', {
      'ferry.yaml': `${HEAD}model: { name: m, format: onnx, file: m.onnx }
examples:
  - { name: a, requestFile: a.json }
  - { name: b, requestFile: b.json, responseFile: c.json }
`,
      'm.onnx': 'x',
      'a.json': '{ "inputs": [ ',
      'b.json': '{ "instances": [1, 2] }',
      'c.json': '{ "outputs": [{ "name": "y" }] }',
    });
    const problems = (await rejection(loadSpec(dir))).details as SpecProblem[];
    assert.deepEqual(
      problems.map((p) => p.path),
      ['examples[0].requestFile', 'examples[1].requestFile'],
    );
    assert.match(problems[0]!.message, /"a\.json": is not valid JSON/);
    assert.match(problems[1]!.message, /"b\.json": is not an Open Inference Protocol request at inputs/);
    assert.match(problems[1]!.hint ?? '', /"inputs"/);
  });

  it('returns warnings with the loaded spec', async () => {
    const dir = await modelDir('warn', {
      'ferry.yaml': `${HEAD}model: { name: m, format: onnx, file: m.onnx }\nserving: { timeout: 1s, batching: { maxQueueDelay: 2s } }\n`,
      'm.onnx': 'x',
    });
    const loaded = await loadSpec(dir);
    assert.deepEqual(
      loaded.warnings.map((w) => w.path),
      ['serving.batching.maxQueueDelay'],
    );
    assert.equal(loaded.spec.serving.batching?.maxQueueDelayMs, 2000);
  });
});

describe("serving overrides (a deployment's serving options)", () => {
  const spec = `${HEAD}model:\n  name: m\n  format: onnx\n  file: model.onnx\nserving:\n  timeout: 10s\n  batching:\n    maxBatchSize: 8\n    maxQueueDelay: 2ms\n`;

  it('merge over the file key by key before validation', async () => {
    const dir = await modelDir('overrides', { 'ferry.yaml': spec, 'model.onnx': 'x' });
    const plain = await loadSpec(dir);
    assert.equal(plain.spec.serving.batching?.maxBatchSize, 8);
    const loaded = await loadSpec(dir, { serving: { batching: { maxBatchSize: 32 }, timeout: '3s' } });
    assert.equal(loaded.spec.serving.batching?.maxBatchSize, 32);
    assert.equal(loaded.spec.serving.batching?.maxQueueDelayMs, plain.spec.serving.batching?.maxQueueDelayMs);
    assert.equal(loaded.spec.serving.timeoutMs, 3000);
  });

  it('are checked on their own, naming the field', () => {
    assert.deepEqual(servingOverrideProblems({ batching: { maxBatchSize: 16 } }), []);
    const problems = servingOverrideProblems({ batching: { maxBatchSize: 'lots' }, timeot: '1s' });
    assert.ok(
      problems.some((p) => p.startsWith('serving.batching.maxBatchSize')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.startsWith('serving.timeot')),
      problems.join('\n'),
    );
    assert.deepEqual(servingOverrideProblems([1]), ['serving: must be an object']);
  });

  it('read from JSON text with the source named in the problem', () => {
    assert.deepEqual(parseServingOverrides('{"timeout":"2s"}'), { value: { timeout: '2s' } });
    const bad = parseServingOverrides('{nope', '--serving');
    assert.ok('problem' in bad && bad.problem.startsWith('--serving is not JSON'));
  });
});
