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
    assert.throws(() => other.open('api-key', sealed), /does not open/);
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
});
