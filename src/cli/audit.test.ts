/**
 * `ferry audit` as a user runs it (`node bin/ferry.js audit ...`) against the control-plane API listening in
 * this process: real Fastify app, real SQLite file, which the tamper case edits directly past its triggers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { buildControlApi } from '../control/api/app.ts';
import { recordingControl } from '../control/api/testing.ts';
import { openStore, type Store } from '../control/store/store.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ferry.js');

describe('ferry audit against a live control-plane API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cli-audit-'));
  const dbPath = join(dir, 'state.db');
  let store: Store;
  let app: FastifyInstance;
  let url: string;
  let admin: string;
  let viewer: string;

  function ferry(args: string[], token = admin) {
    const child = spawn(process.execPath, [BIN, ...args, '--api', url, '--token', token], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: dir, FERRY_HOME: join(dir, 'home') },
    });
    child.stdin.end();
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((res) =>
      child.on('close', (code) => res({ code, stdout, stderr })),
    );
  }

  before(async () => {
    store = openStore(dbPath);
    app = buildControlApi({
      store,
      control: recordingControl(store),
      info: { version: '0.0.0-test', runtime: 'process', gatewayUrl: 'http://127.0.0.1:1' },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    admin = store.createToken('root', 'platform-admin').token;
    viewer = store.createToken('look', 'viewer').token;
  });
  after(async () => {
    await app.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('lists the newest records oldest first, filters them, and prints JSON with -o json', async () => {
    const empty = await ferry(['audit']);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, 'No audit records.\n');

    for (const name of ['iris', 'wine', 'iris'])
      await fetch(`${url}/v1/models`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
    const denied = await ferry(['audit'], viewer);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /error FERRY_FORBIDDEN: .*may not manage tokens or read the audit log/);

    const r = await ferry(['audit']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^SEQ +TIME +TENANT +ACTOR +ACTION +OBJECT +OUTCOME +SOURCE +REQUEST$/);
    assert.match(
      lines[1]!,
      /^1 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +default +root \(platform-admin\) +createModel +models\/iris +allowed 201 +127\.0\.0\.1 +\S+$/,
    );
    assert.match(lines[3]!, /^3 .* createModel +models\/iris +failed 409 FERRY_CONFLICT /);
    assert.match(lines[4]!, /^4 .* look \(viewer\) +listAudit +audit +denied 403 FERRY_FORBIDDEN /);
    assert.equal(lines.length, 5);

    const json = await ferry(['audit', '--outcome', 'failed', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const records = JSON.parse(json.stdout);
    assert.deepEqual(
      records.map((x: { seq: number; code: string }) => [x.seq, x.code]),
      [[3, 'FERRY_CONFLICT']],
    );
    const limited = await ferry(['audit', '--limit', '2', '--before', '4', '--actor', 'root']);
    assert.deepEqual(
      limited.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/ +/)[0]),
      ['2', '3'],
    );
    const bad = await ferry(['audit', '--limit', '0']);
    assert.equal(bad.code, 2);
    assert.equal((await ferry(['audit', '--head', 'abc'])).code, 2, '--head without --verify');
  });

  test('--verify: exit 0 and the head when intact; exit 1 and where it breaks after an edit of the file', async () => {
    const ok = await ferry(['audit', '--verify']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^audit log intact: \d+ records checked\nhead: record (\d+) [0-9a-f]{64}\n/);
    const head = /head: record \d+ ([0-9a-f]{64})/.exec(ok.stdout)![1]!;
    assert.match(ok.stdout, /kept beside the database: record \d+ [0-9a-f]{64}/);
    assert.equal((await ferry(['audit', '--verify', '--head', head])).code, 0);
    assert.equal((await ferry(['audit', '--verify', '--head', 'xyz'])).code, 2);

    const db = new Database(dbPath);
    try {
      db.exec('DROP TRIGGER audit_no_update');
      db.prepare("UPDATE audit SET object = 'models/nothing' WHERE seq = 2").run();
    } finally {
      db.close();
    }
    const broken = await ferry(['audit', '--verify']);
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /^audit log BROKEN at record 2: record 2 does not match its hash/);
    assert.match(broken.stdout, /records 1 to 1 are intact/);
    const json = await ferry(['audit', '--verify', '-o', 'json']);
    assert.equal(json.code, 1);
    assert.equal(JSON.parse(json.stdout).brokenAt.seq, 2);
  });
});
