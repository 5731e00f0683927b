/**
 * The platform with the Docker runtime: replicas are hardened, sealed containers of the iris image (no network,
 * a unix socket each), reached through the gateway. A rollout under load with zero failures, a control-plane
 * restart that adopts the running containers, and a shutdown that leaves no container behind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ControlClient } from '../src/control/index.ts';
import { loadIntoEngine } from '../src/image/engine/index.ts';
import { buildImage, hostBase } from '../src/image/index.ts';
import { type Platform, platformId } from '../src/platform/index.ts';
import { requireDocker, uniqueName } from './docker-env.ts';
import { tempDir, until } from './helpers.ts';
import { moreAnswers, servedBy, steadyLoad } from './load.ts';
import { IRIS_BODY as BODY, deployIris, IRIS, startTestPlatform } from './platform-fixture.ts';

/** Steady load while the platform changes (see test/platform.test.ts); throughput is bench/'s business. */
const RPS = 50;
/** A hard stop for the load should a test never call stop(); not a duration any test relies on. */
const LOAD_MAX_MS = 30 * 60_000;

describe('platform with the Docker runtime', () => {
  const home = tempDir('ferry-platform-docker-');
  const engine = requireDocker();
  let tag: string;
  let platform: Platform | undefined;
  let client: ControlClient;
  let token: string;

  const start = async () => {
    const started = await startTestPlatform(home.path, { runtime: 'docker' }, token);
    ({ platform, client, token } = started);
    return started.platform;
  };
  const mine = () => engine.listByLabel({ 'ferry.dev/platform': platformId(home.path) });

  before(async () => {
    const built = await buildImage({ dir: IRIS, base: await hostBase() });
    tag = `${uniqueName('ferry-platform-iris')}:1`;
    await loadIntoEngine(engine, built.image, tag);
    await start();
  });

  after(async () => {
    await platform?.stop({ removeReplicas: true });
    for (const c of await mine()) await engine.remove(c.id);
    await engine.removeImage(tag, true);
    home.remove();
  });

  test('deploys the image, serves through the gateway, rolls out under load with 0 failures', async (t) => {
    const p = platform!;
    assert.equal(p.runtime.kind, 'docker');
    await deployIris({ platform: p, client }, { image: tag, replicas: 2, wait: 'ready' });
    const infer = `${p.gatewayUrl}/v2/models/iris/infer`;
    const first = await fetch(infer, {
      method: 'POST',
      body: BODY,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ferry-revision'), '1');

    const load = steadyLoad({ url: infer, body: BODY, rps: RPS, maxDurationMs: LOAD_MAX_MS });
    const started = Date.now();
    await servedBy(load, 1);
    const settled = async (revision: number) => {
      await until(`rollout to r${revision} succeeded`, async () => {
        const r = await client.rollout('iris');
        return r?.phase === 'succeeded' && r.to === revision;
      });
      await until(`only revision ${revision} left`, async () => {
        const list = await client.replicas('iris');
        return list.length === 2 && list.every((r) => r.revision === revision && r.state === 'ready');
      });
      await servedBy(load, revision);
    };
    // Twice replaced under load: a rolling update (r2), then an undo to r1's spec (r3).
    await client.update('iris', { env: { FERRY_LOG_LEVEL: 'warn' } });
    await settled(2);
    const undo = await client.undo('iris', 1);
    await settled(undo.to);
    const result = await load.stop();
    t.diagnostic(
      `docker: rollout r1->r2 and undo r2->r${undo.to} under ${RPS} rps for ${((Date.now() - started) / 1000).toFixed(1)} s: sent ${result.sent}, ok ${result.ok}, by revision ${JSON.stringify(result.byRevision)}, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms`,
    );
    assert.deepEqual(result.failures, []);
    assert.equal(result.ok, result.sent);
    for (const rev of ['1', '2', String(undo.to)])
      assert.ok((result.byRevision[rev] ?? 0) > 0, `revision ${rev} served some requests`);
  });

  test('a container killed with SIGKILL under load is replaced; requests that had not reached it do not fail', async (t) => {
    const infer = `${platform!.gatewayUrl}/v2/models/iris/infer`;
    const load = steadyLoad({ url: infer, body: BODY, rps: RPS, maxDurationMs: LOAD_MAX_MS });
    await moreAnswers(load, 50);
    const victim = (await client.replicas('iris')).find((r) => r.state === 'ready')!;
    await engine.docker.getContainer(victim.id).kill({ signal: 'SIGKILL' });
    await until('replacement ready', async () => {
      const list = await client.replicas('iris');
      return list.filter((r) => r.state === 'ready' && r.id !== victim.id).length === 2;
    });
    await moreAnswers(load, 50);
    const result = await load.stop();
    t.diagnostic(
      `docker SIGKILL of ${victim.name}: sent ${result.sent}, ok ${result.ok}, failed ${result.sent - result.ok} ${JSON.stringify(result.failures)}`,
    );
    const events = await client.events({ deployment: 'iris', limit: 50 });
    assert.ok(events.some((e) => e.reason === 'ReplicaCrashed' && e.message.includes(victim.name)));
    assert.deepEqual(result.failures, []);
  });

  test('a restarted control plane adopts the running containers', async () => {
    const before = (await client.replicas('iris')).map((r) => r.id).sort();
    await platform!.stop({ removeReplicas: false });
    platform = undefined;
    assert.equal((await mine()).length, 2, 'containers keep running while the control plane is down');
    const p = await start();
    assert.equal(p.adminToken, null, 'the admin token is not made twice');
    await until(
      'adopted and ready',
      async () => (await client.replicas('iris')).filter((r) => r.state === 'ready').length === 2,
    );
    assert.deepEqual((await client.replicas('iris')).map((r) => r.id).sort(), before);
    const res = await fetch(`${p.gatewayUrl}/v2/models/iris/infer`, {
      method: 'POST',
      body: BODY,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.status, 200);
    const events = await client.events({ limit: 100 });
    assert.ok(events.some((e) => e.reason === 'ReplicasAdopted'));
  });

  test('stopping with removeReplicas leaves no container behind', async () => {
    assert.ok((await mine()).length >= 2);
    await platform!.stop({ removeReplicas: true });
    platform = undefined;
    assert.deepEqual(await mine(), []);
  });
});
