import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayMetrics } from '../../gateway/metrics.ts';
import { ServerMetrics } from '../../server/metrics.ts';
import { ControlMetrics } from '../metrics.ts';
import { parsePromText } from './prom-text.ts';

test('reads labels with escapes, special values, timestamps, and skips comments', () => {
  const text = [
    '# HELP x_total Something.',
    '# TYPE x_total counter',
    'x_total{a="1",b="q\\"uo\\\\te\\nline"} 3',
    'y 1.5e-3 1700000000000',
    'z{le="+Inf",} +Inf',
    'w NaN',
    'v{ } -Inf',
    '',
  ].join('\n');
  const samples = parsePromText(text);
  assert.deepEqual(samples[0], { name: 'x_total', labels: { a: '1', b: 'q"uo\\te\nline' }, value: 3 });
  assert.deepEqual(samples[1], { name: 'y', labels: {}, value: 0.0015 });
  assert.equal(samples[2]!.value, Number.POSITIVE_INFINITY);
  assert.deepEqual(samples[2]!.labels, { le: '+Inf' });
  assert.ok(Number.isNaN(samples[3]!.value));
  assert.equal(samples[4]!.value, Number.NEGATIVE_INFINITY);
});

test('a line that is not a sample is an error naming the line', () => {
  assert.throws(() => parsePromText('ok 1\n<html>'), /line 2: not a sample: <html>/);
  assert.throws(() => parsePromText('a{b="unterminated} 1'), /line 1/);
  assert.throws(() => parsePromText('a 1 2 3'), /line 1/);
  assert.throws(() => parsePromText('a one'), /line 1/);
});

test("reads every sample of the server's, the gateway's and the control plane's own /metrics", async () => {
  const server = new ServerMetrics();
  const model = server.forModel('iris', '1');
  model.request(200, 0.003);
  model.batch(4, 0.001);
  const gateway = new GatewayMetrics();
  gateway.forRevision('acme/iris', '3').request(503, 0.2);
  const control = new ControlMetrics();
  for (const text of [
    (await server.render()).body,
    (await gateway.render()).body,
    (await control.render()).body,
  ]) {
    const samples = parsePromText(text);
    const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(samples.length, lines.length);
  }
  const s = parsePromText((await server.render()).body);
  assert.deepEqual(
    s.find((x) => x.name === 'ferry_batch_size_bucket' && x.labels.le === '4'),
    { name: 'ferry_batch_size_bucket', labels: { le: '4', model: 'iris', version: '1' }, value: 1 },
  );
  const g = parsePromText((await gateway.render()).body);
  assert.deepEqual(
    g.find((x) => x.name === 'ferry_gateway_requests_total'),
    {
      name: 'ferry_gateway_requests_total',
      labels: { deployment: 'acme/iris', revision: '3', code: '503' },
      value: 1,
    },
  );
});
