import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isFerryError } from '../core/errors.ts';
import { hashDirectory, imageVersion, isDirectoryTarget, strategyFromFlags } from './deploy.ts';
import { UsageError } from './format.ts';

const root = mkdtempSync(join(tmpdir(), 'ferry-deploy-'));
after(() => rmSync(root, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('hashDirectory', () => {
  const base = { 'ferry.yaml': 'name: x\n', 'model.onnx': 'weights', 'requests/sample.json': '{}' };

  test('12 hex; same files give the same version wherever they are', async () => {
    const a = await hashDirectory(tree('a', base));
    assert.match(a, /^[0-9a-f]{12}$/);
    assert.equal(await hashDirectory(tree('b', base)), a);
  });

  test('skips node_modules and dot-directories, but not dot-files', async () => {
    const a = await hashDirectory(tree('c', base));
    const noisy = await hashDirectory(
      tree('d', { ...base, 'node_modules/x/index.js': 'x', '.git/HEAD': 'ref', '.cache/y': 'y' }),
    );
    assert.equal(noisy, a);
    assert.notEqual(await hashDirectory(tree('e', { ...base, '.env': 'A=1' })), a);
  });

  test('any change of content, name or place changes it', async () => {
    const a = await hashDirectory(tree('f', base));
    const variants: Array<Record<string, string>> = [
      { ...base, 'model.onnx': 'weights2' },
      { 'ferry.yaml': 'name: x\n', 'model2.onnx': 'weights', 'requests/sample.json': '{}' },
      { 'ferry.yaml': 'name: x\n', 'model.onnx': 'weights', 'requests/other/sample.json': '{}' },
      // Moving bytes from one file to the next must not collide.
      { 'ferry.yaml': 'name: x\nw', 'model.onnx': 'eights', 'requests/sample.json': '{}' },
    ];
    const hashes = await Promise.all(variants.map((v, i) => hashDirectory(tree(`g${i}`, v))));
    for (const h of hashes) assert.notEqual(h, a);
    assert.equal(new Set(hashes).size, hashes.length);
  });
});

describe('deploy arguments', () => {
  test('a directory, an image reference, or a clear error for a missing path', () => {
    assert.equal(isDirectoryTarget(root), true);
    assert.equal(isDirectoryTarget('registry:5000/iris:1'), false);
    assert.equal(isDirectoryTarget('iris@sha256:abcd'), false);
    for (const missing of ['./nope', '/nope/x', 'models/']) {
      assert.throws(
        () => isDirectoryTarget(missing),
        (e: unknown) => isFerryError(e) && e.code === 'FERRY_FILE_NOT_FOUND' && e.message.includes(missing),
      );
    }
  });

  test('an image version from its tag or digest', () => {
    assert.equal(imageVersion('registry:5000/iris:1.2'), '1.2');
    assert.equal(imageVersion('registry:5000/iris'), 'latest');
    assert.equal(imageVersion('iris@sha256:0123456789abcdef'), '0123456789ab');
  });

  test('strategy: canary with pauses, rolling with max surge, not both', () => {
    assert.equal(strategyFromFlags({}), undefined);
    assert.deepEqual(strategyFromFlags({ canary: '10,100', pause: 30_000 }), {
      kind: 'canary',
      steps: [
        { percent: 10, pauseMs: 30_000 },
        { percent: 100, pauseMs: 30_000 },
      ],
    });
    assert.deepEqual(strategyFromFlags({ maxSurge: 2 }), { kind: 'rolling', maxSurge: 2 });
    assert.throws(() => strategyFromFlags({ canary: '10,100', maxSurge: 2 }), UsageError);
    assert.throws(() => strategyFromFlags({ pause: 1000 }), /--pause .* give --canary/);
  });
});
