/** makeReplicaSpec, the pure function from a revision to what a runtime starts (or why it cannot). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { egressNetworkName, makeReplicaSpec, type ReplicaSpecInput } from './replica-spec.ts';
import type { StoredRevision } from './store/store.ts';

const revision = (over: Partial<StoredRevision['spec']> = {}): StoredRevision => ({
  deployment: 'iris',
  number: 3,
  specHash: 'a'.repeat(64),
  image: '',
  replicas: 2,
  createdAt: 0,
  versionRef: 'v1',
  spec: {
    model: 'iris',
    version: 'v1',
    image: null,
    artifactDir: '/state/artifacts/sha256/abc',
    resources: { cpu: 0.5, memoryBytes: 256 * 1024 ** 2, gpu: 0 },
    env: { MODE: 'fast' },
    secretRefs: [],
    serving: {},
    ...over,
  },
  settings: { resources: { cpu: null, memoryBytes: null, gpu: 0 }, env: {}, secretRefs: [], serving: {} },
});

const input = (over: Partial<ReplicaSpecInput> = {}): ReplicaSpecInput => ({
  revision: revision(),
  index: 1,
  runtime: 'process',
  nameSuffix: 'x1y2z',
  platformLabels: { 'ferry.dev/managed-by': 'ferry', 'ferry.dev/platform': 'p1' },
  replicaEnv: { FERRY_LOG_LEVEL: 'info' },
  secrets: { env: {}, missing: [] },
  ...over,
});

describe('makeReplicaSpec', () => {
  test('a process replica serves the artifact directory, with its name, labels, limits and env', () => {
    const made = makeReplicaSpec(input());
    assert.ok('spec' in made);
    assert.equal(made.spec.name, 'ferry-iris-r3-1-x1y2z');
    assert.equal(made.spec.modelDir, '/state/artifacts/sha256/abc');
    assert.equal(made.spec.image, undefined);
    assert.equal(made.spec.cpus, 0.5);
    assert.equal(made.spec.memoryBytes, 256 * 1024 ** 2);
    assert.deepEqual(made.spec.labels, {
      'ferry.dev/managed-by': 'ferry',
      'ferry.dev/platform': 'p1',
      'ferry.dev/deployment': 'iris',
      'ferry.dev/revision': '3',
      'ferry.dev/spec-hash': 'a'.repeat(64),
      'ferry.dev/replica-index': '1',
    });
    assert.deepEqual(made.spec.env, {
      FERRY_LOG_LEVEL: 'info',
      MODE: 'fast',
      FERRY_FAIL_ON_LOAD_ERROR: '1',
      FERRY_CPU_LIMIT: '0.5',
    });
  });

  test('serving overrides arrive as environment variables, secrets as `secrets` (files), never in env', () => {
    const made = makeReplicaSpec(
      input({
        revision: revision({ serving: { batching: { maxBatchSize: 8 } }, secretRefs: ['hf-token'] }),
        secrets: { env: { HF_TOKEN: 'v' }, missing: [] },
      }),
    );
    assert.ok('spec' in made);
    assert.equal(made.spec.env?.FERRY_SERVING_OVERRIDES, '{"batching":{"maxBatchSize":8}}');
    assert.equal(made.spec.env?.HF_TOKEN, undefined);
    assert.deepEqual(made.spec.secrets, { HF_TOKEN: 'v' });
  });

  test('with tracing on, a replica names its deployment and revision in its OTel resource', () => {
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    const made = makeReplicaSpec(input({ replicaEnv: otel }));
    assert.ok('spec' in made);
    assert.equal(made.spec.env?.OTEL_RESOURCE_ATTRIBUTES, 'ferry.deployment=iris,ferry.revision=3');
    const more = makeReplicaSpec(
      input({ replicaEnv: { ...otel, OTEL_RESOURCE_ATTRIBUTES: 'team=ml' }, revision: revision() }),
    );
    assert.ok('spec' in more);
    assert.equal(more.spec.env?.OTEL_RESOURCE_ATTRIBUTES, 'team=ml,ferry.deployment=iris,ferry.revision=3');
    const off = makeReplicaSpec(input());
    assert.ok('spec' in off);
    assert.equal(off.spec.env?.OTEL_RESOURCE_ATTRIBUTES, undefined);
  });

  test("a sealed replica's relay variables give way to a collector its deployment names itself", () => {
    const sealed = {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://localhost/v1/traces',
      FERRY_OTLP_SOCKET: '/run/ferry/otlp.sock',
    };
    const relayed = makeReplicaSpec(input({ runtime: 'docker', image: 'i', replicaEnv: sealed }));
    assert.ok('spec' in relayed);
    assert.equal(relayed.spec.env?.FERRY_OTLP_SOCKET, '/run/ferry/otlp.sock');
    assert.equal(relayed.spec.env?.OTEL_RESOURCE_ATTRIBUTES, 'ferry.deployment=iris,ferry.revision=3');
    const own = makeReplicaSpec(
      input({
        runtime: 'docker',
        image: 'i',
        replicaEnv: sealed,
        revision: revision({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector.example:4318' } }),
      }),
    );
    assert.ok('spec' in own);
    assert.equal(own.spec.env?.FERRY_OTLP_SOCKET, undefined);
    assert.equal(own.spec.env?.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, undefined);
    assert.equal(own.spec.env?.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://collector.example:4318');
  });

  test('a docker replica runs the image it is given, else the version image', () => {
    const given = makeReplicaSpec(input({ runtime: 'docker', image: 'sha256:built' }));
    assert.ok('spec' in given);
    assert.equal(given.spec.image, 'sha256:built');
    assert.equal(given.spec.modelDir, undefined);
    const own = makeReplicaSpec(
      input({ runtime: 'docker', revision: revision({ image: 'reg/iris@sha256:1' }) }),
    );
    assert.ok('spec' in own);
    assert.equal(own.spec.image, 'reg/iris@sha256:1');
  });

  test('blocked, with the reason: a missing secret, nothing to run on this runtime, GPUs asked for', () => {
    const cases: Array<[ReplicaSpecInput, string, RegExp]> = [
      [
        input({ revision: revision({ secretRefs: ['db'] }), secrets: { env: {}, missing: ['db'] } }),
        'SecretMissing',
        /needs secret\(s\) db, which are not set/,
      ],
      [
        input({ revision: revision({ artifactDir: null, image: 'reg/x@sha256:1' }) }),
        'NoArtifact',
        /is an image only/,
      ],
      [input({ runtime: 'docker' }), 'NoImage', /has no image yet/],
      [
        input({ revision: revision({ resources: { cpu: 1, memoryBytes: 1, gpu: 2 } }) }),
        'NoGpu',
        /asks for 2 GPU\(s\) per replica; .*Set resources\.gpu to 0/,
      ],
    ];
    for (const [given, reason, message] of cases) {
      const made = makeReplicaSpec(given);
      assert.ok('blocked' in made, reason);
      assert.equal(made.blocked.reason, reason);
      assert.match(made.blocked.message, message);
    }
  });

  test('sealed unless the revision asks for egress: then a bridge network of the deployment and installation', () => {
    const sealed = makeReplicaSpec(input({ runtime: 'docker', image: 'iris:1' }));
    assert.ok('spec' in sealed);
    assert.equal(sealed.spec.egressNetwork, undefined);
    const open = makeReplicaSpec(
      input({ runtime: 'docker', image: 'iris:1', revision: revision({ network: { egress: true } }) }),
    );
    assert.ok('spec' in open);
    assert.equal(open.spec.egressNetwork, 'ferry-egress-p1-iris');
    assert.equal(egressNetworkName('p1', 'team-a/iris'), 'ferry-egress-p1-team-a_iris');
    const long = egressNetworkName('0123456789ab', 'x'.repeat(63));
    assert.ok(long.length <= 64 && /^ferry-egress-0123456789ab-[0-9a-f]{24}$/.test(long), long);
  });
});
