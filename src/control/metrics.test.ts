import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { coldStartView } from './cold-start.ts';
import { ControlMetrics } from './metrics.ts';

test("docs/metrics.md's Control plane section lists exactly the control plane's metrics, with their types", async () => {
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Control plane'));
  assert.ok(section, 'docs/metrics.md has a "## Control plane" section');
  const documented = new Map(
    [...section.matchAll(/^\|\s*`(ferry_[a-z_]+)`\s*\|\s*(\w+)\s*\|/gm)].map((m) => [m[1]!, m[2]!]),
  );
  const registered = new Map(
    (await new ControlMetrics().registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]),
  );
  assert.deepEqual([...registered.entries()].sort(), [...documented.entries()].sort());
});

test('a cold start is one observation per measured phase and one total, by deployment and revision', async () => {
  const metrics = new ControlMetrics();
  const view = coldStartView({
    deployment: 'acme/iris',
    revision: 3,
    replica: 'iris-3-0-abcde',
    decidedAt: 1_000,
    imageReadyAt: null,
    startedAt: 1_010,
    startup: null,
    readyAt: 1_400,
    releasedAt: 1_401,
    held: 2,
  });
  metrics.coldStart('acme/iris', view);
  const text = (await metrics.render()).body;
  const count = (phase: string) =>
    new RegExp(
      `ferry_cold_start_seconds_count\\{deployment="acme/iris",revision="3",phase="${phase}"\\} (\\d+)`,
    ).exec(text)?.[1];
  assert.equal(count('start'), '1');
  assert.equal(count('ready'), '1');
  assert.equal(count('release'), '1');
  assert.equal(count('total'), '1');
  assert.equal(count('boot'), undefined, 'not reported: not observed');
  assert.match(
    text,
    /ferry_cold_start_seconds_sum\{deployment="acme\/iris",revision="3",phase="total"\} 0\.401/,
  );
});
