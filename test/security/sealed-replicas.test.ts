/**
 * Sealed replicas (issue 10), against the real Docker engine: a docker replica has no network interface but its
 * own loopback, cannot reach the control-plane API's or the gateway's ports on 127.0.0.1, nor another replica's
 * socket; the model still answers through the gateway (over the replica's unix socket). A replica whose spec
 * asks for egress gets a bridge network of its own (made with it, removed with it), never the host's.
 *
 * Nothing here sends traffic to an address outside this machine, not even to show that it fails.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/control/index.ts';
import { socketPathOf } from '../../src/core/replica.ts';
import { type DockerEngine, loadIntoEngine } from '../../src/image/engine/index.ts';
import { buildImage, hostBase } from '../../src/image/index.ts';
import { type Platform, platformId, startPlatform } from '../../src/platform/index.ts';
import { DockerRuntime } from '../../src/runtime/index.ts';
import { readiness } from '../../src/runtime/readiness.ts';
import { cleanupContainers, requireDocker, TEST_LABEL, uniqueName } from '../docker-env.ts';
import { execNode } from '../docker-exec.ts';
import { ROOT, tempDir, until } from '../helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const BODY = readFileSync(join(IRIS, 'requests', 'setosa.json'));

/** The script: interfaces under /sys/class/net, and what connecting to each target gives. */
function probeScript(targets: Record<string, { host: string; port: number } | { path: string }>): string {
  return `
const fs = require('node:fs');
const net = require('node:net');
const targets = ${JSON.stringify(targets)};
const attempt = (opts) => new Promise((resolve) => {
  const s = net.connect(opts);
  s.setTimeout(3000, () => { s.destroy(); resolve('timeout'); });
  s.on('connect', () => { s.destroy(); resolve('connected'); });
  s.on('error', (e) => resolve(e.code || String(e)));
});
(async () => {
  const out = { interfaces: fs.readdirSync('/sys/class/net').sort(), connect: {} };
  for (const [name, opts] of Object.entries(targets)) out.connect[name] = await attempt(opts);
  process.stdout.write(JSON.stringify(out));
})();
`;
}

let tag: string | undefined;
async function irisImage(engine: DockerEngine): Promise<string> {
  if (tag === undefined) {
    const built = await buildImage({ dir: IRIS, base: await hostBase() });
    tag = `${uniqueName('ferry-sealed-iris')}:1`;
    await loadIntoEngine(engine, built.image, tag);
  }
  return tag;
}

after(async () => {
  if (tag !== undefined) await requireDocker().removeImage(tag, true);
});

describe('sealed docker replicas on the platform', () => {
  const home = tempDir('ferry-sealed-');
  const engine = requireDocker();
  let platform: Platform;
  let client: ControlClient;

  before(async () => {
    const image = await irisImage(engine);
    platform = await startPlatform({
      home: home.path,
      runtime: 'docker',
      apiPort: 0,
      gatewayPort: 0,
      resyncMs: 500,
    });
    client = new ControlClient({ url: platform.apiUrl, token: platform.adminToken! });
    await client.createModel('iris');
    await client.addVersion('iris', { version: '1', image });
    await client.deploy({ name: 'iris', model: 'iris', version: '1', replicas: 2, public: true });
    await until(
      '2 ready replicas',
      async () => (await client.replicas('iris')).filter((r) => r.state === 'ready').length === 2,
    );
  });

  after(async () => {
    await platform?.stop({ removeReplicas: true });
    for (const c of await engine.listByLabel({ 'ferry.dev/platform': platformId(home.path) }))
      await engine.remove(c.id);
    home.remove();
  });

  test('the model answers through the gateway, which reaches each replica over its unix socket', async () => {
    const replicas = await client.replicas('iris');
    for (const r of replicas) {
      const socket = socketPathOf(r.url);
      assert.ok(
        socket?.startsWith(join(home.path, 'sockets')),
        `${r.url} is a socket under $FERRY_HOME/sockets`,
      );
      assert.ok(statSync(socket!).isSocket());
      // Tracing is off here: no OTLP relay, the socket is the directory's only way to the host.
      if (!process.env.OTEL_EXPORTER_OTLP_ENDPOINT && !process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
        assert.equal(existsSync(join(dirname(socket!), 'otlp.sock')), false);
    }
    assert.equal(
      statSync(join(home.path, 'sockets')).mode & 0o777,
      0o700,
      'only Ferry may pass the socket root',
    );
    const ids = new Set(replicas.map((r) => r.id));
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${platform.gatewayUrl}/v2/models/iris/infer`, {
        method: 'POST',
        body: BODY,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
      assert.deepEqual(body.outputs.find((o) => o.name === 'label')?.data, [0]);
      assert.ok(ids.has(res.headers.get('x-ferry-replica') ?? ''), 'answered by one of the sealed replicas');
    }
  });

  test('inside a replica: only loopback; the API, the gateway and another replica are out of reach', async () => {
    const [one, other] = await client.replicas('iris');
    assert.ok(one && other);
    const info = await engine.docker.getContainer(one.id).inspect();
    assert.equal(info.HostConfig.NetworkMode, 'none');
    assert.deepEqual(Object.keys(info.NetworkSettings.Networks ?? {}), ['none']);
    const port = (url: string) => Number(new URL(url).port);
    const otherSocket = socketPathOf(other.url)!;
    const seen = JSON.parse(
      await execNode(
        engine,
        one.id,
        probeScript({
          api: { host: '127.0.0.1', port: port(platform.apiUrl) },
          gateway: { host: '127.0.0.1', port: port(platform.gatewayUrl) },
          // Where the other replica's socket is on the host, and where it would be were it mounted here too.
          otherReplica: { path: otherSocket },
          otherReplicaDir: {
            path: join('/run/ferry', '..', dirname(otherSocket).split('/').pop()!, 'ferry.sock'),
          },
          // A control: the probe does connect where something listens for it (its own server's socket).
          ownSocket: { path: '/run/ferry/ferry.sock' },
        }),
      ),
    ) as { interfaces: string[]; connect: Record<string, string> };
    assert.deepEqual(seen.interfaces, ['lo'], 'no network interface but its own loopback');
    assert.equal(seen.connect.ownSocket, 'connected', 'the probe itself works');
    assert.equal(
      seen.connect.api,
      'ECONNREFUSED',
      "the API's port: nothing there on the replica's own loopback",
    );
    assert.equal(seen.connect.gateway, 'ECONNREFUSED');
    assert.equal(
      seen.connect.otherReplica,
      'ENOENT',
      "another replica's socket is not in this container at all",
    );
    assert.equal(seen.connect.otherReplicaDir, 'ENOENT');
  });
});

describe('a docker replica that declares egress', () => {
  const engine = requireDocker();
  const state = tempDir('ferry-egress-');
  const labels = { [TEST_LABEL]: uniqueName('egress') };
  const network = uniqueName('ferry-egress-test');

  after(async () => {
    await cleanupContainers(labels);
    await engine.removeNetwork(network).catch(() => undefined);
    state.remove();
  });

  test('joins a bridge network of its own (never the host), keeps its socket, and the network goes with it', async () => {
    const runtime = new DockerRuntime(engine, { socketDir: join(state.path, 'sockets') });
    const r = await runtime.ensure({
      name: uniqueName('ferry-egress'),
      labels,
      image: await irisImage(engine),
      egressNetwork: network,
    });
    await until('ready over its socket', async () => readiness(r.url));
    const info = await engine.docker.getContainer(r.id).inspect();
    assert.equal(info.HostConfig.NetworkMode, network);
    assert.deepEqual(Object.keys(info.NetworkSettings.Networks ?? {}), [network]);
    const net = await engine.docker.getNetwork(network).inspect();
    assert.equal(net.Driver, 'bridge');
    assert.equal(net.Internal, false);
    assert.equal(
      net.Options?.['com.docker.network.bridge.enable_icc'],
      'false',
      'replicas on it cannot reach each other',
    );
    const seen = JSON.parse(await execNode(engine, r.id, probeScript({}))) as { interfaces: string[] };
    assert.equal(seen.interfaces.length, 2, `loopback and one interface: ${seen.interfaces}`);
    assert.ok(seen.interfaces.includes('lo'));
    await runtime.remove(r.id, 2000);
    assert.equal(
      (await engine.docker.listNetworks({ filters: { name: [network] } })).filter((n) => n.Name === network)
        .length,
      0,
      'the network is removed with its last replica',
    );
  });
});
