import assert from 'node:assert/strict';
import { test } from 'node:test';
import { add, emptyWindow, stats, trim } from './windows.ts';

const s = (at: number, concurrency: number, arrivals = 0, periodMs = 1000) => ({
  at,
  concurrency,
  arrivals,
  periodMs,
});

test('no sample in the span is no data (null), which is not zero', () => {
  let w = emptyWindow();
  assert.equal(stats(w, 10_000, 6_000), null);
  w = add(w, s(1_000, 0));
  assert.equal(stats(w, 10_000, 6_000), null, 'the only sample is older than the span');
  assert.deepEqual(stats(w, 2_000, 6_000), { concurrency: 0, rps: 0, buckets: 1 });
});

test('samples fold into 1 s buckets, averaged by time; rps from arrivals over the covered time', () => {
  let w = emptyWindow();
  w = add(w, s(1_100, 4, 10, 500));
  w = add(w, s(1_600, 8, 20, 500));
  w = add(w, s(2_100, 2, 5, 1000));
  assert.equal(w.buckets.length, 2);
  const st = stats(w, 2_500, 6_000)!;
  assert.equal(st.concurrency, (4 * 500 + 8 * 500 + 2 * 1000) / 2000);
  assert.equal(st.rps, (35 * 1000) / 2000);
});

test('trim keeps only what a window ending now can still see; memory is bounded by window / bucket', () => {
  let w = emptyWindow();
  for (let t = 0; t < 600; t++) w = trim(add(w, s(t * 1000, 1)), t * 1000, 60_000);
  assert.ok(w.buckets.length <= 61, `${w.buckets.length} buckets`);
});

test('saturated load averages like concurrency; buckets without it count as zero', () => {
  let w = emptyWindow();
  w = add(w, { ...s(0, 1), saturatedLoad: 10 });
  w = add(w, s(1_000, 1));
  assert.equal(stats(w, 1_500, 6_000)!.saturatedLoad, 5);
});
