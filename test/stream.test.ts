/**
 * GET /v1/stream against the whole platform on one machine (process runtime, examples/iris, real HTTP, real
 * SQLite): what a dashboard would see while a deployment is made, gets ready and is scaled; events as the
 * controller records them, in order; a stream that goes takes its watch along; `stop` (ferry down) ends the
 * streams still open instead of waiting for them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ControlClient,
  type DeploymentView,
  type EventRecord,
  type StreamMessage,
} from '../src/control/index.ts';
import type { Platform } from '../src/platform/index.ts';
import { HANG_MS } from './hang.ts';
import { tempDir, until } from './helpers.ts';
import { deployIris, startTestPlatform } from './platform-fixture.ts';

/** Reads a stream into `messages` as they come; `waitFor` resolves once one passes. */
function record(client: ControlClient) {
  const abort = new AbortController();
  const messages: StreamMessage[] = [];
  let ended = false;
  const done = (async () => {
    for await (const m of client.stream(abort.signal)) messages.push(m);
    ended = true;
  })();
  return {
    messages,
    get ended() {
      return ended;
    },
    done,
    deployments: () => messages.flatMap((m) => (m.type === 'deployments' ? [m.deployments] : [])),
    events: () => messages.flatMap((m) => (m.type === 'event' ? [m.event] : [])),
    close: () => abort.abort(),
  };
}

const iris = (ds: DeploymentView[]) => ds.find((d) => d.name === 'iris');
const ready = (d: DeploymentView | undefined) =>
  d?.replicaStatus.filter((r) => r.state === 'ready').length ?? 0;

describe('GET /v1/stream on the platform (process runtime)', { timeout: HANG_MS }, () => {
  const home = tempDir('ferry-stream-');
  let platform: Platform;
  let client: ControlClient;
  let stopped = false;

  before(async () => {
    ({ platform, client } = await startTestPlatform(home.path));
  });

  after(async () => {
    if (!stopped) await platform?.stop({ removeReplicas: true });
    home.remove();
  });

  test('a viewer sees iris deployed, its replica ready, a scale to 2 and the events, in order', async (t) => {
    const viewer = new ControlClient({
      url: platform.apiUrl,
      token: (await client.createToken('dashboard', 'viewer')).token,
    });
    const stream = record(viewer);
    try {
      await until('the first deployments message', () => stream.deployments().length === 1);
      assert.deepEqual(stream.deployments()[0], []);

      await deployIris({ platform, client }, { replicas: 1, public: false, wait: 'none' });
      await until('iris appears', () => stream.deployments().some((ds) => iris(ds) !== undefined));
      await until('its replica is ready', () => stream.deployments().some((ds) => ready(iris(ds)) === 1));

      await client.scale('iris', 2);
      await until('scaled to 2 ready', () =>
        stream.deployments().some((ds) => iris(ds)?.replicas === 2 && ready(iris(ds)) === 2),
      );

      // What the stream showed is what GET /v1/deployments shows once nothing moves (the newest message).
      await until('the stream agrees with GET /v1/deployments', async () => {
        const listed = await viewer.listDeployments();
        return JSON.stringify(stream.deployments().at(-1)) === JSON.stringify(listed);
      });

      // Each deployments message differs from the one before.
      const bodies = stream.deployments().map((ds) => JSON.stringify(ds));
      for (let i = 1; i < bodies.length; i++)
        assert.notEqual(bodies[i], bodies[i - 1], `message ${i} repeats`);

      // The events are those GET /v1/events has, in the order they were recorded, none missing.
      const seen = stream.events();
      const stored = (await viewer.events({ limit: 1000 })).reverse();
      const since = stored.filter((e) => e.id >= (seen[0]?.id ?? Number.POSITIVE_INFINITY));
      assert.deepEqual(seen, since.slice(0, seen.length));
      assert.ok(
        seen.some((e) => e.reason === 'DeploymentCreated'),
        `DeploymentCreated among ${seen.map((e: EventRecord) => e.reason).join(', ')}`,
      );
      assert.ok(seen.length >= 2, 'the deploy and the scale, at least');
      t.diagnostic(
        stream.messages
          .map((m) =>
            m.type === 'event'
              ? m.event.reason
              : m.type === 'deployments'
                ? `[${m.deployments.map((d) => `${d.name} ${ready(d)}/${d.replicas}`).join(', ')}]`
                : m.type,
          )
          .join(' '),
      );
    } finally {
      stream.close();
      await stream.done;
    }
    await until('the watch goes with the stream', () => platform.controller.changes.watchers === 0);
  });

  test("tenants: each stream has its own tenant's deployments and events, a deletion included", async () => {
    await client.createTenant('team-a');
    // The platform admin acts in team-a by naming it (X-Ferry-Tenant).
    const admin = new ControlClient({ url: platform.apiUrl, token: platform.adminToken!, tenant: 'team-a' });
    const viewerOf = async (by: ControlClient, name: string) =>
      new ControlClient({ url: platform.apiUrl, token: (await by.createToken(name, 'viewer')).token });
    const team = record(await viewerOf(admin, 'team-viewer'));
    const home = record(await viewerOf(client, 'home-viewer'));
    try {
      await until(
        'both streams started',
        () => team.deployments().length > 0 && home.deployments().length > 0,
      );
      assert.deepEqual(team.deployments()[0], []);
      await deployIris(
        { platform, client: admin },
        { name: 'quiet', replicas: 0, public: false, wait: 'none' },
      );
      await until('team-a sees quiet', () =>
        team.deployments().some((ds) => ds.some((d) => d.name === 'quiet')),
      );
      await admin.deleteDeployment('quiet');
      await until('team-a sees it deleted', () =>
        team.events().some((e) => e.reason === 'DeploymentDeleted'),
      );
      assert.deepEqual(
        team
          .events()
          .filter((e) => e.reason === 'DeploymentDeleted')
          .map((e) => [e.tenant, e.message]),
        [['team-a', 'Deployment quiet deleted; its replicas are drained and removed']],
      );
      await until('team-a sees none left', () => team.deployments().at(-1)?.length === 0);
      // The default tenant's stream: nothing of team-a's, up to an event of its own recorded after.
      await client.scale('iris', 1);
      await until('the default tenant sees its scale', () =>
        home.events().some((e) => e.reason === 'Scaled'),
      );
      assert.deepEqual(
        home.events().filter((e) => e.tenant !== 'default' || /quiet/.test(e.message)),
        [],
      );
      for (const ds of home.deployments()) assert.ok(ds.every((d) => d.tenant === 'default'));
    } finally {
      team.close();
      home.close();
      await Promise.all([team.done, home.done]);
    }
  });

  test('stop (ferry down) ends the streams still open', async () => {
    const streams = [record(client), record(client)];
    await until('both streams started', () => streams.every((s) => s.deployments().length > 0));
    assert.equal(platform.controller.changes.watchers, 1);
    stopped = true;
    await platform.stop({ removeReplicas: true });
    await Promise.all(streams.map((s) => s.done));
    assert.ok(streams.every((s) => s.ended));
    assert.equal(platform.controller.changes.watchers, 0);
  });
});
