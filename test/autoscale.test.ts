/**
 * Autoscaling live (issue 11), on both runtimes: a deployment with min 0 goes to zero when idle, comes back
 * from zero with no failed request (a burst held by the gateway until a replica is ready, then steady clients
 * without a rate to keep), and goes back to zero. Short windows so the test does not wait a minute; the policy's timing is tested on a virtual
 * clock (src/autoscaler), its speed in bench/autoscale.ts. Traffic only to 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addVersionFromDir } from '../src/cli/upload.ts';
import { ControlClient } from '../src/control/index.ts';
import { type Platform, startPlatform } from '../src/platform/index.ts';
import { requireDocker } from './docker-env.ts';
import { ROOT, tempDir, until } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const BODY = readFileSync(join(IRIS, 'requests', 'setosa.json'));
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

    test('from zero: a burst held until a replica is ready, then steady clients, every request answered; back to zero', async () => {
      const statuses: number[] = [];
      const infer = async () => {
        const res = await fetch(`${platform.gatewayUrl}/v2/models/iris/infer`, {
          method: 'POST',
          body: BODY,
          headers: { 'content-type': 'application/json' },
        });
        await res.arrayBuffer();
        statuses.push(res.status);
      };
      // A burst at zero, within the activator's bound (100 held): all wait for the replica the first one starts.
      // Then 4 clients one request after another: no rate to keep up with, so a busy machine only slows it.
      await Promise.all(Array.from({ length: 20 }, infer));
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let k = 0; k < 25; k++) await infer();
        }),
      );
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
  });
}
