import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayMetrics } from '../../gateway/metrics.ts';
import { ServerMetrics } from '../../server/metrics.ts';
import { ControlMetrics } from '../metrics.ts';
import { type HistoryListener, MetricsHistory } from './history.ts';
import type { Point } from './points.ts';

/** Real registries behind the sources, a hand clock: two steps make one point. */
function setup() {
  let now = 1_000_000;
  const gateway = new GatewayMetrics();
  const control = new ControlMetrics();
  const server = new ServerMetrics();
  const model = server.forModel('iris', '1');
  const deployments = new Set(['iris']);
  let failReplica = false;
  let failGateway = false;
  const history = new MetricsHistory({
    stepMs: 5000,
    windowMs: 60_000,
    now: () => now,
    sources: {
      gatewayText: async () => {
        if (failGateway) throw new Error('gateway unreadable');
        return (await gateway.render()).body;
      },
      controlText: async () => (await control.render()).body,
      replicas: () => [{ id: 'r1', deployment: 'iris', revision: 2, url: 'unix:/nowhere' }],
      replicaText: async () => {
        if (failReplica) throw new Error('no answer');
        return (await server.render()).body;
      },
      readyCounts: () => [{ deployment: 'iris', revision: 2, ready: 1 }],
      deploymentExists: (d) => deployments.has(d),
    },
  });
  return {
    history,
    gateway: gateway.forRevision('iris', '2'),
    model,
    deployments,
    advance: (ms: number) => {
      now += ms;
    },
    failReplica: (v: boolean) => {
      failReplica = v;
    },
    failGateway: (v: boolean) => {
      failGateway = v;
    },
  };
}

test('two steps make a point from real registries; listeners get it; a deleted deployment is told once', async () => {
  const s = setup();
  await s.history.step();
  assert.deepEqual(s.history.view('iris').revisions, [], 'the first reading is a baseline');
  for (let i = 0; i < 10; i++) s.gateway.request(200, 0.004);
  s.gateway.request(503, 0.1);
  s.model.batch(3, 0.001);
  s.model.batch(5, 0.001);
  s.model.queueDepth(2);
  const got: Array<{ revision: number; point: Point }> = [];
  let deleted = 0;
  const listener: HistoryListener = {
    point: (revision, point) => got.push({ revision, point }),
    deleted: () => deleted++,
  };
  const unsubscribe = s.history.subscribe('iris', listener);
  s.advance(5000);
  await s.history.step();
  const view = s.history.view('iris');
  assert.equal(view.source, 'scraped');
  assert.equal(view.stepMs, 5000);
  assert.equal(view.revisions.length, 1);
  const p = view.revisions[0]!.points[0]!;
  assert.equal(p.rps, 2.2);
  assert.deepEqual(p.codes, { '200': 2, '503': 0.2 });
  assert.ok(p.p50! > 0.0025 && p.p50! <= 0.005, `p50 ${p.p50}`);
  assert.ok(p.p99! > 0.05 && p.p99! <= 0.1, `p99 ${p.p99}`);
  assert.equal(p.batchSize, 4);
  assert.equal(p.queueDepth, 2);
  assert.equal(p.replicas, 1);
  assert.deepEqual(got, [{ revision: 2, point: p }]);

  // A replica that does not answer: left out of the step (queue depth unknown), its counters carried over.
  s.failReplica(true);
  s.model.batch(10, 0.001);
  s.advance(5000);
  await s.history.step();
  s.failReplica(false);
  s.advance(5000);
  await s.history.step();
  const points = s.history.view('iris').revisions[0]!.points;
  assert.equal(points[1]!.queueDepth, null);
  assert.equal(points[1]!.batchSize, null);
  assert.equal(points[2]!.batchSize, 10, 'the batch made while it was not read is counted once, after');
  assert.ok(s.history.failures >= 1);

  s.deployments.delete('iris');
  s.advance(5000);
  await s.history.step();
  assert.equal(deleted, 1);
  assert.deepEqual(s.history.view('iris').revisions, []);
  unsubscribe();
});

test('a step where the gateway could not be read shows no requests; the next one counts both over both', async () => {
  const s = setup();
  await s.history.step();
  for (let i = 0; i < 10; i++) s.gateway.request(200, 0.004);
  s.advance(5000);
  await s.history.step();
  s.failGateway(true);
  for (let i = 0; i < 20; i++) s.gateway.request(200, 0.004);
  s.advance(5000);
  await s.history.step();
  s.failGateway(false);
  for (let i = 0; i < 40; i++) s.gateway.request(200, 0.004);
  s.advance(5000);
  await s.history.step();
  const points = s.history.view('iris').revisions[0]!.points;
  assert.deepEqual(
    points.map((p) => p.rps),
    [2, 0, 6],
  );
  assert.equal(points[1]!.p50, null);
  assert.deepEqual(points[2]!.codes, { '200': 6 });
});

test('on Swarm (no gateway to read): source gateway-reports, rps from the reported arrivals', async () => {
  let arrivals = 0;
  let now = 0;
  const history = new MetricsHistory({
    now: () => now,
    sources: {
      gatewayArrivals: () => [{ deployment: 'acme/iris', revision: 1, arrivals }],
      controlText: async () => '',
      replicas: () => [],
      readyCounts: () => [{ deployment: 'acme/iris', revision: 1, ready: 2 }],
      deploymentExists: () => true,
    },
  });
  await history.step();
  arrivals = 50;
  now = 5000;
  await history.step();
  const view = history.view('acme/iris');
  assert.equal(view.source, 'gateway-reports');
  assert.deepEqual(view.revisions[0]!.points[0], {
    t: 5000,
    rps: 10,
    p50: null,
    p99: null,
    codes: {},
    replicas: 2,
    batchSize: null,
    queueDepth: null,
    coldStarts: 0,
  });
});
