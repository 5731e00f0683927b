/**
 * Ferry's gateway as a Swarm service on a real 3-node swarm (test/swarm/harness.ts), as src/runtime/
 * swarm-service.ts makes it: one task per node on a host-mode published port, the route file pulled from a URL
 * with its token (a Swarm secret), replicas found by `tasks.<service>` on an internal overlay. A route server
 * stands in for the control plane inside the lab (the bridge namespace, 10.231.0.1). What it shows: every node's
 * gateway answers an inference routed to revision 1; the route file switched to revision 2 reaches every gateway
 * without restarting it (the seconds per node are printed; the gateways poll every second).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Dockerode from 'dockerode';
import { Agent, fetch } from 'undici';
import { FERRY_VERSION } from '../../src/core/version.ts';
import { DockerSwarmEngine } from '../../src/runtime/swarm-engine.ts';
import { gatewayService, revisionService } from '../../src/runtime/swarm-service.ts';
import { ROOT, runCli } from '../helpers.ts';
import { type Swarm, startSwarm, swarmSkip, waitFor } from './harness.ts';

const LABELS = { 'app.kubernetes.io/managed-by': 'ferry', 'ferry.dev/test': 'swarm-gateway' };
const TOKEN = 'ferry_gw_test_token_0123456789';
const ROUTES_PORT = 7071;

/** The route server: the file, with an ETag, to a bearer of the token only (what the control plane will serve). */
const SERVER = `
const http = require('node:http'); const fs = require('node:fs'); const crypto = require('node:crypto');
const [file, token, port, host] = process.argv.slice(2);
http.createServer((req, res) => {
  if (req.headers.authorization !== 'Bearer ' + token) { res.writeHead(401).end('{"code":"FERRY_UNAUTHORIZED"}'); return; }
  const body = fs.readFileSync(file, 'utf8');
  const etag = '"' + crypto.createHash('sha256').update(body).digest('hex').slice(0, 16) + '"';
  if (req.headers['if-none-match'] === etag) { res.writeHead(304).end(); return; }
  res.writeHead(200, { 'content-type': 'application/json', etag }).end(body);
}).listen(Number(port), host, () => console.log('listening'));
`;

const routesFor = (revision: number) =>
  JSON.stringify({
    deployments: [
      {
        name: 'iris',
        public: true,
        revisions: [
          {
            revision,
            percent: 100,
            shadow: 0,
            servedName: 'iris',
            service: { host: `tasks.ferry-t-iris-r${revision}`, port: 8080 },
          },
        ],
      },
    ],
    callers: [],
  });

describe('the gateway as a Swarm service', { skip: swarmSkip }, () => {
  let swarm: Swarm | undefined;
  let server: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-swarm-gateway-'));
  after(async () => {
    if (server?.exitCode === null) {
      const gone = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await gone;
    }
    await swarm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('one task per node, routes pulled from a URL: a switch of revision reaches every gateway without a restart', async (t) => {
    // Two versions of iris and the gateway, built by Ferry on this machine's engine.
    const v2 = join(dir, 'iris-2');
    cpSync(join(ROOT, 'examples/iris'), v2, { recursive: true });
    writeFileSync(
      join(v2, 'ferry.yaml'),
      readFileSync(join(v2, 'ferry.yaml'), 'utf8').replace('version: "1"', 'version: "2"'),
    );
    for (const [source, tag] of [
      ['examples/iris', 'ferry-swarm-gw/iris:1'],
      [v2, 'ferry-swarm-gw/iris:2'],
    ] as const) {
      const built = await runCli(['build', source, '-t', tag]);
      assert.equal(built.code, 0, built.stderr);
    }
    const gatewayBuilt = await runCli(['gateway-image']);
    assert.equal(gatewayBuilt.code, 0, gatewayBuilt.stderr);

    swarm = await startSwarm({ prefix: 'fswg', offline: false, egress: true });
    const registry = await swarm.registry();
    const pinned = new Map<string, string>();
    for (const image of [
      'ferry-swarm-gw/iris:1',
      'ferry-swarm-gw/iris:2',
      `ferry-gateway:${FERRY_VERSION}`,
    ]) {
      await swarm.loadImage(image);
      const ref = `${registry}/${image}`;
      await swarm.docker(1, ['tag', image, ref], { check: true });
      const push = await swarm.docker(1, ['push', ref], { check: true, timeoutMs: 120_000 });
      const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
      assert.ok(digest, push.stdout);
      pinned.set(image, `${ref.replace(/:[^:/]+$/, '')}@${digest}`);
    }

    // The route server, inside the lab.
    const routes = join(dir, 'routes.json');
    writeFileSync(routes, routesFor(1));
    const script = join(dir, 'routes-server.cjs');
    writeFileSync(script, SERVER);
    server = spawn(
      'ip',
      [
        'netns',
        'exec',
        swarm.bridge.netns,
        process.execPath,
        script,
        routes,
        TOKEN,
        String(ROUTES_PORT),
        swarm.bridge.address,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once('data', () => resolve());
      server!.once('exit', (code) => reject(new Error(`route server exited ${code}`)));
    });

    const engine = new DockerSwarmEngine(
      new Dockerode({ socketPath: swarm.nodes[0]!.dockerHost.slice('unix://'.length) }),
    );
    const irisNet = await engine.ensureNetwork('ferry-t-iris', LABELS, true);
    const egress = await engine.ensureNetwork('ferry-gateway', LABELS, false);
    for (const revision of [1, 2])
      await engine.createService(
        revisionService({
          tenant: 't',
          deployment: 'iris',
          revision,
          image: pinned.get(`ferry-swarm-gw/iris:${revision}`)!,
          replicas: 2,
          env: {},
          secrets: [],
          cpus: 0.5,
          memoryBytes: 256 * 1024 ** 2,
          gpus: 0,
          constraints: [],
          network: irisNet,
          startupTimeoutMs: 60_000,
          shutdownTimeoutS: 5,
          labels: { ...LABELS, 'ferry.dev/revision': String(revision) },
        }),
      );
    const tokenId = await engine.createSecret('ferry-gateway-token-v1', TOKEN, LABELS);
    await engine.createService(
      gatewayService({
        image: pinned.get(`ferry-gateway:${FERRY_VERSION}`)!,
        replicas: 3,
        publishedPort: 8080,
        routesUrl: `http://${swarm.bridge.address}:${ROUTES_PORT}/v1/gateway/routes`,
        token: { secretId: tokenId, secretName: 'ferry-gateway-token-v1' },
        networks: [irisNet],
        egressNetwork: egress,
        labels: { ...LABELS, 'ferry.dev/component': 'gateway' },
      }),
    );

    const sockets = await Promise.all(swarm.nodes.map((n) => swarm!.proxy(n.address, 8080)));
    const versionAt = async (socketPath: string): Promise<string | undefined> => {
      const dispatcher = new Agent({ connect: { socketPath } });
      try {
        const res = await fetch('http://lab/v2/models/iris/infer', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: readFileSync(join(ROOT, 'examples/iris/requests/setosa.json')),
          dispatcher,
          signal: AbortSignal.timeout(5000),
        });
        const body = (await res.json()) as { model_version?: string; outputs?: Array<{ data: number[] }> };
        return res.status === 200 && body.outputs?.[0]?.data[0] === 0 ? body.model_version : undefined;
      } catch {
        return undefined;
      } finally {
        await dispatcher.close();
      }
    };
    const began = Date.now();
    for (const [i, socket] of sockets.entries())
      await waitFor(
        `the gateway on node ${i + 1} serves iris r1`,
        async () => (await versionAt(socket)) === '1',
        {
          timeoutMs: 180_000,
          everyMs: 500,
          detail: async () => {
            const services = await engine.services(LABELS);
            const tasks = await Promise.all(
              services.map(async (x) => [
                x.name,
                (await engine.tasks(x.id)).map((k) => [k.state, k.message, k.error]),
              ]),
            );
            const logs = await swarm!.docker(1, ['service', 'logs', '--tail', '15', 'ferry-gateway']);
            return `${JSON.stringify(tasks)}\n${logs.stdout}${logs.stderr}`;
          },
        },
      );
    t.diagnostic(
      `every node's gateway served iris r1 ${((Date.now() - began) / 1000).toFixed(1)} s after the services were created`,
    );
    const gatewayTasks = async () =>
      (await engine.tasks((await engine.services({ 'ferry.dev/component': 'gateway' }))[0]!.id)).filter(
        (x) => x.state === 'running',
      );
    const before = (await gatewayTasks()).map((x) => x.id).sort();
    assert.equal(before.length, 3, 'one gateway task per node');

    // The switch: the file changes; each gateway picks it up on its own, with no restart.
    writeFileSync(routes, routesFor(2));
    const switchedAt = Date.now();
    const seconds = await Promise.all(
      sockets.map(async (socket, i) => {
        await waitFor(
          `the gateway on node ${i + 1} serves iris r2`,
          async () => (await versionAt(socket)) === '2',
          {
            timeoutMs: 30_000,
            everyMs: 50,
          },
        );
        return (Date.now() - switchedAt) / 1000;
      }),
    );
    t.diagnostic(
      `the switch to r2 reached the gateways after ${seconds.map((s) => s.toFixed(2)).join(' / ')} s`,
    );
    console.log(
      `[swarm gateway] route change to every gateway: ${seconds.map((s) => s.toFixed(2)).join(' / ')} s`,
    );
    assert.deepEqual((await gatewayTasks()).map((x) => x.id).sort(), before, 'no gateway task was restarted');
  });
});
