import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CounterFamily, GaugeFamily, HistogramFamily } from './metric-families.ts';

test('families print exactly what prom-client prints for the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const buckets = [0.001, 0.01, 0.1, 1];
  const labelNames = ['model', 'version'];
  const h = new HistogramFamily({ name: 'h_seconds', help: 'h', labelNames, buckets, registers: [ours] });
  const ph = new Histogram({ name: 'h_seconds', help: 'h', labelNames, buckets, registers: [theirs] });
  const c = new CounterFamily({ name: 'c_total', help: 'c', labelNames, registers: [ours] });
  const pc = new Counter({ name: 'c_total', help: 'c', labelNames, registers: [theirs] });
  const g = new GaugeFamily({ name: 'g', help: 'g', labelNames, registers: [ours] });
  const pg = new Gauge({ name: 'g', help: 'g', labelNames, registers: [theirs] });
  for (const [model, values] of [
    ['a', [0.0005, 0.001, 0.002, 0.5, 3]],
    ['b', [0.01, 0.01]],
  ] as const) {
    for (const v of values) {
      h.child(model, '1').observe(v);
      ph.labels(model, '1').observe(v);
      c.child(model, '1').inc();
      pc.labels(model, '1').inc();
    }
    g.child(model, '1').set(values.length);
    pg.labels(model, '1').set(values.length);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  const kinds = async (r: Registry) => (await r.getMetricsAsJSON()).map((m) => [m.name, m.type]);
  assert.deepEqual(await kinds(ours), await kinds(theirs));
});

test('a child is made once per label values and kept', () => {
  const c = new CounterFamily({ name: 'x_total', help: 'x', labelNames: ['a'], registers: [] });
  assert.equal(c.child('1'), c.child('1'));
  assert.notEqual(c.child('1'), c.child('2'));
  assert.throws(() => c.child('1', '2'), /2 label values for 1 labels/);
});
