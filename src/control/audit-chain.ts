/**
 * The audit log's tamper evidence (issue 10): every record carries the sha256 of the previous record's hash
 * and its own canonical JSON, so editing, deleting, inserting or reordering a stored record breaks the chain
 * at that point. Pure: hashing and checking only; storing the rows is the store's job.
 *
 * What the chain cannot show by itself is a cut at the end (the newest records deleted): for that, verify
 * against a head hash kept elsewhere (`expectedHead`), e.g. one printed by `ferry audit --verify` earlier.
 */
import { createHash } from 'node:crypto';

export interface AuditRecord {
  /** ISO 8601 time. */
  at: string;
  /** Who: a token's id (never the token), or "anonymous". */
  actor: string;
  tenant: string;
  /** What was asked, e.g. "deployment.update". */
  action: string;
  /** What it was asked of, e.g. "deployments/iris". */
  object: string;
  outcome: 'allowed' | 'denied' | 'failed';
  /** The client's address. */
  source: string;
  requestId: string;
}

export interface ChainedRecord {
  /** 1, 2, 3, ... in the order the records were written. */
  seq: number;
  record: AuditRecord;
  /** sha256 (hex) of the previous hash and this record. */
  hash: string;
}

/** The "previous hash" of the first record. */
export const GENESIS = '0'.repeat(64);

/** JSON with object keys sorted at every level: the same record always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function chainHash(previous: string, seq: number, record: AuditRecord): string {
  return createHash('sha256')
    .update(`${previous}\n${seq}\n${canonicalJson(record)}`)
    .digest('hex');
}

/** The record that follows `last` (undefined: the first of the log). */
export function nextRecord(last: ChainedRecord | undefined, record: AuditRecord): ChainedRecord {
  const seq = (last?.seq ?? 0) + 1;
  return { seq, record, hash: chainHash(last?.hash ?? GENESIS, seq, record) };
}

export type ChainCheck =
  | { ok: true; count: number; head: string }
  | { ok: false; seq: number; reason: string };

/** Checks stored rows, oldest first: numbering, each hash, and optionally the head against a kept one. */
export function verifyChain(rows: readonly ChainedRecord[], expectedHead?: string): ChainCheck {
  let previous = GENESIS;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (row.seq !== i + 1) {
      return {
        ok: false,
        seq: row.seq,
        reason: `record ${i + 1} is missing or out of order (found seq ${row.seq} in its place)`,
      };
    }
    if (chainHash(previous, row.seq, row.record) !== row.hash) {
      return {
        ok: false,
        seq: row.seq,
        reason: `record ${row.seq} does not match its hash: it, or the one before it, was changed`,
      };
    }
    previous = row.hash;
  }
  if (expectedHead !== undefined && expectedHead !== previous) {
    const found = rows.findIndex((r) => r.hash === expectedHead);
    return {
      ok: false,
      seq: rows.length,
      reason:
        found >= 0
          ? `the kept head is record ${found + 1}, but the log goes on to ${rows.length}: records after it were added since (not tampering by itself)`
          : `the kept head hash is not in the log: records at its end were deleted or replaced`,
    };
  }
  return { ok: true, count: rows.length, head: previous };
}
