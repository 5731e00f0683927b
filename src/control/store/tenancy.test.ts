import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { isFerryError } from '../../core/errors.ts';
import { MIGRATIONS } from './migrations.ts';
import { openStore, type Store } from './store.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function ferryError(code: string, match?: RegExp) {
  return (err: unknown) => {
    assert.ok(isFerryError(err), `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (match) assert.match(err.message, match);
    return true;
  };
}

/** Two tenants (default and team-a), each with a model `iris` and a deployment `iris`. */
function twoTenants(now: () => number = () => 1_000): Store {
  const store = openStore(':memory:', { now });
  store.createTenant('team-a');
  for (const t of ['', 'team-a/']) {
    store.createModel(`${t}iris`);
    store.addVersion(`${t}iris`, { version: '1', image: `reg/${t || 'default/'}iris@sha256:aaa` });
    store.createDeployment({ name: `${t}iris`, model: `${t}iris`, versionRef: '1', replicas: 1 });
  }
  return store;
}

describe('tenants in the store', () => {
  test('the same names live in two tenants; lists are per tenant', () => {
    const store = twoTenants();
    assert.deepEqual(
      store.listDeployments('default').map((d) => d.name),
      ['iris'],
    );
    assert.deepEqual(
      store.listDeployments('team-a').map((d) => d.name),
      ['team-a/iris'],
    );
    assert.equal(store.listDeployments().length, 2);
    assert.deepEqual(
      store.listModels('team-a').map((m) => m.name),
      ['team-a/iris'],
    );
    assert.equal(store.getDeployment('team-a/iris')?.model, 'team-a/iris');
  });

  test("a deployment serves its own tenant's model only", () => {
    const store = twoTenants();
    assert.throws(
      () => store.createDeployment({ name: 'team-a/other', model: 'iris', versionRef: '1', replicas: 1 }),
      ferryError('FERRY_BAD_REQUEST', /own tenant/),
    );
    assert.throws(
      () => store.updateDeployment('iris', { model: 'team-a/iris' }),
      ferryError('FERRY_BAD_REQUEST', /own tenant/),
    );
  });

  test('keys are checked part by part', () => {
    const store = twoTenants();
    for (const bad of ['Team/iris', 'team-a/', '/iris', 'a/b/c']) {
      assert.throws(() => store.createModel(bad), ferryError('FERRY_BAD_REQUEST'), bad);
    }
  });

  test('new deployments are private; public is kept, changes start no revision', () => {
    const store = twoTenants();
    assert.equal(store.getDeployment('iris')?.public, false);
    const result = store.updateDeployment('iris', { public: true });
    assert.equal(result.created, false);
    assert.equal(store.getDeployment('iris')?.public, true);
    assert.equal(store.listRevisions('iris').length, 1);
  });

  test('events carry their tenant and list per tenant', () => {
    const store = twoTenants();
    store.addEvent({ deployment: 'team-a/iris', type: 'Normal', reason: 'Scaled', message: 'a', at: 1 });
    store.addEvent({ deployment: 'iris', type: 'Normal', reason: 'Scaled', message: 'd', at: 2 });
    store.addEvent({ type: 'Normal', reason: 'Started', message: 'platform', at: 3 });
    assert.deepEqual(
      store.listEvents({ tenant: 'team-a' }).map((e) => e.message),
      ['a'],
    );
    assert.deepEqual(
      store.listEvents({ tenant: 'default' }).map((e) => e.message),
      ['platform', 'd'],
    );
  });

  test('secrets are listed per tenant', () => {
    const store = twoTenants();
    store.putSecret('hf-token', new Uint8Array([1]));
    store.putSecret('team-a/hf-token', new Uint8Array([2]));
    assert.deepEqual(
      store.listSecrets('team-a').map((s) => s.name),
      ['team-a/hf-token'],
    );
    assert.deepEqual([...(store.getSealedSecret('team-a/hf-token') ?? [])], [2]);
  });

  test('tenants: create, quotas, refuse to delete one that owns anything', () => {
    const store = twoTenants();
    assert.throws(() => store.createTenant('team-a'), ferryError('FERRY_CONFLICT'));
    assert.throws(() => store.createTenant('Bad_Name'), ferryError('FERRY_BAD_REQUEST'));
    assert.throws(
      () => store.setQuotas('team-a', { replicas: -1 }),
      ferryError('FERRY_BAD_REQUEST', /replicas/),
    );
    assert.throws(
      () => store.setQuotas('team-a', { gpus: 1 } as never),
      ferryError('FERRY_BAD_REQUEST', /gpus is not a quota/),
    );
    assert.deepEqual(store.setQuotas('team-a', { replicas: 4, cpu: 2.5 }).quotas, { replicas: 4, cpu: 2.5 });
    assert.throws(() => store.setQuotas('nope', {}), ferryError('FERRY_TENANT_NOT_FOUND'));
    assert.throws(() => store.deleteTenant('team-a'), ferryError('FERRY_CONFLICT', /owns 2 object/));
    assert.throws(() => store.deleteTenant('default'), ferryError('FERRY_CONFLICT'));
    store.deleteDeployment('team-a/iris');
    store.createTenant('team_b'.replace('_', '-'));
    store.deleteTenant('team-b');
    assert.deepEqual(
      store.listTenants().map((t) => t.name),
      ['default', 'team-a'],
    );
  });

  test('a store written before tenants: rows are the default tenant, admins become platform admins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-tenancy-'));
    dirs.push(dir);
    const path = join(dir, 'state.db');
    const db = new Database(path);
    db.exec(
      'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT',
    );
    MIGRATIONS.slice(0, 4).forEach((sql, i) => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, 0)').run(i + 1);
    });
    db.prepare(
      "INSERT INTO api_tokens (id, name, role, hash, created_at) VALUES ('0123456789abcdef', 'admin', 'admin', x'00', 0)",
    ).run();
    db.prepare("INSERT INTO models (name, created_at) VALUES ('iris', 0)").run();
    db.prepare(
      "INSERT INTO model_versions (model, version, image, created_at) VALUES ('iris', '1', 'img', 0)",
    ).run();
    db.prepare(
      'INSERT INTO deployments (name, model, version_ref, replicas, spec, current_revision, created_at, updated_at) VALUES (\'iris\', \'iris\', \'1\', 1, \'{"resources":{"cpu":null,"memoryBytes":null,"gpu":0},"env":{},"secretRefs":[],"serving":{}}\', 1, 0, 0)',
    ).run();
    db.close();
    const store = openStore(path);
    assert.deepEqual(store.appliedMigrations, MIGRATIONS.map((_, i) => i + 1).slice(4));
    assert.deepEqual(
      store.listTokens().map((t) => [t.name, t.tenant, t.role]),
      [['admin', 'default', 'platform-admin']],
    );
    assert.equal(
      store.getDeployment('iris')?.public,
      true,
      'deployments made before private endpoints stay public',
    );
    assert.deepEqual(
      store.listModels('default').map((m) => m.name),
      ['iris'],
    );
    store.close();
  });
});

describe('tokens with tenants, expiry and scopes', () => {
  test('a token belongs to the tenant of its key; expiry ends it', () => {
    let t = 1_000;
    const store = twoTenants(() => t);
    const token = store.createToken('team-a/ci', 'deployer', { expiresAt: 2_000 });
    assert.equal(token.tenant, 'team-a');
    assert.equal(store.verifyToken(token.token)?.tenant, 'team-a');
    t = 2_000;
    assert.equal(store.verifyToken(token.token), null);
    assert.deepEqual(
      store.listTokens('team-a').map((k) => [k.name, k.expiresAt]),
      [['team-a/ci', 2_000]],
    );
    assert.deepEqual(store.listTokens('default'), []);
  });

  test('deployment keys and rate limits are for invokers only', () => {
    const store = twoTenants();
    assert.throws(
      () => store.createToken('ci', 'deployer', { deployment: 'iris' }),
      ferryError('FERRY_BAD_REQUEST', /invoker/),
    );
    assert.throws(
      () => store.createToken('ci', 'invoker', { rateLimit: { perSecond: 0, burst: 1 } }),
      ferryError('FERRY_BAD_REQUEST', /rateLimit/),
    );
    assert.throws(() => store.createToken('ci', 'root'), ferryError('FERRY_BAD_REQUEST', /role/));
  });

  test('invokerKeys: hashes of live invoker tokens with their scope; deleting a deployment revokes its keys', () => {
    let t = 1_000;
    const store = twoTenants(() => t);
    const key = store.createToken('team-a/iris-key', 'invoker', {
      deployment: 'iris',
      rateLimit: { perSecond: 5, burst: 10 },
    });
    store.createToken('team-a/all', 'invoker', { expiresAt: 1_500 });
    store.createToken('team-a/ci', 'deployer');
    const keys = store.invokerKeys();
    assert.equal(keys.length, 2);
    const k = keys.find((x) => x.id === key.id)!;
    assert.equal(k.tenant, 'team-a');
    assert.equal(k.deployment, 'iris');
    assert.deepEqual(k.rateLimit, { perSecond: 5, burst: 10 });
    assert.match(k.hash, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(keys).includes(key.token), 'never the token');
    t = 1_500;
    assert.deepEqual(
      store.invokerKeys().map((x) => x.id),
      [key.id],
    );
    assert.equal(store.deleteDeploymentKeys('iris'), 0, "the default tenant's iris has no keys");
    assert.equal(store.deleteDeploymentKeys('team-a/iris'), 1);
    assert.deepEqual(store.invokerKeys(), []);
  });
});

describe('scaling settings (issue 11)', () => {
  test('on with the defaults under what is given, checked; off again; no revision either way', () => {
    const store = twoTenants();
    assert.equal(store.getDeployment('iris')?.scaling, null);
    const on = store.setScaling('iris', { minReplicas: 0, maxReplicas: 4 });
    assert.equal(on.scaling?.minReplicas, 0);
    assert.equal(on.scaling?.stableWindowMs, 60_000);
    assert.throws(
      () => store.setScaling('iris', { minReplicas: 5, maxReplicas: 4 }),
      ferryError('FERRY_BAD_REQUEST', /minReplicas: 5 is above maxReplicas 4/),
    );
    store.setDesiredReplicas('iris', 3);
    assert.equal(store.getDeployment('iris')?.replicas, 3);
    assert.equal(store.setScaling('iris', null).scaling, null);
    assert.equal(store.listRevisions('iris').length, 1);
  });
});
