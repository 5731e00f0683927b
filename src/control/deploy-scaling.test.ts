/**
 * A ferry.yaml `scaling:` block at deploy time (issue 11), through the HTTP API on a real store: model
 * directories are packed and uploaded as artifacts, registered as versions (the platform reads their ferry.yaml),
 * and deployed with the real command service. The loop that would start replicas is left idle: this checks the
 * desired state the deploy writes; test/autoscale.test.ts runs a deployment made this way live.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_SETTINGS } from '../autoscaler/settings.ts';
import { prepareArtifact } from '../image/artifact.ts';
import { ProcessRuntime } from '../runtime/index.ts';
import { buildControlApi } from './api/app.ts';
import { ArtifactStore } from './artifacts.ts';
import { ChangeFeed } from './changes.ts';
import { CommandService } from './commands.ts';
import { eventRecorder } from './events.ts';
import { LogArchive } from './log-archive.ts';
import type { LoopPort } from './loop-port.ts';
import { ReplicaLogs } from './replica-logs.ts';
import { openStore, type Store } from './store/store.ts';

const IRIS = join(import.meta.dirname, '..', '..', 'examples', 'iris');

/** A loop that has seen nothing and starts nothing. */
const idleLoop: LoopPort = {
  nudge: () => undefined,
  status: () => ({
    replicas: [],
    revisions: [],
    readyByRevision: {},
    conditions: [],
    lastCrash: null,
    lastColdStart: null,
  }),
  forgetFailure: () => undefined,
  forgetTrafficWait: () => undefined,
  knownReplicas: () => [],
  reachesReplicas: true,
};

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
  body: any;
}

describe('scaling: in ferry.yaml at deploy time', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-deploy-scaling-'));
  let store: Store;
  let app: FastifyInstance;
  let token: string;
  let n = 0;

  const call = async (method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, body?: unknown) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    return { status: res.statusCode, body: res.body === '' ? undefined : JSON.parse(res.body) } as Answer;
  };

  /** Registers version `version` of iris: examples/iris with `extra` appended to its ferry.yaml. */
  const version = async (version: string, extra: string) => {
    const model = join(dir, `model-${++n}`);
    cpSync(IRIS, model, { recursive: true });
    writeFileSync(join(model, 'ferry.yaml'), `${readFileSync(join(IRIS, 'ferry.yaml'), 'utf8')}${extra}\n`);
    const prepared = await prepareArtifact(model);
    try {
      const chunks: Uint8Array[] = [];
      for await (const c of prepared.stream()) chunks.push(c);
      const up = await app.inject({
        method: 'PUT',
        url: `/v1/artifacts/${prepared.digest}`,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-tar' },
        payload: Buffer.concat(chunks),
      });
      assert.ok(up.statusCode < 300, up.body);
    } finally {
      await prepared.cleanup();
    }
    const v = await call('POST', '/v1/models/iris/versions', { version, artifact: prepared.digest });
    assert.equal(v.status, 201, JSON.stringify(v.body));
  };

  const deploy = async (body: Record<string, unknown>) => {
    const r = await call('POST', '/v1/deployments', { model: 'iris', ...body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };

  const events = async (name: string) =>
    ((await call('GET', `/v1/events?deployment=${name}`)).body as Array<{ reason: string; message: string }>)
      .filter((e) => e.reason === 'AutoscalingSet')
      .map((e) => e.message);

  before(async () => {
    store = openStore(join(dir, 'state.db'));
    const now = Date.now;
    const commands = new CommandService({
      store,
      loop: idleLoop,
      logs: new ReplicaLogs({
        runtime: new ProcessRuntime({ stateDir: join(dir, 'replicas') }),
        archive: new LogArchive(join(dir, 'logs')),
        platformId: 'test',
        now,
      }),
      runtimeKind: 'process',
      gatewayUrl: 'http://127.0.0.1:1',
      now,
      event: eventRecorder(store, now, undefined),
      changes: new ChangeFeed(),
    });
    app = buildControlApi({
      store,
      control: commands,
      info: { version: '0.0.0', runtime: 'process', gatewayUrl: 'http://127.0.0.1:1' },
      versions: { store, artifacts: new ArtifactStore(join(dir, 'artifacts')) },
    });
    await app.ready();
    token = store.createToken('root', 'admin').token;
    assert.equal((await call('POST', '/v1/models', { name: 'iris' })).status, 201);
    await version('zero', 'scaling: { minReplicas: 0, maxReplicas: 3, initialScale: 0, stableWindow: 30s }');
    await version('two', 'scaling: { maxReplicas: 4, initialScale: 2 }');
    await version('clamped', 'scaling: { minReplicas: 2, maxReplicas: 3, initialScale: 0 }');
    await version('fixed', '');
  });

  after(async () => {
    await app?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the version keeps its block, completed over the defaults', () => {
    const v = store.resolveVersion('iris', 'zero');
    assert.deepEqual(v.spec.scaling, {
      ...DEFAULT_SETTINGS,
      minReplicas: 0,
      maxReplicas: 3,
      initialScale: 0,
      stableWindowMs: 30_000,
    });
    assert.equal(store.resolveVersion('iris', 'fixed').spec.scaling, undefined);
  });

  test('a deployment of it is autoscaled on the block and starts at initialScale: 0 starts at zero', async () => {
    const view = await deploy({ name: 'at-zero', version: 'zero' });
    assert.deepEqual(view.scaling, store.resolveVersion('iris', 'zero').spec.scaling);
    assert.equal(view.replicas, 0);
    assert.equal(
      store.getRevision('at-zero', 1)?.replicas,
      0,
      'the revision records the count it began with',
    );
    assert.deepEqual(await events('at-zero'), [
      "Autoscaling on from the version's ferry.yaml: 0-3 replicas on concurrency, target derived from the model",
    ]);

    assert.equal((await deploy({ name: 'at-two', version: 'two' })).replicas, 2);
    // initialScale is kept within minReplicas..maxReplicas, as the autoscaler's first decision would keep it.
    assert.equal((await deploy({ name: 'clamped', version: 'clamped' })).replicas, 2);
    const fixed = await deploy({ name: 'fixed', version: 'fixed' });
    assert.equal(fixed.scaling, null);
    assert.equal(fixed.replicas, 1);
  });

  test("the request's scaling wins over the file's, whole; null deploys a fixed count", async () => {
    const asked = await deploy({
      name: 'asked',
      version: 'zero',
      scaling: { maxReplicas: 5, initialScale: 3 },
    });
    assert.deepEqual(asked.scaling, { ...DEFAULT_SETTINGS, maxReplicas: 5, initialScale: 3 });
    assert.equal(asked.replicas, 3);
    const none = await deploy({ name: 'none', version: 'zero', scaling: null });
    assert.equal(none.scaling, null);
    assert.equal(none.replicas, 1);
    const bad = await call('POST', '/v1/deployments', {
      name: 'bad',
      model: 'iris',
      version: 'fixed',
      scaling: { minReplicas: 4, maxReplicas: 2 },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /minReplicas: 4 is above maxReplicas 2/);
    const unknown = await call('POST', '/v1/deployments', {
      name: 'bad',
      model: 'iris',
      version: 'fixed',
      scaling: { min: 0 },
    });
    assert.equal(unknown.status, 400);
    assert.equal((await call('GET', '/v1/deployments/bad')).status, 404, 'nothing was created');
  });

  test('replicas given with autoscaling is the count to start from, within minReplicas..maxReplicas', async () => {
    const view = await deploy({ name: 'three', version: 'zero', replicas: 3 });
    assert.equal(view.replicas, 3);
    assert.equal(view.scaling.minReplicas, 0);
    const out = await call('POST', '/v1/deployments', {
      name: 'four',
      model: 'iris',
      version: 'zero',
      replicas: 4,
    });
    assert.equal(out.status, 400);
    assert.match(out.body.error, /replicas 4 is outside 0\.\.3.*ferry\.yaml/);
    assert.match(out.body.hint, /initialScale \(0\)/);
  });

  test('a later deploy applies the file only when its block changed, so ferry autoscale is not lost', async () => {
    await version(
      'zero-again',
      'scaling: { minReplicas: 0, maxReplicas: 3, initialScale: 0, stableWindow: 30s }\nenv: { V: "2" }',
    );
    await version('wider', 'scaling: { minReplicas: 0, maxReplicas: 6 }');
    await version('no-block', 'env: { V: "3" }');
    // At zero replicas, each new revision takes the traffic at once: no rollout to wait for between deploys.
    await deploy({ name: 'r', version: 'zero' });
    const own = await call('PUT', '/v1/deployments/r/scaling', { scaling: { maxReplicas: 7 } });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const ownSettings = own.body.scaling;

    // Same block in the new version: the deployment's own settings stay.
    const same = await call('PATCH', '/v1/deployments/r', { version: 'zero-again' });
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.revision, 2);
    assert.deepEqual(same.body.scaling, ownSettings);

    // A block that differs from the previous version's is applied, over the defaults.
    const wider = await call('PATCH', '/v1/deployments/r', { version: 'wider' });
    assert.equal(wider.status, 200, JSON.stringify(wider.body));
    assert.deepEqual(wider.body.scaling, { ...DEFAULT_SETTINGS, minReplicas: 0, maxReplicas: 6 });
    assert.ok(
      (await events('r')).some((m) => /^Autoscaling on from the ferry\.yaml of version wider: 0-6 /.test(m)),
      'the event says where the settings came from',
    );

    // No block says nothing: the settings stay.
    const none = await call('PATCH', '/v1/deployments/r', { version: 'no-block' });
    assert.equal(none.status, 200, JSON.stringify(none.body));
    assert.deepEqual(none.body.scaling, wider.body.scaling);
  });

  test('an alias move is a deploy too: the moved-to version brings its changed block', async () => {
    assert.equal((await call('PUT', '/v1/models/iris/aliases/stable', { version: 'fixed' })).status, 200);
    const view = await deploy({ name: 'follows', version: 'stable', replicas: 0 });
    assert.equal(view.scaling, null);
    const moved = await call('PUT', '/v1/models/iris/aliases/stable', { version: 'two' });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    const after = (await call('GET', '/v1/deployments/follows')).body;
    assert.equal(after.revision, 2);
    assert.deepEqual(after.scaling, { ...DEFAULT_SETTINGS, maxReplicas: 4, initialScale: 2 });
    assert.equal(after.replicas, 0, 'the count stays; the autoscaler moves it from there');
  });
});
