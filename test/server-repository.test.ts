/**
 * The model repository: several models and versions in one server, the repository extension
 * (index, load, unload), and versions that fail to load: never served, visible in metadata,
 * the index and metrics.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { onnxSpec, post, ROOT, serve, type TestServer, tempDir, writeModelDir } from './helpers.ts';

const IRIS_MODEL = readFileSync(join(ROOT, 'examples', 'iris', 'model.onnx'));
const setosa = readFileSync(join(ROOT, 'examples', 'iris', 'requests', 'setosa.json'), 'utf8');

describe('a repository with two versions of a model and a broken one', () => {
  let server: TestServer;
  const dir = tempDir();
  before(async () => {
    writeModelDir(join(dir.path, 'iris-v1'), onnxSpec('iris', '', '1'), { 'model.onnx': IRIS_MODEL });
    writeModelDir(join(dir.path, 'iris-v2'), onnxSpec('iris', '', '2'), { 'model.onnx': IRIS_MODEL });
    writeModelDir(join(dir.path, 'broken'), onnxSpec('broken'), { 'model.onnx': 'this is not an onnx file' });
    server = await serve([dir.path]);
  });
  after(async () => {
    await server.close();
    dir.remove();
  });

  test('the server is ready because some versions are, and the index shows every state', async () => {
    assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 200);
    const index = (await post(`${server.url}/v2/repository/index`, '')).json as unknown as Array<
      Record<string, string>
    >;
    const byKey = new Map(index.map((e) => [`${e.name}@${e.version}`, e]));
    assert.equal(byKey.get('iris@1')?.state, 'READY');
    assert.equal(byKey.get('iris@2')?.state, 'READY');
    assert.equal(byKey.get('broken@1')?.state, 'FAILED');
    assert.match(String(byKey.get('broken@1')?.reason), /ONNX|onnx|protobuf|load/i);
  });

  test('without a version, the newest ready version serves; with one, that version', async () => {
    const meta = (await (await fetch(`${server.url}/v2/models/iris`)).json()) as { versions: string[] };
    assert.deepEqual(meta.versions, ['1', '2']);
    const newest = await post(`${server.url}/v2/models/iris/infer`, setosa);
    assert.equal(newest.json.model_version, '2');
    const pinned = await post(`${server.url}/v2/models/iris/versions/1/infer`, setosa);
    assert.equal(pinned.json.model_version, '1');
  });

  test('a version that failed to load never serves and says why', async () => {
    const infer = await post(`${server.url}/v2/models/broken/infer`, setosa);
    assert.equal(infer.status, 503);
    assert.equal(infer.json.code, 'FERRY_MODEL_NOT_READY');
    assert.match(String(infer.json.error), /failed/);
    const meta = (await (await fetch(`${server.url}/v2/models/broken`)).json()) as Record<string, unknown>;
    assert.equal(meta.state, 'FAILED');
    assert.ok(String(meta.reason).length > 0);
    assert.equal((await fetch(`${server.url}/v2/models/broken/ready`)).status, 503);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /ferry_model_load_failures_total\{model="broken",version="1"\} 1/);
    assert.match(metrics, /ferry_model_ready\{model="broken",version="1"\} 0/);
  });

  test('unload stops a model serving; load brings it back', async () => {
    assert.equal((await post(`${server.url}/v2/repository/models/iris/unload`, '')).status, 200);
    assert.equal((await fetch(`${server.url}/v2/models/iris/ready`)).status, 503);
    const refused = await post(`${server.url}/v2/models/iris/infer`, setosa);
    assert.equal(refused.status, 503);
    assert.equal(refused.json.code, 'FERRY_MODEL_NOT_READY');
    assert.equal((await post(`${server.url}/v2/repository/models/iris/load`, '')).status, 200);
    assert.equal((await fetch(`${server.url}/v2/models/iris/ready`)).status, 200);
    assert.equal((await post(`${server.url}/v2/models/iris/infer`, setosa)).status, 200);
  });

  test('loading a model that does not exist or cannot load is an error with a code', async () => {
    const missing = await post(`${server.url}/v2/repository/models/nope/load`, '');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.code, 'FERRY_MODEL_NOT_FOUND');
    const broken = await post(`${server.url}/v2/repository/models/broken/load`, '');
    assert.equal(broken.status, 500);
    assert.equal(broken.json.code, 'FERRY_MODEL_LOAD_FAILED');
  });

  test('a model added to the repository after start is found by load', async () => {
    writeModelDir(join(dir.path, 'late'), onnxSpec('late'), {});
    copyFileSync(join(ROOT, 'examples', 'iris', 'model.onnx'), join(dir.path, 'late', 'model.onnx'));
    assert.equal((await post(`${server.url}/v2/repository/models/late/load`, '')).status, 200);
    assert.equal((await post(`${server.url}/v2/models/late/infer`, setosa)).status, 200);
  });

  test('reloading with an invalid ferry.yaml fails, lists the problems, and the old load keeps serving', async () => {
    writeModelDir(
      join(dir.path, 'iris-v1'),
      'apiVersion: ferry.dev/v1alpha1\nkind: Model\nmodel: { name: Bad_Name, format: tensorflow }\n',
    );
    const reload = await post(`${server.url}/v2/repository/models/iris/load`, '');
    assert.equal(reload.status, 500);
    assert.equal(reload.json.code, 'FERRY_MODEL_LOAD_FAILED');
    assert.match(String(reload.json.error), /model\.name/);
    assert.match(String(reload.json.error), /model\.format/);
    const index = (await post(`${server.url}/v2/repository/index`, '')).json as unknown as Array<
      Record<string, string>
    >;
    assert.ok(
      index.some((e) => e.name === 'iris-v1' && e.state === 'FAILED'),
      'the directory is listed as FAILED',
    );
    assert.equal((await post(`${server.url}/v2/models/iris/versions/1/infer`, setosa)).status, 200);
  });
});
