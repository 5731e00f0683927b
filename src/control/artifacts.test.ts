/**
 * The artifact store with real files: a model directory packed by prepareArtifact (the same code ferry deploy
 * runs) arrives intact and read-only; uploads that are cut, tampered, escape the directory or hold links never
 * become artifacts; the same content always has the same digest.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pack } from 'tar-stream';
import { isFerryError } from '../core/errors.ts';
import { prepareArtifact } from '../image/artifact.ts';
import { ArtifactStore } from './artifacts.ts';

const IRIS = join(import.meta.dirname, '..', '..', 'examples', 'iris');

async function tarOf(
  entries: Array<{ name: string; type?: 'file' | 'directory' | 'symlink'; body?: string; linkname?: string }>,
) {
  const p = pack();
  for (const e of entries) {
    if (e.type === 'directory') p.entry({ name: e.name, type: 'directory' });
    else if (e.type === 'symlink')
      p.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '/etc/passwd' });
    else p.entry({ name: e.name }, e.body ?? 'x');
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  const { createHash } = await import('node:crypto');
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isFerryError(error), `a FerryError, got ${String(error)}`);
    return { code: error.code, message: error.message };
  }
  assert.fail('expected a rejection');
}

describe('artifact store', () => {
  let root: string;
  let store: ArtifactStore;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ferry-artifacts-'));
    store = new ArtifactStore(join(root, 'store'), { maxBytes: 8 * 1024 * 1024 });
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('a model directory arrives whole, read-only, under its digest; a second upload keeps the first', async () => {
    const prepared = await prepareArtifact(IRIS);
    try {
      assert.match(prepared.digest, /^sha256:[0-9a-f]{64}$/);
      assert.equal(store.get(prepared.digest), undefined);
      const received = await store.receive(prepared.digest, Readable.from(prepared.stream()));
      assert.equal(received.created, true);
      assert.equal(received.files, prepared.files);
      const names = readdirSync(received.dir).sort();
      assert.ok(names.includes('ferry.yaml') && names.includes('model.onnx'), names.join(','));
      assert.deepEqual(
        readFileSync(join(received.dir, 'model.onnx')),
        readFileSync(join(IRIS, 'model.onnx')),
      );
      assert.equal(statSync(join(received.dir, 'model.onnx')).mode & 0o777, 0o444);
      assert.equal(statSync(received.dir).mode & 0o777, 0o555);
      const again = await store.receive(prepared.digest, Readable.from(prepared.stream()));
      assert.equal(again.created, false);
      assert.equal(again.dir, received.dir);
      assert.deepEqual(store.require(prepared.digest), { digest: prepared.digest, dir: received.dir });
    } finally {
      await prepared.cleanup();
    }
  });

  test('the same content gives the same digest from another path; one changed byte gives another', async () => {
    const copy = join(root, 'iris-copy');
    cpSync(IRIS, copy, { recursive: true });
    const a = await prepareArtifact(IRIS);
    const b = await prepareArtifact(copy);
    writeFileSync(join(copy, 'ferry.yaml'), `${readFileSync(join(copy, 'ferry.yaml'), 'utf8')}\n# edited\n`);
    const c = await prepareArtifact(copy);
    try {
      assert.equal(a.digest, b.digest);
      assert.notEqual(a.digest, c.digest);
    } finally {
      await Promise.all([a.cleanup(), b.cleanup(), c.cleanup()]);
    }
  });

  test('a digest that does not match the bytes is refused and nothing is kept', async () => {
    const { bytes } = await tarOf([{ name: 'ferry.yaml', body: 'a' }]);
    const wrong = `sha256:${'0'.repeat(64)}`;
    const error = await rejection(store.receive(wrong, Readable.from([bytes])));
    assert.equal(error.code, 'FERRY_BAD_REQUEST');
    assert.match(error.message, /sha256 is sha256:[0-9a-f]{64}, not sha256:0{64}/);
    assert.equal(store.get(wrong), undefined);
    assert.deepEqual(readdirSync(join(store.root, 'incoming')), [], 'the partial upload is gone');
  });

  test('entries that leave the directory, links and absolute paths are refused, naming the entry', async () => {
    for (const [entries, pattern] of [
      [[{ name: '../escape.txt' }], /"\.\.\/escape\.txt" is not a plain relative path/],
      [[{ name: 'a/../../b' }], /is not a plain relative path/],
      [
        [{ name: 'link', type: 'symlink' }],
        /link is a symlink; an artifact holds only files and directories/,
      ],
    ] as const) {
      const { bytes, digest } = await tarOf([{ name: 'ferry.yaml' }, ...entries]);
      const error = await rejection(store.receive(digest, Readable.from([bytes])));
      assert.equal(error.code, 'FERRY_BAD_REQUEST');
      assert.match(error.message, pattern);
      assert.equal(store.get(digest), undefined);
      assert.ok(!existsSync(join(root, 'escape.txt')));
    }
  });

  test('garbage and an upload over the size bound are clear errors', async () => {
    const garbage = Buffer.alloc(2048, 7);
    const { createHash } = await import('node:crypto');
    const digest = `sha256:${createHash('sha256').update(garbage).digest('hex')}`;
    const error = await rejection(store.receive(digest, Readable.from([garbage])));
    assert.equal(error.code, 'FERRY_BAD_REQUEST');
    assert.match(error.message, /not a readable tar stream/);

    const big = await tarOf([{ name: 'big.bin', body: 'x'.repeat(9 * 1024 * 1024) }]);
    const tooBig = await rejection(store.receive(big.digest, Readable.from([big.bytes])));
    assert.equal(tooBig.code, 'FERRY_PAYLOAD_TOO_LARGE');
    assert.equal(store.get(big.digest), undefined);
  });

  test('a malformed digest is refused before anything is read', async () => {
    const error = await rejection(store.receive('sha256:XYZ', Readable.from([Buffer.alloc(0)])));
    assert.equal(error.code, 'FERRY_BAD_REQUEST');
    assert.match(error.message, /is not an artifact digest/);
  });
});
