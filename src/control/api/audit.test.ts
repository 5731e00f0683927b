/**
 * The audit log through the API (issue 10): every mutating operation of the OpenAPI document writes exactly
 * one record, denied requests are recorded, no secret or token reaches the table, and edits to the database
 * file show at GET /v1/audit/verify. Real SQLite files, the real app (inject()).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { ArtifactStore } from '../artifacts.ts';
import { SecretBox, Secrets } from '../secrets.ts';
import type { AuditEntry } from '../store/audit-log.ts';
import { openStore, type Store } from '../store/store.ts';
import { buildControlApi } from './app.ts';
import { recordingControl } from './testing.ts';

const INFO = { version: '9.9.9', runtime: 'process' as const, gatewayUrl: 'http://127.0.0.1:8080' };

interface Env {
  app: FastifyInstance;
  store: Store;
  dbPath: string;
  admin: string;
  deployer: string;
  viewer: string;
  close(): Promise<void>;
}

const envs: Env[] = [];
after(async () => {
  for (const env of envs) await env.close();
});

async function setup(logs?: string[]): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-audit-api-'));
  const dbPath = join(dir, 'state.db');
  const store = openStore(dbPath);
  const app = buildControlApi({
    store,
    control: recordingControl(store, INFO.gatewayUrl),
    info: INFO,
    secrets: new Secrets(store, SecretBox.open(join(dir, 'secret.key'))),
    versions: { store, artifacts: new ArtifactStore(join(dir, 'artifacts')) },
    ...(logs ? { logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }) } : {}),
  });
  await app.ready();
  const env: Env = {
    app,
    store,
    dbPath,
    admin: store.createToken('root', 'platform-admin').token,
    deployer: store.createToken('ci', 'deployer').token,
    viewer: store.createToken('look', 'viewer').token,
    async close() {
      await app.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  envs.push(env);
  return env;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

async function call(env: Env, method: Method, url: string, token?: string, body?: unknown) {
  const res = await env.app.inject({
    method,
    url,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });
  return { status: res.statusCode, body: res.body === '' ? undefined : res.json(), headers: res.headers };
}

const headSeq = (env: Env) => env.store.audit.verify().head.seq;
const since = (env: Env, seq: number): AuditEntry[] => env.store.audit.list({ after: seq, limit: 1000 });

test('every mutating operation in /openapi.json writes exactly one audit record, whatever its outcome', async () => {
  const env = await setup();
  const doc = (await call(env, 'GET', '/openapi.json')).body as {
    paths: Record<string, Record<string, { operationId: string; requestBody?: unknown }>>;
  };
  const mutating: Array<{ method: Method; path: string; operationId: string; hasBody: boolean }> = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (['post', 'put', 'patch', 'delete'].includes(method))
        mutating.push({
          method: method.toUpperCase() as Method,
          path,
          operationId: op.operationId,
          hasBody: op.requestBody !== undefined,
        });
    }
  }
  // A sanity floor, so that a broken document cannot pass by listing nothing.
  assert.ok(mutating.length >= 16, `mutating operations found: ${mutating.length}`);
  for (const op of mutating) {
    const url = op.path.replace(/\{[^}]+\}/g, 'audit-probe');
    const before = headSeq(env);
    const answer = await call(env, op.method, url, env.admin, op.hasBody ? {} : undefined);
    const records = since(env, before);
    assert.equal(
      records.length,
      1,
      `${op.method} ${op.path} (${op.operationId}) answered ${answer.status} and wrote ${records.length} audit records`,
    );
    const [record] = records as [AuditEntry];
    assert.equal(record.action, op.operationId);
    assert.equal(record.actor, 'root');
    assert.equal(record.role, 'platform-admin');
    assert.equal(record.tenant, 'default');
    assert.equal(record.status, answer.status);
    assert.equal(record.outcome, answer.status < 400 ? 'allowed' : 'failed');
    assert.equal(record.code, answer.status < 400 ? undefined : answer.body.code);
    assert.equal(record.source, '127.0.0.1');
    assert.equal(record.requestId, answer.headers['x-request-id']);
    assert.ok(record.object.includes('audit-probe') || !op.path.includes('{'), record.object);
  }
  assert.equal(env.store.audit.verify().ok, true);
});

test('reads are not recorded; denied requests are, on any route, with who and why', async () => {
  const env = await setup();
  const start = headSeq(env);
  assert.equal((await call(env, 'GET', '/v1/models', env.viewer)).status, 200);
  assert.equal((await call(env, 'GET', '/v1/nothing-here', env.admin)).status, 404);
  assert.equal(headSeq(env), start, 'a read that succeeds and an unknown route leave no record');

  assert.equal((await call(env, 'GET', '/v1/models')).status, 401);
  assert.equal((await call(env, 'GET', '/v1/tokens', 'ferry_0123456789abcdef_not-a-real-token')).status, 401);
  assert.equal((await call(env, 'POST', '/v1/models', env.viewer, { name: 'iris' })).status, 403);
  assert.equal((await call(env, 'GET', '/v1/audit', env.deployer)).status, 403);
  assert.equal((await call(env, 'DELETE', '/v1/tokens/root', env.deployer)).status, 403);

  const records = since(env, start);
  assert.deepEqual(
    records.map((r) => [r.actor, r.role, r.action, r.object, r.outcome, r.status, r.code]),
    [
      ['anonymous', undefined, 'listModels', 'models', 'denied', 401, 'FERRY_UNAUTHORIZED'],
      ['anonymous', undefined, 'listTokens', 'tokens', 'denied', 401, 'FERRY_UNAUTHORIZED'],
      // Refused before its body is read: the body's name is not in the object.
      ['look', 'viewer', 'createModel', 'models', 'denied', 403, 'FERRY_FORBIDDEN'],
      ['ci', 'deployer', 'listAudit', 'audit', 'denied', 403, 'FERRY_FORBIDDEN'],
      ['ci', 'deployer', 'deleteToken', 'tokens/root', 'denied', 403, 'FERRY_FORBIDDEN'],
    ],
  );

  // Through the API: admins only, filters and paging.
  const listed = await call(env, 'GET', `/v1/audit?outcome=denied&actor=anonymous`, env.admin);
  assert.equal(listed.status, 200);
  assert.deepEqual(
    listed.body.map((r: AuditEntry) => r.action),
    ['listTokens', 'listModels'],
  );
  const page = await call(env, 'GET', `/v1/audit?limit=2&before=${start + 5}`, env.admin);
  assert.deepEqual(
    page.body.map((r: AuditEntry) => r.seq),
    [start + 4, start + 3],
  );
  assert.equal((await call(env, 'GET', '/v1/audit?limit=0', env.admin)).status, 400);
  assert.equal((await call(env, 'GET', '/v1/audit?outcome=maybe', env.admin)).status, 400);
  assert.equal((await call(env, 'GET', '/v1/audit/verify?head=xyz', env.admin)).status, 400);
  assert.equal((await call(env, 'GET', '/v1/audit/verify', env.viewer)).status, 403);
});

test("the client's x-request-id is kept when usable; a token-like one is replaced", async () => {
  const env = await setup();
  const plain = await env.app.inject({
    method: 'POST',
    url: '/v1/models',
    headers: { authorization: `Bearer ${env.admin}`, 'x-request-id': 'deploy-42.a' },
    payload: { name: 'iris' },
  });
  assert.equal(plain.headers['x-request-id'], 'deploy-42.a');
  assert.equal(env.store.audit.list({ limit: 1 })[0]?.requestId, 'deploy-42.a');
  for (const bad of [env.admin, 'x'.repeat(200), 'two words']) {
    const res = await env.app.inject({
      method: 'POST',
      url: '/v1/models',
      headers: { authorization: `Bearer ${env.admin}`, 'x-request-id': bad },
      payload: { name: 'iris' },
    });
    assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(env.store.audit.list({ limit: 1 })[0]?.requestId, res.headers['x-request-id']);
  }
});

test('no secret value or token reaches the audit table or its head file', async () => {
  const env = await setup();
  const secretValue = 'hunter2-VERY-SECRET-value-4f1c';
  assert.equal(
    (await call(env, 'PUT', '/v1/secrets/api-key', env.deployer, { value: secretValue })).status,
    200,
  );
  assert.equal(
    (await call(env, 'PUT', '/v1/secrets/bad name', env.deployer, { value: secretValue })).status,
    400,
  );
  const created = await call(env, 'POST', '/v1/tokens', env.admin, { name: 'bot', role: 'viewer' });
  assert.equal(created.status, 201);
  const newToken = created.body.token as string;
  // Tokens sent where names go: in the path and in a creating body's name.
  assert.equal((await call(env, 'DELETE', `/v1/tokens/${newToken}`, env.admin)).status, 404);
  assert.equal(
    (await call(env, 'POST', '/v1/tokens', env.admin, { name: newToken, role: 'viewer' })).status,
    400,
  );
  assert.equal((await call(env, 'GET', '/v1/tokens', `${newToken}x`)).status, 401);
  assert.equal((await call(env, 'POST', '/v1/models', env.viewer, { name: env.viewer })).status, 403);

  const db = new Database(env.dbPath, { readonly: true });
  let dump: string;
  try {
    dump = JSON.stringify(db.prepare('SELECT * FROM audit').all());
  } finally {
    db.close();
  }
  dump += readFileSync(`${env.dbPath}.audit-head`, 'utf8');
  for (const [what, needle] of [
    ['secret value', secretValue],
    ['new token', newToken],
    // ferry_<hex id>_<base64url secret>: the secret may itself hold '_', so everything after the second one.
    ["new token's secret part", newToken.split('_').slice(2).join('_')],
    ['admin token', env.admin],
    ['deployer token', env.deployer],
    ['viewer token', env.viewer],
  ] as const) {
    assert.ok(!dump.includes(needle), `the ${what} is in the audit table`);
  }
  assert.ok(dump.includes('"object":"secrets/api-key"'), 'the secret name is recorded');
  assert.ok(dump.includes('tokens/ferry_'), 'a token in the path is recorded by its public id');
  assert.ok(dump.includes('[redacted]'));
});

/** Opens the database file as someone with access to it would, past the triggers. */
function tamper(env: Env, sql: string): void {
  const db = new Database(env.dbPath);
  try {
    db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;');
    db.exec(sql);
  } finally {
    db.close();
  }
}

async function withRecords(count: number): Promise<Env> {
  const env = await setup();
  for (let i = 0; i < count; i++) await call(env, 'POST', '/v1/models', env.deployer, { name: `m${i}` });
  const verified = await call(env, 'GET', '/v1/audit/verify', env.admin);
  assert.equal(verified.status, 200);
  assert.deepEqual(verified.body.ok, true);
  assert.equal(verified.body.checked, count);
  assert.deepEqual(verified.body.kept, verified.body.head);
  return env;
}

test('tamper: an edited field shows at its record', async () => {
  const env = await withRecords(5);
  // The triggers stop a plain edit ...
  const db = new Database(env.dbPath);
  assert.throws(() => db.exec("UPDATE audit SET outcome = 'denied' WHERE seq = 3"), /append-only/);
  db.close();
  // ... someone who drops them edits the row; the chain shows where.
  tamper(env, "UPDATE audit SET actor = 'someone-else' WHERE seq = 3");
  const check = await call(env, 'GET', '/v1/audit/verify', env.admin);
  assert.equal(check.body.ok, false);
  assert.equal(check.body.checked, 2);
  assert.equal(check.body.brokenAt.seq, 3);
  assert.match(check.body.brokenAt.reason, /record 3 does not match its hash/);
});

test('tamper: a deleted record in the middle shows at its place', async () => {
  const env = await withRecords(5);
  tamper(env, 'DELETE FROM audit WHERE seq = 2');
  const check = await call(env, 'GET', '/v1/audit/verify', env.admin);
  assert.equal(check.body.ok, false);
  assert.equal(check.body.brokenAt.seq, 3);
  assert.match(check.body.brokenAt.reason, /record 2 is missing or out of order/);
});

test('tamper: records cut from the end show against the kept head, and against a head kept elsewhere', async () => {
  const env = await withRecords(5);
  const keptElsewhere = (await call(env, 'GET', '/v1/audit/verify', env.admin)).body.head.hash;
  tamper(env, 'DELETE FROM audit WHERE seq >= 4');
  const check = await call(env, 'GET', '/v1/audit/verify', env.admin);
  assert.equal(check.body.ok, false);
  assert.equal(check.body.brokenAt.seq, 4);
  assert.match(
    check.body.brokenAt.reason,
    /log ends at record 3, but the kept head is record 5: records 4 to 5 were deleted/,
  );

  // Someone who also removes the head file leaves only a warning here ...
  rmSync(`${env.dbPath}.audit-head`);
  const blind = await call(env, 'GET', '/v1/audit/verify', env.admin);
  assert.equal(blind.body.ok, true);
  assert.match(blind.body.warning, /is missing/);
  // ... which a head kept away from the machine still catches.
  const against = await call(env, 'GET', `/v1/audit/verify?head=${keptElsewhere}`, env.admin);
  assert.equal(against.body.ok, false);
  assert.match(against.body.brokenAt.reason, /kept head hash is not in the log/);
});

test('tamper: a log rewritten with recomputed hashes shows against the kept head', async () => {
  const env = await withRecords(4);
  const rows = env.store.audit.list({ after: 0 });
  // Rewrite record 2 onwards as a valid chain with another actor, as a careful forger would.
  const { chainHash } = await import('../audit-chain.ts');
  let previous = rows[0]!.hash;
  const statements: string[] = [];
  for (const row of rows.slice(1)) {
    const { seq, prevHash: _p, hash: _h, ...record } = row;
    const forged = { ...record, actor: 'nobody' };
    const hash = chainHash(previous, seq, forged);
    statements.push(
      `UPDATE audit SET actor = 'nobody', prev_hash = '${previous}', hash = '${hash}' WHERE seq = ${seq};`,
    );
    previous = hash;
  }
  tamper(env, statements.join('\n'));
  const check = await call(env, 'GET', '/v1/audit/verify', env.admin);
  assert.equal(check.body.ok, false);
  assert.equal(check.body.brokenAt.seq, 4);
  assert.match(check.body.brokenAt.reason, /record 4 is not the one kept as head/);
});

test('when the audit log cannot be written, changes are refused until it can; nothing is lost', async () => {
  const logs: string[] = [];
  const env = await setup(logs);
  const headFile = `${env.dbPath}.audit-head`;
  // Make the head file unwritable: a directory with a file in it where the file should be.
  rmSync(headFile, { force: true });
  mkdirSync(headFile);
  writeFileSync(join(headFile, 'in-the-way'), '');
  const first = await call(env, 'POST', '/v1/models', env.deployer, { name: 'iris' });
  assert.equal(first.status, 201, 'the change was made before its record could be written');
  const refused = await call(env, 'POST', '/v1/models', env.deployer, { name: 'wine' });
  assert.equal(refused.status, 503);
  assert.equal(refused.body.code, 'FERRY_AUDIT_UNAVAILABLE');
  assert.equal(refused.headers['retry-after'], '5');
  assert.equal((await call(env, 'GET', '/v1/models', env.viewer)).status, 200, 'reads still work');
  assert.equal(env.store.getModel('wine'), undefined);
  assert.equal(env.store.audit.list().length, 0);
  const errors = logs.map((l) => JSON.parse(l)).filter((l) => l.level === 50);
  assert.ok(
    errors.some((l) => /audit log cannot be written/.test(l.msg)),
    'the failure is logged at error level',
  );
  assert.ok(
    errors.some((l) => l.audit?.object === 'models/iris' && l.audit?.status === 201),
    'with the record it could not write',
  );

  rmSync(headFile, { recursive: true });
  const again = await call(env, 'POST', '/v1/models', env.deployer, { name: 'wine' });
  assert.equal(again.status, 201);
  assert.deepEqual(
    env.store.audit.list({ after: 0 }).map((r) => [r.seq, r.object, r.status]),
    [
      [1, 'models/iris', 201],
      [2, 'models', 503],
      [3, 'models/wine', 201],
    ],
  );
  assert.equal(env.store.audit.verify().ok, true);
});
