import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ServerMetrics } from './metrics.ts';

test('docs/metrics.md lists exactly the ferry_ metrics the server registers, with their types', async () => {
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  // The rows of the Model server section; the gateway's and the control plane's are checked against their
  // registries by src/gateway/metrics.test.ts and src/control/metrics.test.ts.
  const section = doc.split(/^## /m).find((s) => s.startsWith('Model server'));
  assert.ok(section, 'docs/metrics.md has a "## Model server" section');
  const documented = new Map(
    [...section.matchAll(/^\|\s*`(ferry_[a-z_]+)`\s*\|\s*(\w+)\s*\|/gm)].map((m) => [m[1]!, m[2]!]),
  );
  const metrics = new ServerMetrics();
  const registered = new Map(
    (await metrics.registry.getMetricsAsJSON())
      .filter((m) => m.name.startsWith('ferry_'))
      .map((m) => [m.name, String(m.type)]),
  );
  assert.deepEqual([...registered.entries()].sort(), [...documented.entries()].sort());
});

test('per-model metrics carry model, version and status labels', async () => {
  const metrics = new ServerMetrics();
  const model = metrics.forModel('iris', '1');
  model.request(200, 0.002);
  model.request(400, 0.001);
  model.batch(8, 0.004);
  const text = (await metrics.render()).body;
  assert.match(text, /ferry_requests_total\{model="iris",version="1",status="200"\} 1/);
  assert.match(text, /ferry_requests_total\{model="iris",version="1",status="400"\} 1/);
  assert.match(text, /ferry_batch_size_sum\{model="iris",version="1"\} 8/);
});
