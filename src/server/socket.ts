/**
 * Listening on a unix socket (`ferry serve --socket`, FERRY_LISTEN_SOCKET): the path is checked and a stale
 * socket left by a killed server is removed first; the socket is created with no permission for anyone but
 * the owner (umask 0177 around the bind), then set to the mode asked for; close() removes it.
 */

import { chmod, lstat, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { FerryError } from '../core/errors.ts';
import { MAX_SOCKET_PATH_BYTES } from '../core/replica.ts';

/** Checks a socket path before listening; removes a stale socket (one nobody answers on). */
export async function prepareSocketPath(path: string): Promise<void> {
  if (!path.startsWith('/') || path.includes('\0'))
    throw new FerryError('FERRY_BAD_REQUEST', `socket path '${path}' must be an absolute path`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `socket path '${path}' is ${Buffer.byteLength(path)} bytes; unix sockets take at most ${MAX_SOCKET_PATH_BYTES}`,
      { hint: 'Use a shorter directory (for the platform: a shorter FERRY_HOME).' },
    );
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket)
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `'${path}' exists and is not a socket; refusing to replace it`,
      {
        hint: 'Pick another socket path, or remove that file.',
      },
    );
  if (await answers(path))
    throw new FerryError('FERRY_PORT_IN_USE', `socket ${path} is in use: a server answers on it`, {
      hint: 'Stop that server, or pick another socket path.',
    });
  // A socket file nobody listens on: what a killed server leaves behind.
  await rm(path, { force: true });
}

/** True when something accepts a connection on the socket (within a second). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Runs `listen` (which binds the socket) with umask 0177, so the socket never exists with more permission
 * than owner read/write, then sets `mode`. Main thread only (process.umask).
 */
export async function listenOnSocket(
  path: string,
  mode: number,
  listen: () => Promise<unknown>,
): Promise<void> {
  await prepareSocketPath(path);
  const old = process.umask(0o177);
  try {
    await listen();
  } finally {
    process.umask(old);
  }
  await chmod(path, mode);
}

/** Removes the socket file (a closed listener normally has; this covers the rest). */
export async function removeSocket(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

/** Parses an octal permission string such as "600" or "0666"; null when it is not one. */
export function parseSocketMode(text: string): number | null {
  if (!/^0?[0-7]{3}$/.test(text.trim())) return null;
  return Number.parseInt(text.trim(), 8);
}
