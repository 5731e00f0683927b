/**
 * `serverSideApply` and `prune` (src/k8s/apply.ts) against the fake API server (fake-api-server.ts): a render
 * applied as the cluster stores it (NetworkPolicy sources included), a conflict with another manager reported and
 * taken over with force, and what a later render no longer has pruned, by Ferry's labels only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { prune, serverSideApply } from '../../src/k8s/apply.ts';
import { type RenderInput, render } from '../../src/k8s/render.ts';
import { irisRevision } from '../../src/k8s/testdata/fixtures.ts';
import { objectProblems } from '../../src/k8s/validate.ts';
import { startFakeApiServer } from './fake-api-server.ts';

const iris = (revisions: number[], traffic: { revision: number; percent: number }[]): RenderInput => ({
  name: 'iris',
  tenant: 'ml',
  public: true,
  replicas: 2,
  scaling: null,
  revisions: revisions.map((n) => irisRevision(n)),
  traffic,
});
const OPTIONS = { gatewayImage: `reg.example.com/ferry/gateway@sha256:${'a'.repeat(64)}` };
const FERRY = 'app.kubernetes.io/managed-by=ferry';

/** Another manager's server-side apply, as `kubectl apply --server-side --force-conflicts` sends it. */
function kubectlApply(client: KubernetesObjectApi, object: Record<string, unknown>) {
  return client.patch(object as never, undefined, undefined, 'kubectl', true, PatchStrategy.ServerSideApply);
}

/** What the tests read of stored objects. */
interface Stored {
  spec: { replicas?: number; ingress?: Array<{ from?: unknown }> };
}

test('apply a render, conflict and force, then prune what the next render no longer has', async () => {
  const api = await startFakeApiServer({});
  try {
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig({ namespace: 'ferry-ml' }));
    const client = KubernetesObjectApi.makeApiClient(kc);

    const first = render(
      [
        iris(
          [1, 2],
          [
            { revision: 1, percent: 90 },
            { revision: 2, percent: 10 },
          ],
        ),
      ],
      OPTIONS,
    );
    assert.deepEqual(objectProblems(first), []);
    const report = await serverSideApply(client, first);
    assert.equal(report.applied.length, first.length);
    // Stored as rendered: a NetworkPolicy keeps its sources (client-node would drop `from` from plain objects).
    const policy = api.get('NetworkPolicy', 'ferry-ml', 'iris-r1') as unknown as Stored;
    assert.deepEqual(policy.spec.ingress?.[0]?.from, [
      { podSelector: { matchLabels: { 'app.kubernetes.io/component': 'gateway' } } },
    ]);

    // Someone scales by hand with kubectl (server-side apply, another manager): Ferry's next apply conflicts.
    await kubectlApply(client, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'iris-r1', namespace: 'ferry-ml' },
      spec: { replicas: 5 },
    });
    await assert.rejects(serverSideApply(client, first), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'FERRY_CONFLICT');
      assert.match(e.message, /Deployment\/ferry-ml\/iris-r1: .*kubectl/);
      assert.match((e as { hint?: string }).hint ?? '', /--force-conflicts/);
      return true;
    });
    await serverSideApply(client, first, { force: true });
    assert.equal((api.get('Deployment', 'ferry-ml', 'iris-r1') as unknown as Stored).spec.replicas, 2);

    // Revision 1 is gone from the split: its objects are pruned, nothing else (a ConfigMap of someone else stays).
    await kubectlApply(client, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'not-ferrys', namespace: 'ferry-ml' },
      data: { a: 'b' },
    });
    const second = render([iris([2], [{ revision: 2, percent: 100 }])], OPTIONS);
    await serverSideApply(client, second);
    const gone = await prune(client, 'ferry-ml', FERRY, second);
    assert.deepEqual(gone.sort(), [
      'Deployment/ferry-ml/iris-r1',
      'NetworkPolicy/ferry-ml/iris-r1',
      'PodDisruptionBudget/ferry-ml/iris-r1',
      'Service/ferry-ml/iris-r1',
    ]);
    assert.equal(api.get('Deployment', 'ferry-ml', 'iris-r1'), undefined);
    assert.ok(api.get('ConfigMap', 'ferry-ml', 'not-ferrys'), 'not Ferry’s: kept');
    assert.ok(api.get('Namespace', undefined, 'ferry-ml'), 'never a Namespace');
    assert.deepEqual(await prune(client, 'ferry-ml', FERRY, second), [], 'nothing left to prune');
  } finally {
    await api.close();
  }
});
