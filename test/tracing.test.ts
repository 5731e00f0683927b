/**
 * OpenTelemetry tracing of the model server (issue 14, docs/tracing.md), checked with a real OTLP receiver that
 * decodes what the exporter sends (test/otlp-receiver.ts): `ferry serve` with OTEL_* variables, requests with a
 * given traceparent, and the spans that arrive (trace id, parentage, links, attributes, the handler's phases and
 * the traceparent the handler is handed). With the variables unset (or OTEL_SDK_DISABLED=true) nothing is sent
 * and no OpenTelemetry module is even resolved.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixtureModel } from './fixtures/models.ts';
import { post, ROOT, spawnServer, tempDir, until } from './helpers.ts';
import { type OtlpReceiver, one, type ReceivedSpan, startOtlpReceiver } from './otlp-receiver.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const SETOSA = JSON.stringify({
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
});

/**
 * Slack for comparing two spans' times, in ms: the receiver reads them at microsecond precision, and the worker's
 * clock is put on the main thread's scale from two readings a microsecond or so apart (server/tracing.ts).
 */
const SLACK = 0.01;

function randomHex(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');
}

/** A fresh caller context: a traceparent as a client with its own span would send it. */
function callerContext(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomHex(16);
  const spanId = randomHex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

function inTrace(receiver: OtlpReceiver, traceId: string): ReceivedSpan[] {
  return receiver.spans.filter((s) => s.traceId === traceId);
}

describe('ferry serve with OTEL_* variables exports spans over OTLP/HTTP', () => {
  const dir = tempDir('ferry-trace-');
  let receiver: OtlpReceiver;
  let server: Awaited<ReturnType<typeof spawnServer>>;

  before(async () => {
    receiver = await startOtlpReceiver();
    fixtureModel(dir.path, 'traced', 'traced');
    server = await spawnServer([IRIS, join(dir.path, 'traced')], undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_SERVICE_NAME: 'iris-replica',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
  });
  after(async () => {
    server?.child.kill('SIGTERM');
    if (server && server.child.exitCode === null)
      await new Promise((resolve) => server.child.once('exit', resolve));
    await receiver?.close();
    dir.remove();
  });

  test('an ONNX request: request span under the caller, queue wait, batch linked, inference in the batch', async () => {
    const caller = callerContext();
    const response = await post(`${server.url}/v2/models/iris/infer`, SETOSA, {
      traceparent: caller.traceparent,
      'x-request-id': 'trace-me',
    });
    assert.equal(response.status, 200);
    const spans = await until('the iris spans', () => {
      const got = inTrace(receiver, caller.traceId);
      return got.some((s) => s.name === 'ferry.request') && got.some((s) => s.name === 'ferry.batch') && got;
    });
    const request = one(spans, 'ferry.request');
    assert.equal(request.parentSpanId, caller.spanId);
    assert.equal(request.kind, 2); // server
    assert.equal(request.service, 'iris-replica');
    assert.equal(request.attributes['ferry.model'], 'iris');
    assert.equal(request.attributes['ferry.model.version'], '1');
    assert.equal(request.attributes['ferry.request_id'], 'trace-me');
    assert.equal(request.attributes['http.response.status_code'], 200);
    assert.equal(request.attributes['url.path'], '/v2/models/iris/infer');
    const queue = one(spans, 'ferry.queue');
    assert.equal(queue.parentSpanId, request.spanId);
    const batch = one(spans, 'ferry.batch');
    assert.equal(batch.parentSpanId, request.spanId);
    assert.deepEqual(batch.links, [{ traceId: caller.traceId, spanId: request.spanId }]);
    assert.equal(batch.attributes['ferry.batch.mode'], 'batched');
    assert.equal(batch.attributes['ferry.batch.requests'], 1);
    assert.equal(batch.attributes['ferry.batch.samples'], 1);
    const inference = one(spans, 'ferry.inference');
    assert.equal(inference.parentSpanId, batch.spanId);
    // Order of events, not durations: queued before dispatched, the model call within its batch and request.
    const times = JSON.stringify([request, queue, batch, inference].map((s) => [s.name, s.start, s.end]));
    assert.ok(queue.end <= batch.start + SLACK, times);
    assert.ok(inference.start >= batch.start - SLACK && inference.end <= batch.end + SLACK, times);
    assert.ok(request.start <= queue.start && request.end >= batch.end - SLACK, times);
  });

  test('concurrent requests: each request span is linked from exactly one batch span', async () => {
    const callers = Array.from({ length: 8 }, callerContext);
    const answers = await Promise.all(
      callers.map((c) => post(`${server.url}/v2/models/iris/infer`, SETOSA, { traceparent: c.traceparent })),
    );
    for (const a of answers) assert.equal(a.status, 200);
    const ids = new Set(callers.map((c) => c.traceId));
    const requests = await until('eight request spans and their batches', () => {
      const got = receiver.spans.filter((s) => ids.has(s.traceId) && s.name === 'ferry.request');
      const linked = receiver.spans
        .filter((s) => s.name === 'ferry.batch')
        .flatMap((s) => s.links)
        .filter((l) => ids.has(l.traceId));
      return got.length === 8 && linked.length === 8 && got;
    });
    const links = receiver.spans.filter((s) => s.name === 'ferry.batch').flatMap((s) => s.links);
    for (const r of requests)
      assert.equal(links.filter((l) => l.spanId === r.spanId).length, 1, `request span ${r.spanId}`);
    for (const c of callers)
      assert.equal(
        one(inTrace(receiver, c.traceId), 'ferry.queue').parentSpanId,
        one(inTrace(receiver, c.traceId), 'ferry.request').spanId,
      );
  });

  test('a handler: its inference span under the request, its three phases under it, and it gets that traceparent', async () => {
    const caller = callerContext();
    const response = await post(
      `${server.url}/v2/models/traced/infer`,
      JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }),
      { traceparent: caller.traceparent },
    );
    assert.equal(response.status, 200);
    const handed = (response.json.outputs as { data: string[] }[])[0]!.data[0]!;
    const spans = await until('the handler spans', () => {
      const got = inTrace(receiver, caller.traceId);
      return (
        got.some((s) => s.name === 'ferry.postprocess') && got.some((s) => s.name === 'ferry.request') && got
      );
    });
    const request = one(spans, 'ferry.request');
    const batch = one(spans, 'ferry.batch');
    assert.equal(batch.attributes['ferry.batch.mode'], 'grouped');
    const inference = one(spans, 'ferry.inference');
    assert.equal(inference.parentSpanId, request.spanId);
    assert.deepEqual(inference.links, [{ traceId: caller.traceId, spanId: batch.spanId }]);
    assert.equal(handed, `00-${caller.traceId}-${inference.spanId}-01`);
    const phases = ['ferry.preprocess', 'ferry.predict', 'ferry.postprocess'].map((n) => one(spans, n));
    for (const p of phases) assert.equal(p.parentSpanId, inference.spanId);
    assert.ok(phases[0]!.end <= phases[1]!.start + SLACK && phases[1]!.end <= phases[2]!.start + SLACK);
  });

  test('an unsampled caller (flags 00): no span of its trace, and the handler gets no traceparent', async () => {
    const unsampled = callerContext();
    const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] });
    const response = await post(`${server.url}/v2/models/traced/infer`, body, {
      traceparent: `00-${unsampled.traceId}-${unsampled.spanId}-00`,
    });
    assert.equal(response.status, 200);
    assert.equal((response.json.outputs as { data: string[] }[])[0]!.data[0], 'none');
    // A sampled request after it: once its spans are in, the unsampled one's would be too, had any been made.
    const sampled = callerContext();
    await post(`${server.url}/v2/models/traced/infer`, body, { traceparent: sampled.traceparent });
    await until('the sampled request span', () =>
      inTrace(receiver, sampled.traceId).some((s) => s.name === 'ferry.request'),
    );
    assert.deepEqual(inTrace(receiver, unsampled.traceId), []);
  });

  test('no traceparent: a new trace; an invalid one: a new trace too', async () => {
    for (const headers of [{}, { traceparent: 'not-a-traceparent' }] as Record<string, string>[]) {
      const requestId = `fresh-${randomHex(4)}`;
      const response = await post(`${server.url}/v2/models/iris/infer`, SETOSA, {
        ...headers,
        'x-request-id': requestId,
      });
      assert.equal(response.status, 200);
      const request = await until('the request span', () =>
        receiver.spans.find(
          (s) => s.name === 'ferry.request' && s.attributes['ferry.request_id'] === requestId,
        ),
      );
      assert.equal(request.parentSpanId, '');
      assert.match(request.traceId, /^[0-9a-f]{32}$/);
    }
  });

  test('a failed request: its request span has the status code and error type', async () => {
    const caller = callerContext();
    const response = await post(`${server.url}/v2/models/iris/infer`, '{"inputs": 3}', {
      traceparent: caller.traceparent,
    });
    assert.equal(response.status, 400);
    const request = await until('the failed request span', () =>
      inTrace(receiver, caller.traceId).find((s) => s.name === 'ferry.request'),
    );
    assert.equal(request.attributes['http.response.status_code'], 400);
    assert.equal(request.attributes['error.type'], 'FERRY_BAD_REQUEST');
  });
});

/** Runs test/fixtures/otel-imports.ts (the server from source, one request) with `env`; its report. */
function runWatched(env: Record<string, string>): Promise<{ status: number; opentelemetry: string[] }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'test', 'fixtures', 'otel-imports.ts'), IRIS],
      { cwd: ROOT, env: { ...clean, ...env } },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`otel-imports exited ${code}:\n${err}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!));
    });
  });
}

describe('tracing off', () => {
  let receiver: OtlpReceiver;
  before(async () => {
    receiver = await startOtlpReceiver();
  });
  after(() => receiver?.close());

  test('without OTEL_* variables no OpenTelemetry module is resolved; with them, they are', async () => {
    const off = await runWatched({});
    assert.equal(off.status, 200);
    assert.deepEqual(off.opentelemetry, []);
    // The same watch sees them when tracing is on: the check above is not blind.
    const on = await runWatched({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint });
    assert.equal(on.status, 200);
    assert.ok(on.opentelemetry.includes('@opentelemetry/sdk-trace-base'), JSON.stringify(on.opentelemetry));
    await until('the spans of the traced run', () => receiver.spans.some((s) => s.name === 'ferry.request'));
  });

  test('OTEL_SDK_DISABLED=true with an endpoint set: nothing loaded, nothing sent', async () => {
    const before = receiver.requests.length;
    const off = await runWatched({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_SDK_DISABLED: 'true',
    });
    assert.equal(off.status, 200);
    assert.deepEqual(off.opentelemetry, []);
    // The child has exited (its server closed): anything it would have sent has been sent.
    assert.equal(receiver.requests.length, before);
  });
});
