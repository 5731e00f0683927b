import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HeldSample, RevisionLoadSample } from '../core/route-table.ts';
import { Autoscaling, type LoadSource } from './autoscaling.ts';
import { eventRecorder } from './events.ts';
import type { CapacitySource } from './replica-load.ts';
import { openStore } from './store/store.ts';

/** What the gateway would hand over: the samples queued for the next call. */
function loadOf(): LoadSource & { push(s: RevisionLoadSample): void; held: HeldSample[] } {
  let queued: RevisionLoadSample[] = [];
  const src = {
    held: [] as HeldSample[],
    push: (s: RevisionLoadSample) => queued.push(s),
    loadSamples: () => {
      const out = queued;
      queued = [];
      return out;
    },
    heldSamples: () => src.held,
  };
  return src;
}

function setup(capacity?: CapacitySource) {
  const store = openStore(':memory:');
  store.createModel('iris');
  store.addVersion('iris', { version: '1', image: 'img' });
  store.createDeployment({ name: 'iris', model: 'iris', versionRef: '1', replicas: 1 });
  store.setScaling('iris', { minReplicas: 0, maxReplicas: 4, target: 2, targetUtilization: 1 });
  const load = loadOf();
  const a = new Autoscaling(
    store,
    load,
    eventRecorder(store, () => 0, undefined),
    capacity,
  );
  return { store, load, a };
}

test('the gateway’s load becomes desired replicas, with an event that says why', () => {
  const { store, load, a } = setup();
  for (let t = 0; t <= 10; t++) {
    load.push({ deployment: 'iris', revision: 1, at: t * 1000, periodMs: 1000, concurrency: 6, arrivals: 6 });
    a.step(t * 1000, () => store.getDeployment('iris')!.replicas);
  }
  assert.equal(store.getDeployment('iris')!.replicas, 3);
  const ev = store.listEvents({ deployment: 'iris' }).find((e) => e.reason === 'Autoscaled')!;
  assert.match(ev.message, /^scaled iris 1 -> 3: concurrency 6 over 6 s \(panic\), target 2$/);
});

test('a request held at zero starts one at once, between decision ticks', () => {
  const { store, load, a } = setup();
  store.setDesiredReplicas('iris', 0);
  a.step(0, () => 0);
  load.held = [{ deployment: 'iris', held: 2 }];
  assert.equal(
    a.step(100, () => 0),
    1100,
  );
  assert.equal(store.getDeployment('iris')!.replicas, 1);
});

test('deployments without scaling are left alone; decisions at most once a second', () => {
  const { store, load, a } = setup();
  store.setScaling('iris', null);
  load.push({ deployment: 'iris', revision: 1, at: 0, periodMs: 1000, concurrency: 50, arrivals: 50 });
  assert.equal(
    a.step(0, () => 1),
    null,
  );
  assert.equal(store.getDeployment('iris')!.replicas, 1);
});

test("decisions stay within the tenant's quotas, and the event says so", () => {
  const { store, load, a } = setup();
  store.setQuotas('default', { replicas: 2 });
  for (let t = 0; t <= 10; t++) {
    load.push({ deployment: 'iris', revision: 1, at: t * 1000, periodMs: 1000, concurrency: 6, arrivals: 6 });
    a.step(t * 1000, () => store.getDeployment('iris')!.replicas);
  }
  assert.equal(store.getDeployment('iris')!.replicas, 2);
  const ev = store.listEvents({ deployment: 'iris' }).find((e) => e.reason === 'Autoscaled')!;
  assert.match(ev.message, /the tenant's quota allows 2$/);
});

test('a start from zero is a cold start, ended by the next ready replica, which learns when it was decided', () => {
  const { store, load, a } = setup();
  store.setDesiredReplicas('iris', 0);
  a.step(0, () => 0);
  assert.equal(a.replicaReady('iris'), undefined, 'no start from zero yet');
  load.held = [{ deployment: 'iris', held: 1 }];
  a.step(1_000, () => 0);
  assert.equal(a.heldNow('iris'), 1);
  assert.deepEqual(a.replicaReady('iris'), { decidedAt: 1_000 });
  assert.equal(a.replicaReady('iris'), undefined, 'once');
});

/**
 * A CapacitySource saying what the test sets, and what it was asked. `work`: the replicas hold this many
 * replicas' worth of full batches, spread over the ready ones (saturation = work / ready).
 */
function capacityOf(values: { saturation?: number; work?: number; target?: number }) {
  const asked: Array<{ deployment: string; ready: number }> = [];
  const source: CapacitySource = {
    saturation: (deployment, ready) => {
      asked.push({ deployment, ready });
      return values.work === undefined ? values.saturation : values.work / Math.max(1, ready);
    },
    derivedTarget: () => values.target,
  };
  return { source, asked, values };
}

test('full replicas scale up although few requests are in flight: their saturation goes with the samples', () => {
  const cap = capacityOf({ work: 1 });
  const { store, load, a } = setup(cap.source);
  store.setScaling('iris', { minReplicas: 1, maxReplicas: 4, target: 100, targetUtilization: 0.5 });
  for (let t = 0; t <= 3; t++) {
    load.push({
      deployment: 'iris',
      revision: 1,
      at: t * 1000,
      periodMs: 1000,
      concurrency: 4,
      arrivals: 40,
    });
    a.step(t * 1000, () => store.getDeployment('iris')!.replicas);
  }
  // 4 in flight against a target of 100 wants 1; saturation 1 x 1 ready x 100 = 100 wants 2.
  assert.equal(store.getDeployment('iris')!.replicas, 2);
  assert.deepEqual(cap.asked[0], { deployment: 'iris', ready: 1 });
});

test('without a measure (or at saturation 0) only the gateway’s counts decide', () => {
  const cap = capacityOf({});
  const { store, load, a } = setup(cap.source);
  store.setScaling('iris', { minReplicas: 1, maxReplicas: 4, target: 100, targetUtilization: 0.5 });
  for (let t = 0; t <= 3; t++) {
    load.push({
      deployment: 'iris',
      revision: 1,
      at: t * 1000,
      periodMs: 1000,
      concurrency: 4,
      arrivals: 40,
    });
    a.step(t * 1000, () => store.getDeployment('iris')!.replicas);
    cap.values.saturation = 0;
  }
  assert.equal(store.getDeployment('iris')!.replicas, 1);
});

test('no target in the settings: the replicas’ derived target, else the default', () => {
  const cap = capacityOf({ target: 64 });
  const { store, load, a } = setup(cap.source);
  store.setScaling('iris', { minReplicas: 1, maxReplicas: 4, target: null, targetUtilization: 0.5 });
  for (let t = 0; t <= 3; t++) {
    load.push({
      deployment: 'iris',
      revision: 1,
      at: t * 1000,
      periodMs: 1000,
      concurrency: 40,
      arrivals: 40,
    });
    a.step(t * 1000, () => store.getDeployment('iris')!.replicas);
  }
  // 40 in flight over an aim of 64 x 0.5 = 32: 2 replicas (with the default 8: 10, capped at 4).
  assert.equal(store.getDeployment('iris')!.replicas, 2);
  const ev = store.listEvents({ deployment: 'iris' }).find((e) => e.reason === 'Autoscaled')!;
  assert.match(ev.message, /target 64$/);
});

test('a split whose revisions each run a replica still goes to zero: ready counts at most the deployment’s count', () => {
  const { store, load, a } = setup();
  // Two revisions side by side at one replica each (a split, or a rollout): two ready, a count of one. (Past the
  // first stable window, before which nothing goes down.)
  for (let t = 0; t <= 100; t++) {
    load.push({ deployment: 'iris', revision: 1, at: t * 1000, periodMs: 1000, concurrency: 0, arrivals: 0 });
    load.push({ deployment: 'iris', revision: 2, at: t * 1000, periodMs: 1000, concurrency: 0, arrivals: 0 });
    a.step(t * 1000, () => 2);
  }
  assert.equal(store.getDeployment('iris')!.replicas, 0);
});

test('an idle deployment goes to zero whatever its replicas measure in the background: saturation counts only with requests', () => {
  const cap = capacityOf({ saturation: 0.05, target: 128 });
  const { store, load, a } = setup(cap.source);
  store.setScaling('iris', { minReplicas: 0, maxReplicas: 4, target: null, scaleToZeroGraceMs: 1000 });
  for (let t = 0; t <= 90; t++) {
    load.push({ deployment: 'iris', revision: 1, at: t * 1000, periodMs: 1000, concurrency: 0, arrivals: 0 });
    a.step(t * 1000, () => store.getDeployment('iris')!.replicas);
  }
  assert.equal(store.getDeployment('iris')!.replicas, 0);
});
