/** What the platform hands on of its OTEL_* variables: to sealed docker replicas, and to the swarm's gateways. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sealedReplicaTracingEnv, swarmGatewayTracingEnv } from './platform.ts';

const PLATFORM = {
  OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector.example:4318',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector.example:4318/v1/traces',
  OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20secret',
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=a',
  OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'authorization=other',
  OTEL_EXPORTER_OTLP_CERTIFICATE: '/etc/ferry/ca.pem',
  OTEL_EXPORTER_OTLP_CLIENT_KEY: '/etc/ferry/key.pem',
  OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: '/etc/ferry/cert.pem',
  OTEL_EXPORTER_OTLP_TIMEOUT: '5000',
  OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip',
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_SERVICE_NAME: 'my-gateway',
  OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
  OTEL_TRACES_SAMPLER_ARG: '0.5',
  OTEL_RESOURCE_ATTRIBUTES: 'team=ml',
  PATH: '/usr/bin',
};

test('a sealed replica gets no endpoint, header or certificate variable: the relay socket and a nominal URL', () => {
  assert.deepEqual(sealedReplicaTracingEnv(PLATFORM), {
    OTEL_EXPORTER_OTLP_TIMEOUT: '5000',
    OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.5',
    OTEL_RESOURCE_ATTRIBUTES: 'team=ml',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://localhost/v1/traces',
    FERRY_OTLP_SOCKET: '/run/ferry/otlp.sock',
  });
});

test("the swarm's gateways get every OTEL_* variable; none with tracing off; a loopback endpoint is refused", () => {
  const { PATH: _path, ...otel } = PLATFORM;
  assert.deepEqual(swarmGatewayTracingEnv(PLATFORM), otel);
  assert.equal(swarmGatewayTracingEnv({ PATH: '/usr/bin' }), undefined);
  for (const endpoint of ['http://127.0.0.1:4318', 'http://localhost:4318', 'http://[::1]:4318'])
    assert.throws(
      () => swarmGatewayTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }),
      /cannot export spans.*loopback/,
    );
});
