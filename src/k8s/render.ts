/**
 * The Kubernetes renderer (issue 12): Ferry deployments (of one tenant) -> the objects that run them on a cluster,
 * in one namespace. Pure: no I/O,
 * no clock; the same input gives the same objects in the same order, and `toYaml` the same bytes (keys sorted).
 *
 * | object (namespace `ferry-<tenant>` unless given)  | per        | what for                                             |
 * |---------------------------------------------------|------------|------------------------------------------------------|
 * | Namespace, PSS `restricted` enforced              | namespace  | every pod must pass the restricted profile           |
 * | NetworkPolicy `ferry-default-deny`                | namespace  | no ingress, no egress unless allowed below           |
 * | ServiceAccount `<dep>` (token not mounted)        | deployment | its pods' identity; no API access                    |
 * | Deployment `<dep>-r<N>`                           | revision   | the model server: probes, limits, restricted context |
 * | Service `<dep>-r<N>` (headless)                   | revision   | DNS for the gateway: one A record per ready pod, SRV |
 * | PodDisruptionBudget `<dep>-r<N>`                  | revision   | at most one pod evicted at a time                    |
 * | HorizontalPodAutoscaler `<dep>-r<N>`              | revision   | when it autoscales (then no `replicas` in the Deployment) |
 * | ScaledObject `<dep>-r<N>` (KEDA), instead         | revision   | min 0 and `kedaPrometheus` given: scale to zero on the gateway's metrics |
 * | NetworkPolicy `<dep>-r<N>`                        | revision   | ingress from the gateway on the server port; egress only when its version declares it |
 * | ConfigMap `ferry-gateway-routes`                  | namespace  | the gateway's route file (src/gateway/discovery-table.ts) |
 * | ServiceAccount, Deployment, Service, PDB `ferry-gateway` | namespace | the gateway: 2 replicas, file + DNS discovery      |
 * | NetworkPolicy `ferry-gateway`                     | namespace  | ingress on its port from anywhere; egress to replicas and DNS |
 *
 * Secrets are references only: a revision's secrets are files of the Secret `<dep>-secrets` (keys = names),
 * mounted read-only where the server reads them (FERRY_SECRETS_DIR); that Secret is created by `ferry k8s apply`
 * from Ferry's store, never rendered.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { RouteCaller } from '../core/route-table.ts';
import type { DiscoveryTable } from '../gateway/discovery-table.ts';
import type { Toleration } from '../spec/types.ts';
import type { KubernetesObject } from './types.ts';

export interface RenderRevision {
  revision: number;
  /** The image the cluster pulls, pinned by digest. */
  image: string;
  /** The model version (label app.kubernetes.io/version). */
  version: string;
  /** The model name its server serves. */
  servedName: string;
  /** cpu in cores, memory in bytes; null = no limit. */
  resources: { cpu: number | null; memoryBytes: number | null; gpu: number };
  env: Record<string, string>;
  /** Names of its secrets (keys of the Secret `<dep>-secrets`). */
  secretRefs: string[];
  /** The version's ferry.yaml declares network egress. */
  egress: boolean;
  /** How long the model may take to load before the pod is restarted (startup probe budget). */
  startupTimeoutMs: number;
  /** Node labels its pods must run on (GPU nodes); empty = any. */
  nodeSelector: Record<string, string>;
  /** Taints its pods tolerate. */
  tolerations: Toleration[];
}

export interface RenderScaling {
  minReplicas: number;
  maxReplicas: number;
  /** Requests in flight per replica; null = CPU utilisation (70%) instead. */
  target: number | null;
  /** Scale to zero (with KEDA): requests the gateway holds for the deployment at zero, and how long each. */
  maxHeld: number;
  maxHeldWaitMs: number;
  /** Scale to zero (with KEDA): idle this long before the last replica goes. */
  scaleToZeroGraceMs: number;
}

export interface RenderInput {
  /** The deployment's plain name (a DNS-1123 label). */
  name: string;
  tenant: string;
  public: boolean;
  /** Replicas per serving revision when it does not autoscale. */
  replicas: number;
  scaling: RenderScaling | null;
  revisions: RenderRevision[];
  traffic: Array<{ revision: number; percent: number; shadow?: number }>;
}

export interface RenderOptions {
  /** Default `ferry-<tenant>`. */
  namespace?: string;
  /** The image with Ferry's CLI that runs `ferry gateway`. */
  gatewayImage: string;
  /** Default 2. */
  gatewayReplicas?: number;
  /** Default cluster.local. */
  clusterDomain?: string;
  /** The server's drain deadline on SIGTERM (its FERRY_SHUTDOWN_TIMEOUT); default 30 s. */
  shutdownTimeoutS?: number;
  /**
   * Scale to zero: KEDA (keda.sh) scales a deployment whose minReplicas is 0, on the gateway's metrics read from
   * this Prometheus (held + in-flight requests); the gateway holds requests while it is at zero. Without it
   * (null, the default) an HPA scales it and keeps at least one replica (an HPA cannot reach zero).
   */
  kedaPrometheus?: string | null;
  /** Who may call private deployments (token hashes, `ferry k8s token create`); default none. */
  callers?: RouteCaller[];
}

/** The port the model server and the gateway listen on inside their pods. */
export const SERVER_PORT = 8080;
/** Where a revision's secrets are mounted (FERRY_SECRETS_DIR). */
export const SECRETS_MOUNT = '/run/ferry/secrets';
/** Where the gateway's route file is mounted. */
export const ROUTES_MOUNT = '/etc/ferry';
const GATEWAY = 'ferry-gateway';
/** Seconds for endpoints to stop sending to a terminating pod before it is told to stop (preStop). */
const ENDPOINT_CONVERGE_S = 5;
/** A model server's resources when ferry.yaml gives none (the Docker runtime's defaults). */
const DEFAULT_CPU_LIMIT = '1';
const DEFAULT_CPU_REQUEST = '250m';
const DEFAULT_MEMORY_BYTES = 1024 ** 3;
/** The uid the images run as (non-root; src/image). */
const RUN_AS = 65532;

const managed = { 'app.kubernetes.io/managed-by': 'ferry', 'app.kubernetes.io/part-of': 'ferry' };

/** The deployment autoscales with a minimum of 0. */
function toZero(input: RenderInput): boolean {
  return input.scaling !== null && input.scaling.minReplicas === 0;
}

function revisionName(dep: string, revision: number): string {
  return `${dep}-r${revision}`;
}

function selectorOf(dep: string, revision: number): Record<string, string> {
  return { 'ferry.dev/deployment': dep, 'ferry.dev/revision': String(revision) };
}

/** "1.5" cores -> "1500m"; bytes -> "512Mi" when whole MiB, else bytes. */
export function cpuQuantity(cores: number): string {
  const milli = Math.round(cores * 1000);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

export function memoryQuantity(bytes: number): string {
  const mi = 1024 * 1024;
  if (bytes % (1024 * mi) === 0) return `${bytes / (1024 * mi)}Gi`;
  if (bytes % mi === 0) return `${bytes / mi}Mi`;
  return String(bytes);
}

/** The restricted securityContext of every container Ferry renders. */
function containerSecurity(): Record<string, unknown> {
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: RUN_AS,
    runAsGroup: RUN_AS,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function podSecurity(): Record<string, unknown> {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS,
    runAsGroup: RUN_AS,
    fsGroup: RUN_AS,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function httpProbe(path: string, periodSeconds: number, failureThreshold: number): Record<string, unknown> {
  return { httpGet: { path, port: 'http' }, periodSeconds, failureThreshold, timeoutSeconds: 2 };
}

function modelDeployment(
  input: RenderInput,
  r: RenderRevision,
  ns: string,
  o: Required<RenderOptions>,
): KubernetesObject {
  const name = revisionName(input.name, r.revision);
  const labels = {
    ...managed,
    'app.kubernetes.io/name': input.name,
    'app.kubernetes.io/instance': name,
    'app.kubernetes.io/version': r.version,
    'app.kubernetes.io/component': 'model-server',
    ...selectorOf(input.name, r.revision),
  };
  // Limits always, as on Docker (src/runtime/docker-runtime.ts: 1 CPU, 1 GiB when ferry.yaml says nothing); memory
  // requested as limited (never overcommitted), CPU requested at the spec's value or a quarter of the default.
  const limits: Record<string, string> = {
    cpu: r.resources.cpu === null ? DEFAULT_CPU_LIMIT : cpuQuantity(r.resources.cpu),
    memory: memoryQuantity(r.resources.memoryBytes ?? DEFAULT_MEMORY_BYTES),
  };
  const requests: Record<string, string> = {
    cpu: r.resources.cpu === null ? DEFAULT_CPU_REQUEST : cpuQuantity(r.resources.cpu),
    memory: limits.memory!,
  };
  if (r.resources.gpu > 0) limits['nvidia.com/gpu'] = String(r.resources.gpu);
  const env = [
    { name: 'FERRY_HOST', value: '0.0.0.0' },
    { name: 'FERRY_PORT', value: String(SERVER_PORT) },
    { name: 'FERRY_SHUTDOWN_TIMEOUT', value: String(o.shutdownTimeoutS) },
    { name: 'FERRY_FAIL_ON_LOAD_ERROR', value: '1' },
    ...(r.secretRefs.length > 0 ? [{ name: 'FERRY_SECRETS_DIR', value: SECRETS_MOUNT }] : []),
    ...Object.keys(r.env)
      .sort()
      .map((k) => ({ name: k, value: r.env[k]! })),
  ];
  const volumes: Record<string, unknown>[] = [{ name: 'tmp', emptyDir: {} }];
  const mounts: Record<string, unknown>[] = [{ name: 'tmp', mountPath: '/tmp' }];
  if (r.secretRefs.length > 0) {
    volumes.push({
      name: 'secrets',
      secret: {
        secretName: `${input.name}-secrets`,
        items: [...r.secretRefs].sort().map((k) => ({ key: k, path: k })),
        defaultMode: 0o400,
      },
    });
    mounts.push({ name: 'secrets', mountPath: SECRETS_MOUNT, readOnly: true });
  }
  const startupPeriod = 2;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, labels },
    spec: {
      ...(input.scaling === null ? { replicas: input.replicas } : {}),
      revisionHistoryLimit: 3,
      progressDeadlineSeconds: Math.max(600, Math.ceil(r.startupTimeoutMs / 1000) + 120),
      selector: { matchLabels: selectorOf(input.name, r.revision) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: input.name,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurity(),
          ...(Object.keys(r.nodeSelector).length > 0 ? { nodeSelector: r.nodeSelector } : {}),
          ...(r.tolerations.length > 0 ? { tolerations: r.tolerations } : {}),
          // Longer than the server's drain deadline plus the preStop wait: a drain is never cut short.
          terminationGracePeriodSeconds: o.shutdownTimeoutS + ENDPOINT_CONVERGE_S + 10,
          topologySpreadConstraints: ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'].map((key) => ({
            maxSkew: 1,
            topologyKey: key,
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchLabels: selectorOf(input.name, r.revision) },
          })),
          containers: [
            {
              name: 'model-server',
              image: r.image,
              imagePullPolicy: 'IfNotPresent',
              ports: [{ name: 'http', containerPort: SERVER_PORT, protocol: 'TCP' }],
              env,
              resources: { limits, requests },
              // A slow model load is never killed: the startup probe's budget is the spec's load time.
              startupProbe: httpProbe(
                '/v2/health/live',
                startupPeriod,
                Math.max(1, Math.ceil(r.startupTimeoutMs / 1000 / startupPeriod)),
              ),
              readinessProbe: httpProbe('/v2/health/ready', 2, 2),
              livenessProbe: httpProbe('/v2/health/live', 10, 6),
              // Endpoints stop sending here before the server is told to drain.
              lifecycle: { preStop: { sleep: { seconds: ENDPOINT_CONVERGE_S } } },
              securityContext: containerSecurity(),
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
}

function headlessService(input: RenderInput, r: RenderRevision, ns: string): KubernetesObject {
  const name = revisionName(input.name, r.revision);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: ns,
      labels: { ...managed, 'app.kubernetes.io/name': input.name, ...selectorOf(input.name, r.revision) },
    },
    spec: {
      clusterIP: 'None',
      selector: selectorOf(input.name, r.revision),
      ports: [{ name: 'http', port: SERVER_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

function disruptionBudget(
  name: string,
  ns: string,
  selector: Record<string, string>,
  labels: Record<string, string>,
): KubernetesObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace: ns, labels },
    spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
  };
}

function autoscaler(input: RenderInput, r: RenderRevision, ns: string, s: RenderScaling): KubernetesObject {
  const name = revisionName(input.name, r.revision);
  const metric =
    s.target === null
      ? {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
        }
      : {
          type: 'Pods',
          pods: {
            // The server's requests in flight (ferry_requests_in_flight), through a metrics adapter such as
            // prometheus-adapter (docs/kubernetes.md): `target` requests per replica on average, as on one machine.
            metric: { name: 'ferry_requests_in_flight' },
            target: { type: 'AverageValue', averageValue: String(s.target) },
          },
        };
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name, namespace: ns, labels: { ...managed, ...selectorOf(input.name, r.revision) } },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: Math.max(1, s.minReplicas),
      maxReplicas: s.maxReplicas,
      metrics: [metric],
    },
  };
}

/** The gateway's metrics label for a deployment: its key (the plain name in the default tenant). */
function deploymentKey(input: RenderInput): string {
  return input.tenant === 'default' ? input.name : `${input.tenant}/${input.name}`;
}

/** KEDA, for a revision that may scale to zero: on the gateway's held and in-flight requests, from Prometheus. */
function scaledObject(
  input: RenderInput,
  r: RenderRevision,
  ns: string,
  s: RenderScaling,
  prometheus: string,
): KubernetesObject {
  const name = revisionName(input.name, r.revision);
  const key = deploymentKey(input);
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name, namespace: ns, labels: { ...managed, ...selectorOf(input.name, r.revision) } },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicaCount: 0,
      maxReplicaCount: s.maxReplicas,
      cooldownPeriod: Math.max(1, Math.round(s.scaleToZeroGraceMs / 1000)),
      pollingInterval: 5,
      triggers: [
        {
          type: 'prometheus',
          metadata: {
            serverAddress: prometheus,
            // Requests the gateway holds for the deployment at zero start it (activation above 0); in flight to
            // this revision's replicas sizes it (threshold: the per-replica target).
            query: `sum(ferry_gateway_activator_held{deployment="${key}"} or vector(0)) + sum(ferry_gateway_outstanding{deployment="${key}",revision="${r.revision}"} or vector(0))`,
            threshold: String(s.target ?? 8),
            activationThreshold: '0',
          },
        },
      ],
    },
  };
}

const DNS_EGRESS = {
  to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
  ports: [
    { protocol: 'UDP', port: 53 },
    { protocol: 'TCP', port: 53 },
  ],
};

/** Per revision: ingress from the gateway on the server port; egress only when its version declares it. */
function replicaPolicy(input: RenderInput, r: RenderRevision, ns: string): KubernetesObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: revisionName(input.name, r.revision),
      namespace: ns,
      labels: { ...managed, ...selectorOf(input.name, r.revision) },
    },
    spec: {
      podSelector: { matchLabels: selectorOf(input.name, r.revision) },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'gateway' } } }],
          ports: [{ protocol: 'TCP', port: SERVER_PORT }],
        },
      ],
      // Sealed unless the version declares egress (`network.egress` in its ferry.yaml): then anywhere.
      egress: r.egress ? [{}] : [],
    },
  };
}

/** The gateway's route file: each deployment's serving revisions by their headless Services' DNS names. */
export function routeFile(
  inputs: readonly RenderInput[],
  ns: string,
  clusterDomain = 'cluster.local',
  scaleToZero = false,
  callers: readonly RouteCaller[] = [],
): DiscoveryTable {
  return {
    // A deployment with no traffic (being started, or being deleted) is not routed to at all.
    deployments: inputs
      .filter((input) => input.traffic.some(serving))
      .map((input) => ({
        name: input.name,
        ...(input.tenant === 'default' ? {} : { tenant: input.tenant }),
        public: input.public,
        // At zero (KEDA), the gateway holds requests until DNS shows a replica, as the activator does on one machine.
        ...(scaleToZero && toZero(input) && input.scaling !== null
          ? { activator: { maxHeld: input.scaling.maxHeld, maxWaitMs: input.scaling.maxHeldWaitMs } }
          : {}),
        // Only revisions that take traffic: one being started (no traffic yet) is not routed to.
        revisions: input.traffic.filter(serving).map((t) => ({
          revision: t.revision,
          percent: t.percent,
          shadow: t.shadow ?? 0,
          servedName: input.revisions.find((x) => x.revision === t.revision)?.servedName ?? input.name,
          service: {
            host: `${revisionName(input.name, t.revision)}.${ns}.svc.${clusterDomain}`,
            port: SERVER_PORT,
          },
        })),
      })),
    callers: [...callers],
  };
}

/** A traffic entry that sends requests: a share of the split, or a shadow copy. */
function serving(t: RenderInput['traffic'][number]): boolean {
  return t.percent > 0 || (t.shadow ?? 0) > 0;
}

function gatewayObjects(
  inputs: readonly RenderInput[],
  ns: string,
  o: Required<RenderOptions>,
): KubernetesObject[] {
  const labels = { ...managed, 'app.kubernetes.io/name': GATEWAY, 'app.kubernetes.io/component': 'gateway' };
  const selector = { 'app.kubernetes.io/name': GATEWAY, 'app.kubernetes.io/component': 'gateway' };
  const routes = `${JSON.stringify(routeFile(inputs, ns, o.clusterDomain, o.kedaPrometheus !== null, o.callers), null, 2)}\n`;
  // The route file's digest on the pod template: a change of routes is a rollout of the gateway, which `ferry k8s
  // apply` and `status` can watch to know every gateway has the new table (a mounted ConfigMap changes in place
  // only after the kubelet's sync, up to a minute or two, with no signal) before a revision is removed.
  const routesDigest = createHash('sha256').update(routes).digest('hex');
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${GATEWAY}-routes`, namespace: ns, labels },
      data: { 'routes.json': routes },
    },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: GATEWAY, namespace: ns, labels },
      automountServiceAccountToken: false,
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: GATEWAY, namespace: ns, labels },
      spec: {
        replicas: o.gatewayReplicas,
        revisionHistoryLimit: 3,
        selector: { matchLabels: selector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: { labels, annotations: { 'ferry.dev/routes-sha256': routesDigest } },
          spec: {
            serviceAccountName: GATEWAY,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: podSecurity(),
            terminationGracePeriodSeconds: 30,
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'kubernetes.io/hostname',
                whenUnsatisfiable: 'ScheduleAnyway',
                labelSelector: { matchLabels: selector },
              },
            ],
            containers: [
              {
                name: 'gateway',
                image: o.gatewayImage,
                imagePullPolicy: 'IfNotPresent',
                args: [
                  'gateway',
                  '--routes',
                  `${ROUTES_MOUNT}/routes.json`,
                  '--host',
                  '0.0.0.0',
                  '--port',
                  String(SERVER_PORT),
                ],
                ports: [{ name: 'http', containerPort: SERVER_PORT, protocol: 'TCP' }],
                resources: {
                  requests: { cpu: '250m', memory: '128Mi' },
                  limits: { cpu: '1', memory: '512Mi' },
                },
                readinessProbe: httpProbe('/v2/health/live', 2, 2),
                livenessProbe: httpProbe('/v2/health/live', 10, 6),
                lifecycle: { preStop: { sleep: { seconds: ENDPOINT_CONVERGE_S } } },
                securityContext: containerSecurity(),
                volumeMounts: [
                  { name: 'routes', mountPath: ROUTES_MOUNT, readOnly: true },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'routes', configMap: { name: `${GATEWAY}-routes` } },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: GATEWAY, namespace: ns, labels },
      spec: {
        type: 'ClusterIP',
        selector,
        ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
      },
    },
    disruptionBudget(GATEWAY, ns, selector, labels),
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: GATEWAY, namespace: ns, labels },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ ports: [{ protocol: 'TCP', port: SERVER_PORT }] }],
        egress: [
          {
            to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'model-server' } } }],
            ports: [{ protocol: 'TCP', port: SERVER_PORT }],
          },
          DNS_EGRESS,
        ],
      },
    },
  ];
}

/**
 * Every object that runs the deployments (of one tenant, in one namespace) on a cluster, in a stable order: the
 * namespace's objects, then each deployment's (by name) and its revisions' (by number; one without traffic is
 * being started: rendered, not routed to), then the
 * gateway's. Throws on deployments of several tenants or a name given twice (a caller's bug, not input to fix).
 */
export function render(deployments: readonly RenderInput[], options: RenderOptions): KubernetesObject[] {
  const tenants = new Set(deployments.map((d) => d.tenant));
  if (tenants.size > 1) throw new Error(`render: one tenant per namespace, got ${[...tenants].join(', ')}`);
  const names = deployments.map((d) => d.name);
  if (new Set(names).size !== names.length)
    throw new Error(`render: a deployment given twice (${names.join(', ')})`);
  const tenant = deployments[0]?.tenant ?? 'default';
  const o: Required<RenderOptions> = {
    namespace: options.namespace ?? `ferry-${tenant}`,
    gatewayImage: options.gatewayImage,
    gatewayReplicas: options.gatewayReplicas ?? 2,
    clusterDomain: options.clusterDomain ?? 'cluster.local',
    shutdownTimeoutS: options.shutdownTimeoutS ?? 30,
    kedaPrometheus: options.kedaPrometheus ?? null,
    callers: options.callers ?? [],
  };
  const ns = o.namespace;
  const sorted = [...deployments]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((input) => ({ ...input, revisions: [...input.revisions].sort((a, b) => a.revision - b.revision) }));
  const out: KubernetesObject[] = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: ns,
        labels: {
          ...managed,
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'ferry-default-deny', namespace: ns, labels: managed },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    },
  ];
  for (const input of sorted) {
    out.push({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: {
        name: input.name,
        namespace: ns,
        labels: { ...managed, 'app.kubernetes.io/name': input.name },
      },
      automountServiceAccountToken: false,
    });
    for (const r of input.revisions) {
      out.push(modelDeployment(input, r, ns, o), headlessService(input, r, ns), replicaPolicy(input, r, ns));
      out.push(
        disruptionBudget(revisionName(input.name, r.revision), ns, selectorOf(input.name, r.revision), {
          ...managed,
          ...selectorOf(input.name, r.revision),
        }),
      );
      if (input.scaling !== null)
        out.push(
          toZero(input) && o.kedaPrometheus !== null
            ? scaledObject(input, r, ns, input.scaling, o.kedaPrometheus)
            : autoscaler(input, r, ns, input.scaling),
        );
    }
  }
  out.push(...gatewayObjects(sorted, ns, o));
  return out;
}

/** The objects as one YAML stream: keys sorted, `---` between objects; the same objects, the same bytes. */
export function toYaml(objects: readonly KubernetesObject[]): string {
  // No anchors and aliases (`labels: *a1`): plain YAML, as a reviewer and every GitOps tool reads it.
  return objects
    .map((obj) => stringify(obj, { sortMapEntries: true, lineWidth: 0, aliasDuplicateObjects: false }))
    .join('---\n');
}

/** A file name for an object in a rendered directory: `<kind>-<name>.yaml`, lower case (names are unique per kind). */
export function objectFileName(o: KubernetesObject): string {
  return `${o.kind.toLowerCase()}-${o.metadata.name}.yaml`;
}

/** The kustomization.yaml of a rendered directory: its files, in render order (namespace first). */
export function kustomization(files: readonly string[]): string {
  return stringify(
    { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: [...files] },
    { lineWidth: 0 },
  );
}
