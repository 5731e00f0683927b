/**
 * The fake Kubernetes API server (test/k8s/fake-api-server.ts), over real HTTP on 127.0.0.1: driven with
 * @kubernetes/client-node (the client `ferry k8s apply` uses) and with kubectl (a client we did not write, so the
 * wire format is not just agreed with ourselves). Waits are on conditions (the controller's idle(), watch events),
 * never on time.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import {
  ApiException,
  type KubernetesObject as ClientObject,
  KubeConfig,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  Watch,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { type RenderInput, type RenderRevision, render, toYaml } from '../../src/k8s/render.ts';
import { irisRevision } from '../../src/k8s/testdata/fixtures.ts';
import type { KubernetesObject } from '../../src/k8s/types.ts';
import { tempDir } from '../helpers.ts';
import { type FakeApi, type FakeApiOptions, startFakeApiServer } from './fake-api-server.ts';

const tmp = tempDir('ferry-k8s-fake-');
after(() => tmp.remove());

/** Whether kubectl is here (its tests are skipped, visibly, when not). */
const KUBECTL_MISSING = await new Promise<boolean>((resolve) => {
  execFile('kubectl', ['version', '--client'], (err) => resolve(err !== null));
});

const GOLDEN = new URL('../../src/k8s/testdata/two-deployments.yaml', import.meta.url);
const NS = 'ferry-ml';

// biome-ignore lint/suspicious/noExplicitAny: API objects read field by field in assertions
type Obj = Record<string, any>;

async function withApi(
  options: FakeApiOptions,
  fn: (api: FakeApi, client: KubernetesObjectApi) => Promise<void>,
) {
  const api = await startFakeApiServer(options);
  try {
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig({ namespace: NS }));
    await fn(api, KubernetesObjectApi.makeApiClient(kc));
    assert.deepEqual(api.errors, [], 'the fake server hit no error of its own');
  } finally {
    await api.close();
  }
}

/** Server-side apply through client-node, as `ferry k8s apply` does. */
function apply(client: KubernetesObjectApi, obj: Obj, manager = 'ferry', force = false): Promise<Obj> {
  return client.patch(
    structuredClone(obj) as ClientObject,
    undefined,
    undefined,
    manager,
    force,
    PatchStrategy.ServerSideApply,
  ) as Promise<Obj>;
}

/** The Status body of a failed client-node call. */
async function failure(call: Promise<unknown>): Promise<{ code: number; status: Obj }> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body = err.body as unknown;
    return { code: err.code, status: typeof body === 'string' ? JSON.parse(body) : (body as Obj) };
  }
  assert.fail('the call succeeded');
}

/** A request with fetch (what no client library shapes for us). */
async function raw(
  api: FakeApi,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<{ status: number; json: Obj }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': contentType },
        }),
  });
  return { status: res.status, json: (await res.json()) as Obj };
}

const namespace = (name = NS): Obj => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

function deployment(
  name: string,
  o: {
    replicas?: number;
    image?: string;
    labels?: Record<string, string>;
    env?: Record<string, string>;
  } = {},
): Obj {
  const selector = { 'ferry.dev/deployment': name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'ferry', ...o.labels } },
    spec: {
      ...(o.replicas === undefined ? {} : { replicas: o.replicas }),
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: selector },
        spec: {
          containers: [
            {
              name: 'model-server',
              image: o.image ?? 'registry.example.com/ml/iris:1',
              env: Object.entries(o.env ?? {}).map(([k, v]) => ({ name: k, value: v })),
              ports: [{ name: 'http', containerPort: 8080 }],
            },
          ],
        },
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Render inputs (a deployment that scales to zero with KEDA)

const GATEWAY_IMAGE = `registry.example.com/ferry/gateway@sha256:${'c'.repeat(64)}`;

const REVISION: RenderRevision = irisRevision(2);

const KEDA_IRIS: RenderInput = {
  name: 'iris',
  tenant: 'ml',
  public: false,
  replicas: 1,
  scaling: {
    minReplicas: 0,
    maxReplicas: 4,
    target: 8,
    maxHeld: 100,
    maxHeldWaitMs: 30_000,
    scaleToZeroGraceMs: 30_000,
  },
  revisions: [REVISION],
  traffic: [{ revision: 2, percent: 100 }],
};

function goldenObjects(): KubernetesObject[] {
  return parseAllDocuments(readFileSync(GOLDEN, 'utf8')).map((d) => d.toJS() as KubernetesObject);
}

const manager = (obj: Obj, name: string, operation = 'Apply') =>
  (obj.metadata.managedFields as Obj[]).find((e) => e.manager === name && e.operation === operation);

test('discovery: the API groups, their preferred versions and resources, as client-node and kubectl read them', async () => {
  await withApi({}, async (api) => {
    const groups = (await raw(api, 'GET', '/apis')).json;
    assert.equal(groups.kind, 'APIGroupList');
    const apps = groups.groups.find((g: Obj) => g.name === 'apps');
    assert.deepEqual(apps.preferredVersion, { groupVersion: 'apps/v1', version: 'v1' });
    assert.deepEqual(groups.groups.map((g: Obj) => g.preferredVersion.groupVersion).sort(), [
      'apps/v1',
      'autoscaling/v2',
      'keda.sh/v1alpha1',
      'networking.k8s.io/v1',
      'policy/v1',
    ]);
    assert.deepEqual((await raw(api, 'GET', '/api')).json.versions, ['v1']);
    const core = (await raw(api, 'GET', '/api/v1')).json;
    assert.equal(core.kind, 'APIResourceList');
    assert.deepEqual(
      core.resources.filter((r: Obj) => !r.name.includes('/')).map((r: Obj) => r.kind),
      ['Namespace', 'ServiceAccount', 'ConfigMap', 'Secret', 'Service'],
    );
    const deployments = (await raw(api, 'GET', '/apis/apps/v1')).json.resources[0];
    assert.deepEqual(
      { ...deployments, verbs: [...deployments.verbs].sort() },
      {
        name: 'deployments',
        singularName: 'deployment',
        namespaced: true,
        kind: 'Deployment',
        verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
        shortNames: ['deploy'],
      },
    );
    const keda = (await raw(api, 'GET', '/apis/keda.sh/v1alpha1')).json.resources[0];
    assert.equal(keda.kind, 'ScaledObject');
    assert.equal((await raw(api, 'GET', '/version')).json.gitVersion, 'v1.32.0-ferry-fake');
    const missing = await raw(api, 'GET', '/apis/batch/v1');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.reason, 'NotFound');
  });
});

test('server-side apply through client-node: create (201), server fields, managedFields, no-op re-apply, generation', async () => {
  await withApi({}, async (api, client) => {
    await apply(client, namespace());
    const dep = deployment('iris-r1', { replicas: 2, env: { LOG_LEVEL: 'info' } });
    const created = await apply(client, dep);
    const request = api.requests.at(-1)!;
    assert.equal(request.status, 201);
    assert.equal(request.contentType, 'application/apply-patch+yaml');
    assert.deepEqual(request.query, { fieldManager: 'ferry', force: 'false' });
    assert.match(created.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.equal(created.metadata.generation, 1);
    assert.ok(created.metadata.creationTimestamp);
    const ferry = manager(created, 'ferry')!;
    assert.equal(ferry.apiVersion, 'apps/v1');
    assert.equal(ferry.fieldsType, 'FieldsV1');
    // Map keys to the leaves; containers by name, a container's env by name and ports by containerPort+protocol.
    const container =
      ferry.fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"model-server"}'];
    assert.deepEqual(Object.keys(container).sort(), ['.', 'f:env', 'f:image', 'f:name', 'f:ports']);
    assert.deepEqual(container['f:env']['k:{"name":"LOG_LEVEL"}'], { '.': {}, 'f:name': {}, 'f:value': {} });
    assert.ok(container['f:ports']['k:{"containerPort":8080,"protocol":"TCP"}']);
    assert.deepEqual(ferry.fieldsV1['f:spec']['f:replicas'], {});
    assert.deepEqual(ferry.fieldsV1['f:metadata'], { 'f:labels': { 'f:app.kubernetes.io/managed-by': {} } });

    await api.idle(); // the controller writes the status
    const rv = (api.get('Deployment', NS, 'iris-r1')!.metadata as Obj).resourceVersion;
    const again = await apply(client, dep);
    assert.equal(api.requests.at(-1)!.status, 200);
    assert.equal(again.metadata.resourceVersion, rv, 'the same apply changes nothing');

    const image = structuredClone(dep);
    image.spec.template.spec.containers[0].image = 'registry.example.com/ml/iris:2';
    const changed = await apply(client, image);
    assert.equal(changed.metadata.generation, 2);
    assert.ok(Number(changed.metadata.resourceVersion) > Number(rv));
    const labels = structuredClone(image);
    labels.metadata.labels.extra = 'x';
    assert.equal((await apply(client, labels)).metadata.generation, 2, 'metadata is not the spec');

    const read = (await client.read({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'iris-r1', namespace: NS },
    })) as Obj;
    assert.equal(read.spec.template.spec.containers[0].image, 'registry.example.com/ml/iris:2');
    const missing = await failure(
      client.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'nope', namespace: NS } }),
    );
    assert.equal(missing.code, 404);
    assert.equal(missing.status.reason, 'NotFound');
    assert.equal(missing.status.message, 'deployments.apps "nope" not found');
  });
});

/** A stored object without what the server adds (its fields, managedFields, status, defaulted replicas). */
function asSent(api: FakeApi, o: KubernetesObject): Obj {
  const { metadata, status: _s, ...rest } = api.get(o.kind, o.metadata.namespace, o.metadata.name) as Obj;
  const {
    uid: _u,
    resourceVersion: _r,
    generation: _g,
    creationTimestamp: _c,
    managedFields: _m,
    ...meta
  } = metadata;
  const out: Obj = { ...rest, metadata: meta };
  if (o.kind === 'Deployment' && o.spec && !('replicas' in (o.spec as Obj))) delete out.spec.replicas;
  return out;
}

const ref = (o: KubernetesObject) => `${o.kind}/${o.metadata.name}`;

test("client-node drops a NetworkPolicy rule's `from` from plain objects; objects loaded with its loadAllYaml arrive unchanged", async () => {
  const keda = render([KEDA_IRIS], { gatewayImage: GATEWAY_IMAGE, kedaPrometheus: 'http://prometheus:9090' });
  for (const objects of [goldenObjects(), keda])
    await withApi({}, async (api, client) => {
      // Plain objects, as the renderer makes them: client-node serializes each through its model of the kind,
      // which reads a TypeScript property name (`_from`) where the JSON has `from`; the field is lost, and an
      // ingress rule without `from` admits every source.
      for (const o of objects) await apply(client, o);
      const changed = objects.filter((o) => !isDeepStrictEqual(asSent(api, o), o)).map(ref);
      const withFrom = objects.filter(
        (o) => o.kind === 'NetworkPolicy' && ((o.spec as Obj).ingress ?? []).some((r: Obj) => r.from),
      );
      assert.ok(withFrom.length > 0);
      assert.deepEqual(changed, withFrom.map(ref));
      for (const o of withFrom) {
        const stored = api.get(o.kind, o.metadata.namespace, o.metadata.name) as Obj;
        assert.ok(
          stored.spec.ingress.every((r: Obj) => r.from === undefined),
          ref(o),
        );
      }
      // The same objects through client-node's own models (loadAllYaml deserializes into them): all arrive.
      for (const o of loadAllYaml(toYaml(objects)))
        await client.patch(
          o as ClientObject,
          undefined,
          undefined,
          'ferry',
          false,
          PatchStrategy.ServerSideApply,
        );
      for (const o of objects) assert.deepEqual(asSent(api, o), o, ref(o));
    });
});

test('list by label (=, !=, in, exists), delete, and a namespace taking its objects with it', async () => {
  await withApi({}, async (api, client) => {
    await apply(client, namespace());
    const cm = (name: string, labels: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: NS, labels },
      data: { k: name },
    });
    await apply(client, cm('a', { 'ferry.dev/deployment': 'iris', 'ferry.dev/revision': '1' }));
    await apply(client, cm('b', { 'ferry.dev/deployment': 'iris', 'ferry.dev/revision': '2' }));
    await apply(client, cm('c', { 'ferry.dev/deployment': 'ocr' }));
    await apply(client, cm('d', {}));
    const names = async (selector: string) => {
      const list = (await client.list(
        'v1',
        'ConfigMap',
        NS,
        undefined,
        undefined,
        undefined,
        undefined,
        selector,
      )) as Obj;
      return list.items.map((i: Obj) => i.metadata.name);
    };
    assert.deepEqual(await names('ferry.dev/deployment=iris'), ['a', 'b']);
    assert.deepEqual(await names('ferry.dev/deployment=iris,ferry.dev/revision!=1'), ['b']);
    assert.deepEqual(await names('ferry.dev/deployment in (iris,ocr),!ferry.dev/revision'), ['c']);
    assert.deepEqual(await names('ferry.dev/deployment'), ['a', 'b', 'c']);
    assert.deepEqual(await names(''), ['a', 'b', 'c', 'd']);
    const list = (
      await raw(api, 'GET', `/api/v1/namespaces/${NS}/configmaps?labelSelector=ferry.dev%2Fdeployment%3Docr`)
    ).json;
    assert.equal(list.kind, 'ConfigMapList');
    assert.equal(
      list.items[0].kind,
      undefined,
      'the items of a typed list have no kind, as from a real server',
    );
    const cms = `/api/v1/namespaces/${NS}/configmaps`;
    const first = (await raw(api, 'GET', `${cms}?limit=3`)).json;
    assert.equal(first.items.length, 3);
    const rest = (await raw(api, 'GET', `${cms}?limit=3&continue=${first.metadata.continue}`)).json;
    assert.deepEqual(
      [...first.items, ...rest.items].map((i: Obj) => i.metadata.name),
      ['a', 'b', 'c', 'd'],
    );
    assert.equal(rest.metadata.continue, undefined);
    const dropped = await raw(api, 'DELETE', `${cms}?labelSelector=ferry.dev%2Fdeployment%3Docr`);
    assert.deepEqual(
      dropped.json.items.map((i: Obj) => i.metadata.name),
      ['c'],
      'a collection deleted by label',
    );
    assert.deepEqual(await names(''), ['a', 'b', 'd']);

    const deleted = (await client.delete({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'a', namespace: NS },
    })) as Obj;
    assert.equal(deleted.status, 'Success');
    assert.deepEqual(await names(''), ['b', 'd']);
    const again = await failure(
      client.delete({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: NS } }),
    );
    assert.equal(again.code, 404);

    await client.delete(namespace());
    assert.deepEqual(api.objects({ namespace: NS }), []);
    const refused = await failure(apply(client, cm('e', {})));
    assert.equal(refused.code, 404, 'no object in a namespace that does not exist');
    assert.equal(refused.status.message, 'namespaces "ferry-ml" not found');
  });
});

test('two managers: a 409 Conflict naming the field and its owner, force moving ownership, shared equal values', async () => {
  await withApi({}, async (api, client) => {
    await apply(client, namespace());
    await apply(client, deployment('iris-r1', { replicas: 2 }));
    // Someone scales by hand with kubectl's own apply: their value differs, the field is ferry's.
    const scale = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'iris-r1', namespace: NS },
      spec: { replicas: 5 },
    };
    const conflict = await failure(apply(client, scale, 'kubectl'));
    assert.equal(conflict.code, 409);
    assert.deepEqual(conflict.status, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Apply failed with 1 conflict: conflict with "ferry" using apps/v1: .spec.replicas',
      reason: 'Conflict',
      details: {
        causes: [
          {
            type: 'FieldManagerConflict',
            message: 'conflict with "ferry" using apps/v1',
            field: '.spec.replicas',
          },
        ],
      },
      code: 409,
    });
    const forced = await apply(client, scale, 'kubectl', true);
    assert.equal(forced.spec.replicas, 5);
    assert.ok(manager(forced, 'kubectl')!.fieldsV1['f:spec']['f:replicas']);
    assert.equal(manager(forced, 'ferry')!.fieldsV1['f:spec']['f:replicas'], undefined, 'ownership moved');

    // Now ferry's apply is the one that conflicts, with kubectl.
    const back = await failure(apply(client, deployment('iris-r1', { replicas: 2 })));
    assert.equal(back.code, 409);
    assert.deepEqual(back.status.details.causes, [
      {
        type: 'FieldManagerConflict',
        message: 'conflict with "kubectl" using apps/v1',
        field: '.spec.replicas',
      },
    ]);
    assert.equal(
      (api.get('Deployment', NS, 'iris-r1') as Obj).spec.replicas,
      5,
      'a refused apply changes nothing',
    );
    const taken = await apply(client, deployment('iris-r1', { replicas: 2 }), 'ferry', true);
    assert.equal(taken.spec.replicas, 2);
    assert.equal(manager(taken, 'kubectl'), undefined, 'kubectl owns nothing any more: its entry is gone');

    // An equal value is no conflict: both own it.
    const same = { ...scale, spec: { replicas: 2 } };
    const shared = await apply(client, same, 'kubectl');
    assert.ok(manager(shared, 'kubectl')!.fieldsV1['f:spec']['f:replicas']);
    assert.ok(manager(shared, 'ferry')!.fieldsV1['f:spec']['f:replicas']);
  });
});

test('a field the manager no longer applies is removed, unless another manager owns it', async () => {
  await withApi({}, async (api, client) => {
    await apply(client, namespace());
    await apply(
      client,
      deployment('iris-r1', { replicas: 3, labels: { extra: 'x', kept: 'y' }, env: { A: '1', B: '2' } }),
    );
    const other = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'iris-r1', namespace: NS, labels: { kept: 'y', team: 'ml' } },
    };
    await apply(client, other, 'platform-team');
    await apply(client, deployment('iris-r1', { env: { A: '1' } }));
    const next = api.get('Deployment', NS, 'iris-r1') as Obj;
    assert.deepEqual(next.metadata.labels, {
      'app.kubernetes.io/managed-by': 'ferry',
      kept: 'y',
      team: 'ml',
    });
    assert.deepEqual(next.spec.template.spec.containers[0].env, [{ name: 'A', value: '1' }]);
    assert.equal(
      next.spec.replicas,
      1,
      'replicas no longer applied: gone, then defaulted to 1 as a real server does',
    );
    assert.equal(manager(next, 'ferry')!.fieldsV1['f:spec']['f:replicas'], undefined);
    assert.equal(next.metadata.generation, 2);
  });
});

test('dryRun=All: validated and answered as if applied, nothing stored, no event', async () => {
  await withApi({}, async (api, client) => {
    await apply(client, namespace());
    const dryApply = (obj: Obj) =>
      client.patch(obj as ClientObject, undefined, 'All', 'ferry', false, PatchStrategy.ServerSideApply);
    const dry = (await dryApply(deployment('iris-r1', { replicas: 2 }))) as Obj;
    assert.equal(api.requests.at(-1)!.status, 201);
    assert.equal(dry.spec.replicas, 2);
    assert.ok(dry.metadata.uid);
    assert.equal(api.get('Deployment', NS, 'iris-r1'), undefined);

    await apply(client, deployment('iris-r1', { replicas: 2 }));
    await api.idle();
    const before = api.get('Deployment', NS, 'iris-r1') as Obj;
    const changed = (await dryApply(deployment('iris-r1', { replicas: 4 }))) as Obj;
    assert.equal(api.requests.at(-1)!.status, 200);
    assert.equal(changed.spec.replicas, 4);
    assert.equal(changed.metadata.generation, 2);
    assert.deepEqual(api.get('Deployment', NS, 'iris-r1'), before);
    const invalid = deployment('iris-r1');
    invalid.spec.template.spec.containers[0].name = 'Not_A_Name';
    assert.equal((await failure(dryApply(invalid))).code, 422);

    // No event either: watching from before the dry runs, the first event is the next real write.
    const events = await watchUntil(
      api,
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      { resourceVersion: before.metadata.resourceVersion },
      (seen) => seen.length >= 1,
      async () => {
        await apply(client, deployment('iris-r1', { replicas: 3 }));
      },
    );
    assert.equal(events[0]!.type, 'MODIFIED');
    assert.equal(events[0]!.object.spec.replicas, 3);
  });
});

test('writes that are not applies: create, replace, merge patch and /status take the fields they change (no conflict); an apply then conflicts with them', async () => {
  const injected = { status: 503, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 503 } };
  await withApi(
    { intercept: (r) => (r.path.endsWith('/configmaps/flaky') ? injected : undefined) },
    async (api, client) => {
      await apply(client, namespace());
      const path = `/apis/apps/v1/namespaces/${NS}/deployments`;
      const created = await raw(
        api,
        'POST',
        `${path}?fieldManager=installer`,
        deployment('iris-r1', { replicas: 2 }),
      );
      assert.equal(created.status, 201);
      assert.equal(
        manager(created.json, 'installer', 'Update')!.fieldsV1['f:spec']['f:replicas'] !== undefined,
        true,
      );
      const twice = await raw(api, 'POST', path, deployment('iris-r1'));
      assert.equal(twice.status, 409);
      assert.equal(twice.json.reason, 'AlreadyExists');

      const stale = {
        ...deployment('iris-r1', { replicas: 3 }),
        metadata: { ...deployment('iris-r1').metadata, resourceVersion: '1' },
      };
      const refused = await raw(api, 'PUT', `${path}/iris-r1`, stale);
      assert.equal(refused.status, 409);
      assert.match(refused.json.message, /the object has been modified/);

      // kubectl scale or edit: a merge patch; its manager takes spec.replicas from the installer, no conflict.
      const patched = await raw(
        api,
        'PATCH',
        `${path}/iris-r1?fieldManager=kubectl-edit`,
        { spec: { replicas: 4 } },
        'application/merge-patch+json',
      );
      assert.equal(patched.status, 200);
      assert.equal(patched.json.spec.replicas, 4);
      assert.ok(manager(patched.json, 'kubectl-edit', 'Update')!.fieldsV1['f:spec']['f:replicas']);
      assert.equal(manager(patched.json, 'installer', 'Update')!.fieldsV1['f:spec']['f:replicas'], undefined);
      const conflict = await failure(apply(client, deployment('iris-r1', { replicas: 2 })));
      assert.equal(conflict.code, 409);
      assert.match(conflict.status.message, /conflict with "kubectl-edit" using apps\/v1: \.spec\.replicas/);

      await api.idle();
      const status = await raw(
        api,
        'PATCH',
        `${path}/iris-r1/status?fieldManager=tester`,
        { spec: { replicas: 9 }, status: { observedGeneration: 7 } },
        'application/merge-patch+json',
      );
      assert.equal(status.status, 200);
      assert.equal(status.json.status.observedGeneration, 7);
      assert.equal(status.json.spec.replicas, 4, '/status writes the status only');
      assert.equal((await raw(api, 'GET', `${path}/iris-r1/status`)).json.status.observedGeneration, 7);

      const strategic = await raw(
        api,
        'PATCH',
        `${path}/iris-r1`,
        {},
        'application/strategic-merge-patch+json',
      );
      assert.equal(strategic.status, 415);
      const flaky = await failure(
        apply(client, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'flaky', namespace: NS } }),
      );
      assert.equal(flaky.code, 503, 'a failure injected by the test');
    },
  );
});

test('what it receives is validated: 422 Invalid with causes for an unknown field (replcas), a wrong type, a bad name', async () => {
  await withApi({}, async (api, client) => {
    await apply(client, namespace());
    const typo = deployment('iris-r1');
    typo.spec.replcas = 2;
    const path = `/apis/apps/v1/namespaces/${NS}/deployments/iris-r1?fieldManager=ferry`;
    const res = await raw(api, 'PATCH', path, typo, 'application/apply-patch+yaml');
    assert.equal(res.status, 422);
    assert.equal(res.json.reason, 'Invalid');
    assert.equal(
      res.json.message,
      'Deployment.apps "iris-r1" is invalid: spec.replcas: unknown field (did you mean replicas?)',
    );
    assert.deepEqual(res.json.details.causes, [
      {
        reason: 'FieldValueInvalid',
        message: 'unknown field (did you mean replicas?)',
        field: 'spec.replcas',
      },
    ]);
    assert.equal(api.get('Deployment', NS, 'iris-r1'), undefined);

    // The same body as YAML, with two problems.
    const yaml = toYaml([
      {
        ...deployment('iris-r1'),
        spec: { ...typo.spec, revisionHistoryLimit: 'three' },
      } as unknown as KubernetesObject,
    ]);
    const two = await raw(api, 'PATCH', path, yaml, 'application/apply-patch+yaml');
    assert.equal(two.status, 422);
    assert.deepEqual(
      two.json.details.causes.map((c: Obj) => c.field),
      ['spec.revisionHistoryLimit', 'spec.replcas'],
    );

    // client-node's typed serializer drops fields its model does not have: the typo never reaches the server,
    // which creates the Deployment without it. Only Ferry's offline check (objectProblems) can catch it there.
    const through = await apply(client, typo);
    assert.equal(through.spec.replcas, undefined);
    assert.equal(through.spec.replicas, 1);

    // (client-node lowercases the URL, so a name with capitals would only be a name mismatch, 400.)
    const name = deployment('iris_r1');
    const bad = await failure(apply(client, name));
    assert.equal(bad.code, 422);
    assert.equal(bad.status.details.causes[0].field, 'metadata.name');
    const selector = deployment('iris-r1');
    selector.spec.selector.matchLabels = { 'ferry.dev/deployment': 'other' };
    selector.spec.template.metadata.labels = { 'ferry.dev/deployment': 'other' };
    const immutable = await failure(apply(client, selector));
    assert.equal(immutable.code, 422);
    assert.deepEqual(immutable.status.details.causes, [
      { reason: 'FieldValueInvalid', message: 'field is immutable', field: 'spec.selector' },
    ]);
    const noManager = await raw(
      api,
      'PATCH',
      path.replace('?fieldManager=ferry', ''),
      deployment('iris-r1'),
      'application/apply-patch+yaml',
    );
    assert.equal(noManager.status, 422);
    assert.match(noManager.json.message, /fieldManager: Required value/);
  });
});

/** Watches a path with client-node until `until` has seen what it waits for; returns the events seen. */
async function watchUntil(
  api: FakeApi,
  path: string,
  query: Record<string, string>,
  until: (events: { type: string; object: Obj }[]) => boolean,
  meanwhile: () => Promise<void>,
): Promise<{ type: string; object: Obj }[]> {
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  const events: { type: string; object: Obj }[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  const controller = await new Watch(kc).watch(
    path,
    query,
    (type, object) => {
      events.push({ type, object });
      if (until(events)) resolve();
    },
    () => resolve(),
  );
  await meanwhile();
  await done;
  controller.abort();
  return events;
}

test('watch: ADDED, MODIFIED (the controller status), DELETED, by label; and from a resourceVersion on', async () => {
  await withApi({}, async (api, client) => {
    await apply(client, namespace());
    await apply(client, deployment('other', { labels: { 'ferry.dev/deployment': 'other' } }));
    const path = `/apis/apps/v1/namespaces/${NS}/deployments`;
    const events = await watchUntil(
      api,
      path,
      { labelSelector: 'ferry.dev/deployment=iris' },
      (seen) => seen.some((e) => e.type === 'DELETED'),
      async () => {
        await apply(
          client,
          deployment('iris-r1', { labels: { 'ferry.dev/deployment': 'iris' }, replicas: 2 }),
        );
        await api.idle();
        await client.delete({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'iris-r1', namespace: NS },
        });
      },
    );
    assert.deepEqual(
      events.map((e) => e.type),
      ['ADDED', 'MODIFIED', 'MODIFIED', 'DELETED'],
      'created, progressing, ready, deleted; nothing of the other deployment',
    );
    assert.ok(events.every((e) => e.object.metadata.name === 'iris-r1' && e.object.kind === 'Deployment'));
    assert.equal(events[2]!.object.status.readyReplicas, 2);

    // From a resourceVersion: only what happened after it; without one: the current objects as ADDED first.
    const rv = events[1]!.object.metadata.resourceVersion;
    const later = await watchUntil(
      api,
      path,
      { resourceVersion: rv },
      (seen) => seen.some((e) => e.type === 'DELETED'),
      async () => {},
    );
    assert.deepEqual(
      later.map((e) => `${e.type} ${e.object.metadata.name}`),
      ['MODIFIED iris-r1', 'DELETED iris-r1'],
    );
    const current = await watchUntil(
      api,
      path,
      {},
      (seen) => seen.length >= 1,
      async () => {},
    );
    assert.deepEqual(
      current.map((e) => `${e.type} ${e.object.metadata.name}`),
      ['ADDED other'],
    );

    // With a label selector, an object whose labels leave it is DELETED for that watcher, one entering it ADDED.
    const cm = (team: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'routes', namespace: NS, labels: { team } },
    });
    const moves = await watchUntil(
      api,
      `/api/v1/namespaces/${NS}/configmaps`,
      { labelSelector: 'team=a' },
      (seen) => seen.length >= 3,
      async () => {
        for (const team of ['a', 'b', 'a']) await apply(client, cm(team));
      },
    );
    assert.deepEqual(
      moves.map((e) => `${e.type} ${e.object.metadata.labels.team}`),
      ['ADDED a', 'DELETED a', 'ADDED a'],
      'the DELETED event carries the object as it was, as the watch cache sends it',
    );
  });
});

test('the controller: ready counts and conditions; an injected ProgressDeadlineExceeded; a fixed rollout after it', async () => {
  const stuckRevision = (d: KubernetesObject) =>
    d.metadata.labels?.['ferry.dev/revision'] === '3' ? 'stuck' : 'ready';
  await withApi({ controller: stuckRevision }, async (api, client) => {
    await apply(client, namespace());
    await apply(client, deployment('iris-r2', { replicas: 2, labels: { 'ferry.dev/revision': '2' } }));
    await apply(client, deployment('iris-r3', { replicas: 2, labels: { 'ferry.dev/revision': '3' } }));
    await api.idle();
    const ready = api.get('Deployment', NS, 'iris-r2') as Obj;
    assert.equal(ready.status.observedGeneration, ready.metadata.generation);
    assert.deepEqual(
      { ...ready.status, conditions: undefined },
      {
        observedGeneration: 1,
        replicas: 2,
        updatedReplicas: 2,
        readyReplicas: 2,
        availableReplicas: 2,
        conditions: undefined,
      },
    );
    assert.deepEqual(
      ready.status.conditions.map((c: Obj) => [c.type, c.status, c.reason]),
      [
        ['Available', 'True', 'MinimumReplicasAvailable'],
        ['Progressing', 'True', 'NewReplicaSetAvailable'],
      ],
    );
    const status = manager(ready, 'kube-controller-manager', 'Update')!;
    assert.equal(status.subresource, 'status');

    const stuck = api.get('Deployment', NS, 'iris-r3') as Obj;
    assert.deepEqual(
      stuck.status.conditions.map((c: Obj) => [c.type, c.status, c.reason]),
      [
        ['Available', 'False', 'MinimumReplicasUnavailable'],
        ['Progressing', 'False', 'ProgressDeadlineExceeded'],
      ],
    );
    assert.equal(stuck.status.readyReplicas, undefined, 'zero counts are left out, as the real status does');
    assert.equal(stuck.status.updatedReplicas, 2);

    // A new generation of a ready Deployment that gets stuck keeps its old pods available.
    api.setDeploymentOutcome(NS, 'iris-r2', 'stuck');
    await api.idle();
    await apply(
      client,
      deployment('iris-r2', {
        replicas: 2,
        image: 'registry.example.com/ml/iris:bad',
        labels: { 'ferry.dev/revision': '2' },
      }),
    );
    await api.idle();
    const update = (api.get('Deployment', NS, 'iris-r2') as Obj).status;
    assert.equal(update.observedGeneration, 2);
    assert.deepEqual(
      [update.replicas, update.updatedReplicas, update.availableReplicas, update.unavailableReplicas],
      [3, 1, 2, 1],
    );
    assert.deepEqual(
      update.conditions.map((c: Obj) => [c.type, c.status, c.reason]),
      [
        ['Available', 'True', 'MinimumReplicasAvailable'],
        ['Progressing', 'False', 'ProgressDeadlineExceeded'],
      ],
    );
    api.setDeploymentOutcome(NS, 'iris-r2', undefined);
    await apply(client, deployment('iris-r2', { replicas: 2, labels: { 'ferry.dev/revision': '2' } }));
    await api.idle();
    const undone = (api.get('Deployment', NS, 'iris-r2') as Obj).status;
    assert.equal(undone.observedGeneration, 3);
    assert.equal(undone.conditions[1].reason, 'NewReplicaSetAvailable');

    // A test may also write a status itself.
    api.setDeploymentStatus(NS, 'iris-r3', { observedGeneration: 1, replicas: 2, conditions: [] });
    assert.deepEqual((api.get('Deployment', NS, 'iris-r3') as Obj).status, {
      observedGeneration: 1,
      replicas: 2,
      conditions: [],
    });
  });
});

test('an autoscaled Deployment: scaled into the HPA bounds by kube-controller-manager, whose field then conflicts', async () => {
  await withApi({}, async (api, client) => {
    await apply(client, namespace());
    await apply(client, deployment('iris-r1'));
    await apply(client, {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'iris-r1', namespace: NS },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'iris-r1' },
        minReplicas: 3,
        maxReplicas: 8,
      },
    });
    await api.idle();
    const dep = api.get('Deployment', NS, 'iris-r1') as Obj;
    assert.equal(dep.spec.replicas, 3);
    assert.equal(dep.status.readyReplicas, 3);
    assert.deepEqual(
      (dep.metadata.managedFields as Obj[])
        .map((e) => `${e.manager} ${e.operation} ${e.subresource ?? ''}`)
        .sort(),
      ['ferry Apply ', 'kube-controller-manager Update scale', 'kube-controller-manager Update status'],
    );
    const scaler = (dep.metadata.managedFields as Obj[]).find((e) => e.subresource === 'scale');
    assert.deepEqual(scaler!.fieldsV1, { 'f:spec': { 'f:replicas': {} } });
    assert.equal(manager(dep, 'ferry')!.fieldsV1['f:spec']['f:replicas'], undefined);
    const conflict = await failure(apply(client, deployment('iris-r1', { replicas: 1 })));
    assert.equal(conflict.code, 409);
    assert.equal(
      conflict.status.message,
      'Apply failed with 1 conflict: conflict with "kube-controller-manager" with subresource "scale" using apps/v1: .spec.replicas',
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// kubectl against the fake server

/** Runs kubectl against the fake server (asynchronously: the server is in this process). */
function kubectl(
  api: FakeApi,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = join(tmp.path, `kubectl-${api.url.split(':').at(-1)}`);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'kubeconfig');
  writeFileSync(config, api.kubeconfig());
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--kubeconfig', config, '--cache-dir', join(dir, 'cache'), ...args],
      { env: { ...process.env, HOME: dir, KUBECONFIG: '' }, encoding: 'utf8' },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

function writeYaml(name: string, objects: readonly KubernetesObject[]): string {
  const file = join(tmp.path, name);
  writeFileSync(file, toYaml(objects));
  return file;
}

test('kubectl apply --server-side --dry-run=server takes the rendered objects; then a real apply, get and rollout status', async (t) => {
  if (KUBECTL_MISSING) {
    t.skip('kubectl is not installed: the wire format is checked with client-node only');
    return;
  }
  await withApi({}, async (api) => {
    const objects = goldenObjects();
    const file = writeYaml('two-deployments.yaml', objects);
    // As on a real cluster, a dry run creates nothing, so objects in a namespace that is not there yet fail.
    const early = await kubectl(api, ['apply', '--server-side', '--dry-run=server', '-f', file]);
    assert.equal(early.code, 1);
    assert.match(early.stdout, /^namespace\/ferry-ml serverside-applied \(server dry run\)$/m);
    assert.match(early.stderr, /Error from server \(NotFound\): namespaces "ferry-ml" not found/);

    const ns = await kubectl(api, ['apply', '--server-side', '-f', writeYaml('ns.yaml', [objects[0]!])]);
    assert.equal(ns.code, 0, ns.stderr);
    const before = api.objects().length;
    const dry = await kubectl(api, ['apply', '--server-side', '--dry-run=server', '-f', file]);
    assert.equal(dry.code, 0, dry.stderr);
    const lines = dry.stdout.trim().split('\n');
    assert.equal(lines.length, objects.length);
    assert.ok(
      lines.every((l) => l.endsWith(' serverside-applied (server dry run)')),
      dry.stdout,
    );
    assert.equal(api.objects().length, before, 'a dry run stores nothing');
    // What kubectl sent: server-side apply with its own field manager, asking the server to validate strictly.
    const patch = api.requests.find((r) => r.method === 'PATCH' && r.path.endsWith('/deployments/iris-r2'))!;
    assert.deepEqual(patch.query, {
      dryRun: 'All',
      fieldManager: 'kubectl',
      fieldValidation: 'Strict',
      force: 'false',
    });
    assert.equal(patch.contentType, 'application/apply-patch+yaml');
    assert.ok(!api.requests.some((r) => r.path === '/openapi/v2'), 'kubectl needed no OpenAPI v2');

    const real = await kubectl(api, ['apply', '--server-side', '-f', file]);
    assert.equal(real.code, 0, real.stderr);
    const names = await kubectl(api, ['get', 'deployments', '-n', NS, '-o', 'name']);
    assert.equal(names.code, 0, names.stderr);
    assert.deepEqual(names.stdout.trim().split('\n').sort(), [
      'deployment.apps/ferry-gateway',
      'deployment.apps/iris-r2',
      'deployment.apps/iris-r3',
      'deployment.apps/ocr-r1',
    ]);
    for (const o of objects)
      assert.ok(api.get(o.kind, o.metadata.namespace, o.metadata.name), `${o.kind}/${o.metadata.name}`);
    const table = await kubectl(api, ['get', 'deployments', '-n', NS]);
    assert.match(table.stdout, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$/m);
    const rollout = await kubectl(api, ['rollout', 'status', 'deployment/ocr-r1', '-n', NS]);
    assert.equal(rollout.code, 0, rollout.stderr);
    assert.match(rollout.stdout, /deployment "ocr-r1" successfully rolled out/);

    // The same file again: nothing changes.
    const rv = api.get('Deployment', NS, 'ocr-r1')!.metadata as Obj;
    assert.equal((await kubectl(api, ['apply', '--server-side', '-f', file])).code, 0);
    assert.equal((api.get('Deployment', NS, 'ocr-r1')!.metadata as Obj).resourceVersion, rv.resourceVersion);
  });
});

test('kubectl: a conflict with ferry reported and forced, a typo refused by the server, a stuck rollout failing', async (t) => {
  if (KUBECTL_MISSING) {
    t.skip('kubectl is not installed');
    return;
  }
  await withApi(
    { controller: (d) => (d.metadata.name === 'stuck' ? 'stuck' : 'ready') },
    async (api, client) => {
      await apply(client, namespace());
      await apply(client, deployment('iris-r1', { replicas: 2 }));
      const scale = `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: iris-r1\n  namespace: ${NS}\nspec:\n  replicas: 5\n`;
      const conflict = await kubectl(api, ['apply', '--server-side', '-f', '-'], scale);
      assert.equal(conflict.code, 1);
      assert.match(
        conflict.stderr,
        /Apply failed with 1 conflict: conflict with "ferry" using apps\/v1: \.spec\.replicas/,
      );
      const forced = await kubectl(api, ['apply', '--server-side', '--force-conflicts', '-f', '-'], scale);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal((api.get('Deployment', NS, 'iris-r1') as Obj).spec.replicas, 5);

      const typo = toYaml([
        {
          ...deployment('iris-r2'),
          spec: { ...deployment('iris-r2').spec, replcas: 2 },
        } as unknown as KubernetesObject,
      ]);
      const refused = await kubectl(api, ['apply', '--server-side', '-f', '-'], typo);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /spec\.replcas: unknown field \(did you mean replicas\?\)/);
      assert.equal(api.get('Deployment', NS, 'iris-r2'), undefined);

      await apply(client, deployment('stuck', { replicas: 1 }));
      const rollout = await kubectl(api, ['rollout', 'status', 'deployment/stuck', '-n', NS]);
      assert.equal(rollout.code, 1);
      assert.match(rollout.stderr, /deployment "stuck" exceeded its progress deadline/);
    },
  );
});

test('kubectl applies a KEDA ScaledObject (a custom resource) and lists it', async (t) => {
  if (KUBECTL_MISSING) {
    t.skip('kubectl is not installed');
    return;
  }
  await withApi({}, async (api) => {
    const objects = render([KEDA_IRIS], {
      gatewayImage: GATEWAY_IMAGE,
      kedaPrometheus: 'http://prometheus:9090',
    });
    assert.ok(objects.some((o) => o.kind === 'ScaledObject'));
    const res = await kubectl(api, ['apply', '--server-side', '-f', writeYaml('keda.yaml', objects)]);
    assert.equal(res.code, 0, res.stderr);
    const list = await kubectl(api, ['get', 'scaledobjects.keda.sh', '-n', NS, '-o', 'name']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split('\n'), ['scaledobject.keda.sh/iris-r2']);
    await api.idle();
    assert.equal((api.get('Deployment', NS, 'iris-r2') as Obj).status.readyReplicas, 1);
  });
});
