/**
 * Tracing through the platform (issue 14, docs/tracing.md): the in-process platform on the process runtime with
 * OTEL_* variables set, one request with a traceparent through its gateway, and one trace at a real OTLP receiver
 * (test/otlp-receiver.ts): the gateway's request span under the caller, its routing and attempt spans, the
 * replica's request span under the attempt (the replica got the OTEL_* variables and the attempt's traceparent),
 * and the replica's batch and inference spans.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Platform } from '../src/platform/index.ts';
import { tempDir, until } from './helpers.ts';
import { type OtlpReceiver, one, startOtlpReceiver } from './otlp-receiver.ts';
import { IRIS_BODY as BODY, deployIris, startTestPlatform } from './platform-fixture.ts';

describe('tracing through the platform (process runtime)', () => {
  const home = tempDir('ferry-trace-platform-');
  let receiver: OtlpReceiver;
  let platform: Platform;
  let infer: string;

  before(async () => {
    receiver = await startOtlpReceiver();
    // The platform reads the standard variables of its own process, as `ferry up` does.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
    process.env.OTEL_SERVICE_NAME = 'ferry-gateway-under-test';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    const started = await startTestPlatform(home.path);
    platform = started.platform;
    infer = `${platform.gatewayUrl}/v2/models/iris/infer`;
    await deployIris(started, { replicas: 1 });
  });

  after(async () => {
    await platform?.stop({ removeReplicas: true });
    await receiver?.close();
    home.remove();
  });

  test('one trace id from the caller through the gateway, its routing and attempt, to the replica and its model call', async () => {
    const traceId = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex');
    const callerSpan = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString('hex');
    const response = await fetch(infer, {
      method: 'POST',
      body: BODY,
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
    });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    const revision = response.headers.get('x-ferry-revision');
    const replica = response.headers.get('x-ferry-replica');
    const spans = await until('the spans of both processes', () => {
      const got = receiver.spans.filter((s) => s.traceId === traceId);
      const names = new Set(got.map((s) => s.name));
      return (
        ['ferry.gateway.request', 'ferry.gateway.attempt', 'ferry.request', 'ferry.inference'].every((n) =>
          names.has(n),
        ) && got
      );
    });

    const gateway = one(spans, 'ferry.gateway.request');
    assert.equal(gateway.parentSpanId, callerSpan);
    assert.equal(gateway.kind, 2);
    assert.equal(gateway.service, 'ferry-gateway-under-test');
    assert.equal(gateway.attributes['ferry.deployment'], 'iris');
    assert.equal(gateway.attributes['ferry.revision'], revision);
    assert.equal(gateway.attributes['ferry.replica'], replica);
    assert.equal(gateway.attributes['http.response.status_code'], 200);
    assert.equal(gateway.attributes['ferry.retries'], 0);

    const route = one(spans, 'ferry.gateway.route');
    assert.equal(route.parentSpanId, gateway.spanId);
    assert.equal(route.attributes['ferry.revision'], revision);
    assert.equal(route.attributes['ferry.replica'], replica);

    const attempt = one(spans, 'ferry.gateway.attempt');
    assert.equal(attempt.parentSpanId, gateway.spanId);
    assert.equal(attempt.kind, 3);
    assert.equal(attempt.attributes['ferry.attempt'], 1);
    assert.equal(attempt.attributes['ferry.replica'], replica);
    assert.equal(attempt.attributes['http.response.status_code'], 200);

    // The replica: its own service and resource, its request span under the gateway's attempt.
    const request = one(spans, 'ferry.request');
    assert.equal(request.parentSpanId, attempt.spanId);
    assert.equal(request.service, 'ferry-server');
    assert.equal(request.resource['ferry.deployment'], 'iris');
    assert.equal(request.resource['ferry.revision'], '1');
    const batch = one(spans, 'ferry.batch');
    assert.equal(one(spans, 'ferry.inference').parentSpanId, batch.spanId);
    assert.equal(batch.parentSpanId, request.spanId);
  });
});
