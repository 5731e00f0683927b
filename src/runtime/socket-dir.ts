/**
 * Where a replica's unix socket lives on this machine: `<root>/<replica name>/ferry.sock`, one directory per
 * replica (the docker runtime mounts only that directory into the container). A name that would make the path
 * longer than a socket path may be (107 bytes) gets `<root>/h-<16 hex of its sha256>/` instead. Either way the
 * path is a function of the root and the name, so a replica is found again after a restart.
 */
import { createHash } from 'node:crypto';
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
