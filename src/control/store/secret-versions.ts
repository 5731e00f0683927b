/**
 * Secrets in the store, versioned: every set makes a new numbered version of the secret (its sealed bytes,
 * opaque to the store). A revision pins the versions it was made with (RevisionSpec.secretVersions), so rolling
 * back to an older revision brings back the values it ran with. The newest KEEP_VERSIONS versions of a secret
 * are kept; deleting a secret deletes them all. `secrets` lists names and their newest version; values live in
 * `secret_versions` only.
 */
import type Database from 'better-sqlite3';
import { FerryError } from '../../core/errors.ts';
import { splitKey } from '../../core/tenant.ts';

export const KEEP_VERSIONS = 10;
const SECRET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** A secret as listed: its name, newest version and dates, never its value. */
export interface SecretRecord {
  name: string;
  version: number;
  createdAt: number;
  updatedAt: number;
}

/** One sealed version, for re-sealing under a new key. */
export interface SealedVersion {
  name: string;
  version: number;
  sealed: Uint8Array;
}

export function secretTable(db: Database.Database, now: () => number) {
  const q = {
    one: db.prepare<[string], { name: string; version: number; created_at: number; updated_at: number }>(
      'SELECT name, version, created_at, updated_at FROM secrets WHERE name = ?',
    ),
    all: db.prepare<[], { name: string; version: number; created_at: number; updated_at: number }>(
      'SELECT name, version, created_at, updated_at FROM secrets ORDER BY name',
    ),
    insert: db.prepare(
      `INSERT INTO secrets (name, sealed, created_at, updated_at, version) VALUES (?, x'', ?, ?, 1)
       ON CONFLICT (name) DO UPDATE SET version = version + 1, updated_at = excluded.updated_at`,
    ),
    insertVersion: db.prepare(
      'INSERT INTO secret_versions (name, version, sealed, created_at) VALUES (?, ?, ?, ?)',
    ),
    prune: db.prepare('DELETE FROM secret_versions WHERE name = ? AND version <= ?'),
    version: db.prepare<[string, number], { sealed: Buffer }>(
      'SELECT sealed FROM secret_versions WHERE name = ? AND version = ?',
    ),
    everyVersion: db.prepare<[], { name: string; version: number; sealed: Buffer }>(
      'SELECT name, version, sealed FROM secret_versions ORDER BY name, version',
    ),
    reseal: db.prepare('UPDATE secret_versions SET sealed = ? WHERE name = ? AND version = ?'),
    remove: db.prepare('DELETE FROM secrets WHERE name = ?'),
    removeVersions: db.prepare('DELETE FROM secret_versions WHERE name = ?'),
  };
  const toRecord = (r: { name: string; version: number; created_at: number; updated_at: number }) => ({
    name: r.name,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });

  return {
    /** A new version of the secret with this key (created at version 1). */
    putSecret(key: string, sealed: Uint8Array): SecretRecord {
      if (typeof key !== 'string' || !SECRET_RE.test(splitKey(key).name))
        throw new FerryError(
          'FERRY_BAD_REQUEST',
          `Secret name ${JSON.stringify(splitKey(String(key)).name)} is not valid`,
          {
            hint: 'Use 1-253 letters, digits, ".", "_" and "-", starting with a letter or digit.',
          },
        );
      const at = now();
      q.insert.run(key, at, at);
      const row = q.one.get(key)!;
      q.insertVersion.run(key, row.version, Buffer.from(sealed), at);
      q.prune.run(key, row.version - KEEP_VERSIONS);
      return toRecord(row);
    },
    /** The sealed value of a version (default: the newest); undefined when there is no such secret or version. */
    getSealedSecret(key: string, version?: number): Uint8Array | undefined {
      const v = version ?? q.one.get(key)?.version;
      return v === undefined ? undefined : q.version.get(key, v)?.sealed;
    },
    /** The newest version of a secret; undefined when it is not set. */
    secretVersion: (key: string): number | undefined => q.one.get(key)?.version,
    listSecrets: (tenant?: string): SecretRecord[] =>
      q.all
        .all()
        .filter((r) => tenant === undefined || splitKey(r.name).tenant === tenant)
        .map(toRecord),
    deleteSecret(key: string): boolean {
      q.removeVersions.run(key);
      return q.remove.run(key).changes > 0;
    },
    /** Every kept version, sealed (for re-sealing under a new key). */
    sealedVersions: (): SealedVersion[] => q.everyVersion.all(),
    /** Replaces one version's sealed bytes (same value, sealed again); false when it is gone. */
    resealSecret: (key: string, version: number, sealed: Uint8Array): boolean =>
      q.reseal.run(Buffer.from(sealed), key, version).changes > 0,
  };
}
