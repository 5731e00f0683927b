/**
 * The metric naming conventions of docs/metrics.md, checked over the three registries at once (the model server,
 * the gateway, the control plane): the `ferry_` prefix (`ferry_gateway_` for the gateway's), `_total` on counters
 * and only on counters, base units in the name (seconds, bytes; never ms, minutes, KB...), every label name in the
 * Labels table of docs/metrics.md and every row of that table used. Each registry's own table is checked against
 * it by src/{server,gateway,control}/metrics.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Registry } from 'prom-client';
import { ControlMetrics } from './control/metrics.ts';
import { GatewayMetrics } from './gateway/metrics.ts';
import { ServerMetrics } from './server/metrics.ts';

interface MetricInfo {
  registry: string;
  name: string;
  type: string;
  labelNames: readonly string[];
}

function metricsOf(registry: string, r: Registry): MetricInfo[] {
  return r.getMetricsAsArray().map((m) => {
    const metric = m as unknown as { name: string; type: string; labelNames?: readonly string[] };
    return { registry, name: metric.name, type: String(metric.type), labelNames: metric.labelNames ?? [] };
  });
}

const ALL = [
  ...metricsOf('server', new ServerMetrics().registry),
  ...metricsOf('gateway', new GatewayMetrics().registry),
  ...metricsOf('control', new ControlMetrics().registry),
];
const FERRY = ALL.filter((m) => m.name.startsWith('ferry_'));

test('ferry_ prefix: every metric but prom-client’s process and Node.js ones; the gateway’s ferry_gateway_', () => {
  for (const m of ALL)
    assert.ok(
      m.name.startsWith('ferry_') || /^(process|nodejs)_/.test(m.name),
      `${m.registry}: ${m.name} has neither the ferry_ prefix nor is a prom-client default metric`,
    );
  for (const m of FERRY.filter((x) => x.registry === 'gateway'))
    assert.ok(m.name.startsWith('ferry_gateway_'), `gateway: ${m.name}`);
  for (const m of FERRY.filter((x) => x.registry !== 'gateway'))
    assert.ok(!m.name.startsWith('ferry_gateway_'), `${m.registry}: ${m.name} is named as the gateway's`);
  const names = FERRY.map((m) => m.name);
  assert.equal(new Set(names).size, names.length, 'no name in two registries');
});

test('counters end in _total, and nothing else does', () => {
  for (const m of FERRY)
    assert.equal(m.type === 'counter', m.name.endsWith('_total'), `${m.registry}: ${m.name} (${m.type})`);
});

test('base units in the name: _seconds, _bytes; a duration or time says seconds', () => {
  const wrongUnit =
    /_(ms|millis|milliseconds|us|micros|microseconds|ns|nanos|minutes|hours|days|kb|kib|mb|mib|gb|gib|kilobytes|megabytes|percent|ratio_percent)(_|$)/;
  for (const m of FERRY) {
    assert.doesNotMatch(m.name, wrongUnit, `${m.registry}: ${m.name} names a unit that is not a base unit`);
    if (/_(duration|latency|time|age|uptime)(_|$)/.test(m.name))
      assert.match(m.name, /_seconds(_total)?$/, `${m.registry}: ${m.name} is a time: end it in _seconds`);
    if (/_(size|memory|heap)_/.test(m.name) && !m.name.startsWith('ferry_batch_size'))
      assert.match(m.name, /_bytes(_total)?$/, `${m.registry}: ${m.name} is a size: end it in _bytes`);
  }
});

test('every label name is a row of the Labels table of docs/metrics.md, and every row is used', () => {
  const doc = readFileSync(new URL('../docs/metrics.md', import.meta.url), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Labels'));
  assert.ok(section, 'docs/metrics.md has a "## Labels" section');
  const documented = new Set([...section.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((m) => m[1]!));
  const used = new Set(FERRY.flatMap((m) => m.labelNames));
  for (const m of FERRY)
    for (const label of m.labelNames)
      assert.ok(
        documented.has(label),
        `${m.registry}: ${m.name} has label "${label}", not in the Labels table`,
      );
  assert.deepEqual(
    [...documented].sort(),
    [...used].sort(),
    'the Labels table lists exactly the labels in use',
  );
  assert.ok(!used.has('le') && !used.has('quantile'), 'le and quantile are Prometheus’ own');
});
