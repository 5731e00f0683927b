import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSecretFiles } from './secret-files.ts';

test('secret files become environment variables and are removed; other entries (a Kubernetes volume`s ..data) are left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-secret-files-'));
  try {
    // As a Kubernetes Secret volume lays them out: NAME -> ..data/NAME, ..data -> a timestamped directory.
    mkdirSync(join(dir, '..2026_12_06'));
    writeFileSync(join(dir, '..2026_12_06', 'HF_TOKEN'), 'hf-value');
    symlinkSync('..2026_12_06', join(dir, '..data'));
    symlinkSync(join('..data', 'HF_TOKEN'), join(dir, 'HF_TOKEN'));
    writeFileSync(join(dir, 'PLAIN'), 'plain-value');
    const env: NodeJS.ProcessEnv = {};
    assert.deepEqual(loadSecretFiles(dir, env), ['HF_TOKEN', 'PLAIN']);
    assert.deepEqual(env, { HF_TOKEN: 'hf-value', PLAIN: 'plain-value' });
    assert.equal(existsSync(join(dir, 'PLAIN')), false, 'removed once read');
    assert.throws(
      () => loadSecretFiles(join(dir, 'missing'), {}),
      /secrets directory .*missing cannot be read/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
