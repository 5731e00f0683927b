import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Buckets,
  bucketDelta,
  counterDelta,
  emptyReading,
  gatewayCounts,
  pointBetween,
  quantile,
  type Reading,
  replicaCounts,
  round,
  seriesKey,
} from './points.ts';
import { parsePromText } from './prom-text.ts';

const INF = Number.POSITIVE_INFINITY;
const KEY = seriesKey('iris', 3);

test('counter deltas: a drop is a reset, counted from zero', () => {
  assert.equal(counterDelta(10, 15), 5);
  assert.equal(counterDelta(10, 4), 4);
  assert.equal(counterDelta(undefined, 7), 7);
});

test('quantiles from cumulative buckets, as histogram_quantile', () => {
  const b: Buckets = { le: [0.01, 0.1, 1, INF], cumulative: [50, 90, 100, 100] };
  assert.equal(quantile(0.5, b), 0.01);
  // rank 99: in (0.1, 1], 9 of 10 into it.
  assert.ok(Math.abs(quantile(0.99, b)! - (0.1 + 0.9 * 0.9)) < 1e-12);
  assert.equal(quantile(0.5, { le: [0.01, INF], cumulative: [0, 0] }), null);
  // Everything in +Inf: the highest finite bound.
  assert.equal(quantile(0.5, { le: [0.01, 0.1, INF], cumulative: [0, 0, 4] }), 0.1);
});

test('bucket deltas; a histogram whose total went down starts from zero', () => {
  const prev: Buckets = { le: [1, INF], cumulative: [5, 10] };
  assert.deepEqual(bucketDelta(prev, { le: [1, INF], cumulative: [7, 13] }).cumulative, [2, 3]);
  assert.deepEqual(bucketDelta(prev, { le: [1, INF], cumulative: [1, 2] }).cumulative, [1, 2]);
  assert.deepEqual(bucketDelta(null, { le: [1, INF], cumulative: [1, 2] }).cumulative, [1, 2]);
});

function reading(at: number, fill: (r: Reading) => void): Reading {
  const r = emptyReading(at);
  fill(r);
  return r;
}

test('a point: rates by code over the step, latency quantiles of the step, batch mean, replicas, cold starts', () => {
  const prev = reading(0, (r) => {
    r.gateway.set(KEY, {
      codes: { '200': 100, '503': 2 },
      duration: { le: [0.005, 0.01, INF], cumulative: [100, 102, 102] },
    });
    r.replicas.set('a', { key: KEY, batchSum: 50, batchCount: 20, queueDepth: 1 });
    r.replicas.set('b', { key: KEY, batchSum: 10, batchCount: 5, queueDepth: 0 });
    r.coldStarts.set(KEY, 1);
  });
  const cur = reading(5000, (r) => {
    r.gateway.set(KEY, {
      codes: { '200': 150, '503': 2, '404': 5 },
      duration: { le: [0.005, 0.01, INF], cumulative: [110, 152, 157] },
    });
    r.replicas.set('a', { key: KEY, batchSum: 80, batchCount: 30, queueDepth: 2 });
    // b restarted: its counters begin again.
    r.replicas.set('b', { key: KEY, batchSum: 4, batchCount: 2, queueDepth: 1 });
    // c is new: counted from zero.
    r.replicas.set('c', { key: KEY, batchSum: 6, batchCount: 3, queueDepth: null });
    r.replicas.set('other', { key: seriesKey('iris', 4), batchSum: 999, batchCount: 1, queueDepth: 9 });
    r.coldStarts.set(KEY, 2);
    r.ready.set(KEY, 3);
  });
  const p = pointBetween(KEY, prev, cur);
  assert.equal(p.t, 5000);
  assert.equal(p.rps, 11); // 55 requests in 5 s
  assert.deepEqual(p.codes, { '200': 10, '404': 1 });
  // 55 in the step: 10 <= 5 ms, 40 in (5, 10] ms, 5 above.
  assert.equal(p.p50, round(0.005 + 0.005 * ((27.5 - 10) / 40)));
  assert.equal(p.p99, 0.01);
  assert.equal(p.batchSize, round((30 + 4 + 6) / (10 + 2 + 3)));
  assert.equal(p.queueDepth, 3);
  assert.equal(p.replicas, 3);
  assert.equal(p.coldStarts, 1);
});

test('a quiet step: rps 0, quantiles and batch size null; queue depth null when no replica was read', () => {
  const both = (at: number) =>
    reading(at, (r) => {
      r.gateway.set(KEY, { codes: { '200': 10 }, duration: { le: [1, INF], cumulative: [10, 10] } });
    });
  const p = pointBetween(KEY, both(0), both(5000));
  assert.deepEqual(
    { rps: p.rps, p50: p.p50, p99: p.p99, codes: p.codes, batchSize: p.batchSize, queueDepth: p.queueDepth },
    { rps: 0, p50: null, p99: null, codes: {}, batchSize: null, queueDepth: null },
  );
});

test('gateway reports (swarm): rps from arrivals, nothing else known', () => {
  const prev = reading(0, (r) => r.arrivals.set(KEY, 40));
  const cur = reading(4000, (r) => {
    r.arrivals.set(KEY, 60);
    r.ready.set(KEY, 2);
  });
  const p = pointBetween(KEY, prev, cur);
  assert.equal(p.rps, 5);
  assert.deepEqual(p.codes, {});
  assert.equal(p.p50, null);
  assert.equal(p.replicas, 2);
});

test('gatewayCounts reads revisions from the text, leaving out requests answered before a revision was chosen', () => {
  const samples = parsePromText(
    [
      'ferry_gateway_requests_total{deployment="iris",revision="3",code="200"} 7',
      'ferry_gateway_requests_total{deployment="",revision="",code="404"} 70',
      'ferry_gateway_requests_total{deployment="iris",revision="",code="401"} 2',
      'ferry_gateway_request_duration_seconds_bucket{le="+Inf",deployment="iris",revision="3"} 7',
      'ferry_gateway_request_duration_seconds_bucket{le="0.01",deployment="iris",revision="3"} 6',
    ].join('\n'),
  );
  const counts = gatewayCounts(samples);
  assert.deepEqual([...counts.keys()], [KEY]);
  assert.deepEqual(counts.get(KEY), {
    codes: { '200': 7 },
    duration: { le: [0.01, INF], cumulative: [6, 7] },
  });
});

test('replicaCounts sums batch size and queue depth over the models of a replica', () => {
  const samples = parsePromText(
    [
      'ferry_batch_size_sum{model="a",version="1"} 10',
      'ferry_batch_size_count{model="a",version="1"} 4',
      'ferry_batch_size_sum{model="b",version="1"} 2',
      'ferry_batch_size_count{model="b",version="1"} 1',
      'ferry_queue_depth{model="a",version="1"} 3',
    ].join('\n'),
  );
  assert.deepEqual(replicaCounts(KEY, samples), { key: KEY, batchSum: 12, batchCount: 5, queueDepth: 3 });
});
