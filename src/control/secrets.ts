/**
 * Secrets: values a deployment's replicas need (API keys, passwords) that must never land in an image, a log,
 * an event or an API response. The control plane seals each value with AES-256-GCM before it reaches the store,
 * under a key kept beside the state in a 0600 file (`secret.key`), so a copy of the SQLite file alone reveals
 * nothing. A deployment names secrets in `secretRefs`; each replica gets each one as an environment variable
 * named after it (`hf-token` -> `HF_TOKEN`, see envName).
 */

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FerryError } from '../core/errors.ts';
import { DEFAULT_TENANT, qualify } from '../core/tenant.ts';
import type { SecretRecord, Store } from './store/store.ts';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Format version byte, so the sealing can change without guessing. */
const VERSION = 1;
const MAX_VALUE_BYTES = 64 * 1024;

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** Reads the key file, creating it (mode 0600) on first use. */
  static open(keyPath: string): SecretBox {
    if (!existsSync(keyPath)) {
      mkdirSync(dirname(keyPath), { recursive: true, mode: 0o700 });
      writeFileSync(keyPath, randomBytes(KEY_BYTES).toString('base64'), { mode: 0o600, flag: 'wx' });
    }
    const key = Buffer.from(readFileSync(keyPath, 'utf8').trim(), 'base64');
    if (key.length !== KEY_BYTES)
      throw new FerryError('FERRY_INTERNAL', `${keyPath} does not hold a ${KEY_BYTES}-byte key`, {
        hint: 'Restore the file from a backup; without it the stored secrets cannot be read.',
      });
    return new SecretBox(key);
  }

  /** `name` is bound into the seal: a sealed value copied to another secret's row does not open. */
  seal(name: string, value: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(name));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body]);
  }

  open(name: string, sealed: Uint8Array): string {
    const buf = Buffer.from(sealed);
    if (buf[0] !== VERSION || buf.length < 1 + IV_BYTES + TAG_BYTES)
      throw new FerryError('FERRY_INTERNAL', `Secret ${name} is not in a format this Ferry reads`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, buf.subarray(1, 1 + IV_BYTES));
    decipher.setAAD(Buffer.from(name));
    decipher.setAuthTag(buf.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(buf.subarray(1 + IV_BYTES + TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new FerryError('FERRY_INTERNAL', `Secret ${name} does not open with this control plane's key`, {
        hint: "The state directory's secret.key was replaced; set the secret again.",
      });
    }
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
  env(refs: string[], tenant: string = DEFAULT_TENANT): { env: Record<string, string>; missing: string[] } {
    const env: Record<string, string> = {};
    const missing: string[] = [];
    for (const ref of refs) {
      // A revision names its tenant's secrets by their plain names: a tenant never reaches another's.
      const key = qualify(tenant, ref);
      const sealed = this.store.getSealedSecret(key);
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
