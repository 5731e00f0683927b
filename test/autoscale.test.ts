/**
 * Autoscaling live (issue 11), on both runtimes:
 * - iris with min 0 goes to zero when idle, comes back from zero under 50 requests/s (an open-loop load of a
 *   bounded count) with no failed request, and goes back to zero;
 * - a model whose requests take their time scales up on concurrency, within its maximum, and every request held
 *   for the replicas being started is answered;
 * - the activator's bound overflows into 503 + Retry-After at once;
 * - a model that cannot load: a held request gets a 503 that says so, not a wait until the activator's bound.
 * Short windows so the test does not wait a minute; the policy's timing is tested on a virtual clock
 * (src/autoscaler), its speed in bench/autoscale.ts. Nothing here depends on how fast the machine is: loads are
 * counts, waits are on conditions. Traffic only to 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deploy } from '../src/cli/deploy.ts';
import { addVersionFromDir } from '../src/cli/upload.ts';
import { ControlClient } from '../src/control/index.ts';
import { type Platform, startPlatform } from '../src/platform/index.ts';
import { requireDocker } from './docker-env.ts';
import { fixtureModel } from './fixtures/models.ts';
import { ROOT, tempDir, until } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const SLOW = join(ROOT, 'test', 'fixtures', 'lifecycle', 'slow');
const BODY = readFileSync(join(IRIS, 'requests', 'setosa.json'));

async function call(gateway: string, model: string, body: Buffer | string) {
  const res = await fetch(`${gateway}/v2/models/${model}/infer`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text below
  }
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: parsed, text };
}

const infer = async (gateway: string, model: string, body: Buffer) =>
  (await call(gateway, model, body)).status;

/** Until the gateway's table has the autoscaled deployment (its activator gauge is listed, 0 held). */
async function routed(gateway: string, name: string): Promise<void> {
  await until(`${name} in the gateway's table`, async () =>
    (await (await fetch(`${gateway}/metrics`)).text()).includes(
      `ferry_gateway_activator_held{deployment="${name}"}`,
    ),
  );
}

const slowInput = (ms: number) =>
  JSON.stringify({ inputs: [{ name: 'ms', datatype: 'INT32', shape: [1], data: [ms] }] });
for (const runtime of ['process', 'docker'] as const) {
  describe(`autoscaling on the ${runtime} runtime`, () => {
    const home = tempDir(`ferry-autoscale-${runtime}-`);
    let platform: Platform;
    let client: ControlClient;
    if (runtime === 'docker') requireDocker();

    const running = async () => (await client.replicas('iris')).filter((r) => r.state !== 'exited').length;

    before(async () => {
      platform = await startPlatform({
        home: home.path,
        runtime,
        apiPort: 0,
        gatewayPort: 0,
        resyncMs: 300,
      });
      client = new ControlClient({ url: platform.apiUrl, token: platform.adminToken! });
      await client.createModel('iris');
      await addVersionFromDir(client, 'iris', '1', IRIS);
      await client.deploy({ name: 'iris', model: 'iris', version: '1', replicas: 1, public: true });
      await until('a ready replica', async () =>
        (await client.replicas('iris')).some((r) => r.state === 'ready'),
      );
      await client.setScaling('iris', {
        minReplicas: 0,
        maxReplicas: 3,
        target: 2,
        targetUtilization: 1,
        stableWindowMs: 3_000,
        panicWindowMs: 1_000,
        scaleToZeroGraceMs: 1_000,
      });
    });

    after(async () => {
      await platform?.stop({ removeReplicas: true });
      home.remove();
    });

    test('idle: to zero after the window and the grace', async () => {
      await until('scaled to zero', async () => (await client.getDeployment('iris')).replicas === 0);
      await until('no replica runs', async () => (await running()) === 0);
      const events = await client.events({ deployment: 'iris' });
      assert.ok(
        events.some((e) => e.reason === 'Autoscaled' && /-> 0: .*idle/.test(e.message)),
        JSON.stringify(events),
      );
    });

    test('from zero under 50 requests/s: every request answered; a cold start event; back to zero', async () => {
      await until('at zero', async () => (await client.getDeployment('iris')).replicas === 0);
      // 100 requests, one every 20 ms whatever the answers do (open loop): held while the replica starts.
      const answers: Promise<number>[] = [];
      for (let i = 0; i < 100; i++) {
        answers.push(infer(platform.gatewayUrl, 'iris', BODY));
        await new Promise((r) => setTimeout(r, 20));
      }
      const statuses = await Promise.all(answers);
      const failed = statuses.filter((s) => s !== 200);
      assert.deepEqual(failed, [], `${failed.length} of ${statuses.length} failed`);
      const events = await client.events({ deployment: 'iris' });
      assert.ok(
        events.some((e) => /activate/.test(e.message)),
        'started from zero by a held request',
      );
      const cold = events.find((e) => e.reason === 'ColdStart');
      assert.ok(cold, 'the cold start is an event');
      assert.match(
        cold.message,
        /^cold start of iris: ready \d+\.\d\d s after the decision to start it, held requests released at \d+\.\d\d s \(revision 1, .*start [\d.]+ s, boot [\d.]+ s, load [\d.]+ s, warmup [\d.]+ s, ready [\d.]+ s, release [\d.]+ s; \d+ request\(s\) held\)$/,
      );
      console.log(`# ${runtime}: ${cold.message}`);
      // Its phases in the deployment's view (ferry describe) and in the control plane's metrics.
      const last = (await client.getDeployment('iris')).lastColdStart;
      assert.ok(last, 'the view has the last cold start');
      for (const phase of ['start', 'boot', 'load', 'warmup', 'ready', 'release'] as const)
        assert.ok(
          last.phases[phase] !== null && last.phases[phase]! >= 0,
          `${phase}: ${JSON.stringify(last)}`,
        );
      assert.ok(last.held >= 1, 'it released the held requests');
      const metrics = await fetch(`${platform.apiUrl}/metrics`, {
        headers: { authorization: `Bearer ${platform.adminToken}` },
      });
      assert.equal(metrics.status, 200);
      assert.match(
        await metrics.text(),
        /ferry_cold_start_seconds_count\{deployment="iris",revision="1",phase="total"\} [1-9]/,
      );
      await until('back to zero', async () => (await client.getDeployment('iris')).replicas === 0);
    });

    describe('a model whose requests take their time (load takes 1.5 s)', () => {
      before(async () => {
        const dir = join(home.path, 'slow');
        cpSync(SLOW, dir, { recursive: true });
        writeFileSync(
          join(dir, 'ferry.yaml'),
          `${readFileSync(join(dir, 'ferry.yaml'), 'utf8')}env:\n  LOAD_MS: "1500"\n`,
        );
        await client.createModel('slow');
        await addVersionFromDir(client, 'slow', '1', dir);
        const scaling = {
          minReplicas: 0,
          maxReplicas: 3,
          target: 1,
          targetUtilization: 1,
          stableWindowMs: 3_000,
          panicWindowMs: 1_000,
          scaleToZeroGraceMs: 1_000,
          initialScale: 0,
        };
        // Two deployments of the one version: one with a tiny activator bound, one with the default.
        await client.deploy({ name: 'slow', model: 'slow', version: '1', replicas: 0, public: true });
        await client.setScaling('slow', { ...scaling, maxHeld: 2 });
        await client.deploy({ name: 'steps', model: 'slow', version: '1', replicas: 0, public: true });
        await client.setScaling('steps', scaling);
        await routed(platform.gatewayUrl, 'slow');
        await routed(platform.gatewayUrl, 'steps');
      });

      test('at zero, past maxHeld: 503 + Retry-After at once; the held ones are answered', async () => {
        const answers = await Promise.all(
          Array.from({ length: 6 }, () => call(platform.gatewayUrl, 'slow', slowInput(10))),
        );
        const ok = answers.filter((a) => a.status === 200);
        const full = answers.filter((a) => a.status === 503);
        assert.equal(ok.length + full.length, 6, JSON.stringify(answers));
        assert.equal(ok.length, 2, 'the two held (maxHeld 2) are answered once a replica is ready');
        for (const a of full) {
          assert.equal(a.retryAfter, '1');
          assert.equal(a.body.code, 'FERRY_NO_READY_REPLICA');
          assert.match(String(a.body.error), /already wait for one \(its limit\)/);
        }
      });

      test('concurrency over the target scales up within the maximum; every request answered', async () => {
        // 6 clients, each 3 requests of 1.5 s one after another: 6 in flight against a target of 1 per replica.
        let scaledTo = 0;
        const clients = Promise.all(
          Array.from({ length: 6 }, async () => {
            const out: string[] = [];
            for (let k = 0; k < 3; k++) {
              const a = await call(platform.gatewayUrl, 'steps', slowInput(1500));
              out.push(a.status === 200 ? 'ok' : `${a.status} ${a.text}`);
            }
            return out;
          }),
        );
        await until('scaled to its maximum', async () => {
          scaledTo = (await client.getDeployment('steps')).replicas;
          return scaledTo === 3;
        });
        const statuses = (await clients).flat();
        assert.deepEqual(
          statuses.filter((s) => s !== 'ok'),
          [],
          `of ${statuses.length}`,
        );
        const events = await client.events({ deployment: 'steps' });
        const counts = events
          .filter((e) => e.reason === 'Autoscaled')
          .map((e) => Number(/-> (\d+):/.exec(e.message)?.[1]));
        assert.ok(counts.includes(3), JSON.stringify(counts));
        assert.ok(Math.max(...counts) <= 3, `never above maxReplicas: ${JSON.stringify(counts)}`);

        // On the way down (the load gone but for one client, one short request after another): replicas drain
        // out of the routes before they stop, so none of these fails.
        const trickle: string[] = [];
        let down = false;
        const oneClient = (async () => {
          while (!down) {
            const a = await call(platform.gatewayUrl, 'steps', slowInput(20));
            trickle.push(a.status === 200 ? 'ok' : `${a.status} ${a.text}`);
          }
        })();
        await until('scaled down to one', async () => (await client.getDeployment('steps')).replicas === 1);
        await until('the others stopped', async () =>
          (await client.replicas('steps')).every((r) => r.state === 'ready' || r.state === 'exited')
            ? (await client.replicas('steps')).filter((r) => r.state === 'ready').length === 1
            : false,
        );
        down = true;
        await oneClient;
        assert.ok(trickle.length > 0);
        assert.deepEqual(
          trickle.filter((s) => s !== 'ok'),
          [],
          `of ${trickle.length} on the way down`,
        );
      });
    });

    test('a replica at its limit (what it takes before it sheds): the rest wait in the gateway, none is shed', async () => {
      // One worker, a batching queue of 1: the replica takes 1 x 2 (pipeline) + 1 requests, then answers 503
      // FERRY_QUEUE_FULL. Autoscaled but kept at one replica, so nothing else can take the rest. (The version of
      // 'slow', made above.)
      await client.deploy({
        name: 'tight',
        model: 'slow',
        version: '1',
        replicas: 1,
        public: true,
        serving: { concurrency: 1, batching: { maxQueueSize: 1 } },
      });
      await client.setScaling('tight', { minReplicas: 1, maxReplicas: 1, initialScale: 1 });
      await until('its replica limit known (ferry describe)', async () =>
        (await client.getDeployment('tight')).revisionStatus.some((r) => r.replicaLimit === 3),
      );
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => call(platform.gatewayUrl, 'tight', slowInput(200))),
      );
      assert.deepEqual(
        answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.text}`),
        [],
        'the five past the limit waited for room instead of being shed',
      );
    });

    test('a model that cannot load: a held request gets 503 saying so, well before the activator bound', async () => {
      const dir = fixtureModel(home.path, 'broken', 'faulty', 'env:\n  FAIL_LOAD: "1"\n');
      await client.createModel('broken');
      await addVersionFromDir(client, 'broken', '1', dir);
      await client.deploy({ name: 'broken', model: 'broken', version: '1', replicas: 0, public: true });
      await client.setScaling('broken', {
        minReplicas: 0,
        maxReplicas: 1,
        initialScale: 0,
        maxHeldWaitMs: 3_600_000,
      });
      await routed(platform.gatewayUrl, 'broken');
      const res = await call(platform.gatewayUrl, 'broken', JSON.stringify({ inputs: [] }));
      assert.equal(res.status, 503);
      assert.equal(res.retryAfter, '1');
      assert.equal(res.body.code, 'FERRY_NO_READY_REPLICA');
      assert.match(
        String(res.body.error),
        /revision 1 of deployment 'broken' has no ready replica and cannot start one: the model fails to load \(ModelLoadFailed\)/,
      );
      assert.doesNotMatch(
        String(res.body.error),
        /refused on purpose/,
        'no log line of the model reaches a caller',
      );
    });

    test('deployed with scaling: in ferry.yaml: created at zero, and the first request starts a replica', async () => {
      const dir = join(home.path, 'iris-zero');
      cpSync(IRIS, dir, { recursive: true });
      writeFileSync(
        join(dir, 'ferry.yaml'),
        `${readFileSync(join(IRIS, 'ferry.yaml'), 'utf8')}scaling: { minReplicas: 0, maxReplicas: 2, initialScale: 0 }\n`,
      );
      const result = await deploy(client, dir, { name: 'iris-zero', public: true }, () => undefined);
      assert.ok(result.created && result.scalingSet);
      assert.equal(result.view.replicas, 0);
      assert.equal(result.view.scaling?.minReplicas, 0);
      assert.equal(result.view.scaling?.maxReplicas, 2);
      assert.deepEqual(await client.replicas('iris-zero'), [], 'nothing starts before a request');
      // The gateway learns of a new deployment in the loop's next pass, the one that gives it its conditions.
      await until(
        'the gateway knows it',
        async () => (await client.getDeployment('iris-zero')).conditions.length > 0,
      );
      if (runtime === 'docker') {
        // Its image is prepared at zero, not by the first request's cold start.
        await until('its image ready while at zero', async () =>
          (await client.events({ deployment: 'iris-zero' })).some((e) => e.reason === 'ImageReady'),
        );
        assert.deepEqual(await client.replicas('iris-zero'), [], 'and still nothing started');
      }
      const res = await fetch(`${platform.gatewayUrl}/v2/models/iris-zero/infer`, {
        method: 'POST',
        body: BODY,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.status, 200, await res.text());
      assert.equal((await client.getDeployment('iris-zero')).replicas, 1);
    });
  });
}
