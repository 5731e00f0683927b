/**
 * The gateway's tracing (issue 14, docs/tracing.md) in this process, with a real OTLP receiver
 * (test/otlp-receiver.ts) and two replicas: one that refuses connections and a stub that answers and records the
 * headers it got. A request retried from the first to the second: its request span under the caller, a route span,
 * two attempt spans (the failed one with its error, the second with the status), ferry.retries 1, and the stub got
 * the second attempt's traceparent, once, with the caller's tracestate.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { startTracing } from '../src/core/tracing.ts';
import { createGateway, type Gateway } from '../src/gateway/index.ts';
import { freePort, until } from './helpers.ts';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './otlp-receiver.ts';

let receiver: OtlpReceiver;
let stub: Server;
let gateway: Gateway;
let base: string;
const seen = new Map<string, IncomingHttpHeaders>();

before(async () => {
  receiver = await startOtlpReceiver();
  process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
  stub = createServer((req, res) => {
    seen.set(String(req.headers['x-request-id']), req.headers);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  const refused = await freePort(); // nothing listens there
  const tracing = await startTracing(
    { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SERVICE_NAME: 'gw' },
    'ferry-gateway',
  );
  assert.ok(tracing);
  gateway = createGateway({
    tracing,
    routes: {
      deployments: [
        {
          name: 'echo',
          public: true,
          revisions: [
            {
              revision: 1,
              percent: 100,
              shadow: 0,
              servedName: 'echo',
              replicas: [
                { id: 'dead', url: `http://127.0.0.1:${refused}`, ready: true },
                { id: 'live', url: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`, ready: true },
              ],
            },
          ],
        },
      ],
    },
  });
  base = await gateway.listen(0);
});

after(async () => {
  await gateway?.close();
  stub?.close();
  await receiver?.close();
});

test('a retried request: two attempt spans, ferry.retries 1, the replica gets the second attempt as its parent', async () => {
  // Which replica the balancer tries first is its choice: send requests until one went to the dead one first.
  let n = 0;
  const { traceId, callerSpan, requestId, spans } = await until(
    'a request retried from dead to live',
    async () => {
      n++;
      const traceId = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex');
      const callerSpan = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString('hex');
      const requestId = `retry-${n}`;
      const res = await fetch(`${base}/v2/models/echo/infer`, {
        method: 'POST',
        body: '{}',
        headers: {
          'content-type': 'application/json',
          traceparent: `00-${traceId}-${callerSpan}-01`,
          tracestate: 'vendor=abc',
          'x-request-id': requestId,
        },
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      const spans = await until('the gateway span', () => {
        const got = receiver.spans.filter((s) => s.traceId === traceId);
        return got.some((s) => s.name === 'ferry.gateway.request') && got;
      });
      return (
        spans.filter((s) => s.name === 'ferry.gateway.attempt').length === 2 && {
          traceId,
          callerSpan,
          requestId,
          spans,
        }
      );
    },
  );
  const one = (name: string): ReceivedSpan => {
    const found = spans.filter((s) => s.name === name);
    assert.equal(found.length, 1, name);
    return found[0]!;
  };
  const request = one('ferry.gateway.request');
  assert.equal(request.parentSpanId, callerSpan);
  assert.equal(request.service, 'gw');
  assert.equal(request.attributes['ferry.retries'], 1);
  assert.equal(request.attributes['ferry.replica'], 'live');
  assert.equal(request.attributes['ferry.deployment'], 'echo');
  assert.equal(request.attributes['http.response.status_code'], 200);
  assert.equal(one('ferry.gateway.route').parentSpanId, request.spanId);
  const attempts = spans
    .filter((s) => s.name === 'ferry.gateway.attempt')
    .sort((a, b) => Number(a.attributes['ferry.attempt']) - Number(b.attributes['ferry.attempt']));
  for (const a of attempts) {
    assert.equal(a.parentSpanId, request.spanId);
    assert.equal(a.kind, 3);
  }
  assert.deepEqual(
    attempts.map((a) => [a.attributes['ferry.attempt'], a.attributes['ferry.replica']]),
    [
      [1, 'dead'],
      [2, 'live'],
    ],
  );
  assert.equal(attempts[0]!.attributes['error.type'], 'connect');
  assert.equal(attempts[0]!.status, 2);
  assert.equal(attempts[1]!.attributes['http.response.status_code'], 200);
  const headers = seen.get(requestId)!;
  assert.equal(headers.traceparent, `00-${traceId}-${attempts[1]!.spanId}-01`);
  assert.equal(headers.tracestate, 'vendor=abc');
});

test('without a traceparent the gateway starts the trace and the replica is its child', async () => {
  const res = await fetch(`${base}/v2/models/echo/infer`, {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json', 'x-request-id': 'fresh' },
  });
  assert.equal(res.status, 200);
  const headers = seen.get('fresh')!;
  const [, traceId, spanId] = String(headers.traceparent).split('-');
  const attempt = await until('the attempt span', () => receiver.spans.find((s) => s.spanId === spanId));
  assert.equal(attempt.traceId, traceId);
  assert.equal(attempt.name, 'ferry.gateway.attempt');
  const request = await until('the request span', () =>
    receiver.spans.find((s) => s.spanId === attempt.parentSpanId),
  );
  assert.equal(request.name, 'ferry.gateway.request');
  assert.equal(request.parentSpanId, '');
});
