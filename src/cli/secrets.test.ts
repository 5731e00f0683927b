import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { isFerryError } from '../core/errors.ts';
import { UsageError } from './format.ts';
import { MAX_SECRET_BYTES, readFromStdin, secretValue } from './secrets.ts';

describe('secretValue', () => {
  test('one trailing line break is dropped (echo, an editor), other whitespace is kept', () => {
    assert.equal(secretValue(Buffer.from('tok\n'), 'stdin'), 'tok');
    assert.equal(secretValue(Buffer.from('tok\r\n'), 'stdin'), 'tok');
    assert.equal(secretValue(Buffer.from(' a b\n\n'), 'stdin'), ' a b\n');
    assert.equal(secretValue(Buffer.from('tok'), 'stdin'), 'tok');
  });

  test('empty (or only a line break): FERRY_BAD_REQUEST naming where it came from', () => {
    for (const text of ['', '\n'])
      assert.throws(
        () => secretValue(Buffer.from(text), '--from-file ./key'),
        (e: unknown) =>
          isFerryError(e) && e.code === 'FERRY_BAD_REQUEST' && /--from-file \.\/key is empty/.test(e.message),
      );
  });

  test('over 64 KiB: FERRY_PAYLOAD_TOO_LARGE; exactly 64 KiB is fine', () => {
    assert.equal(secretValue(Buffer.alloc(MAX_SECRET_BYTES, 'a'), 'stdin').length, MAX_SECRET_BYTES);
    assert.throws(
      () => secretValue(Buffer.alloc(MAX_SECRET_BYTES + 1, 'a'), 'stdin'),
      (e: unknown) => isFerryError(e) && e.code === 'FERRY_PAYLOAD_TOO_LARGE',
    );
  });
});

describe('readFromStdin', () => {
  test('a terminal is refused before anything is read (typing would show the secret)', async () => {
    let read = false;
    const tty = Object.assign(
      new Readable({
        read() {
          read = true;
          this.push(null);
        },
      }),
      { isTTY: true },
    );
    await assert.rejects(
      readFromStdin(tty),
      (e: unknown) => e instanceof UsageError && /stdin is a terminal/.test(e.message),
    );
    assert.equal(read, false);
  });

  test('a pipe is read to its end, or a little past the limit, never a whole big stream', async () => {
    assert.equal(
      (await readFromStdin(Readable.from([Buffer.from('ab'), Buffer.from('c\n')]))).toString(),
      'abc\n',
    );
    let chunks = 0;
    const endless = new Readable({
      read() {
        chunks++;
        this.push(Buffer.alloc(16 * 1024, 'x'));
      },
    });
    const got = await readFromStdin(endless);
    assert.ok(got.length > MAX_SECRET_BYTES && got.length <= MAX_SECRET_BYTES + 16 * 1024, `${got.length}`);
    assert.ok(chunks < 20, `${chunks} chunks read`);
  });
});
