import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { AuditRecord } from '../audit-chain.ts';
import { openStore } from './store.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-audit-'));
  dirs.push(dir);
  return join(dir, 'state.db');
}

const record = (n: number, extra: Partial<AuditRecord> = {}): AuditRecord => ({
  at: new Date(Date.UTC(2026, 11, 6, 12, 0, n)).toISOString(),
  actor: n % 2 ? 'root' : 'ci',
  role: n % 2 ? 'admin' : 'deployer',
  tenant: 'default',
  action: n % 3 ? 'updateDeployment' : 'deleteToken',
  object: `deployments/m${n}`,
  outcome: n % 4 ? 'allowed' : 'denied',
  status: n % 4 ? 200 : 403,
  source: '127.0.0.1',
  requestId: `req-${n}`,
  ...extra,
});

test('append chains records; list pages and filters; verify checks them and keeps a head file', () => {
  const path = tempDb();
  const store = openStore(path);
  try {
    assert.deepEqual(store.audit.verify(), {
      ok: true,
      checked: 0,
      head: { seq: 0, hash: '0'.repeat(64) },
      kept: null,
    });
    for (let n = 1; n <= 10; n++) store.audit.append(record(n, n === 5 ? { code: 'FERRY_FORBIDDEN' } : {}));
    const all = store.audit.list();
    assert.deepEqual(
      all.map((e) => e.seq),
      [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
    );
    assert.equal(all[9]!.prevHash, '0'.repeat(64));
    assert.equal(all[0]!.prevHash, all[1]!.hash);
    assert.equal(all[5]!.code, 'FERRY_FORBIDDEN');
    assert.equal('code' in all[4]!, false, 'absent fields stay absent');

    assert.deepEqual(
      store.audit.list({ limit: 3, before: 8 }).map((e) => e.seq),
      [7, 6, 5],
    );
    assert.deepEqual(
      store.audit.list({ limit: 3, after: 8 }).map((e) => e.seq),
      [9, 10],
      'after: oldest first',
    );
    assert.deepEqual(
      store.audit.list({ actor: 'ci', outcome: 'denied' }).map((e) => e.seq),
      [8, 4],
    );
    assert.deepEqual(
      store.audit.list({ action: 'deleteToken' }).map((e) => e.seq),
      [9, 6, 3],
    );
    assert.throws(() => store.audit.list({ limit: 0 }), /limit 0 is not allowed/);

    const head = { seq: 10, hash: all[0]!.hash };
    assert.deepEqual(JSON.parse(readFileSync(`${path}.audit-head`, 'utf8')), head);
    assert.deepEqual(store.audit.verify(), { ok: true, checked: 10, head, kept: head });
    assert.equal(store.audit.verify(all[0]!.hash).ok, true, 'a head hash kept elsewhere');
    const behind = store.audit.verify(all[2]!.hash);
    assert.equal(behind.ok, false);
    assert.match(behind.brokenAt?.reason ?? '', /kept head is record 8, but the log goes on to 10/);
  } finally {
    store.close();
  }
});

test('the table refuses UPDATE and DELETE (accidents); a store reopened on the file verifies', () => {
  const path = tempDb();
  const store = openStore(path);
  for (let n = 1; n <= 3; n++) store.audit.append(record(n));
  store.close();
  const db = new Database(path);
  try {
    assert.throws(() => db.prepare("UPDATE audit SET actor = 'x' WHERE seq = 2").run(), /append-only/);
    assert.throws(() => db.prepare('DELETE FROM audit WHERE seq = 3').run(), /append-only/);
  } finally {
    db.close();
  }
  const again = openStore(path);
  try {
    assert.equal(again.audit.verify().ok, true);
    assert.equal(again.audit.append(record(4)).seq, 4);
  } finally {
    again.close();
  }
});

test('a missing head file is a warning, a damaged one a failure; in memory there is none', () => {
  const path = tempDb();
  const store = openStore(path);
  try {
    store.audit.append(record(1));
    rmSync(`${path}.audit-head`);
    const missing = store.audit.verify();
    assert.equal(missing.ok, true);
    assert.equal(missing.kept, null);
    assert.match(
      missing.warning ?? '',
      /audit-head is missing\): a cut at the end of the log would not show/,
    );
    writeFileSync(`${path}.audit-head`, 'not json');
    const damaged = store.audit.verify();
    assert.equal(damaged.ok, false);
    assert.match(damaged.brokenAt?.reason ?? '', /is damaged/);
    store.audit.append(record(2));
    assert.equal(store.audit.verify().ok, true, 'the next append writes the head again');

    // When the head cannot be written, the record is not written either (append throws).
    rmSync(`${path}.audit-head`);
    mkdirSync(`${path}.audit-head`);
    writeFileSync(join(`${path}.audit-head`, 'in-the-way'), '');
    assert.throws(() => store.audit.append(record(3)));
    assert.deepEqual(
      store.audit.list().map((e) => e.seq),
      [2, 1],
    );
    rmSync(`${path}.audit-head`, { recursive: true });
    assert.equal(store.audit.append(record(3)).seq, 3);
    assert.equal(store.audit.verify().ok, true);
  } finally {
    store.close();
  }
  const memory = openStore(':memory:');
  try {
    memory.audit.append(record(1));
    assert.equal(memory.audit.headFile, undefined);
    assert.match(memory.audit.verify().warning ?? '', /in-memory store keeps no head/);
  } finally {
    memory.close();
  }
  assert.equal(existsSync(':memory:.audit-head'), false);
});

test('writers on two threads, each with its own connection to the file, never fork the chain', async () => {
  const path = tempDb();
  openStore(path).close();
  const storeUrl = pathToFileURL(join(import.meta.dirname, 'store.ts')).href;
  const PER_WORKER = 150;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    // Loader hooks are per thread: register tsx here before importing the store's TypeScript.
    import('tsx/esm/api').then(({ register }) => { register(); return import(workerData.storeUrl); }).then(({ openStore }) => {
      const store = openStore(workerData.path);
      for (let i = 0; i < workerData.count; i++) {
        store.audit.append({ at: new Date().toISOString(), actor: workerData.actor, tenant: 'default',
          action: 'scale', object: 'deployments/d', outcome: 'allowed', source: '127.0.0.1',
          requestId: workerData.actor + '-' + i });
      }
      store.close();
      parentPort.postMessage('done');
    });`;
  const run = (actor: string) =>
    new Promise<void>((resolve, reject) => {
      const worker = new Worker(code, {
        eval: true,
        workerData: { storeUrl, path, actor, count: PER_WORKER },
      });
      worker.on('message', () => resolve());
      worker.on('error', reject);
      worker.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`worker exited ${c}`))));
    });
  await Promise.all([run('a'), run('b')]);
  const store = openStore(path);
  try {
    const check = store.audit.verify();
    assert.equal(check.ok, true, JSON.stringify(check));
    assert.equal(check.checked, 2 * PER_WORKER);
    assert.equal(store.audit.list({ actor: 'a', limit: 1000 }).length, PER_WORKER);
    assert.equal(store.audit.list({ actor: 'b', limit: 1000 }).length, PER_WORKER);
  } finally {
    store.close();
  }
});
