import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from './random.ts';

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
