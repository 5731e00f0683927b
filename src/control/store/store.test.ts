import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { isFerryError } from '../../core/errors.ts';
import { MIGRATIONS } from './migrations.ts';
import { canonicalJson, DEFAULT_RESOURCES, openStore, type Store, specHash } from './store.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-store-'));
  dirs.push(dir);
  return join(dir, 'state.db');
}

/** A clock that ticks 1 ms per call, so timestamps are distinct and deterministic. */
function clock(start = 1_000): () => number {
  let t = start;
  return () => t++;
}

function ferryError(code: string, match?: RegExp) {
  return (err: unknown) => {
    assert.ok(isFerryError(err), `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (match) assert.match(err.message, match);
    return true;
  };
}

/** A store with model iris (versions 1 and 2, alias production -> 1). */
function seeded(path = ':memory:', options = {}): Store {
  const store = openStore(path, { now: clock(), ...options });
  store.createModel('iris');
  store.addVersion('iris', { version: '1', image: 'reg/iris@sha256:aaa', metadata: { acc: 0.95 } });
  store.addVersion('iris', { version: '2', image: 'reg/iris@sha256:bbb', metadata: {} });
  store.setAlias('iris', 'production', '1');
  return store;
}

const base = { name: 'iris-prod', model: 'iris', versionRef: '1', replicas: 2 };

describe('migrations', () => {
  test('a fresh store applies every migration once and records it', () => {
    const store = openStore(':memory:');
    assert.deepEqual(
      store.appliedMigrations,
      MIGRATIONS.map((_, i) => i + 1),
    );
    store.close();
  });

  test('a file store is in WAL mode with foreign keys and a busy timeout', () => {
    const path = tempFile();
    openStore(path).close();
    const db = new Database(path);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all();
    assert.deepEqual(
      versions,
      MIGRATIONS.map((_, i) => ({ version: i + 1 })),
    );
    db.close();
  });

  test('a file written by a newer schema is refused, not mangled', () => {
    const path = tempFile();
    openStore(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)').run(
      MIGRATIONS.length + 1,
    );
    db.close();
    assert.throws(() => openStore(path), ferryError('FERRY_INTERNAL', /newer Ferry/));
  });
});

describe('restart (file, WAL)', () => {
  test('close and reopen: data is there and migrations are not applied again', () => {
    const path = tempFile();
    const first = seeded(path);
    first.createDeployment(base);
    first.updateDeployment('iris-prod', { env: { A: '1' } });
    const token = first.createToken('ci', 'deployer').token;
    first.addEvent({
      deployment: 'iris-prod',
      type: 'Normal',
      reason: 'RevisionCreated',
      message: 'r2',
      at: 5,
    });
    assert.ok(first.appliedMigrations.length > 0);
    first.close();

    const second = openStore(path);
    assert.deepEqual(second.appliedMigrations, []);
    assert.equal(second.getDeployment('iris-prod')?.revision, 2);
    assert.deepEqual(
      second.listRevisions('iris-prod').map((r) => r.number),
      [1, 2],
    );
    assert.equal(second.resolveVersion('iris', 'production').version, '1');
    assert.deepEqual(
      { ...second.verifyToken(token), id: '' },
      { id: '', name: 'ci', tenant: 'default', role: 'deployer', deployment: null },
    );
    assert.equal(second.listEvents({ deployment: 'iris-prod' })[0]?.message, 'r2');
    second.close();
  });

  test('two stores on the same file see each other’s writes', () => {
    const path = tempFile();
    const a = seeded(path);
    const b = openStore(path);
    assert.deepEqual(b.appliedMigrations, []);
    a.createDeployment(base);
    assert.equal(b.getDeployment('iris-prod')?.revision, 1);
    const r = b.updateDeployment('iris-prod', { versionRef: '2' });
    assert.equal(r.revision.number, 2);
    assert.equal(a.getDeployment('iris-prod')?.revision, 2);
    // A reader holding a snapshot does not block the other store's writes (WAL).
    const reader = new Database(path, { readonly: true });
    const snapshot = reader.transaction(() => {
      const before = reader.prepare('SELECT COUNT(*) AS n FROM revisions').get() as { n: number };
      a.updateDeployment('iris-prod', { replicas: 5, env: { X: 'y' } });
      const during = reader.prepare('SELECT COUNT(*) AS n FROM revisions').get() as { n: number };
      return [before.n, during.n];
    })();
    assert.deepEqual(snapshot, [2, 2]);
    assert.equal(b.listRevisions('iris-prod').length, 3);
    reader.close();
    a.close();
    b.close();
  });

  test('processes opening a new file at once apply the migrations once and all their writes land', async () => {
    const path = tempFile();
    const storeUrl = new URL('./store.ts', import.meta.url).href;
    const child = (i: number) => `
      import { openStore } from ${JSON.stringify(storeUrl)};
      const store = openStore(${JSON.stringify(path)});
      store.createModel('m${i}');
      for (let n = 0; n < 50; n++) {
        store.addEvent({ deployment: 'p${i}', type: 'Normal', reason: 'Tick', message: String(n), at: n });
      }
      console.log(JSON.stringify(store.appliedMigrations));
      store.close();`;
    const run = (i: number) =>
      new Promise<number[]>((resolve, reject) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', '--input-type=module', '-e', child(i)],
          (err, stdout, stderr) =>
            err ? reject(new Error(stderr || String(err))) : resolve(JSON.parse(stdout)),
        );
      });
    const applied = await Promise.all([0, 1, 2, 3].map(run));
    assert.deepEqual(
      applied.flat().sort((a, b) => a - b),
      MIGRATIONS.map((_, i) => i + 1),
    );
    const store = openStore(path);
    assert.deepEqual(store.appliedMigrations, []);
    assert.deepEqual(
      store.listModels().map((m) => m.name),
      ['m0', 'm1', 'm2', 'm3'],
    );
    assert.equal(store.listEvents({ limit: 1000 }).length, 200);
    store.close();
  });
});

describe('models', () => {
  test('aliases resolve to their version; versions resolve to themselves', () => {
    const store = seeded();
    assert.equal(store.resolveVersion('iris', 'production').image, 'reg/iris@sha256:aaa');
    assert.equal(store.resolveVersion('iris', '2').image, 'reg/iris@sha256:bbb');
    store.setAlias('iris', 'production', '2');
    assert.equal(store.resolveVersion('iris', 'production').version, '2');
    assert.deepEqual(store.getModel('iris')?.aliases, { production: '2' });
    assert.deepEqual(store.getModel('iris')?.versions[0]?.metadata, { acc: 0.95 });
  });

  test('unknown model, version or alias is a typed error', () => {
    const store = seeded();
    assert.throws(() => store.resolveVersion('nope', '1'), ferryError('FERRY_MODEL_NOT_FOUND', /"nope"/));
    assert.throws(
      () => store.resolveVersion('iris', 'staging'),
      ferryError('FERRY_VERSION_NOT_FOUND', /"staging"/),
    );
    assert.throws(() => store.setAlias('iris', 'staging', '9'), ferryError('FERRY_VERSION_NOT_FOUND', /"9"/));
    assert.throws(
      () => store.addVersion('nope', { version: '1', image: 'x' }),
      ferryError('FERRY_MODEL_NOT_FOUND'),
    );
  });

  test('bad input is refused with the field named', () => {
    const store = seeded();
    assert.throws(() => store.createModel('Iris!'), ferryError('FERRY_BAD_REQUEST', /Model name "Iris!"/));
    assert.throws(() => store.createModel('iris'), ferryError('FERRY_CONFLICT', /already exists/));
    assert.throws(
      () => store.addVersion('iris', { version: '3' }),
      ferryError('FERRY_BAD_REQUEST', /image or an artifactDir/),
    );
    assert.throws(
      () => store.addVersion('iris', { version: '1', image: 'other' }),
      ferryError('FERRY_CONFLICT', /immutable/),
    );
    assert.throws(
      () => store.addVersion('iris', { version: 'production', image: 'x' }),
      ferryError('FERRY_BAD_REQUEST', /alias/),
    );
    assert.throws(() => store.setAlias('iris', '2', '1'), ferryError('FERRY_BAD_REQUEST', /is a version/));
  });

  test('a local artifact directory can stand in for an image', () => {
    const store = seeded();
    store.addVersion('iris', { version: 'dev', artifactDir: '/work/iris' });
    const r = store.createDeployment({ ...base, versionRef: 'dev' });
    assert.equal(r.revision.image, '/work/iris');
    assert.equal(r.revision.spec.artifactDir, '/work/iris');
    assert.equal(r.revision.spec.image, null);
  });
});

describe('deployments and revisions', () => {
  test('create makes revision 1 with 100% of traffic', () => {
    const store = seeded();
    const r = store.createDeployment({ ...base, env: { B: '2', A: '1' }, secretRefs: ['hf', 'db', 'hf'] });
    assert.equal(r.created, true);
    assert.equal(r.revision.number, 1);
    assert.equal(r.revision.image, 'reg/iris@sha256:aaa');
    assert.equal(r.revision.replicas, 2);
    assert.equal(r.revision.specHash, specHash(r.revision.spec));
    assert.match(r.revision.specHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(r.deployment.secretRefs, ['db', 'hf']);
    assert.deepEqual(r.deployment.resources, { cpu: null, memoryBytes: null, gpu: 0 });
    assert.deepEqual(store.getTraffic('iris-prod'), [{ revision: 1, percent: 100 }]);
    assert.throws(() => store.createDeployment(base), ferryError('FERRY_CONFLICT', /already exists/));
  });

  test('every spec change makes a new numbered revision; old ones stay as they were', () => {
    const store = seeded();
    const r1 = store.createDeployment(base).revision;
    const r2 = store.updateDeployment('iris-prod', { env: { LOG: 'debug' } });
    const r3 = store.updateDeployment('iris-prod', { resources: { cpu: 0.5 } });
    const r4 = store.updateDeployment('iris-prod', { versionRef: '2' });
    assert.deepEqual(
      [r2, r3, r4].map((r) => [r.created, r.revision.number]),
      [
        [true, 2],
        [true, 3],
        [true, 4],
      ],
    );
    const revisions = store.listRevisions('iris-prod');
    assert.deepEqual(
      revisions.map((r) => r.number),
      [1, 2, 3, 4],
    );
    assert.deepEqual(revisions[0], r1);
    assert.equal(new Set(revisions.map((r) => r.specHash)).size, 4);
    assert.equal(revisions[3]?.image, 'reg/iris@sha256:bbb');
    assert.deepEqual(revisions[2]?.spec.env, { LOG: 'debug' });
    assert.equal(store.getDeployment('iris-prod')?.revision, 4);
  });

  test('an update that changes nothing effective makes no revision', () => {
    const store = seeded();
    store.createDeployment({ ...base, env: { A: '1', B: '2' }, secretRefs: ['x', 'y'] });
    const same = store.updateDeployment('iris-prod', {
      env: { B: '2', A: '1' },
      secretRefs: ['y', 'x', 'x'],
    });
    assert.equal(same.created, false);
    assert.equal(same.revision.number, 1);
    // 'production' resolves to version 1, the one already deployed: same effective spec.
    const viaAlias = store.updateDeployment('iris-prod', { versionRef: 'production' });
    assert.equal(viaAlias.created, false);
    assert.equal(viaAlias.deployment.versionRef, 'production');
    // Scaling keeps the revision (and the running replicas' spec-hash labels).
    const scaled = store.updateDeployment('iris-prod', { replicas: 7 });
    assert.equal(scaled.created, false);
    assert.equal(scaled.deployment.replicas, 7);
    assert.equal(scaled.revision.replicas, 2);
    assert.equal(store.listRevisions('iris-prod').length, 1);
  });

  test('going back to an earlier spec makes a new revision, not a reused number', () => {
    const store = seeded();
    const r1 = store.createDeployment(base).revision;
    store.updateDeployment('iris-prod', { versionRef: '2' });
    const r3 = store.updateDeployment('iris-prod', { versionRef: '1' }).revision;
    assert.equal(r3.number, 3);
    assert.equal(r3.specHash, r1.specHash);
  });

  test('moving an alias gives the deployments that follow it a new revision', () => {
    const store = seeded();
    store.createDeployment({ ...base, versionRef: 'production' });
    store.createDeployment({ ...base, name: 'pinned', versionRef: '1' });
    assert.deepEqual(store.setAlias('iris', 'production', '2'), {
      updated: [{ deployment: 'iris-prod', revision: 2 }],
    });
    const rev = store.getRevision('iris-prod', 2);
    assert.equal(rev?.spec.version, '2');
    assert.equal(rev?.versionRef, 'production');
    assert.equal(store.getDeployment('pinned')?.revision, 1);
    // Setting it to where it already points changes nothing.
    assert.deepEqual(store.setAlias('iris', 'production', '2'), { updated: [] });
  });

  test('revisions cannot be modified, even with SQL', () => {
    const path = tempFile();
    const store = seeded(path);
    store.createDeployment(base);
    const db = new Database(path);
    assert.throws(() => db.prepare("UPDATE revisions SET image = 'evil'").run(), /revisions are immutable/);
    db.close();
    assert.equal(store.getRevision('iris-prod', 1)?.image, 'reg/iris@sha256:aaa');
    store.close();
  });

  test('invalid deployments are refused with the field named', () => {
    const store = seeded();
    const cases: Array<[object, RegExp, string?]> = [
      [{ ...base, name: 'Bad Name' }, /Deployment name "Bad Name"/],
      [{ ...base, replicas: -1 }, /replicas -1/],
      [{ ...base, replicas: 1.5 }, /replicas 1.5/],
      [{ ...base, resources: { cpu: 0 } }, /resources.cpu 0/],
      [{ ...base, resources: { memoryBytes: 'lots' } }, /resources.memoryBytes "lots"/],
      [{ ...base, env: { '1X': 'a' } }, /env key "1X"/],
      [{ ...base, env: { X: 1 } }, /env.X must be a string/],
      [{ ...base, secretRefs: ['ok', ''] }, /secretRefs\[1\]/],
      [{ ...base, model: 'nope' }, /"nope"/, 'FERRY_MODEL_NOT_FOUND'],
      [{ ...base, versionRef: 'staging' }, /"staging"/, 'FERRY_VERSION_NOT_FOUND'],
    ];
    for (const [input, message, code = 'FERRY_BAD_REQUEST'] of cases) {
      assert.throws(() => store.createDeployment(input as never), ferryError(code, message));
    }
    assert.equal(store.listDeployments().length, 0);
    store.createDeployment(base);
    assert.throws(
      () => store.updateDeployment('iris-prod', { replicas: -2 }),
      ferryError('FERRY_BAD_REQUEST', /replicas/),
    );
    assert.throws(() => store.updateDeployment('ghost', {}), ferryError('FERRY_NOT_FOUND', /"ghost"/));
    assert.throws(
      () => store.updateDeployment('iris-prod', { name: 'x' } as never),
      ferryError('FERRY_BAD_REQUEST', /renamed/),
    );
    assert.equal(store.listRevisions('iris-prod').length, 1);
  });

  test('delete removes the deployment, its revisions and traffic; events stay', () => {
    const store = seeded();
    store.createDeployment(base);
    store.createDeployment({ ...base, name: 'other' });
    store.addEvent({ deployment: 'iris-prod', type: 'Normal', reason: 'Created', message: 'hi', at: 1 });
    store.deleteDeployment('iris-prod');
    assert.equal(store.getDeployment('iris-prod'), undefined);
    assert.deepEqual(
      store.listDeployments().map((d) => d.name),
      ['other'],
    );
    assert.throws(() => store.listRevisions('iris-prod'), ferryError('FERRY_NOT_FOUND'));
    assert.throws(() => store.deleteDeployment('iris-prod'), ferryError('FERRY_NOT_FOUND'));
    assert.equal(store.listEvents({ deployment: 'iris-prod' }).length, 1);
    // The name can be used again and starts at revision 1.
    assert.equal(store.createDeployment(base).revision.number, 1);
  });

  test('canonical JSON ignores key order and undefined members', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [2, { y: 1, x: 0 }], c: undefined } }),
      '{"a":{"d":[2,{"x":0,"y":1}]},"b":1}',
    );
  });
});

describe('traffic', () => {
  function twoRevisions(): Store {
    const store = seeded();
    store.createDeployment(base);
    store.updateDeployment('iris-prod', { versionRef: '2' });
    return store;
  }

  test('weights and shadows are stored and read back', () => {
    const store = twoRevisions();
    const set = store.setTraffic('iris-prod', [
      { revision: 2, percent: 10 },
      { revision: 1, percent: 90, shadow: 0 },
    ]);
    assert.deepEqual(set, [
      { revision: 1, percent: 90 },
      { revision: 2, percent: 10 },
    ]);
    store.setTraffic('iris-prod', [
      { revision: 1, percent: 100 },
      { revision: 2, percent: 0, shadow: 25 },
    ]);
    assert.deepEqual(store.getTraffic('iris-prod'), [
      { revision: 1, percent: 100 },
      { revision: 2, percent: 0, shadow: 25 },
    ]);
  });

  test('invalid splits are refused and leave the old split in place', () => {
    const store = twoRevisions();
    const cases: Array<[unknown, RegExp]> = [
      [[], /at least one/],
      [[{ revision: 1, percent: 50 }], /sum to 50/],
      [
        [
          { revision: 1, percent: 60 },
          { revision: 2, percent: 60 },
        ],
        /sum to 120/,
      ],
      [[{ revision: 3, percent: 100 }], /traffic\[0\].revision 3.*no such revision/],
      [
        [
          { revision: 1, percent: 50 },
          { revision: 1, percent: 50 },
        ],
        /listed twice/,
      ],
      [[{ revision: 1, percent: 100.5 }], /percent 100.5/],
      [
        [
          { revision: 1, percent: 100 },
          { revision: 2, percent: 0, shadow: 101 },
        ],
        /traffic\[1\].shadow 101/,
      ],
    ];
    for (const [entries, message] of cases) {
      assert.throws(
        () => store.setTraffic('iris-prod', entries as never),
        ferryError('FERRY_BAD_REQUEST', message),
      );
    }
    assert.deepEqual(store.getTraffic('iris-prod'), [{ revision: 1, percent: 100 }]);
    assert.throws(
      () => store.setTraffic('ghost', [{ revision: 1, percent: 100 }]),
      ferryError('FERRY_NOT_FOUND'),
    );
  });
});

describe('traffic targets (a split that waits for ready replicas)', () => {
  test('set, read back, cleared; checked like a split; gone with the deployment', () => {
    const store = seeded();
    store.createDeployment(base);
    store.updateDeployment('iris-prod', { versionRef: '2' });
    assert.equal(store.getTrafficTarget('iris-prod'), undefined);
    const target = store.setTrafficTarget('iris-prod', [
      { revision: 1, percent: 90 },
      { revision: 2, percent: 10, shadow: 0 },
    ]);
    assert.deepEqual(target?.entries, [
      { revision: 1, percent: 90 },
      { revision: 2, percent: 10 },
    ]);
    assert.deepEqual(store.getTrafficTarget('iris-prod'), target);
    assert.deepEqual(
      store.getTraffic('iris-prod'),
      [{ revision: 1, percent: 100 }],
      'the split in effect is untouched',
    );
    assert.throws(
      () => store.setTrafficTarget('iris-prod', [{ revision: 1, percent: 50 }]),
      ferryError('FERRY_BAD_REQUEST', /sum to 50/),
    );
    assert.deepEqual(store.getTrafficTarget('iris-prod'), target, 'a refused target leaves the old one');
    store.setTrafficTarget('iris-prod', null);
    assert.equal(store.getTrafficTarget('iris-prod'), undefined);
    assert.throws(
      () => store.applyTrafficTarget('iris-prod'),
      ferryError('FERRY_NOT_FOUND', /no split waiting/),
    );
    store.setTrafficTarget('iris-prod', [
      { revision: 1, percent: 50 },
      { revision: 2, percent: 50 },
    ]);
    assert.deepEqual(store.applyTrafficTarget('iris-prod'), [
      { revision: 1, percent: 50 },
      { revision: 2, percent: 50 },
    ]);
    assert.equal(store.getTrafficTarget('iris-prod'), undefined, 'applied means cleared');
    assert.deepEqual(store.getTraffic('iris-prod'), [
      { revision: 1, percent: 50 },
      { revision: 2, percent: 50 },
    ]);
    store.setTrafficTarget('iris-prod', [{ revision: 2, percent: 100 }]);
    store.deleteDeployment('iris-prod');
    assert.equal(store.getTrafficTarget('iris-prod'), undefined);
  });
});

describe('what a version says about running it', () => {
  test("resources, env and secrets: the deployment's own over the version's ferry.yaml over the defaults", () => {
    const store = openStore(':memory:', { now: clock() });
    store.createModel('m');
    store.addVersion('m', {
      version: 'a',
      artifactDir: '/a',
      spec: {
        servedName: 'model-a',
        resources: { cpu: 0.5, memoryBytes: 256 * 1024 ** 2, gpu: 0 },
        env: { LOG_LEVEL: 'info', MODE: 'fast' },
        secrets: ['HF_TOKEN'],
      },
    });
    store.addVersion('m', { version: 'b', artifactDir: '/b' });
    const created = store.createDeployment({ name: 'd', model: 'm', versionRef: 'a', replicas: 1 });
    assert.deepEqual(created.revision.spec.resources, { cpu: 0.5, memoryBytes: 256 * 1024 ** 2, gpu: 0 });
    assert.deepEqual(created.revision.spec.env, { LOG_LEVEL: 'info', MODE: 'fast' });
    assert.deepEqual(created.revision.spec.secretRefs, ['HF_TOKEN']);
    assert.equal(store.getModel('m')?.versions[0]?.spec.servedName, 'model-a');

    const flags = store.updateDeployment('d', {
      resources: { memoryBytes: 512 * 1024 ** 2 },
      env: { MODE: 'slow' },
      secretRefs: ['db-password'],
    });
    assert.deepEqual(flags.revision.spec.resources, { cpu: 0.5, memoryBytes: 512 * 1024 ** 2, gpu: 0 });
    assert.deepEqual(flags.revision.spec.env, { LOG_LEVEL: 'info', MODE: 'slow' });
    assert.deepEqual(flags.revision.spec.secretRefs, ['HF_TOKEN', 'db-password']);

    // Each revision keeps what the deployment itself asked for (undo puts that back).
    assert.deepEqual(created.revision.settings.resources, { cpu: null, memoryBytes: null, gpu: 0 });
    assert.deepEqual(flags.revision.settings.env, { MODE: 'slow' });
    assert.deepEqual(store.getRevision('d', 2)?.settings.resources, {
      cpu: null,
      memoryBytes: 512 * 1024 ** 2,
      gpu: 0,
    });
    // A version whose ferry.yaml sets nothing gets the platform's defaults: never unlimited.
    const plain = store.updateDeployment('d', { versionRef: 'b', resources: {}, env: {}, secretRefs: [] });
    assert.deepEqual(plain.revision.spec.resources, DEFAULT_RESOURCES);
    assert.deepEqual(plain.revision.spec.env, {});
  });

  test('a malformed version spec is refused naming the field', () => {
    const store = openStore(':memory:', { now: clock() });
    store.createModel('m');
    assert.throws(
      () => store.addVersion('m', { version: 'a', artifactDir: '/a', spec: { env: { 'BAD-NAME': 'x' } } }),
      ferryError('FERRY_BAD_REQUEST', /env key "BAD-NAME"/),
    );
    assert.throws(
      () => store.addVersion('m', { version: 'a', artifactDir: '/a', artifact: 'sha256:nope' }),
      ferryError('FERRY_BAD_REQUEST', /artifact of m:a must be sha256/),
    );
  });
});

describe('events', () => {
  test('newest first, filtered by deployment, limited', () => {
    const store = seeded();
    for (let i = 0; i < 3; i++) {
      store.addEvent({ deployment: 'a', type: 'Normal', reason: 'Scaled', message: `a${i}`, at: i });
      store.addEvent({ deployment: 'b', type: 'Warning', reason: 'CrashLoop', message: `b${i}`, at: i });
    }
    store.addEvent({ type: 'Normal', reason: 'Started', message: 'control plane up', at: 9 });
    assert.deepEqual(
      store.listEvents({ deployment: 'a' }).map((e) => e.message),
      ['a2', 'a1', 'a0'],
    );
    assert.deepEqual(
      store.listEvents({ limit: 2 }).map((e) => e.message),
      ['control plane up', 'b2'],
    );
    const [first] = store.listEvents({ deployment: 'b', limit: 1 });
    assert.deepEqual(
      { ...first, id: 0 },
      {
        id: 0,
        deployment: 'b',
        tenant: 'default',
        type: 'Warning',
        reason: 'CrashLoop',
        message: 'b2',
        at: 2,
      },
    );
    assert.equal(store.listEvents({ limit: 1 })[0]?.deployment, undefined);
  });

  test('only the newest N per deployment are kept; other deployments are untouched', () => {
    const store = seeded(':memory:', { eventsPerDeployment: 3 });
    for (let i = 0; i < 10; i++) {
      store.addEvent({ deployment: 'noisy', type: 'Warning', reason: 'Crashed', message: `n${i}`, at: i });
      if (i < 2)
        store.addEvent({ deployment: 'quiet', type: 'Normal', reason: 'Ready', message: `q${i}`, at: i });
      store.addEvent({ type: 'Normal', reason: 'Tick', message: `g${i}`, at: i });
    }
    assert.deepEqual(
      store.listEvents({ deployment: 'noisy', limit: 100 }).map((e) => e.message),
      ['n9', 'n8', 'n7'],
    );
    assert.deepEqual(
      store.listEvents({ deployment: 'quiet', limit: 100 }).map((e) => e.message),
      ['q1', 'q0'],
    );
    assert.equal(store.listEvents({ limit: 100 }).length, 3 + 2 + 3);
  });

  test('malformed events are refused', () => {
    const store = seeded();
    assert.throws(
      () => store.addEvent({ type: 'Info' as never, reason: 'X', message: '', at: 0 }),
      ferryError('FERRY_BAD_REQUEST', /event.type "Info"/),
    );
    assert.throws(
      () => store.addEvent({ type: 'Normal', reason: 'not camel', message: '', at: 0 }),
      ferryError('FERRY_BAD_REQUEST', /event.reason/),
    );
    assert.throws(() => store.listEvents({ limit: 0 }), ferryError('FERRY_BAD_REQUEST', /limit 0/));
  });
});

describe('tokens', () => {
  test('a token verifies once created and not after deletion; near misses do not', () => {
    const store = seeded();
    const created = store.createToken('ci', 'deployer');
    assert.match(created.token, /^ferry_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(store.verifyToken(created.token), {
      id: created.id,
      name: 'ci',
      tenant: 'default',
      role: 'deployer',
      deployment: null,
    });
    const last = created.token.at(-1) === 'A' ? 'B' : 'A';
    assert.equal(store.verifyToken(created.token.slice(0, -1) + last), null);
    assert.equal(store.verifyToken(''), null);
    assert.equal(store.verifyToken('ferry_0000000000000000_x'), null);
    assert.equal(store.verifyToken(undefined as never), null);
    assert.deepEqual(
      store.listTokens().map((t) => [t.name, t.role, 'token' in t]),
      [['ci', 'deployer', false]],
    );
    assert.throws(() => store.createToken('ci', 'admin'), ferryError('FERRY_CONFLICT', /already exists/));
    assert.throws(() => store.createToken('x', 'Admin!'), ferryError('FERRY_BAD_REQUEST', /role/));
    assert.equal(store.deleteToken('ci'), true);
    assert.equal(store.verifyToken(created.token), null);
    assert.equal(store.deleteToken('ci'), false);
  });

  test('the plain token is nowhere in the database files, its hash is', () => {
    const path = tempFile();
    const store = seeded(path);
    const { token } = store.createToken('ci', 'admin');
    // ferry_<16 hex id>_<secret>: the id is a stored lookup key, the secret must not be stored.
    const secret = token.slice('ferry_'.length + 17);
    assert.equal(secret.length, 43);
    const reader = new Database(path, { readonly: true });
    const { hash } = reader.prepare('SELECT hash FROM api_tokens').get() as { hash: Buffer };
    reader.close();
    const scan = () => {
      const dir = join(path, '..');
      const files = readdirSync(dir).map((f) => readFileSync(join(dir, f)));
      return {
        plain: files.some((b) => b.includes(token) || b.includes(secret)),
        hash: files.some((b) => b.includes(hash)),
      };
    };
    // While open the row may sit in the WAL file; after close it is checkpointed into the main file.
    assert.deepEqual(scan(), { plain: false, hash: true });
    store.close();
    assert.deepEqual(scan(), { plain: false, hash: true });
    assert.ok(readFileSync(path).includes(hash));
  });
});

describe('rollouts and strategies', () => {
  test('a deployment rolls out with the rolling strategy unless told otherwise', () => {
    const store = seeded();
    store.createDeployment(base);
    assert.deepEqual(store.getStrategy('iris-prod'), { kind: 'rolling' });
    const canary = { kind: 'canary', steps: [{ percent: 10 }, { percent: 100 }] };
    store.setStrategy('iris-prod', canary);
    assert.deepEqual(store.getStrategy('iris-prod'), canary);
    assert.throws(() => store.setStrategy('ghost', canary), ferryError('FERRY_NOT_FOUND', /"ghost"/));
    store.close();
  });

  test('a saved rollout survives a reopen, is replaced by the next and goes with its deployment', () => {
    const path = tempFile();
    const store = seeded(path, { now: clock(50) });
    store.createDeployment(base);
    assert.equal(store.getRollout('iris-prod'), undefined);
    store.saveRollout('iris-prod', {
      state: { phase: 'progressing', percent: 0 },
      strategy: {},
      startedAt: 7,
    });
    store.close();

    const reopened = openStore(path, { now: clock(90) });
    assert.deepEqual(reopened.appliedMigrations, []);
    const saved = reopened.getRollout('iris-prod');
    assert.deepEqual(saved?.state, { phase: 'progressing', percent: 0 });
    assert.equal(saved?.startedAt, 7);
    reopened.saveRollout('iris-prod', {
      state: { phase: 'succeeded' },
      strategy: { kind: 'rolling' },
      startedAt: 7,
    });
    assert.deepEqual(reopened.getRollout('iris-prod')?.state, { phase: 'succeeded' });
    assert.ok((reopened.getRollout('iris-prod')?.updatedAt ?? 0) >= 90, 'updatedAt comes from the clock');
    // The next state of the same rollout: strategy and start stay.
    const stepped = reopened.setRolloutState('iris-prod', { phase: 'aborted' });
    assert.deepEqual(
      [stepped.state, stepped.strategy, stepped.startedAt],
      [{ phase: 'aborted' }, { kind: 'rolling' }, 7],
    );
    assert.deepEqual(reopened.getRollout('iris-prod')?.strategy, { kind: 'rolling' });
    assert.throws(() => reopened.setRolloutState('ghost', {}), ferryError('FERRY_NOT_FOUND'));
    reopened.deleteDeployment('iris-prod');
    assert.equal(reopened.getRollout('iris-prod'), undefined);
    reopened.close();
  });
});
