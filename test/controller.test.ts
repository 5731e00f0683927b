/**
 * The controller against real replicas (the process runtime serving examples/iris) and a real SQLite store.
 * The gateway is replaced by a recorder of the routing tables it would get: this file checks what the
 * controller decides and does; test/platform.test.ts checks the whole platform under load through the gateway.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
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
import { ProcessRuntime, type Runtime, replicaGet } from '../src/runtime/index.ts';
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
  const make = () => makeWith(new ProcessRuntime({ stateDir: runtimeDir }));
  const makeWith = (runtime: Runtime) => {
    routes = new RecordingRoutes();
    return new Controller({
      store,
      runtime,
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
  const servingRevisionOf = () => {
    const live = store.getTraffic('iris').filter((t) => t.percent > 0);
    assert.equal(live.length, 1, JSON.stringify(live));
    return live[0]!.revision;
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
      assert.equal(await replicaGet(r.url, '/v2/models/iris/ready', 5000), 200);
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
    // Undo puts back what the deployment asked for, not the defaults that filled the gaps: a later version
    // whose ferry.yaml sets limits still gets them.
    assert.deepEqual(store.getDeployment('iris')?.resources, { cpu: null, memoryBytes: null, gpu: 0 });
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

  test('a revision that names a missing secret waits (one event), then starts with it (as a file, not in its environment)', async () => {
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
    // It arrives as a file the server reads into its environment, never in the process's own environment.
    const environ = readFileSync(`/proc/${replica.id.split('@')[1]}/environ`, 'utf8');
    assert.ok(!environ.includes(value), 'not in /proc/<pid>/environ');
    await until('the server read it', async () =>
      (await controller.logs('vault', {})).some((l) => l.line.includes('secrets read from files: API_KEY')),
    );
    const said = JSON.stringify([
      store.listEvents({ limit: 1000 }),
      await controller.logs('vault', {}),
      controller.view('vault'),
    ]);
    assert.ok(!said.includes(value), 'the value is in no event, log line or view');
    controller.remove('vault');
  });

  test('a model that cannot load fails its revision at once, with the reason; a rollout to it aborts by itself', async () => {
    await until('2 ready', () => readyOf(3).length === 2);
    const bad = join(home.path, 'iris-corrupt');
    cpSync(IRIS, bad, { recursive: true });
    writeFileSync(join(bad, 'model.onnx'), Buffer.from('this is not an ONNX protobuf at all'));
    store.addVersion('iris', { version: 'corrupt', artifactDir: bad });
    const served = servingRevisionOf();
    const view = controller.update('iris', { versionRef: 'corrupt' });
    const target = view.revision;
    const aborted = await until('the rollout aborts by itself', () => {
      const r = controller.rollout('iris');
      return r?.to === target && r.phase === 'aborted' ? r : undefined;
    });
    assert.match(aborted.message, /ModelLoadFailed/);
    const status = controller.view('iris').revisionStatus.find((r) => r.revision === target);
    assert.equal(status?.problem?.reason, 'ModelLoadFailed');
    assert.equal(status?.problem?.fatal, true);
    assert.match(status?.problem?.message ?? '', /failed to load/i);
    assert.match(status?.problem?.message ?? '', /protobuf|parse|invalid/i, 'the reason from onnxruntime');
    assert.deepEqual(store.getTraffic('iris'), [{ revision: served, percent: 100 }]);
    await until('no replica of the failed revision is left', () =>
      controller.view('iris').replicaStatus.every((r) => r.revision !== target),
    );
    const events = store.listEvents({ deployment: 'iris', limit: 100 });
    assert.ok(
      events.some((e) => e.reason === 'RevisionFailed' && e.message.includes(`Revision ${target} failed`)),
    );
    // A load failure is not a crash loop of a serving revision: readiness of the deployment stays.
    await until('2 ready again', () => readyOf(served).length === 2);
  });

  test('a split asked for by hand waits until the revisions it moves traffic to are ready, then applies', async () => {
    const served = servingRevisionOf();
    const from = routes.tables.length;
    const asked = controller.setTraffic('iris', [
      { revision: 1, percent: 50 },
      { revision: served, percent: 50 },
    ]);
    assert.deepEqual(asked.trafficTarget?.entries, [
      { revision: 1, percent: 50 },
      { revision: served, percent: 50 },
    ]);
    assert.deepEqual(asked.traffic, [{ revision: served, percent: 100 }], 'nothing moves before r1 is ready');
    await until('the split applies', () => (store.getTraffic('iris').length === 2 ? true : undefined));
    assert.equal(controller.view('iris').trafficTarget, null);
    assert.ok(readyOf(1).length >= 1, 'r1 has ready replicas');
    // No table ever gave r1 traffic without a replica to take it.
    for (const table of routes.tables.slice(from))
      for (const r of table.deployments.find((d) => d.name === 'iris')?.revisions ?? [])
        if (r.percent > 0)
          assert.ok(r.replicas.length >= 1, `revision ${r.revision} had ${r.percent}% and no replica`);
    const moved = store.listEvents({ deployment: 'iris' }).find((e) => e.reason === 'TrafficShifted');
    assert.match(moved?.message ?? '', /Traffic moved as asked: r1 50%/);
    // And back: r1 loses its traffic, then its replicas.
    controller.setTraffic('iris', [{ revision: served, percent: 100 }]);
    await until('r1 has no replicas left', () =>
      controller.view('iris').replicaStatus.every((r) => r.revision !== 1),
    );
    assert.deepEqual(store.getTraffic('iris'), [{ revision: served, percent: 100 }]);
  });

  test('a scale-down is not a crash: no crash event, no last crash', async () => {
    const served = servingRevisionOf();
    await until('2 ready', () => readyOf(served).length === 2);
    const lastCrash = controller.view('iris').lastCrash;
    const newest = store.listEvents({ deployment: 'iris', limit: 1 })[0]?.id ?? 0;
    controller.scale('iris', 1);
    await until('1 replica', () => controller.view('iris').replicaStatus.length === 1);
    await controller.tick();
    await controller.tick();
    const after = store.listEvents({ deployment: 'iris', limit: 1000 }).filter((e) => e.id > newest);
    assert.ok(after.some((e) => e.reason === 'ReplicaRemoved' && /scale-down/.test(e.message)));
    assert.ok(
      after.every((e) => e.reason !== 'ReplicaCrashed' && e.reason !== 'ReplicaExited'),
      after.map((e) => `${e.reason}: ${e.message}`).join('\n'),
    );
    assert.deepEqual(controller.view('iris').lastCrash, lastCrash);
    controller.scale('iris', 2);
    await until('2 ready', () => readyOf(served).length === 2);
  });

  test('a replica removed while a pass reads the runtime is not taken for a crash (the stop/list race)', async () => {
    // The race seen on Docker: a pass lists a replica that is being removed, the removal ends, then the pass
    // reads the engine's state of it from between stop and remove: exited with code 0. Here a runtime makes
    // it happen every time: when a removal starts it asks for a pass, whose list() answers only after the
    // removal ended, with the removed replica as exited (0).
    const real = new ProcessRuntime({ stateDir: runtimeDir });
    const stopped = new Set<string>();
    let lag: Promise<void> | undefined;
    const runtime: Runtime = Object.assign(Object.create(real) as Runtime, {
      async list(labels: Record<string, string>) {
        const seen = await real.list(labels);
        const wait = lag;
        lag = undefined;
        if (wait) await wait;
        return seen.map((r) => (stopped.has(r.id) ? { ...r, state: 'exited' as const, exitCode: 0 } : r));
      },
      async remove(id: string, graceMs?: number) {
        let done: () => void = () => undefined;
        lag = new Promise<void>((res) => {
          done = res;
        });
        controller.nudge();
        await real.remove(id, graceMs);
        stopped.add(id);
        done();
      },
    });
    await controller.stop({ removeReplicas: false });
    controller = makeWith(runtime);
    await controller.start();
    const served = servingRevisionOf();
    await until('2 ready', () => readyOf(served).length === 2);
    const newest = store.listEvents({ deployment: 'iris', limit: 1 })[0]?.id ?? 0;
    controller.scale('iris', 1);
    await until('a replica was removed', () => stopped.size === 1);
    await until('1 replica', () => controller.view('iris').replicaStatus.length === 1);
    await controller.tick();
    const after = store.listEvents({ deployment: 'iris', limit: 1000 }).filter((e) => e.id > newest);
    assert.ok(
      after.every((e) => e.type !== 'Warning' && e.reason !== 'ReplicaExited'),
      after.map((e) => `${e.reason}: ${e.message}`).join('\n'),
    );
    assert.notEqual(controller.view('iris').lastCrash?.exitCode, 0);
    await controller.stop({ removeReplicas: false });
    controller = make();
    await controller.start();
    controller.scale('iris', 2);
    await until('2 ready', () => readyOf(served).length === 2);
  });

  test('deploying again the spec of a revision whose rollout was aborted rolls it out again', async () => {
    const served = servingRevisionOf();
    // The deployment's spec still names the corrupt version whose rollout aborted (as a Kubernetes Deployment
    // keeps a failed template): name a good one.
    const view = controller.update('iris', {
      versionRef: '1',
      env: { RETRY: '1' },
      strategy: { kind: 'canary', steps: [{ percent: 50 }] },
    });
    const target = view.revision;
    await until('paused at 50%', () => controller.rollout('iris')?.phase === 'paused');
    controller.abort('iris');
    await until('aborted', () => controller.rollout('iris')?.phase === 'aborted');
    assert.deepEqual(store.getTraffic('iris'), [{ revision: served, percent: 100 }]);
    const again = controller.update('iris', {
      versionRef: '1',
      env: { RETRY: '1' },
      strategy: { kind: 'rolling' },
    });
    assert.equal(again.revision, target, 'the same spec is the same revision');
    assert.equal(again.rollout?.to, target);
    assert.equal(again.rollout?.phase, 'progressing');
    assert.ok(store.listEvents({ deployment: 'iris' }).some((e) => e.reason === 'RolloutRetried'));
    await until('succeeded', () => controller.rollout('iris')?.phase === 'succeeded');
    assert.deepEqual(store.getTraffic('iris'), [{ revision: target, percent: 100 }]);
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
