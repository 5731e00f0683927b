/**
 * The audit log's tamper evidence (issue 10): every record carries the sha256 of the previous record's hash
 * and its own canonical JSON, so editing, deleting, inserting or reordering a stored record breaks the chain
 * at that point. Pure: hashing and checking only; storing the rows is the store's job.
 *
 * What the chain cannot show by itself is a cut at the end (the newest records deleted): for that, verify
 * against a head kept elsewhere (`expectedHead`): the hash alone (e.g. one printed by `ferry audit --verify`
 * earlier), or the sequence number and hash the store keeps beside the database (store/audit-log.ts).
 */
import { createHash } from 'node:crypto';

export type AuditOutcome = 'allowed' | 'denied' | 'failed';

export interface AuditRecord {
  /** ISO 8601 time. */
  at: string;
  /** Who: a token's name (never the token), or "anonymous". */
  actor: string;
  /** The token's role; absent when the request had no valid token. */
  role?: string;
  tenant: string;
  /** What was asked: the API operation, e.g. "updateDeployment". */
  action: string;
  /** What it was asked of, e.g. "deployments/iris" (names only, never a value). */
  object: string;
  /** allowed: it succeeded (2xx/3xx); denied: 401 or 403; failed: any other error. */
  outcome: AuditOutcome;
  /** The HTTP status answered; absent in records written before it was kept. */
  status?: number;
  /** The FERRY_... code of an error answer. */
  code?: string;
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

/** A head kept outside the log: the number and hash of the newest record when it was kept. */
export interface KeptHead {
  seq: number;
  hash: string;
}

/**
 * Checks stored rows, oldest first: numbering, each hash, and optionally the head against a kept one.
 *  - a hash (string): the log must end exactly there (anything written since shows as a difference);
 *  - a KeptHead: the log must contain that record with that hash; records written after it are fine (the
 *    keeper may lag), fewer records than it is a cut at the end, another hash there is a rewrite.
 * Reads `rows` once, so an iterator over a large table works without holding it in memory.
 */
export function verifyChain(rows: Iterable<ChainedRecord>, expectedHead?: string | KeptHead): ChainCheck {
  let previous = GENESIS;
  let count = 0;
  let hashAtKept: string | undefined;
  let foundKeptHash = -1;
  for (const row of rows) {
    count++;
    if (row.seq !== count) {
      return {
        ok: false,
        seq: row.seq,
        reason: `record ${count} is missing or out of order (found seq ${row.seq} in its place)`,
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
    if (typeof expectedHead === 'string') {
      if (row.hash === expectedHead) foundKeptHash = count;
    } else if (expectedHead !== undefined && row.seq === expectedHead.seq) {
      hashAtKept = row.hash;
    }
  }
  if (typeof expectedHead === 'string' && expectedHead !== previous) {
    return {
      ok: false,
      seq: count,
      reason:
        foundKeptHash >= 0
          ? `the kept head is record ${foundKeptHash}, but the log goes on to ${count}: records after it were added since (not tampering by itself)`
          : `the kept head hash is not in the log: records at its end were deleted or replaced`,
    };
  }
  if (expectedHead !== undefined && typeof expectedHead !== 'string') {
    if (count < expectedHead.seq) {
      return {
        ok: false,
        seq: count + 1,
        reason: `the log ends at record ${count}, but the kept head is record ${expectedHead.seq}: records ${count + 1} to ${expectedHead.seq} were deleted`,
      };
    }
    if (expectedHead.seq > 0 && hashAtKept !== expectedHead.hash) {
      return {
        ok: false,
        seq: expectedHead.seq,
        reason: `record ${expectedHead.seq} is not the one kept as head: the log was rewritten at or before it (hashes recomputed)`,
      };
    }
  }
  return { ok: true, count, head: previous };
}
