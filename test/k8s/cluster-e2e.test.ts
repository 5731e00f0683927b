/**
 * Ferry on a real Kubernetes cluster, end to end. It runs only when KUBECONFIG names a cluster and
 * FERRY_E2E_REGISTRY a registry that both this machine (push) and the cluster's nodes (pull) reach; otherwise it
 * is reported as skipped, with the reason. docs/kubernetes.md says how to run it on kind or k3d.
 *
 * Everything it makes is in two namespaces of its own (`ferry-e2e-<random>` and `<that>-client`), deleted at the
 * end whatever happens; nothing else of the cluster is touched.
 *
 * What it shows: two versions of iris pushed by digest and the gateway image pushed; `ferry k8s apply` of the first
 * (status complete, its pods non-root); a canary to the second by steps while a
 * load runs inside the cluster (a pod of the gateway's image calling the gateway's Service), `ferry k8s status`,
 * `ferry k8s undo`; the load's failed requests (an error, or an answer other than setosa's label), which must be 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli, tempDir } from '../helpers.ts';

const KUBECONFIG = process.env.KUBECONFIG;
const REGISTRY = process.env.FERRY_E2E_REGISTRY;
const skip =
  KUBECONFIG === undefined || KUBECONFIG === ''
    ? 'KUBECONFIG is not set: no cluster to run against (docs/kubernetes.md: "On a real cluster")'
    : REGISTRY === undefined || REGISTRY === ''
      ? 'FERRY_E2E_REGISTRY is not set: a registry the cluster pulls from is needed (docs/kubernetes.md)'
      : false;

const tenant = `e2e-${randomBytes(3).toString('hex')}`;
const NS = `ferry-${tenant}`;
const CLIENT_NS = `${NS}-client`;
const tmp = tempDir('ferry-k8s-e2e-');
after(() => {
  if (skip === false)
    for (const ns of [CLIENT_NS, NS])
      kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']);
  tmp.remove();
});

function kubectl(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('kubectl', args, { encoding: 'utf8', input, timeout: 300_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

async function ferry(args: string[]): Promise<string> {
  const r = await runCli(args);
  assert.equal(r.code, 0, `ferry ${args.join(' ')}\n${r.stderr}`);
  return r.stdout;
}

/** A copy of examples/iris whose ferry.yaml says `version` (so its image, and its revision, differ). */
function irisVersion(version: string): string {
  const dir = join(tmp.path, `iris-${version}`);
  cpSync('examples/iris', dir, { recursive: true });
  const spec = join(dir, 'ferry.yaml');
  writeFileSync(spec, readFileSync(spec, 'utf8').replace(/version: "1"/, `version: "${version}"`));
  return dir;
}

/** The load: a pod of the gateway's image (it has node) calling the gateway's Service for `seconds`. */
function loadPod(gatewayImage: string, seconds: number): string {
  const script = `
const url = 'http://ferry-gateway.${NS}.svc.cluster.local/v2/models/iris/infer';
const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] });
const end = Date.now() + ${seconds * 1000};
let ok = 0, failed = 0; const errors = {};
async function worker() {
  while (Date.now() < end) {
    try {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const answer = await r.text();
      const label = r.ok ? JSON.parse(answer).outputs.find((o) => o.name === 'label')?.data[0] : undefined;
      if (r.ok && label === 0) ok++; else { failed++; const why = r.ok ? 'wrong label ' + label : r.status; errors[why] = (errors[why] || 0) + 1; }
    } catch (e) { failed++; errors[e.cause?.code || e.message] = (errors[e.cause?.code || e.message] || 0) + 1; }
    await new Promise((r) => setTimeout(r, 20));
  }
}
Promise.all([worker(), worker(), worker(), worker()]).then(() => console.log(JSON.stringify({ ok, failed, errors })));
`;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'ferry-e2e-load', namespace: CLIENT_NS },
    spec: {
      restartPolicy: 'Never',
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'load',
          image: gatewayImage,
          command: ['node', '-e', script],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  });
}

test('on a real cluster: apply, infer, a canary under load, status, undo: no failed request', {
  skip,
}, async () => {
  const v1 = irisVersion('1');
  const v2 = irisVersion('2');
  // `ferry push` prints the image and its digest; the cluster pulls it by digest.
  const pushed = (out: string) => {
    const image = /^image\s+(\S+)/m.exec(out)?.[1];
    const digest = /^digest\s+(sha256:[0-9a-f]{64})/m.exec(out)?.[1];
    return image && digest ? `${image}@${digest}` : undefined;
  };
  const image1 = pushed(
    await ferry(['push', v1, '--registry', REGISTRY!, '-t', `${REGISTRY}/ferry-e2e/iris:1`]),
  );
  const image2 = pushed(
    await ferry(['push', v2, '--registry', REGISTRY!, '-t', `${REGISTRY}/ferry-e2e/iris:2`]),
  );
  const gateway = /ref\s+(\S+@sha256:[0-9a-f]{64})/.exec(
    await ferry(['gateway-image', '--push', '--registry', REGISTRY!]),
  )?.[1];
  assert.ok(image1 && image2 && gateway, 'images pushed by digest');

  const cluster = ['--tenant', tenant];
  await ferry(['k8s', 'apply', v1, '--image', image1, '--gateway-image', gateway, '--public', ...cluster]);
  assert.match(await ferry(['k8s', 'status', ...cluster]), /ok {3}iris-r1: \d+ of \d+ replicas available/);
  const pods = kubectl(['get', 'pods', '-n', NS, '-o', 'json']);
  assert.equal(pods.code, 0, pods.stderr);
  for (const pod of JSON.parse(pods.stdout).items)
    assert.equal(pod.spec.securityContext.runAsNonRoot, true, `${pod.metadata.name} runs as non-root`);

  // The load, from another namespace (Ferry's namespace denies what it does not allow).
  assert.equal(kubectl(['create', 'namespace', CLIENT_NS]).code, 0);
  const created = kubectl(['apply', '-f', '-'], loadPod(gateway, 150));
  assert.equal(created.code, 0, created.stderr);
  assert.equal(
    kubectl(['wait', '-n', CLIENT_NS, '--for=condition=Ready', 'pod/ferry-e2e-load', '--timeout=120s']).code,
    0,
  );

  await ferry(['k8s', 'apply', v2, '--image', image2, '--canary', '20,60,100', '--pause', '10s', ...cluster]);
  assert.match(await ferry(['k8s', 'status', 'iris', ...cluster]), /iris: r2 100%/);
  await ferry(['k8s', 'undo', 'iris', ...cluster]);
  assert.match(await ferry(['k8s', 'status', 'iris', ...cluster]), /iris: r1 100%/);

  const done = kubectl([
    'wait',
    '-n',
    CLIENT_NS,
    '--for=jsonpath={.status.phase}=Succeeded',
    'pod/ferry-e2e-load',
    '--timeout=300s',
  ]);
  assert.equal(done.code, 0, done.stderr);
  const logs = kubectl(['logs', '-n', CLIENT_NS, 'ferry-e2e-load']);
  const load = JSON.parse(logs.stdout.trim().split('\n').at(-1) ?? '{}') as {
    ok: number;
    failed: number;
    errors: object;
  };
  console.log(
    `[k8s e2e] load through the canary and the undo: ${load.ok} ok, ${load.failed} failed ${JSON.stringify(load.errors)}`,
  );
  assert.ok(load.ok > 0, 'the load reached the gateway');
  assert.equal(load.failed, 0, `failed requests: ${JSON.stringify(load.errors)}`);

  // Undo removed r2; nothing of Ferry's is left when the namespace goes (after()).
  const left = kubectl(['get', 'deployments', '-n', NS, '-o', 'name']);
  assert.deepEqual(left.stdout.trim().split('\n').sort(), [
    'deployment.apps/ferry-gateway',
    'deployment.apps/iris-r1',
  ]);
});
