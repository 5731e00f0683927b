import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { envName, SecretBox, Secrets } from './secrets.ts';
import { openStore } from './store/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('secrets', () => {
  test('the key file is made once, mode 0600, and reused', () => {
    const keyPath = join(dir, 'a', 'secret.key');
    const box = SecretBox.open(keyPath);
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);
    const sealed = box.seal('db-password', 's3cr3t');
    assert.equal(SecretBox.open(keyPath).open('db-password', sealed), 's3cr3t');
  });

  test('sealed values hide the value, are bound to their name, and fail to open under another key', () => {
    const box = SecretBox.open(join(dir, 'b.key'));
    const sealed = box.seal('api-key', 'plain-value-123');
    assert.ok(!sealed.includes(Buffer.from('plain-value-123')));
    assert.notDeepEqual(box.seal('api-key', 'plain-value-123'), sealed, 'a fresh IV each time');
    assert.throws(() => box.open('other', sealed), /does not open/);
    const other = SecretBox.open(join(dir, 'c.key'));
    assert.throws(() => other.open('api-key', sealed), /does not have|does not open/);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    assert.throws(() => box.open('api-key', tampered), /does not open/);
  });

  test('a broken key file is refused with a hint', () => {
    const keyPath = join(dir, 'broken.key');
    writeFileSync(keyPath, 'short');
    assert.throws(() => SecretBox.open(keyPath), /32-byte key/);
  });

  test('stored sealed: the database file never holds the value; env() names missing ones', () => {
    const path = join(dir, 'state.db');
    const store = openStore(path);
    const secrets = new Secrets(store, SecretBox.open(join(dir, 'd.key')));
    secrets.set('hf-token', 'hf_abcdefghijklmnop');
    assert.deepEqual(
      secrets.list().map((s) => s.name),
      ['hf-token'],
    );
    assert.deepEqual(secrets.env(['hf-token', 'db.password']), {
      env: { HF_TOKEN: 'hf_abcdefghijklmnop' },
      missing: ['db.password'],
    });
    assert.throws(() => secrets.set('bad name!', 'x'), /not valid/);
    assert.throws(() => secrets.set('empty', ''), /non-empty string/);
    store.close();
    const bytes = Buffer.concat([
      readFileSync(path),
      ...['-wal', '-shm'].flatMap((s) => {
        try {
          return [readFileSync(path + s)];
        } catch {
          return [];
        }
      }),
    ]);
    assert.ok(!bytes.includes(Buffer.from('hf_abcdefghijklmnop')));
    const reopened = new Secrets(openStore(path), SecretBox.open(join(dir, 'd.key')));
    reopened.delete('hf-token');
    assert.throws(() => reopened.delete('hf-token'), /No secret named/);
  });

  test('env names', () => {
    assert.equal(envName('hf-token'), 'HF_TOKEN');
    assert.equal(envName('db.password'), 'DB_PASSWORD');
    assert.equal(envName('9lives'), '_9LIVES');
  });

  test('versions: each set is a new version; env() gives the pinned one, else the newest; old ones are pruned', () => {
    const store = openStore(':memory:');
    const secrets = new Secrets(store, SecretBox.open(join(dir, 'v.key')));
    assert.equal(secrets.set('token', 'one').version, 1);
    assert.equal(secrets.set('token', 'two').version, 2);
    assert.deepEqual(secrets.env(['token']).env, { TOKEN: 'two' });
    assert.deepEqual(secrets.env(['token'], 'default', { token: 1 }).env, { TOKEN: 'one' });
    for (let i = 3; i <= 12; i++) secrets.set('token', `v${i}`);
    assert.deepEqual(
      secrets.env(['token'], 'default', { token: 1 }),
      { env: {}, missing: ['token'] },
      'pruned',
    );
    assert.deepEqual(
      secrets.env(['token'], 'default', { token: 3 }).env,
      { TOKEN: 'v3' },
      'the newest 10 are kept',
    );
    // Tenants: the same name is two secrets.
    secrets.set('team-a/token', 'theirs');
    assert.deepEqual(secrets.env(['token'], 'team-a').env, { TOKEN: 'theirs' });
    assert.deepEqual(secrets.env(['token']).env, { TOKEN: 'v12' });
    store.close();
  });

  test('rotate-key: every version opens after, under the new key only; the old key file is gone', () => {
    const home = mkdtempSync(join(dir, 'rotate-'));
    const keyPath = join(home, 'secret.key');
    const store = openStore(join(home, 'state.db'));
    const box = SecretBox.open(keyPath);
    const oldKey = readFileSync(keyPath, 'utf8');
    const secrets = new Secrets(store, box);
    secrets.set('a', 'alpha-1');
    secrets.set('a', 'alpha-2');
    secrets.set('team-a/b', 'beta');
    // A value sealed in the format before key ids (v1: [1][iv][tag][body]) under the old key is re-sealed too.
    const legacy = Buffer.from(box.seal('c', 'gamma'));
    const v1 = Buffer.concat([Buffer.of(1), legacy.subarray(1 + 8)]);
    store.putSecret('c', v1);
    assert.equal(secrets.env(['c']).env.C, 'gamma', 'a v1 value opens');
    const rotation = secrets.rotateKey();
    assert.equal(rotation.resealed, 4);
    assert.match(rotation.keyId, /^[0-9a-f]{16}$/);
    assert.notEqual(readFileSync(keyPath, 'utf8'), oldKey);
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);
    assert.throws(() => statSync(`${keyPath}.previous`), /ENOENT/);
    const fresh = new Secrets(store, SecretBox.open(keyPath));
    assert.deepEqual(fresh.env(['a'], 'default', { a: 1 }).env, { A: 'alpha-1' });
    assert.deepEqual(fresh.env(['a', 'c']).env, { A: 'alpha-2', C: 'gamma' });
    assert.deepEqual(fresh.env(['b'], 'team-a').env, { B: 'beta' });
    const reopened = SecretBox.open(keyPath);
    for (const v of store.sealedVersions())
      assert.equal(reopened.isStale(v.sealed), false, `${v.name}@${v.version}`);
    assert.equal(secrets.rotateKey().resealed, 4, 'a second rotation re-seals again');
    store.close();
  });

  test('a rotation cut short (old keys still in secret.key.previous) loses nothing', () => {
    const home = mkdtempSync(join(dir, 'cut-'));
    const keyPath = join(home, 'secret.key');
    const store = openStore(':memory:');
    const box = SecretBox.open(keyPath);
    store.putSecret('a', box.seal('a', 'alpha'));
    box.rotate(); // step 1 only: the control plane stopped before re-sealing
    const afterCrash = new Secrets(store, SecretBox.open(keyPath));
    assert.deepEqual(afterCrash.env(['a']).env, { A: 'alpha' });
    assert.equal(afterCrash.rotateKey().resealed, 1);
    store.close();
  });
});
