import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultBaseTag } from './base.ts';
import {
  baseCacheDir,
  baseUnavailableHint,
  chooseBase,
  DEFAULT_BASE,
  imageTimes,
  localHostBase,
} from './build.ts';

describe('chooseBase: --base, then build.base, then the local base of ferry base, then the default', () => {
  const local = 'ferry-base:node20.20.2';
  it('--base wins over everything', () => {
    const chosen = chooseBase({ option: 'oci:/b', spec: 'reg/x:1', localBase: local });
    assert.deepEqual([chosen.ref, chosen.source, chosen.note], ['oci:/b', 'option', 'base oci:/b']);
  });
  it('build.base in ferry.yaml, when no --base', () => {
    const chosen = chooseBase({ spec: 'reg/x:1', localBase: local });
    assert.deepEqual([chosen.ref, chosen.source], ['reg/x:1', 'spec']);
    assert.match(chosen.note, /build\.base in ferry\.yaml/);
  });
  it('the base ferry base made for this Node, and the note says so', () => {
    const chosen = chooseBase({ spec: null, localBase: local });
    assert.deepEqual([chosen.ref, chosen.source], [local, 'local']);
    assert.equal(chosen.note, `base ${local} (made by ferry base; --base picks another)`);
  });
  it('else the public default, pointing to ferry base', () => {
    const chosen = chooseBase({ spec: null });
    assert.deepEqual([chosen.ref, chosen.source], [DEFAULT_BASE, 'default']);
    assert.match(chosen.note, /`ferry base` makes a local one/);
  });
  it('when the base cannot be pulled, the hint says to run ferry base (and that the default then uses it)', () => {
    assert.match(baseUnavailableHint('default'), /Run `ferry base` once.*builds without --base then use it/);
    for (const source of ['option', 'spec', 'local'] as const)
      assert.match(baseUnavailableHint(source), /`ferry base`, then pass --base/);
  });
});

describe('localHostBase', () => {
  it("finds this Node's base in $FERRY_HOME/bases only when its OCI layout is there", () => {
    const home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
    try {
      const env = { FERRY_HOME: home };
      assert.equal(localHostBase(env), undefined);
      const dir = baseCacheDir(defaultBaseTag(process.version), env);
      mkdirSync(dir, { recursive: true });
      assert.equal(localHostBase(env), undefined, 'an empty directory is no base');
      writeFileSync(join(dir, 'index.json'), '{}');
      assert.equal(localHostBase(env), defaultBaseTag(process.version));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('imageTimes', () => {
  it('created: SOURCE_DATE_EPOCH, else the last commit, else the epoch', () => {
    assert.equal(imageTimes(1_700_000_000, 1_600_000_000).created, 1_700_000_000);
    assert.equal(imageTimes(undefined, 1_600_000_000).created, 1_600_000_000);
    assert.equal(imageTimes(undefined, undefined).created, 0);
    assert.equal(imageTimes(0, 1_600_000_000).created, 0, 'an explicit SOURCE_DATE_EPOCH=0 still wins');
  });
  it('layer mtimes: SOURCE_DATE_EPOCH, else the epoch (never the commit: layers outlive commits)', () => {
    assert.equal(imageTimes(1_700_000_000, 1_600_000_000).mtime, 1_700_000_000);
    assert.equal(imageTimes(undefined, 1_600_000_000).mtime, 0);
  });
});
