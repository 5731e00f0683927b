import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { isFerryError } from '../../core/errors.ts';
import { assembleImage, canonicalJson } from './image.ts';
import { buildLayer } from './layer.ts';
import type { ImageConfig } from './types.ts';

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const config: Omit<ImageConfig, 'rootfs' | 'history'> = {
  architecture: 'amd64',
  os: 'linux',
  created: '1970-01-01T00:00:00Z',
  config: {
    User: '1000:1000',
    Env: ['PATH=/usr/bin:/bin'],
    Entrypoint: ['/usr/bin/node', '/app/server.mjs'],
    Labels: { 'org.opencontainers.image.title': 'iris', 'a.first': 'x' },
    ExposedPorts: { '8080/tcp': {} },
  },
};

describe('assembleImage', () => {
  test('canonical JSON sorts keys at every level and drops undefined', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } }),
      '{"a":{"d":[{"y":2,"z":1}]},"b":1}',
    );
  });

  test('is deterministic; digests are sha256 of the blobs; base layers and history come first', async () => {
    const baseLayer = await buildLayer(
      [{ type: 'file', path: 'usr/bin/node', source: Buffer.from('node') }],
      'base',
    );
    const base = assembleImage({ layers: [baseLayer], config, createdBy: 'ferry base' });
    const app = await buildLayer(
      [{ type: 'file', path: 'app/server.mjs', source: Buffer.from('x') }],
      'server',
    );
    const meta = await buildLayer(
      [{ type: 'file', path: 'app/ferry.json', source: Buffer.from('{}') }],
      'metadata',
    );
    const opts = {
      base: { layers: base.layers, config: base.config },
      layers: [app, meta],
      config,
      annotations: { 'org.opencontainers.image.revision': 'abc' },
    };
    const one = assembleImage(opts);
    const two = assembleImage(structuredClone(opts));
    assert.equal(one.configDigest, two.configDigest);
    assert.equal(one.manifestDigest, two.manifestDigest);
    assert.deepEqual(Buffer.from(one.manifestBlob), Buffer.from(two.manifestBlob));
    assert.equal(one.configDigest, sha(one.configBlob));
    assert.equal(one.manifestDigest, sha(one.manifestBlob));

    const cfg = JSON.parse(Buffer.from(one.configBlob).toString());
    assert.deepEqual(cfg.rootfs, { type: 'layers', diff_ids: [baseLayer.diffId, app.diffId, meta.diffId] });
    assert.deepEqual(
      cfg.history.map((h: { created_by: string; comment?: string }) => [h.created_by, h.comment]),
      [
        ['ferry base', 'base'],
        ['ferry build', 'server'],
        ['ferry build', 'metadata'],
      ],
    );
    assert.equal(Buffer.from(one.configBlob).toString(), canonicalJson(cfg));
    assert.doesNotMatch(Buffer.from(one.configBlob).toString(), /\n|": |, "/);
    const manifest = JSON.parse(Buffer.from(one.manifestBlob).toString());
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(manifest.config, {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: one.configDigest,
      size: one.configBlob.byteLength,
    });
    assert.deepEqual(
      manifest.layers.map((l: { digest: string; size: number }) => [l.digest, l.size]),
      [baseLayer, app, meta].map((l) => [l.digest, l.blob.byteLength]),
    );
    assert.deepEqual(manifest.annotations, { 'org.opencontainers.image.revision': 'abc' });

    // A change in the top layer changes the digests; a change in config only changes the config digest.
    const meta2 = await buildLayer(
      [{ type: 'file', path: 'app/ferry.json', source: Buffer.from('{"v":2}') }],
      'metadata',
    );
    const three = assembleImage({ ...opts, layers: [app, meta2] });
    assert.notEqual(three.configDigest, one.configDigest);
    assert.notEqual(three.manifestDigest, one.manifestDigest);
  });

  test('a base whose diff_ids do not match its layers is refused', async () => {
    const l = await buildLayer([{ type: 'dir', path: 'x' }], 'x');
    const base = assembleImage({ layers: [l], config });
    const bad = { ...base.config, rootfs: { type: 'layers' as const, diff_ids: ['sha256:00'] } };
    assert.throws(
      () => assembleImage({ base: { layers: base.layers, config: bad }, layers: [], config }),
      (e) => isFerryError(e) && e.code === 'FERRY_BAD_REQUEST' && /diff_ids/.test(e.message),
    );
  });

  test('Docker layer media types from a base become their OCI names', async () => {
    const l = await buildLayer([{ type: 'dir', path: 'x' }], 'x');
    const dockerLayer = { ...l, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' };
    const base = assembleImage({ layers: [l], config });
    const img = assembleImage({ base: { layers: [dockerLayer], config: base.config }, layers: [], config });
    assert.equal(img.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.equal(img.configDigest, base.configDigest);
  });
});
