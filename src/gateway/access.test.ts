import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { AccessTable, bearerToken, tokenHash } from './access.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('bearerToken: the scheme in any case, one token, nothing else', () => {
  const cases: [string, string | null][] = [
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['BEARER\tabc  ', 'abc'],
    ['Bearer  a.b-c_d~e+f/g==', 'a.b-c_d~e+f/g=='],
    ['Bearer', null],
    ['Bearer ', null],
    ['Bearer a b', null],
    ['Basic YWJj', null],
    ['abc', null],
    ['Bearerabc', null],
    ['', null],
  ];
  for (const [header, token] of cases) assert.equal(bearerToken(header), token, JSON.stringify(header));
});

test('tokenHash is sha256 of the UTF-8 bytes in lowercase hex, as the table stores it', () => {
  assert.equal(tokenHash('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(tokenHash('fy_token'), sha('fy_token'));
});

test('check: missing, malformed, repeated, unknown, another tenant, another deployment, allowed', () => {
  const table = new AccessTable();
  table.set(
    [
      { id: 'inv', hash: sha('t-inv'), tenant: 'acme' },
      { id: 'key', hash: sha('t-key'), tenant: 'acme', deployment: 'iris' },
    ],
    0,
  );
  const kind = (auth: string | undefined, tenant: string, name: string, repeated = false) => {
    const d = table.check(auth, repeated, tenant, name, 0);
    return d.kind === 'unauthorized'
      ? `unauthorized:${d.why}`
      : d.kind === 'forbidden'
        ? `forbidden:${d.caller.id}`
        : `ok:${d.id}`;
  };
  assert.equal(kind(undefined, 'acme', 'iris'), 'unauthorized:missing');
  assert.equal(kind('Token t-inv', 'acme', 'iris'), 'unauthorized:malformed');
  assert.equal(kind('Bearer t-inv', 'acme', 'iris', true), 'unauthorized:malformed');
  assert.equal(kind('Bearer t-nope', 'acme', 'iris'), 'unauthorized:unknown');
  assert.equal(kind('Bearer t-inv', 'acme', 'iris'), 'ok:inv');
  assert.equal(kind('Bearer t-inv', 'acme', 'other'), 'ok:inv');
  assert.equal(kind('Bearer t-inv', 'globex', 'iris'), 'forbidden:inv');
  assert.equal(kind('Bearer t-key', 'acme', 'iris'), 'ok:key');
  assert.equal(kind('Bearer t-key', 'acme', 'other'), 'forbidden:key');
  assert.equal(kind('Bearer t-key', 'globex', 'iris'), 'forbidden:key');
  // A caller dropped from the next table (revoked) is unknown at once.
  table.set([{ id: 'key', hash: sha('t-key'), tenant: 'acme', deployment: 'iris' }], 0);
  assert.equal(kind('Bearer t-inv', 'acme', 'iris'), 'unauthorized:unknown');
});

test('buckets belong to the caller id: kept across tables, clamped to a lowered burst, dropped with the caller', () => {
  const table = new AccessTable();
  const caller = (burst: number) => [
    { id: 'c', hash: sha('t'), tenant: 'acme', rateLimit: { perSecond: 1, burst } },
  ];
  table.set(caller(3), 0);
  const take = () => {
    const d = table.check('Bearer t', false, 'acme', 'x', 0);
    assert.equal(d.kind, 'caller');
    return d.kind === 'caller' ? table.take(d, 0) : -1;
  };
  assert.deepEqual([take(), take()], [0, 0]);
  table.set(caller(3), 0); // a new table: the same bucket, one token left
  assert.deepEqual([take(), take()], [0, 1]);
  table.set(caller(10), 0); // a higher burst does not hand out tokens either
  assert.equal(take(), 1);
  assert.equal(table.bucketCount, 1);
  table.set([{ id: 'c', hash: sha('t'), tenant: 'acme' }], 0); // no limit any more: bucket gone
  assert.equal(table.bucketCount, 0);
  assert.equal(take(), 0);
  // A lowered burst applies at once.
  table.set(caller(5), 0);
  table.set(caller(1), 0);
  assert.deepEqual([take(), take()], [0, 1]);
});

test('an expired caller is unknown from its expiry on, before the next table drops it', () => {
  const table = new AccessTable();
  const hash = tokenHash('tok');
  table.set([{ id: 'c1', hash, tenant: 'acme', expiresAt: 5_000 }], 0);
  assert.equal(table.check('Bearer tok', false, 'acme', 'x', 4_999).kind, 'caller');
  assert.deepEqual(table.check('Bearer tok', false, 'acme', 'x', 5_000), {
    kind: 'unauthorized',
    why: 'unknown',
  });
});
