import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, FerryError } from './errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map(
  [...doc.matchAll(/^\|\s*`(FERRY_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map(
    (m) => [m[1]!, Number(m[2])] as const,
  ),
);

test('every error code is documented in docs/errors.md with its HTTP status', () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.equal(
      documented.get(code),
      info.status,
      `${code} missing or with another status in docs/errors.md`,
    );
  }
});

test('docs/errors.md lists no code that the code does not have', () => {
  for (const code of documented.keys())
    assert.ok(code in ERROR_CODES, `${code} is documented but not defined`);
});

test('FerryError carries its code, status, hint and retry delay', () => {
  const error = new FerryError('FERRY_QUEUE_FULL', 'queue full', { hint: 'slow down', retryAfterSeconds: 2 });
  assert.equal(error.status, 503);
  assert.equal(error.code, 'FERRY_QUEUE_FULL');
  assert.equal(error.hint, 'slow down');
  assert.equal(error.retryAfterSeconds, 2);
  assert.ok(error instanceof Error);
});
