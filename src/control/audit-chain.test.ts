import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AuditRecord,
  type ChainedRecord,
  canonicalJson,
  GENESIS,
  nextRecord,
  verifyChain,
} from './audit-chain.ts';

const record = (n: number, outcome: AuditRecord['outcome'] = 'allowed'): AuditRecord => ({
  at: `2026-12-06T12:00:0${n}.000Z`,
  actor: `token-${n}`,
  role: 'admin',
  tenant: n % 2 ? 'team-a' : 'team-b',
  action: 'deployment.update',
  object: `deployments/m${n}`,
  outcome,
  status: outcome === 'denied' ? 403 : 200,
  source: '127.0.0.1',
  requestId: `req-${n}`,
});

function log(count: number): ChainedRecord[] {
  const rows: ChainedRecord[] = [];
  for (let n = 1; n <= count; n++)
    rows.push(nextRecord(rows.at(-1), record(n, n === 3 ? 'denied' : 'allowed')));
  return rows;
}

test('an untouched log verifies, and its head is the last hash', () => {
  const rows = log(5);
  assert.deepEqual(verifyChain(rows), { ok: true, count: 5, head: rows[4]!.hash });
  assert.deepEqual(verifyChain([]), { ok: true, count: 0, head: GENESIS });
  assert.equal(verifyChain(rows, rows[4]!.hash).ok, true);
});

test('an edited field breaks the chain at that record', () => {
  const rows = log(5);
  rows[2] = { ...rows[2]!, record: { ...rows[2]!.record, outcome: 'allowed' } };
  const check = verifyChain(rows);
  assert.equal(check.ok, false);
  assert.equal(!check.ok && check.seq, 3);
  assert.match(!check.ok ? check.reason : '', /record 3 does not match its hash/);
});

test('an edit whose hash was recomputed still breaks the chain at the next record', () => {
  const rows = log(5);
  const edited = { ...rows[1]!.record, actor: 'someone-else' };
  rows[1] = nextRecord(rows[0], edited);
  const check = verifyChain(rows);
  assert.equal(!check.ok && check.seq, 3);
});

test('a deleted, inserted or swapped record is found', () => {
  const deleted = log(5);
  deleted.splice(1, 1);
  assert.match(JSON.stringify(verifyChain(deleted)), /record 2 is missing or out of order/);

  const swapped = log(5);
  [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
  assert.equal(verifyChain(swapped).ok, false);

  const inserted = log(5);
  inserted.splice(2, 0, { ...inserted[1]!, seq: 3 });
  assert.equal(verifyChain(inserted).ok, false);
});

test('records cut from the end show only against a kept head', () => {
  const rows = log(5);
  const head = rows[4]!.hash;
  const cut = rows.slice(0, 3);
  assert.equal(verifyChain(cut).ok, true, 'the chain alone cannot see a cut at the end');
  assert.match(JSON.stringify(verifyChain(cut, head)), /not in the log: records at its end were deleted/);
  assert.match(JSON.stringify(verifyChain(rows, rows[2]!.hash)), /records after it were added since/);
});

test('canonical JSON sorts keys at every level and leaves out undefined', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: undefined } }),
    '{"a":{"d":[2,{"e":0,"f":1}]},"b":1}',
  );
  const a = nextRecord(undefined, record(1));
  const reordered = Object.fromEntries(Object.entries(record(1)).reverse()) as unknown as AuditRecord;
  assert.equal(nextRecord(undefined, reordered).hash, a.hash, 'key order does not change the hash');
});

test('a kept head (seq and hash) allows records written after it and finds a cut or a rewrite', () => {
  const rows = log(5);
  const kept = { seq: 3, hash: rows[2]!.hash };
  assert.deepEqual(verifyChain(rows, kept), { ok: true, count: 5, head: rows[4]!.hash });
  assert.deepEqual(verifyChain(rows, { seq: 0, hash: GENESIS }).ok, true);

  const cut = verifyChain(rows.slice(0, 2), kept);
  assert.equal(cut.ok, false);
  assert.equal(!cut.ok && cut.seq, 3);
  assert.match(
    !cut.ok ? cut.reason : '',
    /ends at record 2, but the kept head is record 3: records 3 to 3 were deleted/,
  );

  // Rewritten from record 2 on, every hash recomputed: the chain alone holds, the kept head does not.
  const rewritten = rows.slice(0, 1);
  for (let n = 2; n <= 5; n++)
    rewritten.push(nextRecord(rewritten.at(-1), { ...record(n), actor: 'mallory' }));
  assert.equal(verifyChain(rewritten).ok, true);
  const check = verifyChain(rewritten, kept);
  assert.equal(!check.ok && check.seq, 3);
  assert.match(!check.ok ? check.reason : '', /record 3 is not the one kept as head/);
});

test('verifyChain reads an iterator once', () => {
  const rows = log(4);
  function* once() {
    yield* rows;
  }
  assert.deepEqual(verifyChain(once(), rows[3]!.hash), { ok: true, count: 4, head: rows[3]!.hash });
});
