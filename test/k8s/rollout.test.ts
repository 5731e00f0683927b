/**
 * `ferry k8s apply | promote | undo | status` (src/k8s/rollout-run.ts) against the fake API server, whose test-side
 * controller writes Deployment status as kube-controller-manager would. What is checked beyond the commands'
 * results: at every write, the gateway's route file names only revisions whose Deployments have rolled out, and a
 * revision's objects are deleted only once every gateway runs a table without it (the gateway Deployment rolled out
 * with the routes' digest): no request is sent to a replica that is not there.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import type { RenderInput } from '../../src/k8s/render.ts';
import {
  applyDeployment,
  changeCallers,
  deleteDeployment,
  promoteDeployment,
  type RunContext,
  readState,
  setSecretKey,
  statusOf,
  undoDeployment,
} from '../../src/k8s/rollout-run.ts';
import { rolloutStatus } from '../../src/k8s/rollout-status.ts';
import { irisRevision } from '../../src/k8s/testdata/fixtures.ts';
import type { KubernetesObject } from '../../src/k8s/types.ts';
import { FERRY_BIN, freePort, ROOT, runCli, serve, tempDir, until } from '../helpers.ts';
import { type FakeApi, startFakeApiServer } from './fake-api-server.ts';

const NS = 'ferry-default';
const GATEWAY_IMAGE = `reg.example.com/ferry/gateway@sha256:${'a'.repeat(64)}`;
const tmp = tempDir('ferry-k8s-rollout-');
after(() => tmp.remove());

/** The spec's input for iris at version n (its image differs per n). */
const spec = (n: number, over: Partial<RenderInput['revisions'][number]> = {}): RenderInput => ({
  name: 'iris',
  tenant: 'default',
  public: false,
  replicas: 2,
  scaling: null,
  revisions: [irisRevision(n, { revision: 1, ...over })],
  traffic: [{ revision: 1, percent: 100 }],
});

interface Routes {
  deployments: Array<{ name: string; revisions: Array<{ revision: number; percent: number }> }>;
  callers: Array<{ id: string; hash: string }>;
}

function routesOf(api: FakeApi): { text: string; routes: Routes } | undefined {
  const cm = api.get('ConfigMap', NS, 'ferry-gateway-routes') as unknown as
    | { data: Record<string, string> }
    | undefined;
  const text = cm?.data['routes.json'];
  return text === undefined ? undefined : { text, routes: JSON.parse(text) as Routes };
}

function split(api: FakeApi): string {
  return (
    routesOf(api)
      ?.routes.deployments.find((d) => d.name === 'iris')
      ?.revisions.map((r) => `r${r.revision} ${r.percent}`)
      .join(', ') ?? ''
  );
}

function deployments(api: FakeApi): string[] {
  return api
    .objects({ kind: 'Deployment', namespace: NS })
    .map((d) => d.metadata.name)
    .sort();
}

/**
 * The invariants, checked around every write Ferry makes: the route file names only revisions whose Deployment
 * has rolled out; a revision's Deployment is deleted only when no route names it and every gateway (rolled out)
 * carries the routes' digest.
 */
function guarded(
  api: FakeApi,
  client: KubernetesObjectApi,
  violations: string[],
  release: (name: string) => void,
): KubernetesObjectApi {
  const check = (when: string) => {
    const r = routesOf(api);
    if (r === undefined) return;
    for (const d of r.routes.deployments)
      for (const rev of d.revisions) {
        const dep = api.get('Deployment', NS, `${d.name}-r${rev.revision}`);
        if (dep === undefined || rolloutStatus(dep).state !== 'complete')
          violations.push(
            `${when}: routes name ${d.name}-r${rev.revision}, which is ${dep === undefined ? 'absent' : rolloutStatus(dep).message}`,
          );
      }
  };
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'read')
        return async (...args: unknown[]) => {
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          const object = args[0] as KubernetesObject;
          if (object.kind === 'Deployment') release(object.metadata.name);
          return result;
        };
      if (prop === 'patch')
        return async (...args: unknown[]) => {
          const object = args[0] as KubernetesObject;
          const routesText = (object as { data?: Record<string, string> }).data?.['routes.json'];
          if (object.kind === 'ConfigMap' && routesText !== undefined) {
            // The new table: every revision it names must have rolled out already.
            const routes = JSON.parse(routesText) as Routes;
            for (const d of routes.deployments)
              for (const rev of d.revisions) {
                const dep = api.get('Deployment', NS, `${d.name}-r${rev.revision}`);
                if (dep === undefined || rolloutStatus(dep).state !== 'complete')
                  violations.push(`routes about to name ${d.name}-r${rev.revision}, not rolled out`);
              }
          }
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          check(`after applying ${object.kind}/${object.metadata.name}`);
          return result;
        };
      if (prop === 'delete')
        return async (...args: unknown[]) => {
          const object = args[0] as KubernetesObject;
          if (object.kind === 'Deployment') {
            const r = routesOf(api);
            if (
              r?.routes.deployments.some((d) =>
                d.revisions.some((rev) => `${d.name}-r${rev.revision}` === object.metadata.name),
              )
            )
              violations.push(`deleting ${object.metadata.name} while the routes name it`);
            const gateway = api.get('Deployment', NS, 'ferry-gateway') as unknown as {
              spec: { template: { metadata: { annotations: Record<string, string> } } };
            };
            const digest = createHash('sha256')
              .update(r?.text ?? '')
              .digest('hex');
            if (gateway.spec.template.metadata.annotations['ferry.dev/routes-sha256'] !== digest)
              violations.push(
                `deleting ${object.metadata.name}: the gateway's pods do not carry the current routes`,
              );
            if (rolloutStatus(gateway as unknown as KubernetesObject).state !== 'complete')
              violations.push(`deleting ${object.metadata.name} before the gateway rolled out its new table`);
          }
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * The fake cluster, with a controller that lets a Deployment's rollout complete only once Ferry has looked at it
 * (read it while waiting), so a step that does not wait for what it changed is caught however fast the fake is.
 */
async function setup(stuck: (name: string) => boolean = () => false) {
  const released = new Set<string>();
  const generationOf = (d: KubernetesObject | undefined) => `${d?.metadata.name}@${d?.metadata.generation}`;
  const api = await startFakeApiServer({
    controller: (d) => (stuck(d.metadata.name) ? 'stuck' : released.has(generationOf(d)) ? 'ready' : 'none'),
  });
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  const violations: string[] = [];
  const progress: string[] = [];
  const ctx: RunContext = {
    api: guarded(api, KubernetesObjectApi.makeApiClient(kc), violations, (name) => {
      const stored = api.get('Deployment', NS, name);
      if (stored === undefined || released.has(generationOf(stored))) return;
      released.add(generationOf(stored));
      api.setDeploymentOutcome(NS, name, undefined);
    }),
    namespace: NS,
    force: false,
    timeoutMs: 60_000,
    onProgress: (line) => progress.push(line),
    now: () => new Date(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    pollMs: 10,
  };
  return { api, ctx, violations, progress };
}

const request = (fromSpec: RenderInput, canary: number[] = []) => ({
  fromSpec,
  gatewayImage: GATEWAY_IMAGE,
  defaultGatewayImage: 'unused',
  canary,
  pauseMs: null,
  dryRun: false,
});

test('apply, a canary by steps with promote, undo: traffic moves only to rolled-out revisions, the old go last', async () => {
  const { api, ctx, violations, progress } = await setup();
  try {
    const first = await applyDeployment(ctx, request(spec(1)));
    assert.deepEqual([first.revision, first.outcome.kind], [1, 'done']);
    assert.equal(split(api), 'r1 100');
    assert.deepEqual(deployments(api), ['ferry-gateway', 'iris-r1']);
    const [status] = await statusOf(ctx.api, NS);
    assert.ok(
      status?.rollouts.every((r) => r.state === 'complete'),
      JSON.stringify(status),
    );

    // The same spec again: the same revision, nothing moves.
    const again = await applyDeployment(ctx, request(spec(1)));
    assert.deepEqual([again.revision, again.isNew, again.steps], [1, false, ['apply (no change)']]);

    // A new version by canary steps: it stops at 10% and waits for promote.
    const canary = await applyDeployment(ctx, request(spec(2), [10, 50, 100]));
    assert.deepEqual([canary.revision, canary.outcome.kind], [2, 'paused']);
    assert.equal(split(api), 'r1 90, r2 10');
    assert.deepEqual(deployments(api), ['ferry-gateway', 'iris-r1', 'iris-r2']);
    assert.match((await statusOf(ctx.api, NS))[0]?.canary ?? '', /canary at 10% of 10,50,100/);
    await assert.rejects(
      applyDeployment(ctx, request(spec(3))),
      /a canary of iris is at 10%.*|FERRY_CONFLICT/,
    );

    assert.deepEqual(await promoteDeployment(ctx, 'iris', null).then((o) => o.kind), 'paused');
    assert.equal(split(api), 'r1 50, r2 50');
    assert.equal((await promoteDeployment(ctx, 'iris', null)).kind, 'done');
    assert.equal(split(api), 'r2 100');
    assert.deepEqual(deployments(api), ['ferry-gateway', 'iris-r2'], 'r1 removed once the split left it');
    await assert.rejects(promoteDeployment(ctx, 'iris', null), /no canary waiting/);

    // Undo: r1 comes back (started, then switched to), r2 goes.
    const undone = await undoDeployment(ctx, 'iris');
    assert.deepEqual(undone.target.traffic, [{ revision: 1, percent: 100 }]);
    assert.equal(split(api), 'r1 100');
    assert.deepEqual(deployments(api), ['ferry-gateway', 'iris-r1']);
    // And to a revision by number.
    await undoDeployment(ctx, 'iris', 2);
    assert.equal(split(api), 'r2 100');
    // The next new version is r3: numbers are never reused.
    assert.equal((await applyDeployment(ctx, request(spec(3)))).revision, 3);

    // Delete: the routes leave it first, then its objects and its record go; nothing else of Ferry's.
    await deleteDeployment(ctx, 'iris');
    assert.deepEqual(deployments(api), ['ferry-gateway']);
    assert.deepEqual(routesOf(api)?.routes.deployments, []);
    assert.equal(api.get('ConfigMap', NS, 'ferry-deployment-iris'), undefined);
    assert.equal((await readState(ctx.api, NS)).deployments.size, 0);

    assert.deepEqual(violations, []);
    assert.ok(
      progress.some((l) => /start r2/.test(l)) && progress.some((l) => /remove r1/.test(l)),
      progress.join('\n'),
    );
    assert.deepEqual(api.errors, []);
  } finally {
    await api.close();
  }
});

test('a rollout that fails (ProgressDeadlineExceeded) stops before traffic moves; undo removes it', async () => {
  const { api, ctx, violations } = await setup((name) => name === 'iris-r2');
  try {
    await applyDeployment(ctx, request(spec(1)));
    await assert.rejects(applyDeployment(ctx, request(spec(2))), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'FERRY_DEADLINE_EXCEEDED');
      assert.match(e.message, /rollout failed: iris-r2: the rollout exceeded its progress deadline/);
      return true;
    });
    assert.equal(split(api), 'r1 100', 'traffic never moved');
    const [status] = await statusOf(ctx.api, NS);
    assert.ok(status?.rollouts.some((r) => r.state === 'failed'));
    await undoDeployment(ctx, 'iris');
    assert.deepEqual(deployments(api), ['ferry-gateway', 'iris-r1']);
    assert.equal(split(api), 'r1 100');
    assert.deepEqual(violations, []);
  } finally {
    await api.close();
  }
});

test('secrets: apply refuses a missing one by name; keys set one by one are all kept; tokens reach the route file as hashes', async () => {
  const { api, ctx } = await setup();
  try {
    const withSecrets = spec(1, { secretRefs: ['API_KEY', 'HF_TOKEN'] });
    await assert.rejects(
      applyDeployment(ctx, request(withSecrets)),
      /reads the secret\(s\) API_KEY, HF_TOKEN, which the Secret ferry-default\/iris-secrets does not have/,
    );
    assert.deepEqual(deployments(api), [], 'nothing applied');
    await setSecretKey(ctx, 'iris', 'API_KEY', 'k-1');
    await setSecretKey(ctx, 'iris', 'HF_TOKEN', 'hf-1');
    await setSecretKey(ctx, 'iris', 'API_KEY', 'k-2');
    const secret = api.get('Secret', NS, 'iris-secrets') as unknown as { data: Record<string, string> };
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      ),
      { API_KEY: 'k-2', HF_TOKEN: 'hf-1' },
    );
    await applyDeployment(ctx, request(withSecrets));
    // No value in anything Ferry rendered or recorded.
    for (const o of api.objects({ namespace: NS }).filter((o) => o.kind !== 'Secret'))
      assert.ok(!/k-2|hf-1/.test(JSON.stringify(o)), `${o.kind}/${o.metadata.name} holds a secret value`);
    await setSecretKey(ctx, 'iris', 'API_KEY', null);
    assert.deepEqual(
      Object.keys((api.get('Secret', NS, 'iris-secrets') as unknown as { data: object }).data),
      ['HF_TOKEN'],
    );

    await changeCallers(ctx, 'unused', (callers) => [
      ...callers,
      { id: 'c1', hash: 'f'.repeat(64), tenant: 'default' },
    ]);
    assert.deepEqual(
      routesOf(api)?.routes.callers.map((c) => c.id),
      ['c1'],
    );
    assert.equal((await readState(ctx.api, NS)).namespace?.callers.length, 1);
  } finally {
    await api.close();
  }
});

test('the CLI: apply, status, a canary, promote, undo, with a kubeconfig as kubectl has it; errors named', async () => {
  const api = await startFakeApiServer();
  try {
    const kubeconfig = join(tmp.path, 'kubeconfig');
    writeFileSync(kubeconfig, api.kubeconfig());
    const image = (n: number) => `reg.example.com/ml/iris@sha256:${String(n).repeat(64)}`;
    const k8s = (...args: string[]) => runCli(['k8s', ...args, '--kubeconfig', kubeconfig]);
    const first = await k8s('apply', 'examples/iris', '--image', image(1), '--gateway-image', GATEWAY_IMAGE);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /iris: r1 serves r1 100% in ferry-default/);
    const status = await k8s('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /iris: r1 100%\n {2}ok {3}iris-r1: 1 of 1 replicas available/);
    const canary = await k8s('apply', 'examples/iris', '--image', image(2), '--canary', '25,100');
    assert.equal(canary.code, 0, canary.stderr);
    assert.match(canary.stdout, /canary at 25% to r2/);
    const promoted = await k8s('promote', 'iris');
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(promoted.stdout, /promoted; serves r2 100%/);
    const undone = await k8s('undo', 'iris', '--to-revision', '1');
    assert.equal(undone.code, 0, undone.stderr);
    assert.match(undone.stdout, /back; serves r1 100%/);

    const missing = await k8s('undo', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no deployment nope in namespace ferry-default \(there: iris\)/);
    const noContext = await k8s('status', '--context', 'elsewhere');
    assert.match(noContext.stderr, /the kubeconfig has no context elsewhere \(it has: ferry-fake\)/);
  } finally {
    await api.close();
  }
  // The cluster gone: named, not a stack.
  const gone = await runCli(['k8s', 'status', '--kubeconfig', join(tmp.path, 'kubeconfig')]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /cannot reach the Kubernetes API server http:\/\/127\.0\.0\.1:\d+/);
});

test('the route file Ferry applies, served by a real ferry gateway: a token from `k8s token create` is let in, none or a revoked one is not', async () => {
  const api = await startFakeApiServer();
  const replica = await serve([join(ROOT, 'examples/iris')]);
  let gateway: ReturnType<typeof spawn> | undefined;
  try {
    const kubeconfig = join(tmp.path, 'kubeconfig-token');
    writeFileSync(kubeconfig, api.kubeconfig());
    const k8s = (...args: string[]) => runCli(['k8s', ...args, '--kubeconfig', kubeconfig]);
    const image = `reg.example.com/ml/iris@sha256:${'1'.repeat(64)}`;
    const applied = await k8s('apply', 'examples/iris', '--image', image, '--gateway-image', GATEWAY_IMAGE);
    assert.equal(applied.code, 0, applied.stderr);
    const created = await k8s('token', 'create', '--deployment', 'iris');
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    assert.match(token, /^ferry_[0-9a-f]{16}_[\w-]{43}$/);
    assert.ok(
      !JSON.stringify(api.objects({ namespace: NS })).includes(token),
      'the token itself is nowhere in the cluster',
    );

    // The route file as the gateway's pods mount it; the one edit: the Service's cluster DNS name becomes this
    // replica's address (no cluster DNS here).
    const file = join(tmp.path, 'routes.json');
    const syncRoutes = () => {
      const routes = routesOf(api)!.routes as unknown as {
        deployments: Array<{ revisions: Array<{ service: unknown }> }>;
      };
      for (const d of routes.deployments)
        for (const r of d.revisions)
          r.service = { host: '127.0.0.1', port: Number(new URL(replica.url).port) };
      writeFileSync(file, JSON.stringify(routes));
    };
    syncRoutes();
    const port = await freePort();
    const g = spawn(
      process.execPath,
      [FERRY_BIN, 'gateway', '--routes', file, '--port', String(port), '--check-every', '100ms'],
      {
        env: { ...process.env, FERRY_LOG_LEVEL: 'warn' },
      },
    );
    gateway = g;
    const infer = (headers: Record<string, string> = {}) =>
      fetch(`http://127.0.0.1:${port}/v2/models/iris/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: readFileSync(join(ROOT, 'examples/iris/requests/setosa.json')),
      }).then(
        async (r) => ({ status: r.status, text: await r.text() }),
        () => ({ status: 0, text: '' }),
      );
    await until('the gateway answers', async () => {
      if (g.exitCode !== null) throw new Error(`ferry gateway exited ${g.exitCode}`);
      return (await infer()).status !== 0;
    });
    assert.equal((await infer()).status, 401, 'private: no token, no answer');
    const ok = await infer({ authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(JSON.parse(ok.text).outputs[0].data, [0]);
    assert.equal((await infer({ authorization: `Bearer ${token}x` })).status, 401);

    const id = token.split('_')[1]!;
    const revoked = await k8s('token', 'revoke', id);
    assert.equal(revoked.code, 0, revoked.stderr);
    syncRoutes();
    await until(
      'the gateway refuses the revoked token',
      async () => (await infer({ authorization: `Bearer ${token}` })).status === 401,
    );
  } finally {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((r) => gateway!.once('exit', r));
      gateway.kill('SIGKILL');
      await exited;
    }
    await replica.close();
    await api.close();
  }
});
