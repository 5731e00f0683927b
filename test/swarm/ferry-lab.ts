/**
 * Ferry on the 3-node lab (harness.ts), as the Swarm runtime lays it out (src/runtime/swarm-service.ts): two
 * versions of iris as revision services `ferry-t-iris-r1` and `-r2` on an internal overlay, the gateway service
 * (one task per node, host-mode port 8080, its route file pulled from a URL with its token as a Swarm secret),
 * and a route server standing in for the control plane inside the lab (the bridge namespace). Images are built by
 * Ferry on this machine's engine, pushed to the lab's registry and pinned by digest.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { Agent, fetch } from 'undici';
import { FERRY_VERSION } from '../../src/core/version.ts';
import { DockerSwarmEngine } from '../../src/runtime/swarm-engine.ts';
import { gatewayService, revisionService } from '../../src/runtime/swarm-service.ts';
import { ROOT, runCli } from '../helpers.ts';
import { type Swarm, startSwarm } from './harness.ts';

export const LAB_LABELS = { 'app.kubernetes.io/managed-by': 'ferry', 'ferry.dev/test': 'swarm-lab' };
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

/** The route file: iris, all traffic to `revision`, found by its service's tasks. */
export function routesFor(revision: number): string {
  return JSON.stringify({
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
}

export interface FerryLab {
  swarm: Swarm;
  engine: DockerSwarmEngine;
  /** A unix socket per node reaching its gateway's published port (proxy()). */
  gateways: string[];
  /** Sets the route file the gateways pull. */
  route(revision: number): void;
  /** One inference through a gateway socket: the model version that answered setosa, or the failure. */
  infer(
    socket: string,
    timeoutMs?: number,
  ): Promise<{ ok: true; version: string } | { ok: false; why: string }>;
  stop(): Promise<void>;
}

export async function startFerryLab(prefix: string, dir: string, replicas = 2): Promise<FerryLab> {
  const v2 = join(dir, 'iris-2');
  cpSync(join(ROOT, 'examples/iris'), v2, { recursive: true });
  writeFileSync(
    join(v2, 'ferry.yaml'),
    readFileSync(join(v2, 'ferry.yaml'), 'utf8').replace('version: "1"', 'version: "2"'),
  );
  for (const [source, tag] of [
    ['examples/iris', 'ferry-swarm-lab/iris:1'],
    [v2, 'ferry-swarm-lab/iris:2'],
  ] as const) {
    const built = await runCli(['build', source, '-t', tag]);
    assert.equal(built.code, 0, built.stderr);
  }
  const gatewayBuilt = await runCli(['gateway-image']);
  assert.equal(gatewayBuilt.code, 0, gatewayBuilt.stderr);

  const swarm = await startSwarm({ prefix, offline: false, egress: true });
  let server: ChildProcess | undefined;
  const stop = async () => {
    if (server?.exitCode === null) {
      const gone = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await gone;
    }
    await swarm.stop();
  };
  try {
    const pinned = new Map<string, string>();
    for (const image of [
      'ferry-swarm-lab/iris:1',
      'ferry-swarm-lab/iris:2',
      `ferry-gateway:${FERRY_VERSION}`,
    ])
      pinned.set(image, await pushToLab(swarm, image));

    const routes = join(dir, 'routes.json');
    writeFileSync(routes, routesFor(1));
    const script = join(dir, 'routes-server.cjs');
    writeFileSync(script, SERVER);
    const args = [script, routes, TOKEN, String(ROUTES_PORT), swarm.bridge.address];
    server = spawn('ip', ['netns', 'exec', swarm.bridge.netns, process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once('data', () => resolve());
      server!.once('exit', (code) => reject(new Error(`route server exited ${code}`)));
    });

    const engine = new DockerSwarmEngine(
      new Dockerode({ socketPath: swarm.nodes[0]!.dockerHost.slice('unix://'.length) }),
    );
    const irisNet = await engine.ensureNetwork('ferry-t-iris', LAB_LABELS, true);
    const egress = await engine.ensureNetwork('ferry-gateway', LAB_LABELS, false);
    for (const revision of [1, 2])
      await engine.createService(
        revisionService({
          tenant: 't',
          deployment: 'iris',
          revision,
          image: pinned.get(`ferry-swarm-lab/iris:${revision}`)!,
          replicas,
          env: {},
          secrets: [],
          cpus: 0.5,
          memoryBytes: 256 * 1024 ** 2,
          gpus: 0,
          constraints: [],
          network: irisNet,
          startupTimeoutMs: 60_000,
          shutdownTimeoutS: 5,
          labels: { ...LAB_LABELS, 'ferry.dev/revision': String(revision) },
        }),
      );
    const tokenId = await engine.createSecret('ferry-gateway-token-v1', TOKEN, LAB_LABELS);
    await engine.createService(
      gatewayService({
        image: pinned.get(`ferry-gateway:${FERRY_VERSION}`)!,
        replicas: swarm.nodes.length,
        publishedPort: 8080,
        routesUrl: `http://${swarm.bridge.address}:${ROUTES_PORT}/v1/gateway/routes`,
        token: { secretId: tokenId, secretName: 'ferry-gateway-token-v1' },
        networks: [irisNet],
        egressNetwork: egress,
        labels: { ...LAB_LABELS, 'ferry.dev/component': 'gateway' },
      }),
    );
    const gateways = await Promise.all(swarm.nodes.map((n) => swarm.proxy(n.address, 8080)));
    const client = irisClient();
    return {
      swarm,
      engine,
      gateways,
      route: (revision) => writeFileSync(routes, routesFor(revision)),
      infer: client.infer,
      stop: async () => {
        await client.close();
        await stop();
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export type InferOutcome = { ok: true; version: string } | { ok: false; why: string };

/** One request of a load: when it was sent and ended, and how (the version that answered, or why it failed). */
export interface Outcome {
  sent: number;
  at: number;
  ok: boolean;
  version?: string;
  why?: string;
}

/**
 * Inferences of iris (setosa) through gateway unix sockets (Swarm.proxy), a keep-alive agent per socket: the model
 * version that answered setosa, or why not. `path` picks the deployment (default iris, the default tenant).
 */
export function irisClient(path = '/v2/models/iris/infer'): {
  infer(socket: string, timeoutMs?: number): Promise<InferOutcome>;
  close(): Promise<void>;
} {
  const body = readFileSync(join(ROOT, 'examples/iris/requests/setosa.json'));
  const agents = new Map<string, Agent>();
  return {
    async infer(socket, timeoutMs = 5000) {
      let dispatcher = agents.get(socket);
      if (dispatcher === undefined) {
        dispatcher = new Agent({ connect: { socketPath: socket } });
        agents.set(socket, dispatcher);
      }
      try {
        const res = await fetch(`http://lab${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          dispatcher,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        if (res.status !== 200) return { ok: false, why: `${res.status} ${text.slice(0, 100)}` };
        const answer = JSON.parse(text) as { model_version?: string; outputs?: Array<{ data: number[] }> };
        return answer.outputs?.[0]?.data[0] === 0
          ? { ok: true, version: String(answer.model_version) }
          : { ok: false, why: `wrong answer ${text.slice(0, 100)}` };
      } catch (error) {
        return { ok: false, why: String((error as Error).cause ?? (error as Error).message).slice(0, 100) };
      }
    },
    async close() {
      await Promise.all([...agents.values()].map((a) => a.close()));
    },
  };
}

/**
 * An image of this machine's engine in the lab's registry: copied into the nodes, pushed by node 1, returned pinned
 * by digest (`10.231.0.1:5000/<name>@sha256:...`).
 */
export async function pushToLab(swarm: Swarm, image: string): Promise<string> {
  const registry = await swarm.registry();
  await swarm.loadImage(image);
  const ref = `${registry}/${image}`;
  await swarm.docker(1, ['tag', image, ref], { check: true });
  const push = await swarm.docker(1, ['push', ref], { check: true, timeoutMs: 120_000 });
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
  assert.ok(digest, push.stdout);
  return `${ref.replace(/:[^:/]+$/, '')}@${digest}`;
}

/**
 * The figures of a run under load, as test diagnostics and on stdout (`[<tag>] ...`), ending with the whole run's
 * count of requests and of failed ones by reason.
 */
export function printReport(
  t: { diagnostic(message: string): void },
  tag: string,
  report: string[],
  outcomes: readonly Outcome[],
): void {
  const failed = outcomes.filter((o) => !o.ok);
  const reasons = new Map<string, number>();
  for (const f of failed) reasons.set(f.why ?? '', (reasons.get(f.why ?? '') ?? 0) + 1);
  report.push(`in all: ${outcomes.length} requests, ${failed.length} failed ${JSON.stringify([...reasons])}`);
  for (const line of report) {
    t.diagnostic(line);
    console.log(`[${tag}] ${line}`);
  }
}
