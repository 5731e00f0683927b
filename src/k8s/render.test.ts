/**
 * The renderer (pure): a golden file for two deployments (one autoscaled with a canary split, secrets and a GPU;
 * one fixed, with egress), and the properties a reviewer relies on. Rewrite the golden file after an intended
 * change with UPDATE_GOLDEN=1 and review the diff.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { type RenderInput, render, routeFile, toYaml } from './render.ts';
import { irisRevision } from './testdata/fixtures.ts';
import { objectProblems } from './validate.ts';

const GOLDEN = new URL('./testdata/two-deployments.yaml', import.meta.url);

const revision = irisRevision;

const IRIS: RenderInput = {
  name: 'iris',
  tenant: 'ml',
  public: false,
  replicas: 2,
  scaling: {
    minReplicas: 1,
    maxReplicas: 8,
    target: 8,
    maxHeld: 1000,
    maxHeldWaitMs: 30_000,
    scaleToZeroGraceMs: 30_000,
  },
  revisions: [
    revision(2),
    revision(3, {
      secretRefs: ['HF_TOKEN'],
      env: { LOG_LEVEL: 'info' },
      nodeSelector: { 'nvidia.com/gpu.present': 'true' },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      startupTimeoutMs: 900_000,
      resources: { cpu: 2, memoryBytes: 4 * 1024 ** 3, gpu: 1 },
    }),
  ],
  traffic: [
    { revision: 2, percent: 90 },
    { revision: 3, percent: 10, shadow: 0 },
  ],
};
const OCR: RenderInput = {
  name: 'ocr',
  tenant: 'ml',
  public: true,
  replicas: 3,
  scaling: null,
  revisions: [
    revision(1, {
      servedName: 'ocr',
      egress: true,
      resources: { cpu: 0.5, memoryBytes: 512 * 1024 ** 2, gpu: 0 },
    }),
  ],
  traffic: [{ revision: 1, percent: 100 }],
};
const OPTIONS = { gatewayImage: `registry.example.com/ferry/gateway@sha256:${'a'.repeat(64)}` };

test('two deployments of a tenant match the golden file, byte for byte, whatever their input order', () => {
  const yaml = toYaml(render([OCR, IRIS], OPTIONS));
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, yaml);
  assert.equal(
    yaml,
    readFileSync(GOLDEN, 'utf8'),
    'changed; if intended, rerun with UPDATE_GOLDEN=1 and review the diff',
  );
  assert.equal(toYaml(render([IRIS, OCR], OPTIONS)), yaml, 'the same objects in the same order');
  const docs = parseAllDocuments(yaml).map((d) => d.toJS());
  assert.deepEqual(docs, JSON.parse(JSON.stringify(render([IRIS, OCR], OPTIONS))), 'the YAML is the objects');
});

test('what a reviewer relies on: a revision without traffic runs but is not routed to, no replicas under an HPA, references not values', () => {
  const objects = render([{ ...IRIS, revisions: [...IRIS.revisions, revision(1)] }, OCR], OPTIONS);
  const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
  // Revision 1 has no traffic (a revision being started before the split moves to it): it runs, the gateway's
  // route file leaves it out.
  assert.ok(names.includes('Deployment/iris-r1'), 'revision 1 is rendered');
  const routes = JSON.parse(
    (
      objects.find(
        (o) => o.kind === 'ConfigMap' && o.metadata.name === 'ferry-gateway-routes',
      ) as unknown as {
        data: Record<string, string>;
      }
    ).data['routes.json']!,
  ) as { deployments: Array<{ name: string; revisions: Array<{ revision: number }> }> };
  assert.deepEqual(
    routes.deployments.find((d) => d.name === 'iris')?.revisions.map((r) => r.revision),
    [2, 3],
    'the route file has the revisions with traffic only',
  );
  for (const want of [
    'Deployment/iris-r2',
    'Deployment/iris-r3',
    'HorizontalPodAutoscaler/iris-r3',
    'Service/iris-r2',
    'Deployment/ocr-r1',
    'PodDisruptionBudget/ocr-r1',
  ])
    assert.ok(names.includes(want), want);
  const dep = (name: string) =>
    objects.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!.spec as Record<string, unknown>;
  assert.equal('replicas' in dep('iris-r2'), false, 'autoscaled: the HPA owns replicas');
  assert.equal(dep('ocr-r1').replicas, 3);
  assert.ok(!names.some((n) => n.startsWith('HorizontalPodAutoscaler/ocr')), 'not autoscaled: no HPA');
  assert.ok(!names.some((n) => n.startsWith('Secret/')), 'secrets are never rendered');
  const yaml = toYaml(objects);
  assert.match(yaml, /secretName: iris-secrets/);
  assert.equal(objects.filter((o) => o.kind === 'Namespace').length, 1, 'shared objects once');
  assert.equal(
    objects.filter((o) => o.metadata.name === 'ferry-gateway' && o.kind === 'Deployment').length,
    1,
  );
  assert.ok(objects.every((o) => o.kind === 'Namespace' || o.metadata.namespace === 'ferry-ml'));
});

test("the gateway's route file names each serving revision's headless Service", () => {
  assert.deepEqual(routeFile([IRIS], 'ferry-ml').deployments[0], {
    name: 'iris',
    tenant: 'ml',
    public: false,
    revisions: [
      {
        revision: 2,
        percent: 90,
        shadow: 0,
        servedName: 'iris',
        service: { host: 'iris-r2.ferry-ml.svc.cluster.local', port: 8080 },
      },
      {
        revision: 3,
        percent: 10,
        shadow: 0,
        servedName: 'iris',
        service: { host: 'iris-r3.ferry-ml.svc.cluster.local', port: 8080 },
      },
    ],
  });
  assert.throws(() => render([IRIS, { ...OCR, tenant: 'other' }], OPTIONS), /one tenant per namespace/);
  assert.throws(() => render([IRIS, IRIS], OPTIONS), /given twice/);
});

test('scale to zero: with KEDA a ScaledObject on the gateway metrics and an activator in the route file; without, an HPA keeping one', () => {
  const zero: RenderInput = { ...IRIS, scaling: { ...IRIS.scaling!, minReplicas: 0 } };
  const keda = render([zero], { ...OPTIONS, kedaPrometheus: 'http://prometheus.monitoring:9090' });
  const scaled = keda.filter((o) => o.kind === 'ScaledObject');
  assert.deepEqual(
    scaled.map((o) => o.metadata.name),
    ['iris-r2', 'iris-r3'],
  );
  assert.ok(!keda.some((o) => o.kind === 'HorizontalPodAutoscaler'), 'KEDA makes its own HPA');
  const spec = scaled[0]!.spec as {
    minReplicaCount: number;
    triggers: { metadata: { query: string; threshold: string } }[];
  };
  assert.equal(spec.minReplicaCount, 0);
  assert.match(spec.triggers[0]!.metadata.query, /ferry_gateway_activator_held\{deployment="ml\/iris"\}/);
  assert.match(
    spec.triggers[0]!.metadata.query,
    /ferry_gateway_outstanding\{deployment="ml\/iris",revision="2"\}/,
  );
  assert.equal(spec.triggers[0]!.metadata.threshold, '8');
  const routes = JSON.parse(
    (keda.find((o) => o.kind === 'ConfigMap')!.data as Record<string, string>)['routes.json']!,
  );
  assert.deepEqual(routes.deployments[0].activator, { maxHeld: 1000, maxWaitMs: 30_000 });
  const hpa = render([zero], OPTIONS);
  assert.ok(!hpa.some((o) => o.kind === 'ScaledObject'));
  const h = hpa.find((o) => o.kind === 'HorizontalPodAutoscaler')!.spec as { minReplicas: number };
  assert.equal(h.minReplicas, 1, 'an HPA cannot reach zero');
  const plain = JSON.parse(
    (hpa.find((o) => o.kind === 'ConfigMap')!.data as Record<string, string>)['routes.json']!,
  );
  assert.equal('activator' in plain.deployments[0], false);
});

test('every object rendered passes the offline checks: official schemas, unknown fields, PSS restricted, policies', () => {
  const zero: RenderInput = { ...IRIS, scaling: { ...IRIS.scaling!, minReplicas: 0 } };
  for (const [what, objects] of [
    ['two deployments', render([IRIS, OCR], OPTIONS)],
    [
      'scale to zero with KEDA',
      render([zero, OCR], { ...OPTIONS, kedaPrometheus: 'http://prometheus:9090' }),
    ],
    [
      'a namespace given, one gateway replica',
      render([OCR], { ...OPTIONS, namespace: 'models', gatewayReplicas: 1 }),
    ],
  ] as const)
    assert.deepEqual(objectProblems(objects), [], what);
});

test('a model server without resources in ferry.yaml still has limits (the Docker runtime defaults: 1 CPU, 1 GiB)', () => {
  const bare: RenderInput = {
    ...OCR,
    revisions: [revision(1, { resources: { cpu: null, memoryBytes: null, gpu: 0 } })],
  };
  const dep = render([bare], OPTIONS).find(
    (o) => o.kind === 'Deployment' && o.metadata.name === 'ocr-r1',
  ) as unknown as {
    spec: { template: { spec: { containers: Array<{ resources: unknown }> } } };
  };
  assert.deepEqual(dep.spec.template.spec.containers[0]?.resources, {
    limits: { cpu: '1', memory: '1Gi' },
    requests: { cpu: '250m', memory: '1Gi' },
  });
  assert.doesNotMatch(toYaml(render([bare], OPTIONS)), /[&*]a\d/, 'plain YAML: no anchors or aliases');
});
