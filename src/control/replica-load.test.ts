import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadReport, ModelLoadReport } from '../core/replica.ts';
import {
  capacityOf,
  deploymentSaturation,
  type LoadTargets,
  parseLoadReport,
  ReplicaLoad,
  replicaLimitOf,
  saturationBetween,
} from './replica-load.ts';

function model(over: Partial<ModelLoadReport> = {}): ModelLoadReport {
  return {
    model: 'm',
    version: '1',
    workers: 1,
    pipelineDepth: 2,
    batchSize: 8,
    queueDepth: 0,
    maxQueueSize: 100,
    batches: 0,
    samples: 0,
    fillMs: 0,
    batchServiceMs: null,
    ...over,
  };
}
const report = (at: number, ...models: ModelLoadReport[]): LoadReport => ({ at, models });

test('saturation between two reports: filled slot time over elapsed x slots', () => {
  const a = report(1000, model({ fillMs: 0, batches: 0 }));
  // 1 s, 2 slots, 1.5 s of filled slot time: 75% full.
  assert.equal(saturationBetween(a, report(2000, model({ fillMs: 1500, batches: 10 }))), 0.75);
  // Two workers: four slots.
  const w2 = (at: number, fillMs: number) => report(at, model({ workers: 2, fillMs }));
  assert.equal(saturationBetween(w2(0, 0), w2(1000, 4000)), 1);
});

test('saturation: the queue when it is fuller than the slots; the busiest model of a server', () => {
  const a = report(0, model({}), model({ model: 'n' }));
  const b = report(1000, model({ fillMs: 200 }), model({ model: 'n', queueDepth: 90, fillMs: 2000 }));
  assert.equal(saturationBetween(a, b), 1);
  assert.equal(saturationBetween(report(0, model()), report(1000, model({ queueDepth: 50 }))), 0.5);
});

test('saturation: unknown across a restart, without a common model, or without time between', () => {
  const a = report(5000, model({ fillMs: 9000, batches: 40 }));
  assert.equal(saturationBetween(a, report(100, model({ fillMs: 10 }))), undefined, 'clock went back');
  assert.equal(saturationBetween(a, report(6000, model({ fillMs: 10, batches: 1 }))), undefined);
  assert.equal(saturationBetween(a, report(6000, model({ version: '2' }))), undefined);
  assert.equal(saturationBetween(a, a), undefined);
});

test('a deployment: the replicas’ sum over the ready ones (one not measured counts as empty)', () => {
  assert.equal(deploymentSaturation([], 3), undefined);
  assert.equal(deploymentSaturation([1, 0.5], 2), 0.75);
  assert.equal(deploymentSaturation([1], 2), 0.5, 'a replica just ready, not measured yet');
  assert.equal(deploymentSaturation([1, 1], 1), 1, 'never more than the mean of those measured');
});

test('capacity of a replica: its busiest model’s workers, batch, pipeline and full-batch time', () => {
  assert.equal(capacityOf(report(0)), undefined);
  assert.deepEqual(
    capacityOf(
      report(0, model({ samples: 1 }), model({ model: 'n', samples: 9, workers: 2, batchServiceMs: 4 })),
    ),
    { workers: 2, batchSize: 8, pipelineDepth: 2, batchServiceTimeMs: 4 },
  );
});

test('replica limit: a request per batch in flight (workers x pipeline) plus the queue bound, busiest model', () => {
  assert.equal(replicaLimitOf(report(0)), undefined);
  assert.equal(replicaLimitOf(report(0, model())), 1 * 2 + 100);
  assert.equal(
    replicaLimitOf(
      report(0, model({ samples: 1 }), model({ model: 'n', samples: 9, workers: 3, maxQueueSize: 7 })),
    ),
    3 * 2 + 7,
  );
});

test('parseLoadReport: a report, or null for anything else', () => {
  const good = report(12.5, model());
  assert.deepEqual(parseLoadReport(JSON.parse(JSON.stringify(good))), good);
  assert.equal(parseLoadReport(null), null);
  assert.equal(parseLoadReport({ at: 1 }), null);
  assert.equal(parseLoadReport({ at: 1, models: [{ ...model(), fillMs: 'x' }] }), null);
  assert.equal(parseLoadReport({ at: 1, models: [{ ...model(), workers: -1 }] }), null);
  assert.equal(parseLoadReport({ at: 1, models: [{ ...model(), batchServiceMs: undefined }] }), null);
});

/** Replicas that answer what the test sets; a missing answer rejects (as a replica that does not answer). */
function fakeFleet() {
  let t = 0;
  const answers = new Map<string, LoadReport | Error>();
  let inFlight = 0;
  let maxInFlight = 0;
  const targets: LoadTargets = { deployments: ['d'], replicas: [] };
  const load = new ReplicaLoad({
    targets: () => targets,
    now: () => t,
    concurrency: 2,
    fetchReport: async (url) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      const a = answers.get(url);
      if (a === undefined || a instanceof Error) throw a ?? new Error('no answer');
      return JSON.parse(JSON.stringify(a));
    },
  });
  return {
    load,
    targets,
    answers,
    at: (ms: number) => (t = ms),
    get maxInFlight() {
      return maxInFlight;
    },
  };
}

test('ReplicaLoad: polls the targets, measures between rounds, forgets what goes', async () => {
  const f = fakeFleet();
  f.targets.replicas = [
    { deployment: 'd', revision: 1, id: 'a', url: 'unix:/a' },
    { deployment: 'd', revision: 1, id: 'b', url: 'unix:/b' },
    { deployment: 'd', revision: 1, id: 'c', url: 'unix:/c' },
  ];
  f.answers.set('unix:/a', report(0, model()));
  f.answers.set('unix:/b', report(0, model()));
  await f.load.poll();
  assert.equal(f.load.saturation('d', 3), undefined, 'one report is no measure yet');
  f.at(1000);
  f.answers.set('unix:/a', report(1000, model({ fillMs: 2000 })));
  f.answers.set('unix:/b', report(1000, model({ fillMs: 1000 })));
  await f.load.poll();
  assert.equal(f.load.saturation('d', 2), 0.75);
  assert.equal(f.load.saturation('d', 3), 0.5, 'c does not answer: it counts as empty');
  assert.equal(f.load.saturation('d', 2, 2), undefined, 'no replica of revision 2');
  assert.equal(f.load.saturation('other', 1), undefined);
  assert.ok(f.maxInFlight <= 2, `at most 2 at once, saw ${f.maxInFlight}`);

  // a stops answering: its measure holds 3 s, then it is unknown.
  f.answers.delete('unix:/a');
  f.at(3000);
  await f.load.poll();
  assert.equal(f.load.saturation('d', 2), 0.75);
  f.at(4500);
  assert.equal(f.load.saturation('d', 2), undefined);

  // Back, and b goes from the targets: b is forgotten, a measured again.
  f.targets.replicas = f.targets.replicas.filter((r) => r.id !== 'b');
  f.answers.set('unix:/a', report(4500, model({ fillMs: 2000 + 3500 * 2 * 0.25 })));
  await f.load.poll();
  assert.equal(f.load.saturation('d', 1), 0.25);
});

test('ReplicaLoad: the derived target of a revision, kept at zero replicas, dropped when it stops autoscaling', async () => {
  const f = fakeFleet();
  f.targets.replicas = [
    { deployment: 'd', revision: 1, id: 'a', url: 'unix:/a' },
    { deployment: 'd', revision: 1, id: 'b', url: 'unix:/b' },
  ];
  f.answers.set('unix:/a', report(0, model({ batchSize: 32, batchServiceMs: 4 })));
  f.answers.set('unix:/b', report(0, model({ batchSize: 32, batchServiceMs: 8 })));
  assert.equal(f.load.derivedTarget('d', 1, 'concurrency'), undefined, 'unknown before any report');
  await f.load.poll();
  assert.equal(f.load.derivedTarget('d', 1, 'concurrency'), 64, '1 worker x 32 x pipeline 2');
  assert.equal(f.load.derivedTarget('d', 1, 'rps'), 32_000 / 6, 'the median full-batch time, 6 ms');
  assert.equal(f.load.derivedTarget('d', 2, 'concurrency'), undefined);
  f.targets.replicas = [];
  await f.load.poll();
  assert.equal(f.load.derivedTarget('d', 1, 'concurrency'), 64, 'kept at zero');
  assert.equal(f.load.replicaLimit('d', 1), 102, 'the limit too');
  f.targets.deployments = [];
  await f.load.poll();
  assert.equal(f.load.derivedTarget('d', 1, 'concurrency'), undefined);
  assert.equal(f.load.replicaLimit('d', 1), undefined);
});

test('ReplicaLoad: a targets callback that throws, or a replica answering nonsense, is no measure, not a failure', async () => {
  const load = new ReplicaLoad({
    targets: () => {
      throw new Error('store closed');
    },
  });
  await load.poll();
  const f = fakeFleet();
  f.targets.replicas = [{ deployment: 'd', revision: 1, id: 'a', url: 'unix:/a' }];
  f.answers.set('unix:/a', { at: 'soon' } as unknown as LoadReport);
  await f.load.poll();
  await f.load.poll();
  assert.equal(f.load.saturation('d', 1), undefined);
});

test('saturation: a busy main thread counts, by its event loop’s busy share between the reports', () => {
  const at = (t: number, activeMs: number, idleMs: number): LoadReport => ({
    ...report(t, model({ fillMs: t / 10 })),
    loop: { activeMs, idleMs },
  });
  // Slots 5% full, the event loop 90% busy: the replica is 90% saturated.
  assert.equal(saturationBetween(at(0, 0, 0), at(1000, 900, 100)), 0.9);
  // Without the loop's numbers (an older server), only the batcher's.
  assert.equal(saturationBetween(report(0, model()), report(1000, model({ fillMs: 100 }))), 0.05);
  assert.deepEqual(parseLoadReport({ at: 1, models: [], loop: { activeMs: 2, idleMs: 3 } })?.loop, {
    activeMs: 2,
    idleMs: 3,
  });
  assert.equal(parseLoadReport({ at: 1, models: [], loop: { activeMs: -1 } })?.loop, undefined);
});

test('ReplicaLoad.soon: the next round at once, but not within 100 ms of the last one', async () => {
  let t = 0;
  let rounds = 0;
  const load = new ReplicaLoad({
    targets: () => {
      rounds++;
      return { deployments: ['d'], replicas: [] };
    },
    now: () => t,
    intervalMs: 3_600_000,
  });
  const tick = () => new Promise((r) => setTimeout(r, 5));
  load.start();
  try {
    while (rounds < 1) await tick();
    t = 50;
    for (let i = 0; i < 10; i++) {
      load.soon();
      await tick();
    }
    assert.equal(rounds, 1, 'within 100 ms of the last round: nothing (the next is an hour on)');
    t = 150;
    // Once the first round has ended (its end schedules the next), soon() starts one.
    while (rounds < 2) {
      load.soon();
      await tick();
    }
  } finally {
    await load.stop();
  }
});
