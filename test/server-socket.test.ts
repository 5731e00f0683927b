/**
 * The model server on a unix socket (`ferry serve --socket`, FERRY_LISTEN_SOCKET in an image): it answers
 * there and nowhere else, the socket's mode is what was asked (0600 by default), a stale socket left by a
 * killed server is replaced, a live one is FERRY_PORT_IN_USE, anything else at the path is refused, and the
 * socket is gone after shutdown.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { isFerryError } from '../src/core/errors.ts';
import { startServer } from '../src/server/index.ts';
import { ROOT, tempDir } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const logger = pino({ level: 'silent' });

/** GET over a unix socket: status and body. */
function getOverSocket(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

describe('the model server on a unix socket', () => {
  const dir = tempDir('ferry-sock-');
  after(() => dir.remove());

  test('answers on the socket (mode 0600), url unix:<path>, no TCP port; the socket is removed on close', async () => {
    const path = join(dir.path, 'a.sock');
    const server = await startServer({ paths: [IRIS], host: '127.0.0.1', port: 0, socketPath: path, logger });
    try {
      assert.equal(server.url, `unix:${path}`);
      assert.equal(server.port, 0);
      const st = await lstat(path);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600);
      const ready = await getOverSocket(path, '/v2/health/ready');
      assert.equal(ready.status, 200);
      const meta = await getOverSocket(path, '/v2/models/iris');
      assert.equal(meta.status, 200);
      assert.equal(JSON.parse(meta.body).name, 'iris');
    } finally {
      assert.equal(await server.close(), true);
    }
    assert.equal(await exists(path), false, 'the socket file is removed on close');
  });

  test('a stale socket file is replaced; a live one is FERRY_PORT_IN_USE; a regular file is refused', async () => {
    // Stale: what a killed server leaves (a socket file nobody listens on).
    const stale = join(dir.path, 'stale.sock');
    const killed = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    await new Promise((resolve) => killed.on('exit', resolve));
    assert.equal(await exists(stale), true, 'a stale socket file is there');
    const server = await startServer({
      paths: [IRIS],
      host: '127.0.0.1',
      port: 0,
      socketPath: stale,
      logger,
    });
    try {
      assert.equal((await getOverSocket(stale, '/v2/health/ready')).status, 200);
      // Live: a second server on the same path is refused, and the first keeps its socket.
      await assert.rejects(
        startServer({ paths: [IRIS], host: '127.0.0.1', port: 0, socketPath: stale, logger }),
        (error) => {
          assert.ok(isFerryError(error), String(error));
          assert.equal(error.code, 'FERRY_PORT_IN_USE');
          assert.match(error.message, /is in use/);
          return true;
        },
      );
      assert.equal((await getOverSocket(stale, '/v2/health/ready')).status, 200);
    } finally {
      await server.close();
    }
    const file = join(dir.path, 'plain-file');
    writeFileSync(file, 'not a socket');
    await assert.rejects(
      startServer({ paths: [IRIS], host: '127.0.0.1', port: 0, socketPath: file, logger }),
      (error) =>
        isFerryError(error) && error.code === 'FERRY_BAD_REQUEST' && /not a socket/.test(error.message),
    );
  });

  test('the image entry listens on FERRY_LISTEN_SOCKET with FERRY_SOCKET_MODE; a bad mode exits 2', async () => {
    const path = join(dir.path, 'entry.sock');
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server', 'entry.ts')], {
      cwd: ROOT,
      env: { ...process.env, FERRY_MODEL_DIR: IRIS, FERRY_LISTEN_SOCKET: path, FERRY_SOCKET_MODE: '660' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        const onData = () => {
          if (out.includes('server ready')) resolve();
        };
        child.stdout.on('data', onData);
        void exited.then((code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      assert.equal((await lstat(path)).mode & 0o777, 0o660);
      assert.equal((await getOverSocket(path, '/v2/health/ready')).status, 200);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, out);
    assert.equal(await exists(path), false);

    const bad = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server', 'entry.ts')], {
      cwd: ROOT,
      env: { ...process.env, FERRY_MODEL_DIR: IRIS, FERRY_LISTEN_SOCKET: path, FERRY_SOCKET_MODE: 'rw' },
    });
    let err = '';
    bad.stderr.on('data', (d) => (err += d));
    bad.stdout.resume();
    assert.equal(await new Promise<number | null>((resolve) => bad.on('exit', resolve)), 2);
    assert.match(err, /FERRY_SOCKET_MODE must be octal/);
  });
});
