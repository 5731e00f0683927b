import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Point } from './points.ts';
import { HistoryStore } from './store.ts';

const point = (t: number, over: Partial<Point> = {}): Point => ({
  t,
  rps: 1,
  p50: 0.004,
  p99: 0.012,
  codes: { '200': 1 },
  replicas: 1,
  batchSize: 2.5,
  queueDepth: 0,
  coldStarts: 0,
  ...over,
});

test('a ring keeps the last `capacity` points, oldest first, and reads back what went in (null included)', () => {
  const store = new HistoryStore({ capacity: 3 });
  for (let t = 1; t <= 5; t++) store.append('iris', 1, point(t * 1000, { rps: t }));
  store.append(
    'iris',
    1,
    point(6000, { p50: null, p99: null, batchSize: null, queueDepth: null, codes: {} }),
  );
  const [r] = store.view('iris');
  assert.equal(r!.revision, 1);
  assert.deepEqual(
    r!.points.map((p) => p.t),
    [4000, 5000, 6000],
  );
  assert.deepEqual(r!.points[0], point(4000, { rps: 4 }));
  assert.deepEqual(r!.points[2], {
    t: 6000,
    rps: 1,
    p50: null,
    p99: null,
    codes: {},
    replicas: 1,
    batchSize: null,
    queueDepth: null,
    coldStarts: 0,
  });
  assert.deepEqual(
    store.view('iris', 4000)[0]!.points.map((p) => p.t),
    [5000, 6000],
  );
  assert.deepEqual(store.stats(), { series: 1, points: 3, bytes: 3 * (36 + 4), refused: 0 });
});

test('an idle point does not start a revision; an idle revision is pruned after the window, a gone deployment at once', () => {
  const store = new HistoryStore({ capacity: 10 });
  const idle = point(1000, { rps: 0, replicas: 0, codes: {} });
  assert.equal(store.append('iris', 1, idle), false);
  assert.deepEqual(store.view('iris'), []);
  store.append('iris', 1, point(1000));
  store.append('iris', 1, { ...idle, t: 2000 });
  store.append('iris', 2, point(2000));
  store.append('gone', 1, point(2000));
  store.prune((d) => d !== 'gone', 1500);
  assert.deepEqual(store.deployments(), ['iris']);
  assert.deepEqual(
    store.view('iris').map((r) => r.revision),
    [2],
  );
  assert.equal(store.stats().series, 1);
});

test('bounded: revisions per deployment (the idle-longest goes) and in all (refused unless one idled long)', () => {
  const store = new HistoryStore({
    capacity: 4,
    maxSeries: 5,
    maxRevisionsPerDeployment: 2,
    minIdleToEvictMs: 100,
  });
  store.append('a', 1, point(1));
  store.append('a', 2, point(2));
  store.append('a', 3, point(3));
  assert.deepEqual(
    store.view('a').map((r) => r.revision),
    [2, 3],
  );
  for (let d = 0; d < 20; d++) store.append(`d${d}`, 1, point(50 + d));
  // a and d0..d2 were kept first; d3..d19 come within 100 ms of them: refused.
  assert.equal(store.stats().series, 5);
  assert.deepEqual(store.deployments().sort(), ['a', 'd0', 'd1', 'd2']);
  assert.equal(store.stats().refused, 17);
  // Later, the one idle the longest (a/2, active at 2) makes room.
  assert.equal(store.append('late', 1, point(200)), true);
  assert.deepEqual(
    store.view('a').map((r) => r.revision),
    [3],
  );
});

test('a revision keeps at most 32 status code columns', () => {
  const store = new HistoryStore({ capacity: 2 });
  for (let c = 0; c < 100; c++) store.append('a', 1, point(c, { codes: { [String(200 + c)]: 1 } }));
  assert.ok(store.stats().bytes <= 2 * (36 + 32 * 4));
});
