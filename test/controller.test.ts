/**
 * The controller against real replicas (the process runtime serving examples/iris) and a real SQLite store.
 * The gateway is replaced by a recorder of the routing tables it would get: this file checks what the
 * controller decides and does; test/platform.test.ts checks the whole platform under load through the gateway.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Controller,
  LogArchive,
  openStore,
  type RouteTable,
  SecretBox,
  Secrets,
  type Store,
} from '../src/control/index.ts';
import { ProcessRuntime } from '../src/runtime/index.ts';
import { ROOT, tempDir, until, writeModelDir } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');

class RecordingRoutes {
  tables: RouteTable[] = [];
  setRoutes(table: RouteTable): void {
    this.tables.push(structuredClone(table));
  }
  async waitIdle(): Promise<boolean> {
    return true;
  }
  last(): RouteTable {
    return this.tables.at(-1) ?? { deployments: [] };
  }
}

describe('controller with the process runtime', () => {
  const home = tempDir('ferry-controller-');
  let store: Store;
  let routes: RecordingRoutes;
  let controller: Controller;
  const runtimeDir = join(home.path, 'replicas');
  const make = () => {
    routes = new RecordingRoutes();
    return new Controller({
      store,
      runtime: new ProcessRuntime({ stateDir: runtimeDir }),
      routes,
      logs: new LogArchive(join(home.path, 'logs')),
      gatewayUrl: 'http://127.0.0.1:1',
      platformId: 'test-controller',
      secrets: new Secrets(store, SecretBox.open(join(home.path, 'secret.key'))),
      drainTimeoutMs: 5000,
      stopGraceMs: 5000,
      resyncMs: 500,
    });
  };
  const readyOf = (revision?: number) =>
    controller
      .view('iris')
      .replicaStatus.filter(
        (r) => r.state === 'ready' && (revision === undefined || r.revision === revision),
      );

  before(async () => {
    store = openStore(join(home.path, 'state.db'));
    store.createModel('iris');
    store.addVersion('iris', { version: '1', artifactDir: IRIS });
    controller = make();
    await controller.start();
  });

  after(async () => {
    await controller.stop({ removeReplicas: true });
    store.close();
    home.remove();
  });

  test('a deployment gets its replicas, and routes once they are ready', async () => {
    controller.deploy({ name: 'iris', model: 'iris', versionRef: '1', replicas: 2 });
    await until('2 ready replicas', () => readyOf(1).length === 2);
    await until('routes with 2 replicas', () => {
      const rev = routes.last().deployments.find((d) => d.name === 'iris')?.revisions[0];
      return rev?.replicas.length === 2 ? rev : undefined;
    });
    const rev = routes.last().deployments[0]!.revisions[0]!;
    assert.equal(rev.revision, 1);
    assert.equal(rev.percent, 100);
    assert.equal(rev.servedName, 'iris');
    // Each routed replica really serves.
    for (const r of rev.replicas) {
      const res = await fetch(`${r.url}/v2/models/iris/ready`);
      assert.equal(res.status, 200);
    }
    const reasons = store.listEvents({ deployment: 'iris' }).map((e) => e.reason);
    assert.ok(reasons.includes('DeploymentCreated'));
    assert.equal(reasons.filter((r) => r === 'ReplicaReady').length, 2);
  });

  test('a new revision rolls out: traffic only on ready replicas, old ones removed after, logs archived', async () => {
    const from = routes.tables.length;
    assert.throws(
      () => controller.update('iris', { serving: { batching: { maxBatchSize: 'lots' } } }),
      /serving options are not valid: serving\.batching\.maxBatchSize/,
    );
    const view = controller.update('iris', {
      env: { FERRY_LOG_LEVEL: 'debug' },
      serving: { batching: { maxBatchSize: 4 } },
    });
    assert.equal(view.revision, 2);
    assert.equal(view.rollout?.to, 2);
    await until('rollout succeeded', () => controller.rollout('iris')?.phase === 'succeeded');
    await until('2 ready replicas of revision 2 and none of revision 1', () => {
      const all = controller.view('iris').replicaStatus;
      return all.length === 2 && all.every((r) => r.revision === 2 && r.state === 'ready');
    });
    assert.deepEqual(store.getTraffic('iris'), [{ revision: 2, percent: 100 }]);
    // The serving options reach the replica's server as FERRY_SERVING_OVERRIDES.
    const pid = Number(controller.view('iris').replicaStatus[0]!.id.split('@')[1]);
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    assert.ok(
      environ.includes('FERRY_SERVING_OVERRIDES={"batching":{"maxBatchSize":4}}'),
      'serving options in the env',
    );
    assert.ok(environ.includes('FERRY_LOG_LEVEL=debug'));
    // Zero downtime at the routing level: every table published during the rollout gives each revision that
    // has traffic at least one ready replica.
    const during = routes.tables.slice(from);
    assert.ok(during.length > 2);
    for (const table of during) {
      for (const r of table.deployments.find((d) => d.name === 'iris')?.revisions ?? []) {
        if (r.percent > 0)
          assert.ok(r.replicas.length >= 1, `revision ${r.revision} had ${r.percent}% and no replica`);
      }
    }
    const shifted = store.listEvents({ deployment: 'iris' }).filter((e) => e.reason === 'TrafficShifted');
    assert.ok(shifted.length >= 2, 'traffic moved in steps');
    // The removed revision-1 replicas' logs were archived and are readable per revision.
    const old = await controller.logs('iris', { revision: 1 });
    assert.ok(old.length > 0, 'revision 1 has archived lines');
    assert.ok(old.every((l) => l.revision === 1));
  });

  test('undo rolls the spec of revision 1 out as revision 3', async () => {
    const rollout = controller.undo('iris');
    assert.equal(rollout.to, 3);
    await until('undo succeeded', () => controller.rollout('iris')?.phase === 'succeeded');
    assert.deepEqual(store.getRevision('iris', 3)?.spec.env, {});
    assert.equal(store.getRevision('iris', 3)?.specHash, store.getRevision('iris', 1)?.specHash);
    assert.throws(() => controller.promote('iris'), /no rollout in progress/);
  });

  test('a replica killed with SIGKILL is reported and replaced', async () => {
    await until('2 ready', () => readyOf(3).length === 2);
    const victim = readyOf(3)[0]!;
    const pid = Number(victim.id.split('@')[1]);
    process.kill(pid, 'SIGKILL');
    await until('crash event', () =>
      store
        .listEvents({ deployment: 'iris' })
        .find((e) => e.reason === 'ReplicaCrashed' && e.message.includes(victim.name)),
    );
    await until(
      'crash shown in the status',
      () => controller.view('iris').lastCrash?.replica === victim.name,
    );
    assert.equal(controller.view('iris').lastCrash?.exitCode, 137);
    await until('replaced', () => {
      const ready = readyOf(3);
      return ready.length === 2 && ready.every((r) => r.id !== victim.id);
    });
  });

  test('a replica that keeps crashing backs off and shows CrashLoopBackOff with its exit code and log lines', async () => {
    const broken = join(home.path, 'broken-model');
    writeModelDir(
      broken,
      'apiVersion: ferry.dev/v1alpha1\nkind: Model\nmodel:\n  name: broken\n  format: onnnx\n',
    );
    store.createModel('broken');
    store.addVersion('broken', { version: '1', artifactDir: broken });
    controller.deploy({ name: 'broken', model: 'broken', versionRef: '1', replicas: 1 });
    const condition = await until('CrashLoopBackOff', () =>
      controller.view('broken').conditions.find((c) => c.reason === 'CrashLoopBackOff'),
    );
    assert.equal(condition.status, 'False');
    assert.match(condition.message, /last exit code 2/);
    const crash = controller.view('broken').lastCrash;
    assert.equal(crash?.exitCode, 2);
    assert.ok(
      crash?.logTail.some((l) => l.includes('FERRY_SPEC_INVALID')),
      JSON.stringify(crash),
    );
    // Replaced after the backoff, it crashes again.
    const crashes = await until('a second crash', () => {
      const list = store.listEvents({ deployment: 'broken' }).filter((e) => e.reason === 'ReplicaCrashed');
      return list.length >= 2 ? list : undefined;
    });
    assert.match(crashes[0]!.message, /exited with code 2; last log lines:/);
    // Backoff: the gap between restarts grows (1 s, then 2 s ...), so there are few crashes, not a busy loop.
    assert.ok(crashes.length <= 4, `${crashes.length} crashes`);
    controller.remove('broken');
  });

  test('a restarted controller adopts the running replicas: no duplicates, no new ones', async () => {
    await until('2 ready', () => readyOf(3).length === 2);
    const before = readyOf(3)
      .map((r) => r.id)
      .sort();
    await controller.stop({ removeReplicas: false });
    const created = store
      .listEvents({ deployment: 'iris', limit: 1000 })
      .filter((e) => e.reason === 'ReplicaCreated').length;
    controller = make();
    await controller.start();
    await until('adopted replicas ready', () => readyOf(3).length === 2);
    assert.deepEqual(
      readyOf(3)
        .map((r) => r.id)
        .sort(),
      before,
    );
    await controller.tick();
    const createdAfter = store
      .listEvents({ deployment: 'iris', limit: 1000 })
      .filter((e) => e.reason === 'ReplicaCreated').length;
    assert.equal(createdAfter, created);
    assert.ok(store.listEvents({ limit: 50 }).some((e) => e.reason === 'ReplicasAdopted'));
  });

  test('a revision that names a missing secret waits (one event), then starts with it as env', async () => {
    controller.deploy({
      name: 'vault',
      model: 'iris',
      versionRef: '1',
      replicas: 1,
      secretRefs: ['api-key'],
    });
    await until('SecretMissing event', () =>
      store.listEvents({ deployment: 'vault' }).find((e) => e.reason === 'SecretMissing'),
    );
    await controller.tick();
    await controller.tick();
    assert.equal(
      store.listEvents({ deployment: 'vault' }).filter((e) => e.reason === 'SecretMissing').length,
      1,
    );
    assert.equal(controller.view('vault').replicaStatus.length, 0);
    const value = 'sk-live-0123456789abcdef';
    new Secrets(store, SecretBox.open(join(home.path, 'secret.key'))).set('api-key', value);
    controller.nudge();
    const replica = await until('vault replica ready', () =>
      controller.view('vault').replicaStatus.find((r) => r.state === 'ready'),
    );
    const environ = readFileSync(`/proc/${replica.id.split('@')[1]}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes(`API_KEY=${value}`));
    const said = JSON.stringify([
      store.listEvents({ limit: 1000 }),
      await controller.logs('vault', {}),
      controller.view('vault'),
    ]);
    assert.ok(!said.includes(value), 'the value is in no event, log line or view');
    controller.remove('vault');
  });

  test('deleting the deployment removes its replicas', async () => {
    const runtime = new ProcessRuntime({ stateDir: runtimeDir });
    controller.remove('iris');
    await until(
      'no replicas left',
      async () => (await runtime.list({ 'ferry.dev/platform': 'test-controller' })).length === 0,
    );
  });
});
