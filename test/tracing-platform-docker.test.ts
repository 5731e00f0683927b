/**
 * Tracing through the platform with the Docker runtime (docs/tracing.md, "Docker replicas"): the replica is a
 * sealed container (`--network none`), and its spans reach the OTLP receiver in this test only through the
 * platform's relay on /run/ferry/otlp.sock (src/runtime/otlp-relay.ts), which adds the platform's
 * OTEL_EXPORTER_OTLP_HEADERS; the container's environment has neither those headers nor the real endpoint.
 * One trace from the caller through the gateway's spans to the replica's request, batch and inference; the relay
 * comes back for a replica adopted after a restart of the platform, and goes with the replica.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlClient } from '../src/control/index.ts';
import { loadIntoEngine } from '../src/image/engine/index.ts';
import { buildImage, hostBase } from '../src/image/index.ts';
import { type Platform, platformId } from '../src/platform/index.ts';
import { RUNTIME_LABELS } from '../src/runtime/index.ts';
import { requireDocker, uniqueName } from './docker-env.ts';
import { execNode } from './docker-exec.ts';
import { tempDir, until } from './helpers.ts';
import { type OtlpReceiver, one, startOtlpReceiver } from './otlp-receiver.ts';
import { IRIS_BODY as BODY, deployIris, IRIS, startTestPlatform } from './platform-fixture.ts';

const CREDENTIAL = 'Bearer relay-test-credential';

const randomHex = (bytes: number) =>
  Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');

describe('tracing through the platform (docker runtime: sealed replicas export through the relay)', () => {
  const home = tempDir('ferry-trace-docker-');
  const engine = requireDocker();
  let tag: string;
  let receiver: OtlpReceiver;
  let platform: Platform | undefined;
  let client: ControlClient;
  let token: string;

  const start = async () => {
    const started = await startTestPlatform(home.path, { runtime: 'docker' }, token);
    ({ platform, client, token } = started);
    return started;
  };
  const mine = () => engine.listByLabel({ 'ferry.dev/platform': platformId(home.path) });
  const infer = () => `${platform!.gatewayUrl}/v2/models/iris/infer`;

  /** One traced request through the gateway, and the spans of its trace once the replica's have arrived. */
  const tracedRequest = async () => {
    const traceId = randomHex(16);
    const callerSpan = randomHex(8);
    const response = await fetch(infer(), {
      method: 'POST',
      body: BODY,
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
    });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    const spans = await until('the spans of the gateway and of the sealed replica', () => {
      const got = receiver.spans.filter((s) => s.traceId === traceId);
      const names = new Set(got.map((s) => s.name));
      return (
        [
          'ferry.gateway.request',
          'ferry.gateway.attempt',
          'ferry.request',
          'ferry.batch',
          'ferry.inference',
        ].every((n) => names.has(n)) && got
      );
    });
    return { spans, callerSpan, replica: response.headers.get('x-ferry-replica') };
  };

  before(async () => {
    receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
    process.env.OTEL_EXPORTER_OTLP_HEADERS = `authorization=${encodeURIComponent(CREDENTIAL)}`;
    process.env.OTEL_SERVICE_NAME = 'ferry-gateway-under-test';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    const built = await buildImage({ dir: IRIS, base: await hostBase() });
    tag = `${uniqueName('ferry-trace-iris')}:1`;
    await loadIntoEngine(engine, built.image, tag);
    await deployIris(await start(), { image: tag, replicas: 1, wait: 'ready' });
  });

  after(async () => {
    await platform?.stop({ removeReplicas: true });
    for (const c of await mine()) await engine.remove(c.id);
    await engine.removeImage(tag, true);
    await receiver?.close();
    home.remove();
  });

  test('one trace id from the caller through the gateway to the sealed replica and its model call', async () => {
    const { spans, callerSpan, replica } = await tracedRequest();
    const gateway = one(spans, 'ferry.gateway.request');
    assert.equal(gateway.parentSpanId, callerSpan);
    assert.equal(gateway.service, 'ferry-gateway-under-test');
    assert.equal(gateway.attributes['ferry.replica'], replica);
    const attempt = one(spans, 'ferry.gateway.attempt');
    assert.equal(attempt.parentSpanId, gateway.spanId);
    const request = one(spans, 'ferry.request');
    assert.equal(request.parentSpanId, attempt.spanId);
    assert.equal(request.service, 'ferry-server');
    assert.equal(request.resource['ferry.deployment'], 'iris');
    assert.equal(request.resource['ferry.revision'], '1');
    const batch = one(spans, 'ferry.batch');
    assert.equal(batch.parentSpanId, request.spanId);
    assert.equal(one(spans, 'ferry.inference').parentSpanId, batch.spanId);

    // The replica's exports arrived with the platform's credential, which the relay added.
    const fromReplica = receiver.requests.filter((r) => r.services.includes('ferry-server'));
    assert.ok(fromReplica.length > 0);
    for (const r of fromReplica) {
      assert.equal(r.path, '/v1/traces');
      assert.equal(r.headers.authorization, CREDENTIAL);
    }
  });

  test('the container is sealed and holds no endpoint or credential: only the relay socket beside its own', async () => {
    const [container] = (await client.replicas('iris')).filter((r) => r.state === 'ready');
    const info = await engine.docker.getContainer(container!.id).inspect();
    assert.equal(info.HostConfig.NetworkMode, 'none');
    const env = Object.fromEntries(
      (info.Config.Env ?? []).map((e: string) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    assert.equal(env.FERRY_OTLP_SOCKET, '/run/ferry/otlp.sock');
    assert.equal(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, 'http://localhost/v1/traces');
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, undefined);
    assert.equal(env.OTEL_EXPORTER_OTLP_HEADERS, undefined);
    assert.equal(env.OTEL_SERVICE_NAME, undefined);
    assert.ok(!JSON.stringify(info.Config.Env).includes('relay-test-credential'));
    assert.ok(!JSON.stringify(info.Config.Env).includes(receiver.endpoint));
    const ferrySock = info.Config.Labels[RUNTIME_LABELS.socket] as string;
    const relaySock = join(ferrySock, '..', 'otlp.sock');
    assert.ok(lstatSync(relaySock).isSocket());
    assert.equal(lstatSync(relaySock).mode & 0o777, 0o666);
  });

  test('from inside the container, the relay takes POST /v1/traces to the platform endpoint and nothing else', async () => {
    const [container] = (await client.replicas('iris')).filter((r) => r.state === 'ready');
    const before = receiver.requests.length;
    // As the container's user (65532): what each request over /run/ferry/otlp.sock is answered.
    const script = `
const http = require('node:http');
const send = (method, path, headers, body) => new Promise((resolve) => {
  const req = http.request({ socketPath: '/run/ferry/otlp.sock', method, path, headers }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode));
  });
  req.on('error', (e) => resolve(e.code));
  req.end(body);
});
(async () => {
  const json = { 'content-type': 'application/json' };
  const out = {
    uid: process.getuid(),
    get: await send('GET', '/', {}),
    metrics: await send('POST', '/v1/metrics', json, '{}'),
    absolute: await send('POST', 'http://127.0.0.1:2375/v1/traces', json, '{}'),
    text: await send('POST', '/v1/traces', { 'content-type': 'text/plain' }, 'x'),
    big: await send('POST', '/v1/traces', json, Buffer.alloc(4 * 1024 * 1024 + 1, 32)),
    host: await send('POST', '/v1/traces', { ...json, host: 'evil.example:4318' }, '{"resourceSpans":[]}'),
  };
  console.log(JSON.stringify(out));
})();`;
    const seen = JSON.parse(await execNode(engine, container!.id, script)) as Record<string, unknown>;
    // Past 4 MiB the relay answers 413 and closes the connection without reading the body: a client still writing
    // it may see the connection cut (EPIPE, ECONNRESET) before it reads the answer. Refused either way.
    assert.ok([413, 'EPIPE', 'ECONNRESET'].includes(seen.big as number | string), `big: ${seen.big}`);
    seen.big = 413;
    assert.deepEqual(seen, {
      uid: 65532,
      get: 404,
      metrics: 404,
      absolute: 404,
      text: 415,
      big: 413,
      host: 200,
    });
    // Only the last one reached the receiver: at its own path, with the platform's credential, whatever Host said.
    const reached = receiver.requests.slice(before).filter((r) => r.services.length === 0);
    assert.equal(reached.length, 1);
    assert.equal(reached[0]!.path, '/v1/traces');
    assert.equal(reached[0]!.headers.authorization, CREDENTIAL);
    assert.equal(reached[0]!.headers.host, new URL(receiver.endpoint).host);
  });

  test('a replica adopted by a restarted platform exports through a relay opened again', async () => {
    const before = (await client.replicas('iris')).map((r) => r.id);
    await platform!.stop({ removeReplicas: false });
    platform = undefined;
    const [container] = await mine();
    const relaySock = join(container!.labels[RUNTIME_LABELS.socket]!, '..', 'otlp.sock');
    assert.equal(existsSync(relaySock), false, 'the relay closes with the platform');
    await start();
    await until(
      'adopted and ready',
      async () => (await client.replicas('iris')).filter((r) => r.state === 'ready').length === 1,
    );
    assert.deepEqual(
      (await client.replicas('iris')).map((r) => r.id),
      before,
    );
    const { spans } = await tracedRequest();
    assert.equal(one(spans, 'ferry.request').service, 'ferry-server');
  });

  test('the relay goes with its replica', async () => {
    const [container] = await mine();
    const dir = join(container!.labels[RUNTIME_LABELS.socket]!, '..');
    await platform!.stop({ removeReplicas: true });
    platform = undefined;
    assert.deepEqual(await mine(), []);
    assert.equal(existsSync(dir), false);
  });
});
