/**
 * Secrets: values a deployment's replicas need (API keys, passwords) that must never land in an image, a log,
 * an event or an API response. The control plane seals each value with AES-256-GCM before it reaches the store,
 * under a key kept beside the state in a 0600 file (`secret.key`), so a copy of the SQLite file alone reveals
 * nothing. A deployment names secrets in `secretRefs`; each replica gets each one as an environment variable
 * named after it (`hf-token` -> `HF_TOKEN`, see envName).
 */

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FerryError } from '../core/errors.ts';
import { DEFAULT_TENANT, qualify } from '../core/tenant.ts';
import type { SecretRecord, Store } from './store/store.ts';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_BYTES = 8;
/** Format version byte: 1 = [1][iv][tag][body] under the one key there was; 2 = [2][key id][iv][tag][body]. */
const V1 = 1;
const V2 = 2;
const MAX_VALUE_BYTES = 64 * 1024;

interface Key {
  id: Buffer;
  bytes: Buffer;
}

function keyOf(bytes: Buffer, where: string): Key {
  if (bytes.length !== KEY_BYTES)
    throw new FerryError('FERRY_INTERNAL', `${where} does not hold a ${KEY_BYTES}-byte key`, {
      hint: 'Restore the file from a backup; without it the stored secrets cannot be read.',
    });
  return { id: createHash('sha256').update(bytes).digest().subarray(0, KEY_ID_BYTES), bytes };
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
}

/**
 * The sealing keys: `secret.key` holds the current one (new seals use it), `secret.key.previous` the ones that
 * still open values sealed before the last rotation (one base64 key per line), until every value is sealed
 * again. A sealed value names its key by id (the first 8 bytes of the key's sha256).
 */
export class SecretBox {
  private constructor(
    private readonly keyPath: string,
    private current: Key,
    private previous: Key[],
  ) {}

  /** Reads the key files, creating the key (mode 0600) on first use. */
  static open(keyPath: string): SecretBox {
    if (!existsSync(keyPath)) {
      mkdirSync(dirname(keyPath), { recursive: true, mode: 0o700 });
      writeFileSync(keyPath, randomBytes(KEY_BYTES).toString('base64'), { mode: 0o600, flag: 'wx' });
    }
    const current = keyOf(Buffer.from(readFileSync(keyPath, 'utf8').trim(), 'base64'), keyPath);
    const previousPath = `${keyPath}.previous`;
    const previous = existsSync(previousPath)
      ? readFileSync(previousPath, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => keyOf(Buffer.from(l.trim(), 'base64'), previousPath))
      : [];
    return new SecretBox(keyPath, current, previous);
  }

  /** The current key's id (hex): what `ferry secrets rotate-key` reports, never the key. */
  get keyId(): string {
    return this.current.id.toString('hex');
  }

  /** `name` is bound into the seal: a sealed value copied to another secret's row does not open. */
  seal(name: string, value: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.bytes, iv);
    cipher.setAAD(Buffer.from(name));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.of(V2), this.current.id, iv, cipher.getAuthTag(), body]);
  }

  open(name: string, sealed: Uint8Array): string {
    const buf = Buffer.from(sealed);
    const fail = (why: string) =>
      new FerryError('FERRY_INTERNAL', `Secret ${name} ${why}`, {
        hint: "The state directory's secret.key (or secret.key.previous) was replaced or lost; set the secret again.",
      });
    let keys: Key[];
    let at: number;
    if (buf[0] === V2 && buf.length >= 1 + KEY_ID_BYTES + IV_BYTES + TAG_BYTES) {
      const id = buf.subarray(1, 1 + KEY_ID_BYTES);
      keys = [this.current, ...this.previous].filter((k) => k.id.equals(id));
      at = 1 + KEY_ID_BYTES;
      if (keys.length === 0)
        throw fail(`was sealed with key ${id.toString('hex')}, which this control plane does not have`);
    } else if (buf[0] === V1 && buf.length >= 1 + IV_BYTES + TAG_BYTES) {
      keys = [this.current, ...this.previous];
      at = 1;
    } else throw fail('is not in a format this Ferry reads');
    for (const key of keys) {
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, buf.subarray(at, at + IV_BYTES));
      decipher.setAAD(Buffer.from(name));
      decipher.setAuthTag(buf.subarray(at + IV_BYTES, at + IV_BYTES + TAG_BYTES));
      try {
        return Buffer.concat([
          decipher.update(buf.subarray(at + IV_BYTES + TAG_BYTES)),
          decipher.final(),
        ]).toString('utf8');
      } catch {}
    }
    throw fail("does not open with this control plane's keys");
  }

  /** True when the value is sealed with an older key (or the format before key ids). */
  isStale(sealed: Uint8Array): boolean {
    const buf = Buffer.from(sealed);
    return buf[0] !== V2 || !buf.subarray(1, 1 + KEY_ID_BYTES).equals(this.current.id);
  }

  /**
   * Step 1 of a rotation: a new current key; the old ones stay in `secret.key.previous` so everything sealed
   * keeps opening. The previous file is written before the new key replaces the old (a crash in between loses
   * nothing: both are readable).
   */
  rotate(): void {
    const next = keyOf(randomBytes(KEY_BYTES), 'a new key');
    const keep = [this.current, ...this.previous];
    writeAtomically(
      `${this.keyPath}.previous`,
      `${keep.map((k) => k.bytes.toString('base64')).join('\n')}\n`,
    );
    writeAtomically(this.keyPath, next.bytes.toString('base64'));
    this.previous = keep;
    this.current = next;
  }

  /** Step 3 of a rotation, once nothing is sealed with them any more: forget the old keys. */
  retirePrevious(): void {
    rmSync(`${this.keyPath}.previous`, { force: true });
    this.previous = [];
  }
}

/** Secrets of one store, sealed with one box. */
export class Secrets {
  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
  ) {}

  set(name: string, value: unknown): SecretRecord {
    if (typeof value !== 'string' || value.length === 0)
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `Secret ${JSON.stringify(name)}: value must be a non-empty string`,
      );
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES)
      throw new FerryError(
        'FERRY_PAYLOAD_TOO_LARGE',
        `Secret ${JSON.stringify(name)} is over ${MAX_VALUE_BYTES} bytes`,
      );
    return this.store.putSecret(name, this.box.seal(name, value));
  }

  /**
   * Rotates the sealing key without stopping anything: a new key takes over new seals while the old ones still
   * open everything (step 1), every kept version of every secret is sealed again under the new key in one
   * transaction (step 2), then the old keys are forgotten (step 3). Running replicas keep the values they have;
   * the API keeps answering throughout (each step is synchronous and short). A crash between steps leaves the
   * old keys in secret.key.previous: everything still opens, and the next rotation finishes the job.
   */
  rotateKey(): { keyId: string; resealed: number } {
    this.box.rotate();
    const resealed = this.store.transaction(() => {
      let n = 0;
      for (const v of this.store.sealedVersions()) {
        if (!this.box.isStale(v.sealed)) continue;
        this.store.resealSecret(v.name, v.version, this.box.seal(v.name, this.box.open(v.name, v.sealed)));
        n++;
      }
      return n;
    });
    this.box.retirePrevious();
    return { keyId: this.box.keyId, resealed };
  }

  /** Every secret, or those of one tenant (names are keys, src/core/tenant.ts). */
  list(tenant?: string): SecretRecord[] {
    return this.store.listSecrets(tenant);
  }

  delete(name: string): void {
    if (!this.store.deleteSecret(name))
      throw new FerryError('FERRY_NOT_FOUND', `No secret named ${JSON.stringify(name)}`);
  }

  /**
   * The environment a replica gets for these secret names. Missing ones are listed, not thrown, so the caller
   * can say which (without ever saying a value).
   */
  env(
    refs: string[],
    tenant: string = DEFAULT_TENANT,
    versions: Record<string, number> = {},
  ): { env: Record<string, string>; missing: string[] } {
    const env: Record<string, string> = {};
    const missing: string[] = [];
    for (const ref of refs) {
      // A revision names its tenant's secrets by their plain names: a tenant never reaches another's. It gets
      // the version it pinned (the newest when it pinned none: the secret was not set yet).
      const key = qualify(tenant, ref);
      const sealed = this.store.getSealedSecret(key, versions[ref]);
      if (sealed === undefined) missing.push(ref);
      else env[envName(ref)] = this.box.open(key, sealed);
    }
    return { env, missing };
  }
}

/** The environment variable a secret arrives in: upper case, every run of other characters as `_`. */
export function envName(secret: string): string {
  const name = secret.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}
