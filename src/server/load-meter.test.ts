import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoadMeter } from './load-meter.ts';

function clock() {
  let t = 0;
  return { now: () => t, to: (ms: number) => (t = ms) };
}

test('fill: a full batch out fills a slot for as long as it is out; a half batch half of one', () => {
  const c = clock();
  const m = new LoadMeter(8, true, c.now);
  m.dispatched(8);
  c.to(100);
  assert.equal(m.fillMs(), 100, 'a batch still running counts while it runs');
  m.dispatched(4);
  c.to(200);
  m.settled(8);
  c.to(300);
  m.settled(4);
  c.to(1000);
  // 0-100: 1; 100-200: 1.5; 200-300: 0.5; then nothing out.
  assert.equal(m.fillMs(), 100 + 150 + 50);
  assert.equal(m.batches, 2);
  assert.equal(m.samples, 12);
});

test('fill: a batch over maxBatchSize (one big request) fills one slot, no more', () => {
  const c = clock();
  const m = new LoadMeter(4, true, c.now);
  m.dispatched(10);
  c.to(50);
  m.settled(10);
  assert.equal(m.fillMs(), 50);
});

test('without batching every call is full: a group out fills its slot, whatever its size', () => {
  const c = clock();
  const m = new LoadMeter(32, false, c.now);
  assert.equal(m.batchSize, 1);
  m.dispatched(5);
  c.to(40);
  m.settled(5);
  assert.equal(m.fillMs(), 40);
  assert.equal(m.samples, 5);
});

test('nothing out is exactly nothing: no rounding dust accumulates', () => {
  const c = clock();
  const m = new LoadMeter(3, true, c.now);
  for (let i = 0; i < 1000; i++) {
    m.dispatched(1);
    m.dispatched(2);
    m.settled(1);
    m.settled(2);
  }
  const before = m.fillMs();
  c.to(1_000_000);
  assert.equal(m.fillMs(), before);
});

test('service time: a full call, fitted on recent calls; none before there are enough', () => {
  const m = new LoadMeter(8, true, () => 0);
  assert.equal(m.batchServiceMs(), null);
  // First call is warm-up (ignored); then t = 1 + 0.5 x samples.
  for (const n of [1, 2, 4, 8, 2, 4, 6]) m.served(n, 1, 1 + 0.5 * n);
  assert.ok(Math.abs(m.batchServiceMs()! - 5) < 1e-9, String(m.batchServiceMs()));
});

test('service time without batching: one call of a group', () => {
  const m = new LoadMeter(32, false, () => 0);
  for (let i = 0; i < 7; i++) m.served(4, 4, 40);
  assert.equal(m.batchServiceMs(), 10);
});
