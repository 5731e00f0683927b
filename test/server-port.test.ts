/**
 * A model server asked for a port another program holds: FERRY_PORT_IN_USE naming the port and how to pick
 * another (the CLI's --port, the image's FERRY_PORT), and nothing left listening or loaded.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { isFerryError } from '../src/core/errors.ts';
import { startServer } from '../src/server/index.ts';
import { ROOT } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');

describe('a port already in use', () => {
  let holder: Server;
  let port: number;
  before(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    port = (holder.address() as { port: number }).port;
  });
  after(() => new Promise((resolve) => holder.close(resolve)));

  test('startServer rejects with FERRY_PORT_IN_USE, naming the port, --port and 0', async () => {
    const logger = pino({ level: 'silent' });
    await assert.rejects(startServer({ paths: [IRIS], host: '127.0.0.1', port, logger }), (error) => {
      assert.ok(isFerryError(error), String(error));
      assert.equal(error.code, 'FERRY_PORT_IN_USE');
      assert.match(error.message, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
      assert.match(error.hint ?? '', /--port \(0 picks a free one\)/);
      return true;
    });
  });

  test('the image entry (configured by environment) names FERRY_PORT and exits 1 on its own', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server', 'entry.ts')], {
      cwd: ROOT,
      env: { ...process.env, FERRY_MODEL_DIR: IRIS, FERRY_HOST: '127.0.0.1', FERRY_PORT: String(port) },
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 1, stderr);
    assert.match(stderr, /error FERRY_PORT_IN_USE: port \d+ on 127\.0\.0\.1 is already in use/);
    assert.match(stderr, /FERRY_PORT \(0 picks a free one\)/);
  });
});
