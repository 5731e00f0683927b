import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatTraceparent,
  otelEnv,
  otlpTraceHeaders,
  parseResourceAttributes,
  parseTraceparent,
  tracingConfig,
} from './tracing.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

test('traceparent: a valid version-00 value parses and formats back', () => {
  const value = `00-${TRACE}-${SPAN}-01`;
  const parsed = parseTraceparent(value);
  assert.deepEqual(parsed, { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.equal(formatTraceparent(parsed!), value);
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-00`), {
    traceId: TRACE,
    spanId: SPAN,
    sampled: false,
  });
  // other flag bits are kept out; only sampled matters
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.sampled, true);
  assert.equal(parseTraceparent(`  00-${TRACE}-${SPAN}-01 `)?.traceId, TRACE);
  assert.equal(parseTraceparent([`00-${TRACE}-${SPAN}-01`])?.spanId, SPAN);
});

test('traceparent: invalid values are null (a new trace starts)', () => {
  for (const bad of [
    undefined,
    '',
    'garbage',
    `00-${TRACE.toUpperCase()}-${SPAN}-01`,
    `00-${'0'.repeat(32)}-${SPAN}-01`,
    `00-${TRACE}-${'0'.repeat(16)}-01`,
    `ff-${TRACE}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-01-extra`,
    `00-${TRACE.slice(1)}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-1`,
    [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`],
  ])
    assert.equal(parseTraceparent(bad), null, String(bad));
  // a later version may carry more fields: read as 00
  assert.equal(parseTraceparent(`01-${TRACE}-${SPAN}-01-what-comes-next`)?.traceId, TRACE);
});

test('tracingConfig: off without an endpoint, when disabled, or with exporter none', () => {
  assert.equal(tracingConfig({}, 'x'), null);
  assert.equal(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }, 'x'), null);
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
  assert.equal(tracingConfig({ ...on, OTEL_SDK_DISABLED: 'true' }, 'x'), null);
  assert.equal(tracingConfig({ ...on, OTEL_SDK_DISABLED: 'TRUE' }, 'x'), null);
  assert.equal(tracingConfig({ ...on, OTEL_TRACES_EXPORTER: 'none' }, 'x'), null);
  assert.notEqual(tracingConfig({ ...on, OTEL_SDK_DISABLED: 'false' }, 'x'), null);
});

test('tracingConfig: endpoints, service name, resource, sampler', () => {
  const c = tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/' }, 'ferry-server')!;
  assert.equal(c.url, 'http://127.0.0.1:4318/v1/traces');
  assert.equal(c.serviceName, 'ferry-server');
  assert.deepEqual(c.sampler, { kind: 'parentbased_always_on' });
  assert.deepEqual(c.resource, { 'service.name': 'ferry-server' });
  assert.deepEqual(c.warnings, []);
  const t = tracingConfig(
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom',
      OTEL_SERVICE_NAME: 'iris',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=ml%20ops,service.name=ignored',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    },
    'ferry-server',
  )!;
  assert.equal(t.url, 'http://b:4318/custom');
  assert.equal(t.serviceName, 'iris');
  assert.deepEqual(t.resource, { 'deployment.environment': 'prod', team: 'ml ops', 'service.name': 'iris' });
  assert.deepEqual(t.sampler, { kind: 'parentbased_traceidratio', ratio: 0.25 });
  assert.equal(t.warnings.length, 1);
  assert.match(t.warnings[0]!, /http\/json/);
  // service.name from the resource attributes when OTEL_SERVICE_NAME is unset
  assert.equal(
    tracingConfig(
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a', OTEL_RESOURCE_ATTRIBUTES: 'service.name=s' },
      'd',
    )!.serviceName,
    's',
  );
  assert.deepEqual(
    tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a', OTEL_TRACES_SAMPLER: 'always_off' }, 'd')!
      .sampler,
    { kind: 'always_off' },
  );
});

test('tracingConfig: values that cannot work are errors naming the variable', () => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
  assert.throws(
    () => tracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'jaeger_remote' }, 'x'),
    /OTEL_TRACES_SAMPLER/,
  );
  assert.throws(
    () => tracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, 'x'),
    /OTEL_TRACES_SAMPLER_ARG/,
  );
  assert.throws(() => tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' }, 'x'), /ENDPOINT/);
  assert.throws(() => parseResourceAttributes('novalue'), /OTEL_RESOURCE_ATTRIBUTES/);
  assert.throws(() => parseResourceAttributes('a=%E0%A4%A'), /percent/);
});

test('otelEnv keeps the OTEL_ variables that are set', () => {
  assert.deepEqual(otelEnv({ OTEL_SERVICE_NAME: 's', OTEL_X: '', PATH: '/bin', FERRY_Y: '1' }), {
    OTEL_SERVICE_NAME: 's',
  });
});

test('tracingConfig: FERRY_OTLP_SOCKET (a sealed replica: spans go over the relay socket)', () => {
  const on = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://localhost/v1/traces' };
  assert.equal(tracingConfig(on, 'x')?.socket, undefined);
  assert.equal(
    tracingConfig({ ...on, FERRY_OTLP_SOCKET: '/run/ferry/otlp.sock' }, 'x')?.socket,
    '/run/ferry/otlp.sock',
  );
  // The endpoint still turns tracing on: a socket alone does not.
  assert.equal(tracingConfig({ FERRY_OTLP_SOCKET: '/run/ferry/otlp.sock' }, 'x'), null);
  assert.throws(() => tracingConfig({ ...on, FERRY_OTLP_SOCKET: 'otlp.sock' }, 'x'), /FERRY_OTLP_SOCKET/);
  assert.throws(
    () =>
      tracingConfig(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4318', FERRY_OTLP_SOCKET: '/run/ferry/otlp.sock' },
        'x',
      ),
    /FERRY_OTLP_SOCKET.*not an http: URL/,
  );
});

test('otlpTraceHeaders: the generic and the traces headers, traces winning, values percent-decoded', () => {
  assert.deepEqual(otlpTraceHeaders({}), {});
  assert.deepEqual(
    otlpTraceHeaders({
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Basic%20abc, x-tenant=a',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b',
    }),
    { authorization: 'Basic abc', 'x-tenant': 'b' },
  );
  assert.throws(
    () => otlpTraceHeaders({ OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }),
    /OTEL_EXPORTER_OTLP_HEADERS/,
  );
  assert.throws(() => otlpTraceHeaders({ OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'a=%0d%0aX: y' }), /line break/);
});
