import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isFerryError } from '../../core/errors.ts';
import { buildLayer, epochToCreated, planMembers, sourceDateEpoch } from './layer.ts';
import { paxRecord } from './tar.ts';
import type { LayerEntry } from './types.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ferry-layer-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const bigFile = join(tmp, 'weights.bin');
// 3 MiB + 7 bytes of varied content: several read chunks and a partial last block.
const big = Buffer.alloc(3 * 1024 * 1024 + 7);
for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 10)) & 0xff;
writeFileSync(bigFile, big);

const longDir = `app/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const longPath = `${longDir}/${'f'.repeat(30)}.txt`;

const entries: LayerEntry[] = [
  { type: 'file', path: 'app/server.mjs', source: Buffer.from('console.log("hi")\n'), mode: 0o755 },
  { type: 'file', path: 'model/weights.bin', source: { file: bigFile } },
  { type: 'symlink', path: 'app/current', target: 'server.mjs' },
  { type: 'dir', path: 'tmp', mode: 0o1777 },
  { type: 'file', path: '/etc/ferry/owned', source: new Uint8Array(0), uid: 1000, gid: 1000 },
  { type: 'file', path: longPath, source: Buffer.from('long\n') },
  { type: 'file', path: 'app/naïve.txt', source: Buffer.from('utf8 name\n') },
];

function listing(tgz: string): string[] {
  return execFileSync('tar', ['--numeric-owner', '--utc', '-tvzf', tgz], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.replace(/\s+/g, ' '));
}

describe('buildLayer', () => {
  test('same entries in any order give byte-identical layers with matching digests', async () => {
    const a = await buildLayer(entries, 'app', { mtime: 0 });
    const b = await buildLayer([...entries].reverse(), 'app', { mtime: 0 });
    assert.equal(a.digest, b.digest);
    assert.equal(a.diffId, b.diffId);
    assert.deepEqual(Buffer.from(a.blob), Buffer.from(b.blob));
    assert.equal(a.size, a.blob.byteLength);
    assert.equal(a.digest, `sha256:${createHash('sha256').update(a.blob).digest('hex')}`);
    const tar = gunzipSync(a.blob);
    assert.equal(a.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.equal(a.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.equal(a.comment, 'app');
    // gzip header: magic, deflate, no flags, mtime 0, XFL 0, OS 3 (Unix).
    assert.deepEqual([...a.blob.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  });

  test('different content or mtime changes the digests', async () => {
    const a = await buildLayer(entries, 'app', { mtime: 0 });
    const c = await buildLayer(entries, 'app', { mtime: 1700000000 });
    assert.notEqual(a.diffId, c.diffId);
    const d = await buildLayer(
      entries.map((e) =>
        e.path === 'app/server.mjs' ? { ...e, source: Buffer.from('changed') } : e,
      ) as LayerEntry[],
      'app',
      { mtime: 0 },
    );
    assert.notEqual(a.digest, d.digest);
  });

  test('GNU tar lists entries in order with fixed modes, owners and mtime', async () => {
    const layer = await buildLayer(entries, 'app', { mtime: 0 });
    const file = join(tmp, 'layer.tgz');
    writeFileSync(file, layer.blob);
    const lines = listing(file);
    const date = '1970-01-01 00:00';
    const expected = [
      `drwxr-xr-x 0/0 0 ${date} app/`,
      `lrwxrwxrwx 0/0 0 ${date} app/current -> server.mjs`,
      `drwxr-xr-x 0/0 0 ${date} app/${'d'.repeat(60)}/`,
      `drwxr-xr-x 0/0 0 ${date} ${longDir}/`,
      `-rw-r--r-- 0/0 5 ${date} ${longPath}`,
      `-rw-r--r-- 0/0 10 ${date} app/naïve.txt`,
      `-rwxr-xr-x 0/0 18 ${date} app/server.mjs`,
      `drwxr-xr-x 0/0 0 ${date} etc/`,
      `drwxr-xr-x 0/0 0 ${date} etc/ferry/`,
      `-rw-r--r-- 1000/1000 0 ${date} etc/ferry/owned`,
      `drwxr-xr-x 0/0 0 ${date} model/`,
      `-rw-r--r-- 0/0 ${big.length} ${date} model/weights.bin`,
      `drwxrwxrwt 0/0 0 ${date} tmp/`,
    ];
    assert.deepEqual(lines, expected);
    // Extracting gives the file contents back, including the streamed one and the long path.
    const out = join(tmp, 'x');
    mkdirSync(out);
    execFileSync('tar', ['-xzf', file, '-C', out]);
    assert.deepEqual(readFileSync(join(out, 'model/weights.bin')), big);
    assert.equal(readFileSync(join(out, longPath), 'utf8'), 'long\n');
    // uname/gname are empty: without --numeric-owner tar falls back to the ids.
    const named = execFileSync('tar', ['--utc', '-tvzf', file], { encoding: 'utf8' });
    assert.match(named, /^drwxr-xr-x 0\/0 /m);
  });

  test('SOURCE_DATE_EPOCH sets mtimes; invalid values are rejected', async () => {
    assert.equal(sourceDateEpoch({}), 0);
    assert.equal(sourceDateEpoch({ SOURCE_DATE_EPOCH: '1700000000' }), 1700000000);
    assert.throws(() => sourceDateEpoch({ SOURCE_DATE_EPOCH: 'yesterday' }), /SOURCE_DATE_EPOCH/);
    assert.equal(epochToCreated(0), '1970-01-01T00:00:00Z');
    const layer = await buildLayer([{ type: 'dir', path: 'x' }], 'x', { mtime: 1700000000 });
    const file = join(tmp, 'epoch.tgz');
    writeFileSync(file, layer.blob);
    assert.deepEqual(listing(file), ['drwxr-xr-x 0/0 0 2023-11-14 22:13 x/']);
  });

  test('bad entries fail with FerryErrors naming the path', async () => {
    const bad = (list: LayerEntry[], re: RegExp) =>
      assert.throws(
        () => planMembers(list, 0),
        (e) => isFerryError(e) && re.test(e.message),
      );
    bad([{ type: 'dir', path: 'a/../b' }], /a\/\.\.\/b/);
    bad([{ type: 'dir', path: '' }], /not allowed/);
    bad(
      [
        { type: 'file', path: 'a', source: new Uint8Array(1) },
        { type: 'file', path: './a', source: new Uint8Array(1) },
      ],
      /"a" appears twice/,
    );
    bad(
      [
        { type: 'file', path: 'a', source: new Uint8Array(1) },
        { type: 'file', path: 'a/b', source: new Uint8Array(1) },
      ],
      /not a directory/,
    );
    // An explicit directory may replace an implied one.
    const m = planMembers(
      [
        { type: 'file', path: 'a/b', source: new Uint8Array(1) },
        { type: 'dir', path: 'a', mode: 0o700, uid: 5 },
      ],
      0,
    );
    assert.deepEqual(
      m.map((x) => [x.path, x.type === 'file' ? x.mode : x.type === 'dir' ? x.mode : 0, x.uid]),
      [
        ['a/', 0o700, 5],
        ['a/b', 0o644, 0],
      ],
    );
    await assert.rejects(
      buildLayer([{ type: 'file', path: 'm', source: { file: join(tmp, 'missing.onnx') } }], 'm'),
      (e) => isFerryError(e) && e.code === 'FERRY_FILE_NOT_FOUND' && e.message.includes('missing.onnx'),
    );
  });

  test('PAX records count their own length', () => {
    for (const v of ['x', 'y'.repeat(90), 'z'.repeat(994), 'w'.repeat(995)]) {
      const r = paxRecord('path', v);
      assert.equal(Number(r.split(' ')[0]), Buffer.byteLength(r));
    }
  });
});
