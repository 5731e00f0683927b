/**
 * `ferry k8s` verbs under a steady load, on a cluster emulated as far as requests go: the fake API server holds the
 * objects; a test-side "kubelet" runs a real model server (in this process) for each model-server Deployment while
 * it exists, whose rollout completes only once that server answers ready, and keeps a deleted one serving for a
 * moment before it drains (the pod's preStop sleep); the gateway is a real `ferry gateway` process whose route file
 * is the ConfigMap as it stands when the gateway's Deployment has rolled out (a new gateway pod mounts the current
 * ConfigMap; the rollout takes longer than a model server's preStop, as on a cluster), the one edit being each
 * revision's cluster DNS name replaced by its server's address.
 *
 * What it shows: while 4 clients call the gateway without pause, apply (a second version by canary steps),
 * promote, undo and a plain re-apply fail no request.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FERRY_BIN, freePort, ROOT, runCli, serve, type TestServer, tempDir, until } from '../helpers.ts';
import { type FakeApi, startFakeApiServer } from './fake-api-server.ts';

const NS = 'ferry-default';
const tmp = tempDir('ferry-k8s-emulated-');
after(() => tmp.remove());

const IMAGE = (n: number) => `reg.example.com/ml/iris@sha256:${String(n).repeat(64)}`;
/** The preStop sleep of a model server's pod, shortened: a deleted pod serves this long before it drains. */
const PRE_STOP_MS = 500;
/**
 * How long a gateway rollout takes (new pods start, old ones wait out their preStop): longer than a model server's
 * preStop, as on a cluster, so a revision removed before every gateway has left it is still called after its pods
 * are gone, and the load sees it.
 */
const GATEWAY_ROLLOUT_MS = 1500;

interface Pod {
  server?: TestServer;
  starting: Promise<void>;
  port: number;
}

/** The emulated kubelet: a model server per model-server Deployment, by its image. */
class Kubelet {
  readonly pods = new Map<string, Pod>();
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(
    private readonly api: () => FakeApi,
    private readonly dirs: Map<string, string>,
  ) {}

  /** The controller's answer for a Deployment: model servers are ready once their server is. */
  outcome(name: string): 'ready' | 'none' {
    return this.pods.get(name)?.server === undefined ? 'none' : 'ready';
  }

  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        this.sync();
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
  }

  sync(): void {
    const deployments = this.api()
      .objects({ kind: 'Deployment', namespace: NS })
      .filter((d) => d.metadata.labels?.['app.kubernetes.io/component'] === 'model-server');
    for (const d of deployments) {
      const name = d.metadata.name;
      if (this.pods.has(name)) continue;
      const image = (
        d as unknown as { spec: { template: { spec: { containers: Array<{ image: string }> } } } }
      ).spec.template.spec.containers[0]!.image;
      const dir = this.dirs.get(image);
      if (dir === undefined) throw new Error(`no model for image ${image}`);
      const pod: Pod = { starting: Promise.resolve(), port: 0 };
      pod.starting = serve([dir]).then((server) => {
        pod.server = server;
        pod.port = Number(new URL(server.url).port);
        this.api().setDeploymentOutcome(NS, name, undefined); // the controller looks again: ready now
      });
      this.pods.set(name, pod);
    }
    const live = new Set(deployments.map((d) => d.metadata.name));
    for (const [name, pod] of this.pods)
      if (!live.has(name)) {
        this.pods.delete(name);
        // preStop: the pod still serves while endpoints and gateways converge, then drains and stops.
        void pod.starting.then(async () => {
          await new Promise((r) => setTimeout(r, PRE_STOP_MS));
          await pod.server?.close();
        });
      }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    await Promise.all([...this.pods.values()].map((p) => p.starting.then(() => p.server?.close())));
  }
}

test('apply, a canary by steps, promote, undo and re-apply under a steady load through the gateway: no failed request', async () => {
  // Two versions of iris, each an image.
  const v2 = join(tmp.path, 'iris-2');
  cpSync(join(ROOT, 'examples/iris'), v2, { recursive: true });
  writeFileSync(
    join(v2, 'ferry.yaml'),
    readFileSync(join(v2, 'ferry.yaml'), 'utf8').replace('version: "1"', 'version: "2"'),
  );
  const dirs = new Map([
    [IMAGE(1), join(ROOT, 'examples/iris')],
    [IMAGE(2), v2],
  ]);
  let fake: FakeApi | undefined;
  const kubelet = new Kubelet(() => fake!, dirs);
  const routesFile = join(tmp.path, 'routes.json');
  let mounted = JSON.stringify({ deployments: [], callers: [] });
  writeFileSync(routesFile, mounted);
  /** The gateway's pods roll out with the ConfigMap as it is now; true when that changed their table. */
  const mountRoutes = (): boolean => {
    const cm = fake!.get('ConfigMap', NS, 'ferry-gateway-routes') as unknown as {
      data: Record<string, string>;
    };
    const routes = JSON.parse(cm.data['routes.json']!) as {
      deployments: Array<{ name: string; revisions: Array<{ revision: number; service: unknown }> }>;
    };
    for (const d of routes.deployments)
      for (const r of d.revisions)
        r.service = { host: '127.0.0.1', port: kubelet.pods.get(`${d.name}-r${r.revision}`)?.port || 1 };
    const text = JSON.stringify(routes);
    if (text === mounted) return false;
    mounted = text;
    writeFileSync(routesFile, text);
    return true;
  };
  /** Route files the gateway has taken (its log says so): a rollout is over once the gateway runs the new one. */
  let reloads = 0;
  const gatewayRolledOut = new Set<number>();
  const gatewayRolling = new Set<number>();
  fake = await startFakeApiServer({
    controller: (d) => {
      if (d.metadata.name !== 'ferry-gateway') return kubelet.outcome(d.metadata.name);
      const generation = d.metadata.generation ?? 0;
      if (gatewayRolledOut.has(generation)) return 'ready';
      if (gatewayRolling.has(generation)) return 'none';
      gatewayRolling.add(generation);
      // The rollout takes its time; at its end the gateway runs with the ConfigMap as it is then (a condition:
      // the gateway has logged taking the new file, however busy the machine).
      setTimeout(() => {
        const before = reloads;
        const changed = mountRoutes();
        void until('the gateway takes the new route file', () => !changed || reloads > before).then(() => {
          gatewayRolledOut.add(generation);
          fake?.setDeploymentOutcome(NS, 'ferry-gateway', undefined);
        });
      }, GATEWAY_ROLLOUT_MS);
      return 'none';
    },
  });
  kubelet.start();
  const port = await freePort();
  const gateway = spawn(
    process.execPath,
    [FERRY_BIN, 'gateway', '--routes', routesFile, '--port', String(port), '--check-every', '100ms'],
    { env: { ...process.env, FERRY_LOG_LEVEL: 'info' } },
  );
  let gatewayUp = false;
  gateway.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    reloads += text.split('route file changed').length - 1;
    gatewayUp ||= text.includes('gateway ready');
  });
  // Up before the first apply: a file written while it starts would be its first table, not a logged change.
  await until('the gateway is up', () => gatewayUp);
  const kubeconfig = join(tmp.path, 'kubeconfig');
  writeFileSync(kubeconfig, fake.kubeconfig());
  const k8s = async (...args: string[]) => {
    const r = await runCli(['k8s', ...args, '--kubeconfig', kubeconfig]);
    assert.equal(r.code, 0, `ferry k8s ${args.join(' ')}\n${r.stderr}`);
    return r.stdout;
  };
  const body = readFileSync(join(ROOT, 'examples/iris/requests/setosa.json'));
  const call = () =>
    fetch(`http://127.0.0.1:${port}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    }).then(
      async (r) => ({ status: r.status, text: await r.text() }),
      (e: Error) => ({ status: 0, text: String((e.cause as Error | undefined)?.message ?? e.message) }),
    );
  try {
    await k8s('apply', 'examples/iris', '--image', IMAGE(1), '--public');
    await until('the gateway serves iris', async () => (await call()).status === 200);

    // The load: 4 clients, each request after the last, until the verbs are done (at most 200,000 requests).
    const tally = { ok: 0, failed: 0, versions: new Set<string>(), errors: new Map<string, number>() };
    let loading = true;
    const client = async () => {
      while (loading && tally.ok + tally.failed < 200_000) {
        const r = await call();
        if (r.status === 200) {
          tally.ok++;
          tally.versions.add(String(JSON.parse(r.text).model_version));
        } else {
          tally.failed++;
          const why = `${r.status} ${r.text.slice(0, 120)}`;
          tally.errors.set(why, (tally.errors.get(why) ?? 0) + 1);
        }
      }
    };
    const clients = [client(), client(), client(), client()];
    const verbs: Array<[string, number]> = [];
    const verb = async (...args: string[]) => {
      const before = tally.ok + tally.failed;
      await k8s(...args);
      verbs.push([args.slice(0, 2).join(' '), tally.ok + tally.failed - before]);
    };
    await verb('apply', v2, '--image', IMAGE(2), '--public', '--canary', '25,50,100');
    await verb('promote', 'iris');
    await verb('promote', 'iris');
    await verb('undo', 'iris');
    await verb('apply', v2, '--image', IMAGE(2), '--public');
    loading = false;
    await Promise.all(clients);
    console.log(
      `[k8s emulated] ${tally.ok} ok, ${tally.failed} failed; requests during each verb: ${verbs.map(([v, n]) => `${v} ${n}`).join(', ')}`,
    );
    assert.equal(tally.failed, 0, `failed: ${JSON.stringify([...tally.errors])}`);
    assert.deepEqual([...tally.versions].sort(), ['1', '2'], 'both versions answered');
    for (const [v, n] of verbs) assert.ok(n > 0, `no request ran during ${v}`);
    const status = await k8s('status', '--no-wait');
    assert.match(status, /iris: r3 100%/);
  } finally {
    const exited = new Promise((r) => gateway.once('exit', r));
    gateway.kill('SIGTERM');
    await exited;
    await kubelet.stop();
    await fake.close();
  }
});
