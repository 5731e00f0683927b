import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cachedLayer, layerKey } from './layer-cache.ts';
import type { LayerEntry } from './oci/types.ts';

test('a layer built once is taken from the cache, byte for byte; changed content misses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-layer-cache-'));
  try {
    const file = join(dir, 'weights.bin');
    writeFileSync(file, 'version one');
    const entries: LayerEntry[] = [
      { type: 'file', path: 'app/model/weights.bin', mode: 0o444, source: { file } },
    ];
    const cache = join(dir, 'cache');
    const first = await cachedLayer(entries, 'weights', 0, cache);
    const second = await cachedLayer(entries, 'weights', 0, cache);
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.equal(second.layer.digest, first.layer.digest);
    assert.deepEqual(Buffer.from(second.layer.blob), Buffer.from(first.layer.blob));

    writeFileSync(file, 'version two');
    const changed = await cachedLayer(entries, 'weights', 0, cache);
    assert.equal(changed.cached, false, 'new content is a new key');
    assert.notEqual(changed.layer.digest, first.layer.digest);

    // A damaged cache entry is rebuilt, not served.
    const key = await layerKey(entries, 0);
    writeFileSync(join(cache, `${key}.tar.gz`), 'garbage');
    const repaired = await cachedLayer(entries, 'weights', 0, cache);
    assert.equal(repaired.cached, false);
    assert.equal(repaired.layer.digest, changed.layer.digest);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the key depends on content, modes and mtime, not on where the file is on the host', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-layer-key-'));
  try {
    writeFileSync(join(dir, 'a'), 'same');
    writeFileSync(join(dir, 'b'), 'same');
    const entry = (file: string, mode = 0o444): LayerEntry[] => [
      { type: 'file', path: 'x', mode, source: { file } },
    ];
    assert.equal(await layerKey(entry(join(dir, 'a')), 0), await layerKey(entry(join(dir, 'b')), 0));
    assert.notEqual(
      await layerKey(entry(join(dir, 'a')), 0),
      await layerKey(entry(join(dir, 'a'), 0o555), 0),
    );
    assert.notEqual(await layerKey(entry(join(dir, 'a')), 0), await layerKey(entry(join(dir, 'a')), 1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
