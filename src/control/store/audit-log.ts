/**
 * The audit log's storage (issue 10): the `audit` table of migration 5, written only by `append`, which reads
 * the newest record and inserts the next one (control/audit-chain.ts) in one IMMEDIATE transaction, so two
 * writers, in this process or another one on the same file, never fork the chain.
 *
 * What protects what:
 *  - the table's triggers refuse UPDATE and DELETE: they stop accidents (a wrong SQL statement), not someone
 *    who drops them;
 *  - the hash chain makes an edited, deleted, inserted or reordered record show at `verify`, at its place;
 *  - the head file beside the database (`<db>.audit-head`: the newest seq and hash) shows a cut at the end
 *    and a database swapped for an older copy, which the chain alone cannot. append rewrites it (a new file
 *    renamed over the old) inside the write transaction, after the insert: when the file cannot be written,
 *    the insert is rolled back and append throws, so the record and its head go together. The one gap: the
 *    file written and then the COMMIT failing (disk full, I/O error) leaves the head one record ahead, which
 *    verify reports as a deleted record until the next append writes the head again.
 *  - none of this stops someone who can write both files: they can rewrite the log and its head together.
 *    Against that, keep heads away from the machine (`ferry audit --verify` prints it) and check against one
 *    (`--head <hash>`).
 * An in-memory store (':memory:') keeps no head file.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { FerryError } from '../../core/errors.ts';
import {
  type AuditOutcome,
  type AuditRecord,
  type ChainedRecord,
  GENESIS,
  type KeptHead,
  nextRecord,
  verifyChain,
} from '../audit-chain.ts';

/** One stored record as the API shows it. */
export interface AuditEntry extends AuditRecord {
  seq: number;
  /** The previous record's hash (64 zeros for the first). */
  prevHash: string;
  hash: string;
}

export interface AuditQuery {
  /** At most this many (default 100, at most 1000). */
  limit?: number;
  /** Only records older than this seq. */
  before?: number;
  /** Only records newer than this seq; the answer is then oldest first (to follow the log forward). */
  after?: number;
  actor?: string;
  action?: string;
  outcome?: AuditOutcome;
  /** Only records of this tenant. */
  tenant?: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Records checked. */
  checked: number;
  /** The newest record (seq 0 and 64 zeros when the log is empty). */
  head: KeptHead;
  /** The head kept beside the database, or null when there is none (in memory, or the file is missing). */
  kept: KeptHead | null;
  /** Where the chain breaks and why. */
  brokenAt?: { seq: number; reason: string };
  /** Something that is not a break but weakens the check (e.g. no kept head while the log has records). */
  warning?: string;
}

export interface AuditLog {
  /** Appends the record after the newest one and keeps the new head; throws when it could not (nothing was written then). */
  append(record: AuditRecord): AuditEntry;
  /** Newest first (oldest first with `after`). */
  list(query?: AuditQuery): AuditEntry[];
  /** Checks the whole chain, and its end against the kept head and, if given, a head hash kept elsewhere. */
  verify(expectedHead?: string): AuditVerification;
  /** The file the head is kept in; undefined for an in-memory store. */
  readonly headFile: string | undefined;
}

interface AuditRow {
  seq: number;
  at: string;
  actor: string;
  role: string | null;
  tenant: string;
  action: string;
  object: string;
  outcome: AuditOutcome;
  status: number | null;
  code: string | null;
  source: string;
  request_id: string;
  prev_hash: string;
  hash: string;
}

/** The record exactly as it was hashed: absent optional fields stay absent. */
function recordOf(row: AuditRow): AuditRecord {
  const record: AuditRecord = {
    at: row.at,
    actor: row.actor,
    tenant: row.tenant,
    action: row.action,
    object: row.object,
    outcome: row.outcome,
    source: row.source,
    requestId: row.request_id,
  };
  if (row.role !== null) record.role = row.role;
  if (row.status !== null) record.status = row.status;
  if (row.code !== null) record.code = row.code;
  return record;
}

const entryOf = (row: AuditRow): AuditEntry => ({
  seq: row.seq,
  ...recordOf(row),
  prevHash: row.prev_hash,
  hash: row.hash,
});

const OUTCOMES: readonly string[] = ['allowed', 'denied', 'failed'];
const HEX64 = /^[0-9a-f]{64}$/;

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;

/** `path`: the database file (':memory:' keeps no head file). */
export function openAuditLog(db: Database.Database, path: string): AuditLog {
  const headFile = path === ':memory:' || path === '' ? undefined : `${path}.audit-head`;
  const q = {
    last: db.prepare<[], { seq: number; hash: string }>(
      'SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1',
    ),
    insert: db.prepare(
      `INSERT INTO audit (seq, at, actor, role, tenant, action, object, outcome, status, code, source,
         request_id, prev_hash, hash)
       VALUES (@seq, @at, @actor, @role, @tenant, @action, @object, @outcome, @status, @code, @source,
         @request_id, @prev_hash, @hash)`,
    ),
    all: db.prepare<[], AuditRow>('SELECT * FROM audit ORDER BY seq'),
  };

  const insertNext = db.transaction((record: AuditRecord): AuditEntry => {
    const last = q.last.get();
    const chained = nextRecord(
      last ? ({ seq: last.seq, hash: last.hash } as ChainedRecord) : undefined,
      record,
    );
    const row: AuditRow = {
      seq: chained.seq,
      at: record.at,
      actor: record.actor,
      role: record.role ?? null,
      tenant: record.tenant,
      action: record.action,
      object: record.object,
      outcome: record.outcome,
      status: record.status ?? null,
      code: record.code ?? null,
      source: record.source,
      request_id: record.requestId,
      prev_hash: last?.hash ?? GENESIS,
      hash: chained.hash,
    };
    q.insert.run(row);
    writeKept({ seq: row.seq, hash: row.hash });
    return entryOf(row);
  });

  /** The head kept beside the database: null when there is none, 'damaged' when it cannot be read as one. */
  function readKept(): KeptHead | null | 'damaged' {
    if (!headFile) return null;
    let text: string;
    try {
      text = readFileSync(headFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    let head: Partial<KeptHead> | undefined;
    try {
      head = JSON.parse(text) as Partial<KeptHead>;
    } catch {
      return 'damaged';
    }
    if (
      !head ||
      typeof head.seq !== 'number' ||
      !Number.isInteger(head.seq) ||
      head.seq < 0 ||
      typeof head.hash !== 'string' ||
      !HEX64.test(head.hash)
    )
      return 'damaged';
    return { seq: head.seq, hash: head.hash };
  }

  function writeKept(head: KeptHead): void {
    if (!headFile) return;
    // Unique per writer: other threads and processes may write the head of the same database.
    const tmp = `${headFile}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify(head)}\n`, { mode: 0o600 });
      renameSync(tmp, headFile);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
  }

  return {
    headFile,
    append(record) {
      if (!OUTCOMES.includes(record.outcome)) throw new Error(`audit outcome ${record.outcome} is not valid`);
      return insertNext.immediate(record);
    },

    list(query = {}) {
      const limit = query.limit ?? AUDIT_DEFAULT_LIMIT;
      if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_MAX_LIMIT) {
        throw new FerryError('FERRY_BAD_REQUEST', `limit ${limit} is not allowed`, {
          hint: `Use 1 to ${AUDIT_MAX_LIMIT}.`,
        });
      }
      const where: string[] = [];
      const args: Record<string, unknown> = { limit };
      if (query.before !== undefined) {
        where.push('seq < @before');
        args.before = query.before;
      }
      if (query.after !== undefined) {
        where.push('seq > @after');
        args.after = query.after;
      }
      for (const key of ['actor', 'action', 'outcome', 'tenant'] as const) {
        if (query[key] !== undefined) {
          where.push(`${key} = @${key}`);
          args[key] = query[key];
        }
      }
      const forward = query.after !== undefined && query.before === undefined;
      const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${forward ? 'ASC' : 'DESC'} LIMIT @limit`;
      return db.prepare<[Record<string, unknown>], AuditRow>(sql).all(args).map(entryOf);
    },

    verify(expectedHead) {
      const kept = readKept();
      // One read transaction: the rows and the head are one state, whatever is appended meanwhile.
      return db.transaction((): AuditVerification => {
        function* rows(): Generator<ChainedRecord> {
          for (const row of q.all.iterate()) yield { seq: row.seq, record: recordOf(row), hash: row.hash };
        }
        let check = verifyChain(rows());
        if (check.ok && kept !== null && kept !== 'damaged') check = verifyChain(rows(), kept);
        if (check.ok && expectedHead !== undefined) check = verifyChain(rows(), expectedHead);
        const last = q.last.get();
        const head: KeptHead = last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS };
        const result: AuditVerification = {
          ok: check.ok,
          checked: check.ok ? check.count : Math.max(0, check.seq - 1),
          head,
          kept: kept === 'damaged' ? null : kept,
        };
        if (!check.ok) result.brokenAt = { seq: check.seq, reason: check.reason };
        else if (kept === 'damaged') {
          result.ok = false;
          result.brokenAt = {
            seq: head.seq,
            reason: `the head file ${headFile} is damaged: it is not {"seq", "hash"}`,
          };
        } else if (kept === null && head.seq > 0) {
          result.warning = headFile
            ? `no head is kept beside the database (${headFile} is missing): a cut at the end of the log would not show`
            : 'an in-memory store keeps no head: a cut at the end of the log would not show';
        }
        return result;
      })();
    },
  };
}
