import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  gatewayService,
  revisionService,
  revisionServiceName,
  SWARM_SHUTDOWN_DELAY_MS,
  type SwarmRevisionInput,
} from './swarm-service.ts';

const GOLDEN = new URL('./testdata/swarm-services.json', import.meta.url);
const DIGEST = `sha256:${'a'.repeat(64)}`;

const IRIS: SwarmRevisionInput = {
  tenant: 'ml',
  deployment: 'iris',
  revision: 3,
  image: `10.231.0.1:5000/ml/iris@${DIGEST}`,
  replicas: 3,
  env: { LOG_LEVEL: 'info' },
  secrets: [
    { name: 'HF_TOKEN', secretId: 'sec2', secretName: 'ferry-ml-iris-HF_TOKEN-v2' },
    { name: 'API_KEY', secretId: 'sec1', secretName: 'ferry-ml-iris-API_KEY-v1' },
  ],
  cpus: 0.5,
  memoryBytes: 512 * 1024 ** 2,
  gpus: 1,
  constraints: ['node.labels.gpu==true'],
  network: 'ferry-ml-iris',
  startupTimeoutMs: 120_000,
  shutdownTimeoutS: 30,
  labels: {
    'ferry.dev/revision': '3',
    'ferry.dev/deployment': 'iris',
    'app.kubernetes.io/managed-by': 'ferry',
  },
};

const GATEWAY = {
  image: `10.231.0.1:5000/ferry-gateway:0.1.0@${DIGEST}`,
  replicas: 2,
  publishedPort: 8080,
  routesUrl: 'http://10.231.0.11:7070/v1/gateway/routes',
  token: { secretId: 'gw1', secretName: 'ferry-gateway-token-v1' },
  networks: ['ferry-ml-ocr', 'ferry-ml-iris'],
  egressNetwork: 'ferry-gateway',
  labels: { 'app.kubernetes.io/managed-by': 'ferry', 'ferry.dev/component': 'gateway' },
};

test('a revision and the gateway as Swarm services match the golden file', () => {
  const out = `${JSON.stringify({ revision: revisionService(IRIS), gateway: gatewayService(GATEWAY) }, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, out);
  assert.equal(
    out,
    readFileSync(GOLDEN, 'utf8'),
    'changed; if intended, rerun with UPDATE_GOLDEN=1 and review the diff',
  );
});

test('what a reviewer relies on: hardened, no secret value anywhere, dnsrr without published ports, defaults as Docker', () => {
  const spec = revisionService({
    ...IRIS,
    cpus: null,
    memoryBytes: null,
    gpus: 0,
    secrets: [],
    constraints: [],
  });
  const task = spec.TaskTemplate as {
    ContainerSpec: Record<string, unknown>;
    Resources: { Limits: unknown };
  };
  assert.equal(spec.Name, revisionServiceName('ml', 'iris', 3));
  assert.equal(task.ContainerSpec.User, '65532:65532');
  assert.equal(task.ContainerSpec.ReadOnly, true);
  assert.deepEqual(task.ContainerSpec.CapabilityDrop, ['ALL']);
  assert.deepEqual(task.Resources.Limits, { NanoCPUs: 1_000_000_000, MemoryBytes: 1024 ** 3, Pids: 256 });
  assert.deepEqual(spec.EndpointSpec, { Mode: 'dnsrr' });
  assert.ok(
    !(task.ContainerSpec.Env as string[]).some((e) => e.startsWith('FERRY_SECRETS_DIR')),
    'no secrets dir without secrets',
  );
  // A stopping task serves through the shutdown delay, then drains; Swarm's SIGKILL comes after both.
  assert.ok(
    (task.ContainerSpec.Env as string[]).includes(`FERRY_SHUTDOWN_DELAY_MS=${SWARM_SHUTDOWN_DELAY_MS}`),
  );
  assert.ok(
    (task.ContainerSpec.StopGracePeriod as number) >
      (SWARM_SHUTDOWN_DELAY_MS + IRIS.shutdownTimeoutS * 1000) * 1_000_000,
  );
  // Secrets: references only; the env never carries them.
  const withSecrets = JSON.stringify(revisionService(IRIS));
  assert.ok(!/HF_TOKEN=|API_KEY=/.test(withSecrets));
  const gateway = gatewayService(GATEWAY);
  assert.deepEqual(gateway.EndpointSpec?.Ports, [
    { Protocol: 'tcp', TargetPort: 8080, PublishedPort: 8080, PublishMode: 'host' },
  ]);
  assert.equal((gateway.TaskTemplate as { Placement: { MaxReplicas: number } }).Placement.MaxReplicas, 1);
});

test("the gateway gets the platform's OTEL_* variables when there are some, sorted; none otherwise", () => {
  const without = gatewayService(GATEWAY).TaskTemplate as { ContainerSpec: { Env?: string[] } };
  assert.equal(without.ContainerSpec.Env, undefined);
  const traced = gatewayService({
    ...GATEWAY,
    env: { OTEL_SERVICE_NAME: 'gw', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://10.231.0.5:4318' },
  }).TaskTemplate as { ContainerSpec: { Env?: string[] } };
  assert.deepEqual(traced.ContainerSpec.Env, [
    'OTEL_EXPORTER_OTLP_ENDPOINT=http://10.231.0.5:4318',
    'OTEL_SERVICE_NAME=gw',
  ]);
});
