import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFerryError } from '../core/errors.ts';
import { parseSpec } from '../spec/index.ts';
import {
  compiledHandlerPath,
  DIR_MODE,
  exampleFiles,
  FILE_MODE,
  type ImagePlan,
  type PlanInput,
  planImage,
  weightFiles,
  weightsDigest,
} from './plan.ts';
import { checkGolden, exampleInput, REPO, renderPlan } from './testdata/golden.ts';

function throwsFerry(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isFerryError(error), `expected a FerryError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

function withSpec(input: PlanInput, patch: (spec: PlanInput['spec']) => void): PlanInput {
  const spec = structuredClone(input.spec);
  patch(spec);
  return { ...input, spec };
}

test('iris plan matches the golden file', async () => {
  checkGolden('iris.plan.json', renderPlan(planImage(await exampleInput('iris'))));
});

test('ocr plan matches the golden file', async () => {
  checkGolden('ocr.plan.json', renderPlan(planImage(await exampleInput('ocr'))));
});

test('layers go from least to most often changed; empty layers are left out', async () => {
  const names = (plan: ImagePlan) => plan.layers.map((l) => l.name);
  assert.deepEqual(names(planImage(await exampleInput('iris'))), ['runtime', 'weights', 'metadata']);
  assert.deepEqual(names(planImage(await exampleInput('ocr'))), [
    'runtime',
    'npm-dependencies',
    'handler',
    'metadata',
  ]);
  const ocr = await exampleInput('ocr');
  assert.deepEqual(names(planImage({ ...ocr, npmDependencies: [] })), ['runtime', 'handler', 'metadata']);
});

test('everything is owned by root and read-only, with parent directories listed first', async () => {
  for (const example of ['iris', 'ocr'] as const) {
    const plan = planImage(await exampleInput(example));
    for (const layer of plan.layers) {
      const paths = layer.entries.map((e) => e.path);
      assert.deepEqual(paths, [...paths].sort(), `${layer.name} entries are sorted`);
      for (const e of layer.entries) {
        assert.equal(e.uid, 0);
        assert.equal(e.gid, 0);
        assert.ok(e.type !== 'symlink');
        assert.equal(e.mode, e.type === 'dir' ? DIR_MODE : FILE_MODE, e.path);
        const slash = e.path.lastIndexOf('/');
        const parent = e.path.slice(0, slash);
        if (slash > 0) assert.ok(paths.includes(parent), `${e.path}: parent ${parent} is in the layer`);
      }
    }
  }
});

test('the image config: non-root, fixed entrypoint, health check, labels', async () => {
  const input = await exampleInput('iris');
  const { config } = planImage(input);
  assert.equal(config.User, '65532:65532');
  assert.deepEqual(config.Entrypoint, ['node', '/app/server.mjs']);
  assert.deepEqual(config.Cmd, []);
  assert.deepEqual(config.Env.slice(0, 2), ['NODE_ENV=production', 'FERRY_MODEL_DIR=/app/model']);
  assert.equal(config.Healthcheck.Test[0], 'CMD');
  assert.match(config.Healthcheck.Test.join(' '), /\/v2\/health\/ready/);
  assert.equal(config.Labels['org.opencontainers.image.created'], input.created);
  assert.equal(config.Labels['org.opencontainers.image.revision'], input.revision);
  const withoutSource = planImage({ ...input, source: undefined, revision: undefined }).config.Labels;
  assert.equal(withoutSource['org.opencontainers.image.source'], undefined);
  assert.equal(withoutSource['org.opencontainers.image.revision'], undefined);
});

test('the weights label equals `sha256sum <files> | sha256sum` in the model directory', async () => {
  const input = await exampleInput('iris');
  const listing = execFileSync('sha256sum', weightFiles(input.spec), { cwd: join(REPO, 'examples/iris') });
  const expected = execFileSync('sha256sum', { input: listing }).toString().split(' ')[0];
  assert.equal(planImage(input).config.Labels['dev.ferry.weights.sha256'], expected);
  assert.equal(weightsDigest([]), undefined);
  // A handler model without model.files has no weights of its own: no label rather than the digest of nothing.
  assert.equal(planImage(await exampleInput('ocr')).config.Labels['dev.ferry.weights.sha256'], undefined);
});

test("the spec's env goes into the config, sorted; a secret in env is refused", async () => {
  const input = await exampleInput('iris');
  const env = planImage(withSpec(input, (s) => Object.assign(s.env, { B: 'x=1', A: 'y' }))).config.Env;
  assert.deepEqual(env.slice(2), ['A=y', 'B=x=1']);
  throwsFerry(
    () =>
      planImage(
        withSpec(input, (s) => {
          s.secrets = ['API_TOKEN'];
          s.env.API_TOKEN = 'hunter2';
        }),
      ),
    'FERRY_SPEC_INVALID',
    /env\.API_TOKEN: "API_TOKEN" is a secret/,
  );
  throwsFerry(
    () => planImage(withSpec(input, (s) => Object.assign(s.env, { FERRY_MODEL_DIR: '/x' }))),
    'FERRY_SPEC_INVALID',
    /env\.FERRY_MODEL_DIR/,
  );
});

test('handler models: ferry.yaml in the image names the compiled module, the rest of the spec is unchanged', async () => {
  const input = await exampleInput('ocr');
  assert.equal(compiledHandlerPath(input.spec), 'handler.mjs');
  const metadata = planImage(input).layers.at(-1)!;
  const yaml = metadata.entries.find((e) => e.path === 'app/model/ferry.yaml');
  assert.ok(yaml?.type === 'file' && yaml.source instanceof Uint8Array);
  const parsed = parseSpec(new TextDecoder().decode(yaml.source), 'ferry.yaml', input.modelDir);
  assert.deepEqual(parsed.problems, []);
  const expected = structuredClone(parseSpec(input.specText, 'ferry.yaml', input.modelDir).spec!);
  expected.model.file = 'handler.mjs';
  assert.deepEqual(parsed.spec, expected);
  // An ONNX model's ferry.yaml is copied as it is.
  const iris = planImage(await exampleInput('iris')).layers.at(-1)!;
  const irisYaml = iris.entries.find((e) => e.path === 'app/model/ferry.yaml');
  assert.ok(irisYaml?.type === 'file' && !(irisYaml.source instanceof Uint8Array));
});

test('compiled handler paths', async () => {
  const spec = (await exampleInput('ocr')).spec;
  const at = (file: string) => compiledHandlerPath({ ...spec, model: { ...spec.model, file } });
  assert.equal(at('./src/h.mts'), 'src/h.mjs');
  assert.equal(at('h.js'), 'h.mjs');
  assert.equal(at('h.mjs'), 'h.mjs');
});

test('example files come from requestFile/responseFile', async () => {
  const input = await exampleInput('iris');
  assert.deepEqual(exampleFiles(input.specText, input.modelDir), [
    'requests/batch.json',
    'requests/setosa.json',
    'requests/versicolor.json',
    'requests/virginica.json',
    'responses/batch.json',
    'responses/setosa.json',
    'responses/versicolor.json',
    'responses/virginica.json',
  ]);
  throwsFerry(() => exampleFiles('kind: Model', '/m'), 'FERRY_SPEC_INVALID', /does not validate/);
});

test('a model file that would hide a file Ferry puts into the image is refused', async () => {
  const input = await exampleInput('iris');
  const clash = withSpec(input, (s) => s.model.files.push('ferry.yaml'));
  clash.modelFiles = [...input.modelFiles, { path: 'ferry.yaml', size: 1, sha256: 'a'.repeat(64) }];
  throwsFerry(
    () => planImage(clash),
    'FERRY_SPEC_INVALID',
    /\/app\/model\/ferry\.yaml would be in the image twice/,
  );
  const dirClash = withSpec(input, (s) => s.model.files.push('requests'));
  dirClash.modelFiles = [...input.modelFiles, { path: 'requests', size: 1, sha256: 'a'.repeat(64) }];
  throwsFerry(() => planImage(dirClash), 'FERRY_SPEC_INVALID', /both a file and a directory/);
});

test('inputs that do not match the spec are a build bug, not silently planned', async () => {
  const iris = await exampleInput('iris');
  throwsFerry(() => planImage({ ...iris, modelFiles: [] }), 'FERRY_INTERNAL', /spec names \[model\.onnx\]/);
  throwsFerry(
    () => planImage({ ...iris, handlerCompiled: { path: 'h.mjs', file: '/x' } }),
    'FERRY_INTERNAL',
    /ONNX model/,
  );
  const ocr = await exampleInput('ocr');
  throwsFerry(() => planImage({ ...ocr, handlerCompiled: undefined }), 'FERRY_INTERNAL', /compiled handler/);
  throwsFerry(
    () => planImage({ ...iris, serverFiles: [{ path: '../etc/passwd', file: '/x' }] }),
    'FERRY_INTERNAL',
    /not a normal relative path/,
  );
});

test('the plan is a pure function of its input', async () => {
  const input = await exampleInput('ocr');
  assert.equal(renderPlan(planImage(input)), renderPlan(planImage(structuredClone(input))));
});
