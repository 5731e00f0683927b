import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isFerryError } from '../core/errors.ts';
import { imageVersion, isDirectoryTarget, strategyFromFlags } from './deploy.ts';
import { UsageError } from './format.ts';

const root = mkdtempSync(join(tmpdir(), 'ferry-deploy-'));
after(() => rmSync(root, { recursive: true, force: true }));

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
    // --rolling is how a deployment with a canary strategy goes back to rolling updates.
    assert.deepEqual(strategyFromFlags({ rolling: true }), { kind: 'rolling' });
    assert.throws(() => strategyFromFlags({ canary: '50', rolling: true }), /--canary and --rolling/);
  });
});
