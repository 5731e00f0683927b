/**
 * Where a replica's unix socket lives on this machine: `<root>/<replica name>/ferry.sock`, one directory per
 * replica (the docker runtime mounts only that directory into the container). A name that would make the path
 * longer than a socket path may be (107 bytes) gets `<root>/h-<16 hex of its sha256>/` instead. Either way the
 * path is a function of the root and the name, so a replica is found again after a restart.
 */
import { createHash } from 'node:crypto';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../core/errors.ts';
import { MAX_SOCKET_PATH_BYTES } from '../core/replica.ts';

export const SOCKET_FILE = 'ferry.sock';

/** The replica's own directory under root. Throws FERRY_BAD_REQUEST when root is too long for any socket path. */
export function replicaSocketDir(root: string, name: string): string {
  const plain = join(root, name);
  if (Buffer.byteLength(join(plain, SOCKET_FILE)) <= MAX_SOCKET_PATH_BYTES) return plain;
  const hashed = join(root, `h-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`);
  if (Buffer.byteLength(join(hashed, SOCKET_FILE)) <= MAX_SOCKET_PATH_BYTES) return hashed;
  throw new FerryError(
    'FERRY_BAD_REQUEST',
    `Replica sockets cannot live under '${root}': the path is too long for a unix socket (at most ${MAX_SOCKET_PATH_BYTES} bytes).`,
    { hint: 'Use a shorter state directory (FERRY_HOME).' },
  );
}

export function replicaSocketPath(root: string, name: string): string {
  return join(replicaSocketDir(root, name), SOCKET_FILE);
}

export const SECRETS_SUBDIR = 'secrets';

/**
 * Writes a replica's secrets as files into `<replica dir>/secrets` (directory 0700, files 0400), owned by the
 * replica's user when Ferry may give them away (it runs as root), else by Ferry's user (then 0755 / 0444: the
 * replica's directory and its 0700 root keep others out). Returns the directory, or undefined when there are no
 * secrets.
 */
export async function writeSecretFiles(
  replicaDir: string,
  secrets: Record<string, string> | undefined,
  owner: { uid: number; gid: number } | null,
): Promise<string | undefined> {
  const entries = Object.entries(secrets ?? {});
  if (entries.length === 0) return undefined;
  const dir = join(replicaDir, SECRETS_SUBDIR);
  const giveAway = owner !== null && process.getuid?.() === 0;
  await mkdir(dir, { mode: giveAway ? 0o700 : 0o755 });
  for (const [name, value] of entries) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `Secret variable ${JSON.stringify(name)} is not an environment variable name`,
      );
    const file = join(dir, name);
    await writeFile(file, value, { mode: giveAway ? 0o400 : 0o444, flag: 'wx' });
    if (giveAway) await chown(file, owner.uid, owner.gid);
  }
  if (giveAway) await chown(dir, owner.uid, owner.gid);
  return dir;
}
