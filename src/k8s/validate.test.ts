/**
 * Offline validation: a hand-written set of objects as Ferry means to render them (a namespace, service
 * accounts, two model revisions, one scaled by an HPA and one by KEDA, the gateway, headless Services,
 * NetworkPolicies default-deny + allow, PDBs) passes every check; then one deliberately broken variant per
 * check, each caught with its own message. The real kubernetes-models schemas run throughout.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { selectorMatches } from './check-common.ts';
import {
  dns1035LabelError,
  dns1123LabelError,
  dns1123SubdomainError,
  labelValueError,
  portNameError,
  qualifiedNameError,
} from './check-names.ts';
import type { KubernetesObject } from './types.ts';
import { objectProblems } from './validate.ts';

// biome-ignore lint/suspicious/noExplicitAny: the variants reach into objects of every kind
type Any = any;

const NS = 'ml';

function replicaLabels(revision: number): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'iris',
    'app.kubernetes.io/instance': `iris-r${revision}`,
    'app.kubernetes.io/component': 'model-server',
    'app.kubernetes.io/managed-by': 'ferry',
    'ferry.dev/deployment': 'iris',
    'ferry.dev/revision': String(revision),
  };
}

const GATEWAY_LABELS = {
  'app.kubernetes.io/name': 'ferry-gateway',
  'app.kubernetes.io/component': 'gateway',
  'app.kubernetes.io/managed-by': 'ferry',
};

const restrictedContainerSecurity = () => ({
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
});

const restrictedPodSecurity = () => ({
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  seccompProfile: { type: 'RuntimeDefault' },
});

function replicaDeployment(revision: number): KubernetesObject {
  const labels = replicaLabels(revision);
  const selector = { 'ferry.dev/deployment': 'iris', 'ferry.dev/revision': String(revision) };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `iris-r${revision}`, namespace: NS, labels },
    spec: {
      selector: { matchLabels: selector },
      revisionHistoryLimit: 2,
      progressDeadlineSeconds: 600,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels, annotations: { 'ferry.dev/spec-hash': 'sha256-3f2a' } },
        spec: {
          serviceAccountName: 'iris',
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 45,
          securityContext: restrictedPodSecurity(),
          containers: [
            {
              name: 'server',
              image: 'registry.example/ferry/iris@sha256:0f3b4c',
              imagePullPolicy: 'IfNotPresent',
              args: ['serve', '--port', '8080'],
              ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
              env: [
                { name: 'FERRY_REVISION', value: String(revision) },
                { name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'iris-secrets', key: 'api-key' } } },
              ],
              resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: 1, memory: '1Gi' } },
              startupProbe: {
                httpGet: { path: '/v2/health/live', port: 'http' },
                periodSeconds: 2,
                failureThreshold: 150,
              },
              readinessProbe: { httpGet: { path: '/v2/health/ready', port: 'http' }, periodSeconds: 5 },
              livenessProbe: {
                httpGet: { path: '/v2/health/live', port: 8080 },
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 6,
              },
              lifecycle: { preStop: { sleep: { seconds: 5 } } },
              securityContext: restrictedContainerSecurity(),
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: selector },
            },
            {
              maxSkew: 1,
              topologyKey: 'topology.kubernetes.io/zone',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: selector },
            },
          ],
        },
      },
    },
  };
}

function headlessService(revision: number): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `iris-r${revision}`, namespace: NS, labels: replicaLabels(revision) },
    spec: {
      clusterIP: 'None',
      selector: { 'ferry.dev/deployment': 'iris', 'ferry.dev/revision': String(revision) },
      ports: [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

function pdb(name: string, matchLabels: Record<string, string>): KubernetesObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace: NS },
    spec: { maxUnavailable: 1, selector: { matchLabels } },
  };
}

function networkPolicy(name: string, spec: Record<string, unknown>): KubernetesObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: NS },
    spec,
  };
}

/** The known-good set: 20 objects. */
function good(): KubernetesObject[] {
  const gatewayPods = { matchLabels: { 'app.kubernetes.io/name': 'ferry-gateway' } };
  const replicaPods = { matchExpressions: [{ key: 'ferry.dev/revision', operator: 'Exists' }] };
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: NS,
        labels: {
          'app.kubernetes.io/managed-by': 'ferry',
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'iris', namespace: NS },
      automountServiceAccountToken: false,
    },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'ferry-gateway', namespace: NS },
      automountServiceAccountToken: false,
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'iris-secrets', namespace: NS },
      type: 'Opaque',
      data: { 'api-key': Buffer.from('not-a-real-key').toString('base64') },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'ferry-gateway-routes', namespace: NS },
      data: { 'routes.json': '{"deployments":[],"callers":[]}' },
    },
    replicaDeployment(3),
    replicaDeployment(4),
    headlessService(3),
    headlessService(4),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'ferry-gateway', namespace: NS, labels: GATEWAY_LABELS },
      spec: {
        replicas: 2,
        selector: gatewayPods,
        template: {
          metadata: { labels: GATEWAY_LABELS },
          spec: {
            serviceAccountName: 'ferry-gateway',
            automountServiceAccountToken: false,
            securityContext: restrictedPodSecurity(),
            containers: [
              {
                name: 'gateway',
                image: 'registry.example/ferry/gateway:0.1.0',
                args: ['gateway', '--routes', '/etc/ferry/routes.json'],
                ports: [{ name: 'http', containerPort: 8080 }],
                readinessProbe: { tcpSocket: { port: 'http' } },
                securityContext: restrictedContainerSecurity(),
                volumeMounts: [{ name: 'routes', mountPath: '/etc/ferry', readOnly: true }],
              },
            ],
            volumes: [{ name: 'routes', configMap: { name: 'ferry-gateway-routes' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ferry-gateway', namespace: NS, labels: GATEWAY_LABELS },
      spec: {
        type: 'ClusterIP',
        selector: { 'app.kubernetes.io/name': 'ferry-gateway' },
        ports: [{ name: 'http', port: 80, targetPort: 'http' }],
      },
    },
    networkPolicy('default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
    networkPolicy('gateway-to-replicas', {
      podSelector: replicaPods,
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: gatewayPods }], ports: [{ port: 8080, protocol: 'TCP' }] }],
    }),
    networkPolicy('gateway-egress', {
      podSelector: gatewayPods,
      policyTypes: ['Egress'],
      egress: [
        { to: [{ podSelector: replicaPods }], ports: [{ port: 8080, protocol: 'TCP' }] },
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'TCP' },
          ],
        },
      ],
    }),
    networkPolicy('gateway-ingress', {
      podSelector: gatewayPods,
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 'http' }] }],
    }),
    pdb('iris-r3', { 'ferry.dev/deployment': 'iris', 'ferry.dev/revision': '3' }),
    pdb('iris-r4', { 'ferry.dev/deployment': 'iris', 'ferry.dev/revision': '4' }),
    pdb('ferry-gateway', { 'app.kubernetes.io/name': 'ferry-gateway' }),
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'iris-r3', namespace: NS },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'iris-r3' },
        minReplicas: 1,
        maxReplicas: 5,
        metrics: [
          {
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
          },
          {
            type: 'Pods',
            pods: {
              metric: { name: 'ferry_queue_depth' },
              target: { type: 'AverageValue', averageValue: '4' },
            },
          },
        ],
        behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
      },
    },
    {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: 'iris-r4', namespace: NS, labels: replicaLabels(4) },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'iris-r4' },
        minReplicaCount: 0,
        maxReplicaCount: 3,
        cooldownPeriod: 300,
        advanced: {
          horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: 120 } } },
        },
        triggers: [
          {
            type: 'prometheus',
            metadata: {
              serverAddress: 'http://prometheus.monitoring:9090',
              query: 'sum(ferry_queue_depth{revision="4"})',
              threshold: '4',
            },
          },
        ],
      },
    },
  ];
}

/** The objects of the good set with one change. */
function broken(change: (objects: Any[]) => void): string[] {
  const objects: Any[] = good();
  change(objects);
  return objectProblems(objects);
}

function find(objects: Any[], kind: string, name: string): Any {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind}/${name} in the good set`);
  return found;
}

const r3 = (objects: Any[]) => find(objects, 'Deployment', 'iris-r3');
const r3Pod = (objects: Any[]) => r3(objects).spec.template.spec;
const r3Server = (objects: Any[]) => r3Pod(objects).containers[0];
const D3 = 'Deployment/ml/iris-r3';
const POD = `${D3}: spec.template.spec`;
const SERVER = `${POD}.containers[0]`;

test('the known-good set (20 objects of 10 kinds) has no problem', () => {
  const objects = good();
  assert.equal(objects.length, 20);
  assert.deepEqual(objectProblems(objects), []);
});

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

test('frozen objects are validated the same (the unknown-field check wraps them)', () => {
  assert.deepEqual(objectProblems(deepFreeze(good())), []);
  const objects: Any[] = good();
  r3(objects).spec.replcas = 2;
  assert.deepEqual(objectProblems(deepFreeze(objects)), [
    `${D3}: spec.replcas: unknown field (did you mean replicas?)`,
  ]);
});

test('unknown fields are caught at any depth, with the field they were probably meant to be', () => {
  assert.deepEqual(
    broken((o) => {
      r3(o).spec.replcas = 2;
    }),
    [`${D3}: spec.replcas: unknown field (did you mean replicas?)`],
  );
  assert.deepEqual(
    broken((o) => {
      r3Server(o).ports[0].protcol = 'TCP';
    }),
    [`${SERVER}.ports[0].protcol: unknown field (did you mean protocol?)`],
  );
  assert.deepEqual(
    broken((o) => {
      r3Server(o).startupProbe.httpGet.paht = '/';
    }),
    [`${SERVER}.startupProbe.httpGet.paht: unknown field (did you mean path?)`],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'NetworkPolicy', 'gateway-to-replicas').spec.ingress[0].form = [];
    }),
    ['NetworkPolicy/ml/gateway-to-replicas: spec.ingress[0].form: unknown field (did you mean from?)'],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'Service', 'iris-r3').metadata.lables = { a: 'b' };
    }),
    ['Service/ml/iris-r3: metadata.lables: unknown field (did you mean labels?)'],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'HorizontalPodAutoscaler', 'iris-r3').spec.behavior.scaleDown.stabilisationWindow = 30;
    }),
    ['HorizontalPodAutoscaler/ml/iris-r3: spec.behavior.scaleDown.stabilisationWindow: unknown field'],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'Secret', 'iris-secrets').extra = true;
    }),
    ['Secret/ml/iris-secrets: extra: unknown field'],
  );
});

test('maps stay open: any label, annotation or resource name is a key, not a field', () => {
  assert.deepEqual(
    broken((o) => {
      r3(o).metadata.annotations = { 'example.com/anything': 'x' };
      r3Server(o).resources.limits['nvidia.com/gpu'] = 1;
      find(o, 'ConfigMap', 'ferry-gateway-routes').data['other.json'] = '{}';
    }),
    [],
  );
});

/** The fields an interface declares in a kubernetes-models .d.ts file: a second, independent reading of the
 * same OpenAPI definitions, against which the Proxy-observed field sets are checked. */
function declaredFields(file: string, iface: string): string[] {
  const source = readFileSync(new URL(`../../node_modules/${file}`, import.meta.url), 'utf8');
  const start = source.indexOf(`export interface ${iface} `);
  assert.ok(start >= 0, `${iface} in ${file}`);
  const body = source.slice(source.indexOf('{', start) + 1, source.indexOf('\n}', start));
  return [...body.matchAll(/^ {4}"(\w+)"\??:/gm)].map((m) => m[1]!);
}

test('the unknown-field check knows exactly the fields kubernetes-models declares for each type', () => {
  const cases: {
    file: string;
    iface: string;
    kind: string;
    name: string;
    at: (o: Any) => Any;
    path: string;
  }[] = [
    {
      file: 'kubernetes-models/apps/v1/DeploymentSpec.d.ts',
      iface: 'IDeploymentSpec',
      kind: 'Deployment',
      name: 'iris-r3',
      at: (d) => d,
      path: 'spec',
    },
    {
      file: '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta.d.ts',
      iface: 'IObjectMeta',
      kind: 'Deployment',
      name: 'iris-r3',
      at: (d) => d.spec.template,
      path: 'spec.template.metadata',
    },
    {
      file: 'kubernetes-models/v1/PodSpec.d.ts',
      iface: 'IPodSpec',
      kind: 'Deployment',
      name: 'iris-r3',
      at: (d) => d.spec.template,
      path: 'spec.template.spec',
    },
    {
      file: 'kubernetes-models/v1/Container.d.ts',
      iface: 'IContainer',
      kind: 'Deployment',
      name: 'iris-r3',
      at: (d) => d.spec.template.spec.containers,
      path: 'spec.template.spec.containers[0]',
    },
    {
      file: 'kubernetes-models/v1/SecurityContext.d.ts',
      iface: 'ISecurityContext',
      kind: 'Deployment',
      name: 'iris-r3',
      at: (d) => d.spec.template.spec.containers[0],
      path: 'spec.template.spec.containers[0].securityContext',
    },
    {
      file: 'kubernetes-models/v1/ServiceSpec.d.ts',
      iface: 'IServiceSpec',
      kind: 'Service',
      name: 'iris-r3',
      at: (s) => s,
      path: 'spec',
    },
    {
      file: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicySpec.d.ts',
      iface: 'INetworkPolicySpec',
      kind: 'NetworkPolicy',
      name: 'default-deny',
      at: (n) => n,
      path: 'spec',
    },
    {
      file: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscalerSpec.d.ts',
      iface: 'IHorizontalPodAutoscalerSpec',
      kind: 'HorizontalPodAutoscaler',
      name: 'iris-r3',
      at: (h) => h,
      path: 'spec',
    },
  ];
  for (const c of cases) {
    const fields = declaredFields(c.file, c.iface);
    assert.ok(fields.length >= 3, `${c.iface}: ${fields.join(', ')}`);
    const problems = broken((o) => {
      const parent = c.at(find(o, c.kind, c.name));
      const key = c.path.endsWith(']') ? 0 : c.path.split('.').at(-1)!;
      parent[key] = { ...Object.fromEntries(fields.map((f) => [f, null])), notAField: null };
    });
    const unknown = problems.filter((p) => p.includes('unknown field'));
    assert.deepEqual(unknown, [`${c.kind}/ml/${c.name}: ${c.path}.notAField: unknown field`], c.iface);
  }
});

test('the official schemas catch wrong types, missing fields, enums and formats', () => {
  assert.deepEqual(
    broken((o) => {
      find(o, 'HorizontalPodAutoscaler', 'iris-r3').spec.maxReplicas = '5';
    }),
    ['HorizontalPodAutoscaler/ml/iris-r3: spec.maxReplicas: must be an integer (got "5")'],
  );
  assert.deepEqual(
    broken((o) => {
      r3Server(o).resources.limits.memory = 'lots';
    }),
    [`${SERVER}.resources.limits.memory: must be a quantity (as 500m, 2, 1.5Gi) (got "lots")`],
  );
  assert.deepEqual(
    broken((o) => {
      r3Server(o).imagePullPolicy = 'Sometimes';
    }),
    [`${SERVER}.imagePullPolicy: must be one of "Always", "IfNotPresent", "Never" (got "Sometimes")`],
  );
  assert.deepEqual(
    broken((o) => {
      delete r3Server(o).name;
    }),
    [`${SERVER}.name: required field missing`],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'ConfigMap', 'ferry-gateway-routes').data['routes.json'] = { deployments: [] };
    }),
    ['ConfigMap/ml/ferry-gateway-routes: data["routes.json"]: must be a string (got {"deployments":[]})'],
  );
});

test('an unknown apiVersion or kind is a problem', () => {
  assert.deepEqual(
    broken((o) => {
      o.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'debug', namespace: NS } });
    }),
    [
      'Pod/ml/debug: kind: unknown kind "Pod" in apiVersion "v1" (Ferry validates v1 Namespace, v1 ServiceAccount, v1 ConfigMap, v1 Secret, v1 Service, apps/v1 Deployment, networking.k8s.io/v1 NetworkPolicy, policy/v1 PodDisruptionBudget, autoscaling/v2 HorizontalPodAutoscaler, keda.sh/v1alpha1 ScaledObject)',
    ],
  );
  const kustomization = broken((o) => {
    o.push({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      metadata: { name: 'ml' },
    });
  });
  assert.equal(kustomization.length, 1);
  assert.match(kustomization[0]!, /^Kustomization\/ml: kind: unknown kind "Kustomization"/);
  assert.deepEqual(
    broken((o) => {
      find(o, 'HorizontalPodAutoscaler', 'iris-r3').apiVersion = 'autoscaling/v1';
    }),
    [
      'HorizontalPodAutoscaler/ml/iris-r3: apiVersion: "autoscaling/v1" is not an apiVersion Ferry validates HorizontalPodAutoscaler in (autoscaling/v2)',
    ],
  );
  assert.deepEqual(objectProblems([null as unknown as KubernetesObject]), [
    'object 0: is not a Kubernetes object (null)',
  ]);
});

test('names, labels and keys the API server would reject', () => {
  assert.deepEqual(
    broken((o) => {
      find(o, 'Service', 'ferry-gateway').metadata.name = '1-gateway';
    }),
    [
      'Service/ml/1-gateway: metadata.name: "1-gateway" is not a DNS-1035 label: lowercase letters, digits and \'-\', a letter first, alphanumeric last',
    ],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'Namespace', 'ml').metadata.name = 'ml.prod';
    }),
    [
      'Namespace/ml.prod: metadata.name: "ml.prod" is not a DNS-1123 label: lowercase letters, digits and \'-\', alphanumeric at both ends',
    ],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'ConfigMap', 'ferry-gateway-routes').metadata.name = 'Routes';
      find(o, 'Deployment', 'ferry-gateway').spec.template.spec.volumes[0].configMap.name = 'Routes';
    }),
    [
      "ConfigMap/ml/Routes: metadata.name: \"Routes\" is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', alphanumeric at both ends",
    ],
  );
  const long = 'x'.repeat(64);
  assert.deepEqual(
    broken((o) => {
      find(o, 'Secret', 'iris-secrets').metadata.labels = { 'ferry.dev/spec': long, 'bad key!': 'v' };
    }),
    [
      `Secret/ml/iris-secrets: metadata.labels["ferry.dev/spec"]: "${long.slice(0, 56)}... is not a label value: at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends`,
      `Secret/ml/iris-secrets: metadata.labels["bad key!"]: label key "bad key!" is not a qualified name: 1-63 letters, digits, '-', '_' or '.' after any prefix/, alphanumeric at both ends`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      r3Server(o).name = 'Server';
      r3Server(o).ports.push({ name: 'metrics_port', containerPort: 9090 });
    }),
    [
      `${SERVER}.name: "Server" is not a DNS-1123 label: lowercase letters, digits and '-', alphanumeric at both ends`,
      `${SERVER}.ports[1].name: "metrics_port" is not a port name: 1-15 lowercase letters, digits and '-', with a letter, no '--', alphanumeric at both ends`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'Secret', 'iris-secrets').data['api key'] = 'eA==';
    }),
    [
      `Secret/ml/iris-secrets: data["api key"]: "api key" is not a key: 1-253 letters, digits, '-', '_' or '.'`,
    ],
  );
});

test('the name rules themselves', () => {
  assert.equal(dns1123LabelError('iris-r3'), undefined);
  assert.ok(dns1123LabelError('-iris'));
  assert.ok(dns1123LabelError('a'.repeat(64)));
  assert.equal(dns1123SubdomainError('iris.r3.example'), undefined);
  assert.ok(dns1123SubdomainError('iris..r3'));
  assert.equal(dns1035LabelError('iris-r3'), undefined);
  assert.ok(dns1035LabelError('3iris'));
  assert.equal(qualifiedNameError('app.kubernetes.io/name'), undefined);
  assert.equal(qualifiedNameError('Simple_Key.1'), undefined);
  assert.ok(qualifiedNameError('/name'));
  assert.ok(qualifiedNameError('Example.com/name'));
  assert.ok(qualifiedNameError(`a/${'b'.repeat(64)}`));
  assert.equal(labelValueError(''), undefined);
  assert.ok(labelValueError('-x'));
  assert.equal(portNameError('http'), undefined);
  assert.equal(portNameError('h2c-8080'), undefined);
  assert.ok(portNameError('8080'));
  assert.ok(portNameError('http--x'));
  assert.ok(portNameError('a-very-long-port-name'));
});

test("a Deployment's selector must select its own pod template", () => {
  assert.deepEqual(
    broken((o) => {
      r3(o).spec.selector.matchLabels['ferry.dev/revision'] = '4';
    }),
    [
      `${D3}: spec.selector: does not select the pod template: it requires label ferry.dev/revision=4, the pod template has ferry.dev/revision=3`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      r3(o).spec.selector = { matchExpressions: [{ key: 'tier', operator: 'Exists' }] };
    }),
    [
      `${D3}: spec.selector: does not select the pod template: matchExpressions[0] {"key":"tier","operator":"Exists"} does not hold for the pod template's labels`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      r3(o).spec.selector = {};
    }),
    [`${D3}: spec.selector: is empty: a Deployment must select its pods by label`],
  );
});

test('label selectors match as Kubernetes matches them', () => {
  const labels = { app: 'iris', tier: 'model' };
  assert.equal(selectorMatches({}, labels), true);
  assert.equal(selectorMatches(undefined, labels), false);
  assert.equal(selectorMatches({ matchLabels: { app: 'iris' } }, labels), true);
  assert.equal(selectorMatches({ matchLabels: { app: 'ocr' } }, labels), false);
  const expr = (operator: string, values?: string[]) => ({
    matchExpressions: [{ key: 'tier', operator, values }],
  });
  assert.equal(selectorMatches(expr('In', ['model', 'x']), labels), true);
  assert.equal(selectorMatches(expr('In', ['x']), labels), false);
  assert.equal(selectorMatches(expr('NotIn', ['x']), labels), true);
  assert.equal(selectorMatches(expr('NotIn', ['model']), labels), false);
  assert.equal(selectorMatches(expr('Exists'), labels), true);
  assert.equal(selectorMatches(expr('DoesNotExist'), labels), false);
  assert.equal(selectorMatches(expr('DoesNotExist'), { app: 'iris' }), true);
  assert.equal(selectorMatches(expr('Matches'), labels), false);
});

test('every probe port, by name or number, is a port of its container', () => {
  assert.deepEqual(
    broken((o) => {
      r3Server(o).readinessProbe.httpGet.port = 'metrics';
    }),
    [
      `${SERVER}.readinessProbe.httpGet.port: no port of container "server" is named "metrics" (its named ports: http)`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      r3Server(o).livenessProbe.httpGet.port = 9090;
    }),
    [
      `${SERVER}.livenessProbe.httpGet.port: port 9090 is not a port of container "server" (it declares 8080)`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'Deployment', 'ferry-gateway').spec.template.spec.containers[0].readinessProbe.tcpSocket.port =
        'htp';
    }),
    [
      'Deployment/ml/ferry-gateway: spec.template.spec.containers[0].readinessProbe.tcpSocket.port: no port of container "gateway" is named "htp" (its named ports: http)',
    ],
  );
});

test('a Deployment scaled by an HPA or a ScaledObject has no spec.replicas, and the target exists', () => {
  assert.deepEqual(
    broken((o) => {
      r3(o).spec.replicas = 2;
    }),
    [
      `${D3}: spec.replicas: must be absent (is 2): HorizontalPodAutoscaler/ml/iris-r3 scales this Deployment, and an applied replicas overrides it`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'Deployment', 'iris-r4').spec.replicas = 1;
    }),
    [
      'Deployment/ml/iris-r4: spec.replicas: must be absent (is 1): ScaledObject/ml/iris-r4 scales this Deployment, and an applied replicas overrides it',
    ],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'HorizontalPodAutoscaler', 'iris-r3').spec.scaleTargetRef.name = 'iris-r9';
    }),
    [
      'HorizontalPodAutoscaler/ml/iris-r3: spec.scaleTargetRef.name: no rendered Deployment "iris-r9" in namespace ml to scale',
    ],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'HorizontalPodAutoscaler', 'iris-r3').spec.minReplicas = 6;
    }),
    ['HorizontalPodAutoscaler/ml/iris-r3: spec.minReplicas: 6 is more than maxReplicas (5)'],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'ScaledObject', 'iris-r4').spec.scaleTargetRef.name = 'iris-r3';
    }),
    [
      'Deployment/ml/iris-r3: metadata.name: is scaled by both HorizontalPodAutoscaler/ml/iris-r3 and ScaledObject/ml/iris-r4',
    ],
  );
});

/** Each Pod Security Standard rule, broken alone in iris-r3's pod, and the one problem it gives. */
const PSS_CASES: { rule: string; change: (o: Any[]) => void; problem: string }[] = [
  {
    rule: 'runAsNonRoot unset everywhere',
    change: (o) => delete r3Pod(o).securityContext.runAsNonRoot,
    problem: `${SERVER}.securityContext.runAsNonRoot: must be true, here or in the pod's securityContext`,
  },
  {
    rule: 'runAsNonRoot false in a container',
    change: (o) => (r3Server(o).securityContext.runAsNonRoot = false),
    problem: `${SERVER}.securityContext.runAsNonRoot: must not be false`,
  },
  {
    rule: 'runAsUser 0',
    change: (o) => (r3Server(o).securityContext.runAsUser = 0),
    problem: `${SERVER}.securityContext.runAsUser: must not be 0 (root)`,
  },
  {
    rule: 'runAsUser 0 for the pod',
    change: (o) => (r3Pod(o).securityContext.runAsUser = 0),
    problem: `${POD}.securityContext.runAsUser: must not be 0 (root)`,
  },
  {
    rule: 'allowPrivilegeEscalation unset',
    change: (o) => delete r3Server(o).securityContext.allowPrivilegeEscalation,
    problem: `${SERVER}.securityContext.allowPrivilegeEscalation: must be false (is unset)`,
  },
  {
    rule: 'capabilities not dropped',
    change: (o) => (r3Server(o).securityContext.capabilities = { drop: ['NET_RAW'] }),
    problem: `${SERVER}.securityContext.capabilities.drop: must include ALL (is ["NET_RAW"])`,
  },
  {
    rule: 'a capability added',
    change: (o) => (r3Server(o).securityContext.capabilities.add = ['NET_BIND_SERVICE', 'SYS_ADMIN']),
    problem: `${SERVER}.securityContext.capabilities.add[1]: capability "SYS_ADMIN" may not be added (only NET_BIND_SERVICE)`,
  },
  {
    rule: 'seccomp unset everywhere',
    change: (o) => delete r3Pod(o).securityContext.seccompProfile,
    problem: `${SERVER}.securityContext.seccompProfile.type: must be RuntimeDefault or Localhost, here or in the pod's securityContext`,
  },
  {
    rule: 'seccomp Unconfined in a container',
    change: (o) => (r3Server(o).securityContext.seccompProfile = { type: 'Unconfined' }),
    problem: `${SERVER}.securityContext.seccompProfile.type: must be RuntimeDefault or Localhost, not Unconfined`,
  },
  {
    rule: 'privileged',
    change: (o) => (r3Server(o).securityContext.privileged = true),
    problem: `${SERVER}.securityContext.privileged: must not be true`,
  },
  {
    rule: 'hostNetwork',
    change: (o) => (r3Pod(o).hostNetwork = true),
    problem: `${POD}.hostNetwork: must not be true: no host namespaces`,
  },
  {
    rule: 'hostPID',
    change: (o) => (r3Pod(o).hostPID = true),
    problem: `${POD}.hostPID: must not be true: no host namespaces`,
  },
  {
    rule: 'hostIPC',
    change: (o) => (r3Pod(o).hostIPC = true),
    problem: `${POD}.hostIPC: must not be true: no host namespaces`,
  },
  {
    rule: 'a hostPath volume',
    change: (o) => r3Pod(o).volumes.push({ name: 'host', hostPath: { path: '/var/run' } }),
    problem: `${POD}.volumes[1].hostPath: hostPath volumes are forbidden`,
  },
  {
    rule: 'a volume type outside the restricted list',
    change: (o) => r3Pod(o).volumes.push({ name: 'models', nfs: { server: 'nfs.example', path: '/models' } }),
    problem: `${POD}.volumes[1].nfs: volume type nfs is not allowed (only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret)`,
  },
  {
    rule: 'a hostPort',
    change: (o) => (r3Server(o).ports[0].hostPort = 8080),
    problem: `${SERVER}.ports[0].hostPort: must not be set (is 8080)`,
  },
  {
    rule: 'an unsafe sysctl',
    change: (o) => (r3Pod(o).securityContext.sysctls = [{ name: 'net.core.somaxconn', value: '1024' }]),
    problem: `${POD}.securityContext.sysctls[0].name: sysctl net.core.somaxconn is not one of the safe sysctls`,
  },
  {
    rule: 'an SELinux user',
    change: (o) => (r3Server(o).securityContext.seLinuxOptions = { user: 'system_u' }),
    problem: `${SERVER}.securityContext.seLinuxOptions.user: must not be set`,
  },
  {
    rule: 'procMount Unmasked',
    change: (o) => (r3Server(o).securityContext.procMount = 'Unmasked'),
    problem: `${SERVER}.securityContext.procMount: must be Default, not "Unmasked"`,
  },
  {
    rule: 'AppArmor Unconfined',
    change: (o) => (r3Pod(o).securityContext.appArmorProfile = { type: 'Unconfined' }),
    problem: `${POD}.securityContext.appArmorProfile.type: must be RuntimeDefault or Localhost, not Unconfined`,
  },
  {
    rule: 'a Windows host process',
    change: (o) => (r3Server(o).securityContext.windowsOptions = { hostProcess: true }),
    problem: `${SERVER}.securityContext.windowsOptions.hostProcess: must not be true`,
  },
];

test('every Pod Security Standard "restricted" rule', () => {
  for (const c of PSS_CASES)
    assert.deepEqual(broken(c.change), [`${c.problem} (Pod Security Standard restricted)`], c.rule);
  // An init container is held to the same rules.
  assert.deepEqual(
    broken((o) => {
      r3Pod(o).initContainers = [
        {
          name: 'fetch',
          image: 'busybox',
          securityContext: { ...restrictedContainerSecurity(), runAsUser: 0 },
        },
      ];
    }),
    [
      `${POD}.initContainers[0].securityContext.runAsUser: must not be 0 (root) (Pod Security Standard restricted)`,
    ],
  );
  // NET_BIND_SERVICE alone may be added.
  assert.deepEqual(
    broken((o) => {
      r3Server(o).securityContext.capabilities.add = ['NET_BIND_SERVICE'];
    }),
    [],
  );
});

test("Ferry's hardening beyond restricted: read-only root file system, no service account token", () => {
  assert.deepEqual(
    broken((o) => {
      r3Server(o).securityContext.readOnlyRootFilesystem = false;
    }),
    [
      `${SERVER}.securityContext.readOnlyRootFilesystem: must be true (is false): Ferry's containers write only to mounted volumes`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      delete r3Pod(o).automountServiceAccountToken;
    }),
    [
      `${POD}.automountServiceAccountToken: must be false (is unset): Ferry's pods need no Kubernetes API token`,
    ],
  );
  assert.deepEqual(
    broken((o) => {
      r3Pod(o).serviceAccountName = 'iris-sa';
    }),
    [`${POD}.serviceAccountName: no rendered ServiceAccount "iris-sa" in namespace ml`],
  );
  assert.deepEqual(
    broken((o) => {
      delete r3Pod(o).serviceAccountName;
    }),
    [`${POD}.serviceAccountName: is unset: the pods would run as the namespace's default ServiceAccount`],
  );
});

test('every pod is selected by a NetworkPolicy for Ingress and for Egress', () => {
  const open = (name: string, direction: string) =>
    `Deployment/ml/${name}: spec.template.metadata.labels: no NetworkPolicy in namespace ml selects these pods for ${direction}: they are open to all ${direction.toLowerCase()} traffic`;
  // Without the default deny, the replicas still have an ingress policy (from the gateway) but no egress one.
  assert.deepEqual(
    broken((o) => {
      o.splice(o.indexOf(find(o, 'NetworkPolicy', 'default-deny')), 1);
    }),
    [open('iris-r3', 'Egress'), open('iris-r4', 'Egress')],
  );
  // A default deny for Ingress only: the same.
  assert.deepEqual(
    broken((o) => {
      find(o, 'NetworkPolicy', 'default-deny').spec.policyTypes = ['Ingress'];
    }),
    [open('iris-r3', 'Egress'), open('iris-r4', 'Egress')],
  );
  // A policy in another namespace covers nothing here.
  assert.deepEqual(
    broken((o) => {
      for (const p of o.filter((x) => x.kind === 'NetworkPolicy')) p.metadata.namespace = 'other';
    }),
    ['iris-r3', 'iris-r4', 'ferry-gateway'].flatMap((d) => [open(d, 'Ingress'), open(d, 'Egress')]),
  );
});

test('a Service selects rendered pods, on ports they declare; a PDB selects rendered pods', () => {
  assert.deepEqual(
    broken((o) => {
      find(o, 'Service', 'iris-r4').spec.selector['ferry.dev/revision'] = '5';
    }),
    ['Service/ml/iris-r4: spec.selector: selects no pods of a rendered Deployment in namespace ml'],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'Service', 'iris-r4').spec.ports[0].targetPort = 'grpc';
    }),
    [
      'Service/ml/iris-r4: spec.ports[0].targetPort: "grpc" is not a port the pods of Deployment/ml/iris-r4 declare',
    ],
  );
  assert.deepEqual(
    broken((o) => {
      find(o, 'PodDisruptionBudget', 'ferry-gateway').spec.selector.matchLabels = {
        'app.kubernetes.io/name': 'gw',
      };
    }),
    [
      'PodDisruptionBudget/ml/ferry-gateway: spec.selector: selects no pods of a rendered Deployment in namespace ml',
    ],
  );
});

test('two objects of the same kind and name', () => {
  assert.deepEqual(
    broken((o) => {
      o.push(structuredClone(find(o, 'ConfigMap', 'ferry-gateway-routes')));
    }),
    ['ConfigMap/ml/ferry-gateway-routes: metadata.name: another rendered object has the same kind and name'],
  );
});

test('a KEDA ScaledObject: the structure Ferry knows (it has no official schema)', () => {
  const so = (o: Any[]) => find(o, 'ScaledObject', 'iris-r4');
  const SO = 'ScaledObject/ml/iris-r4';
  assert.deepEqual(
    broken((o) => {
      so(o).spec.minReplicaCount = '0';
    }),
    [`${SO}: spec.minReplicaCount: must be a non-negative 32-bit integer (got "0")`],
  );
  assert.deepEqual(
    broken((o) => {
      so(o).spec.maxReplicaCont = 3;
    }),
    [`${SO}: spec.maxReplicaCont: unknown field (did you mean maxReplicaCount?)`],
  );
  assert.deepEqual(
    broken((o) => {
      so(o).spec.minReplicaCount = 4;
    }),
    [`${SO}: spec.minReplicaCount: 4 is more than maxReplicaCount (3)`],
  );
  assert.deepEqual(
    broken((o) => {
      so(o).spec.scaleTargetRef.name = 'iris-r9';
    }),
    [`${SO}: spec.scaleTargetRef.name: no rendered Deployment "iris-r9" in namespace ml to scale`],
  );
  assert.deepEqual(
    broken((o) => {
      so(o).spec.triggers = [];
    }),
    [`${SO}: spec.triggers: must not be empty`],
  );
  assert.deepEqual(
    broken((o) => {
      so(o).spec.triggers[0].metadata.threshold = 4;
    }),
    [`${SO}: spec.triggers[0].metadata.threshold: must be a string (got 4)`],
  );
  // Its metadata and its HPA behavior go through the official schemas.
  assert.deepEqual(
    broken((o) => {
      so(o).metadata.lables = {};
      so(o).spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds =
        'long';
    }),
    [
      `${SO}: metadata.lables: unknown field (did you mean labels?)`,
      `${SO}: spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds: must be an integer (got "long")`,
    ],
  );
});
