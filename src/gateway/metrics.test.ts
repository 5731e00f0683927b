import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { GatewayMetrics } from './metrics.ts';

test('docs/metrics.md lists exactly the ferry_gateway_ metrics the gateway registers, with their types', async () => {
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  // The other ferry_ rows belong to the model server (src/server/metrics.test.ts checks them).
  const documented = new Map(
    [...doc.matchAll(/^\|\s*`(ferry_[a-z_]+)`\s*\|\s*(\w+)\s*\|/gm)]
      .filter((m) => m[1]!.startsWith('ferry_gateway_'))
      .map((m) => [m[1]!, m[2]!]),
  );
  const registered = new Map(
    (await new GatewayMetrics().registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]),
  );
  for (const name of registered.keys()) assert.match(name, /^ferry_gateway_/);
  assert.deepEqual([...registered.entries()].sort(), [...documented.entries()].sort());
});

test('revision metrics carry deployment, revision and code labels', async () => {
  const metrics = new GatewayMetrics();
  const r = metrics.forRevision('iris', '3');
  r.request(200, 0.001);
  r.request(200, 0.002);
  r.request(502, 0.003);
  r.outstanding(1);
  r.upstreamFailure('connect');
  r.shadow('ok', 0.004);
  metrics.retry('iris')();
  const text = (await metrics.render()).body;
  assert.match(text, /ferry_gateway_requests_total\{deployment="iris",revision="3",code="200"\} 2/);
  assert.match(text, /ferry_gateway_requests_total\{deployment="iris",revision="3",code="502"\} 1/);
  assert.match(text, /ferry_gateway_outstanding\{deployment="iris",revision="3"\} 1/);
  assert.match(
    text,
    /ferry_gateway_upstream_failures_total\{deployment="iris",revision="3",reason="connect"\} 1/,
  );
  assert.match(text, /ferry_gateway_shadow_requests_total\{deployment="iris",revision="3",outcome="ok"\} 1/);
  assert.match(text, /ferry_gateway_retries_total\{deployment="iris"\} 1/);
});

test('denials are counted by deployment key and reason, only the reasons that happened', async () => {
  const metrics = new GatewayMetrics();
  metrics.denied('acme/iris', 'unauthorized');
  metrics.denied('acme/iris', 'unauthorized');
  metrics.denied('acme/iris', 'rate_limited');
  metrics.denied('iris', 'forbidden');
  const text = (await metrics.render()).body;
  assert.match(text, /ferry_gateway_denied_total\{deployment="acme\/iris",reason="unauthorized"\} 2/);
  assert.match(text, /ferry_gateway_denied_total\{deployment="acme\/iris",reason="rate_limited"\} 1/);
  assert.match(text, /ferry_gateway_denied_total\{deployment="iris",reason="forbidden"\} 1/);
  assert.doesNotMatch(text, /deployment="acme\/iris",reason="forbidden"/);
});
