import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetricsHistoryBody, MetricsPoint } from '../control/index.ts';
import { addPoint, duration, errorRate, sparkline, topFrame, topLine } from './top.ts';

const point = (t: number, over: Partial<MetricsPoint> = {}): MetricsPoint => ({
  t,
  rps: 10,
  p50: 0.0031,
  p99: 0.0125,
  codes: { '200': 9.5, '503': 0.5 },
  replicas: 2,
  batchSize: 1.5,
  queueDepth: 0,
  coldStarts: 0,
  ...over,
});

test('sparkline: scaled to the max, at most `width` characters, the latest last', () => {
  assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), '▁▂▃▄▅▆▇█');
  assert.equal(sparkline([0, 0]), '▁▁');
  assert.equal(sparkline([]), '');
  assert.equal(
    [
      ...sparkline(
        Array.from({ length: 120 }, (_, i) => i),
        30,
      ),
    ].length,
    30,
  );
  assert.equal(sparkline([1, 1, 1, 8, 8], 2), '▂█');
});

test('a frame: a row per revision with its latest point; errors are 5xx per second', () => {
  const history: MetricsHistoryBody = {
    deployment: 'iris',
    stepMs: 5000,
    windowMs: 3_600_000,
    source: 'scraped',
    revisions: [{ revision: 1, points: [point(5000, { rps: 2 }), point(10_000, { coldStarts: 1 })] }],
  };
  addPoint(history, 2, point(10_000, { rps: 1, p50: null, p99: null, batchSize: null, codes: {} }));
  const frame = topFrame(history, 10_000);
  const lines = frame.split('\n');
  assert.match(lines[0]!, /^ferry top iris {3}step 5s, scraped {3}00:00:10$/);
  assert.match(
    lines[2]!,
    /^REV +REQ\/S +P50 +P99 +ERR\/S +REPLICAS +BATCH +QUEUE +COLD +REQ\/S LAST 10 MIN$/,
  );
  assert.match(lines[3]!, /^1 +10\.0 +3\.10ms +12\.5ms +0\.5 +2 +1\.5 +0 +1 +▂█$/);
  assert.match(lines[4]!, /^2 +1\.0 +- +- +0\.0 +2 +- +0 +0 +█$/);
  assert.equal(errorRate(point(0)), 0.5);
  assert.equal(duration(1.5), '1.50s');
  assert.equal(
    topLine(1, point(0)),
    '1970-01-01T00:00:00.000Z r1 rps=10.0 p50=3.10ms p99=12.5ms err=0.5 replicas=2 batch=1.5 queue=0 cold=0',
  );
  assert.match(topFrame({ ...history, revisions: [] }, 0), /no points yet/);
});
