import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { isFerryError } from '../../core/errors.ts';
import { assembleImage } from './image.ts';
import { buildLayer } from './layer.ts';
import { readOciLayout, writeDockerArchive, writeOciArchive, writeOciLayout } from './layout.ts';
import type { Image, ImageConfig } from './types.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ferry-layout-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const config: Omit<ImageConfig, 'rootfs' | 'history'> = {
  architecture: 'amd64',
  os: 'linux',
  created: '1970-01-01T00:00:00Z',
  config: { Cmd: ['/hello'] },
};

async function image(text: string): Promise<Image> {
  const a = await buildLayer([{ type: 'file', path: 'etc/base', source: Buffer.from('base') }], 'base');
  const b = await buildLayer([{ type: 'file', path: 'hello.txt', source: Buffer.from(text) }], 'app');
  return assembleImage({ layers: [a, b], config });
}

const hex = (d: string) => d.slice('sha256:'.length);

describe('OCI layout', () => {
  test('round trip: write, read back the same bytes; a second ref is added, same ref replaced', async () => {
    const dir = join(tmp, 'layout');
    const one = await image('one');
    const two = await image('two');
    await writeOciLayout(dir, one, 'iris:1');
    await writeOciLayout(dir, two, 'iris:2');
    await writeOciLayout(dir, two, 'iris:2');
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    assert.deepEqual(
      index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations),
      [
        { 'io.containerd.image.name': 'iris:1', 'org.opencontainers.image.ref.name': '1' },
        { 'io.containerd.image.name': 'iris:2', 'org.opencontainers.image.ref.name': '2' },
      ],
    );
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8')), {
      imageLayoutVersion: '1.0.0',
    });

    for (const [ref, img] of [
      ['iris:1', one],
      ['1', one],
      ['iris:2', two],
    ] as const) {
      const back = await readOciLayout(dir, ref);
      assert.equal(back.manifestDigest, img.manifestDigest);
      assert.equal(back.configDigest, img.configDigest);
      assert.deepEqual(back.config, img.config);
      assert.deepEqual(
        back.layers.map((l) => [
          l.digest,
          l.diffId,
          l.size,
          l.mediaType,
          Buffer.from(l.blob).toString('hex'),
        ]),
        img.layers.map((l) => [l.digest, l.diffId, l.size, l.mediaType, Buffer.from(l.blob).toString('hex')]),
      );
      // Read back, it serves as a base: assembling on it with no new layers gives the same image.
      const again = assembleImage({ base: back, layers: [], config });
      assert.equal(again.configDigest, img.configDigest);
    }
    await assert.rejects(readOciLayout(dir), /holds 2 images; say which one/);
    await assert.rejects(readOciLayout(dir, 'iris:3'), /no image named "iris:3"/);
    await assert.rejects(
      readOciLayout(join(tmp, 'nope')),
      (e) => isFerryError(e) && e.code === 'FERRY_FILE_NOT_FOUND',
    );
  });

  test('a corrupt blob is detected', async () => {
    const dir = join(tmp, 'corrupt');
    const img = await image('x');
    await writeOciLayout(dir, img);
    execFileSync('sh', ['-c', `printf junk >> ${join(dir, 'blobs/sha256', hex(img.layers[1]!.digest))}`]);
    await assert.rejects(readOciLayout(dir), (e) => isFerryError(e) && /is corrupt/.test(e.message));
  });

  test('docker and OCI archives list the layout plus manifest.json', async () => {
    const img = await image('archive');
    const file = join(tmp, 'docker.tar');
    await writeDockerArchive(img, 'ferry-test/iris:1', file);
    const blobs = [...img.layers.map((l) => l.digest), img.configDigest, img.manifestDigest].map(
      (d) => `blobs/sha256/${hex(d)}`,
    );
    const expected = ['blobs/', 'blobs/sha256/', ...blobs, 'index.json', 'manifest.json', 'oci-layout'];
    assert.deepEqual(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n'), expected);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' }));
    assert.deepEqual(manifest, [
      {
        Config: `blobs/sha256/${hex(img.configDigest)}`,
        RepoTags: ['ferry-test/iris:1'],
        Layers: img.layers.map((l) => `blobs/sha256/${hex(l.digest)}`),
      },
    ]);

    // Streamed to a Writable, the bytes are the same; extracted, it is a layout that reads back.
    const chunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => chunks.push(c));
    await writeDockerArchive(img, 'ferry-test/iris:1', sink);
    assert.deepEqual(Buffer.concat(chunks), readFileSync(file));
    const out = join(tmp, 'extracted');
    execFileSync('mkdir', ['-p', out]);
    execFileSync('tar', ['-xf', file, '-C', out]);
    assert.equal((await readOciLayout(out, 'ferry-test/iris:1')).manifestDigest, img.manifestDigest);

    const oci = join(tmp, 'oci.tar');
    await writeOciArchive(img, undefined, oci);
    assert.deepEqual(execFileSync('tar', ['-tf', oci], { encoding: 'utf8' }).trim().split('\n'), expected);
    assert.deepEqual(
      JSON.parse(execFileSync('tar', ['-xOf', oci, 'manifest.json'], { encoding: 'utf8' }))[0].RepoTags,
      [],
    );
  });
});
