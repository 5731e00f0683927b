import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evenlySpread, seededRandom } from './random.ts';

test('the same seed gives the same sequence; another seed a different one', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const c = seededRandom(43);
  const seqA = Array.from({ length: 5 }, a);
  assert.deepEqual(Array.from({ length: 5 }, b), seqA);
  assert.notDeepEqual(Array.from({ length: 5 }, c), seqA);
});

test('values lie in [0, 1) and spread evenly over ten bins', () => {
  const random = seededRandom(7);
  const bins = new Array<number>(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const x = random();
    assert.ok(x >= 0 && x < 1, `out of range: ${x}`);
    bins[Math.floor(x * 10)]!++;
  }
  for (const count of bins) assert.ok(Math.abs(count - 10_000) < 500, `uneven bins: ${bins.join(' ')}`);
});

test('evenlySpread: every window of n draws puts n·w ± 3 into an interval of width w', () => {
  for (const start of [0, 0.123, 0.5, 0.999, Math.random()]) {
    const draws = Array.from({ length: 10_000 }, evenlySpread(start));
    for (const x of draws) assert.ok(x >= 0 && x < 1, `out of range: ${x}`);
    for (const [lo, hi] of [
      [0, 0.3],
      [0.3, 1],
      [0.1, 0.11],
      [0.25, 0.75],
    ] as const) {
      for (const [from, to] of [
        [0, 10_000],
        [0, 137],
        [4_321, 9_876],
      ] as const) {
        const inside = draws.slice(from, to).filter((x) => x >= lo && x < hi).length;
        const want = (to - from) * (hi - lo);
        assert.ok(
          Math.abs(inside - want) <= 3,
          `start ${start} [${lo},${hi}) draws ${from}..${to}: ${inside} vs ${want}`,
        );
      }
    }
  }
});

test('evenlySpread: every k-th draw is evenly spread too (a periodic client does not stick to one revision)', () => {
  const draws = Array.from({ length: 30_000 }, evenlySpread(0.42));
  for (const k of [2, 3, 5, 10]) {
    const sub = draws.filter((_, i) => i % k === 0);
    const below = sub.filter((x) => x < 0.3).length;
    assert.ok(Math.abs(below / sub.length - 0.3) < 0.005, `every ${k}th: ${below}/${sub.length}`);
  }
});
