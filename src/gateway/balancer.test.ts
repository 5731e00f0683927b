import assert from 'node:assert/strict';
import { test } from 'node:test';
import { leastOutstanding, powerOfTwoChoices, type Replica } from './balancer.ts';
import { seededRandom } from './random.ts';

const NOW = 1_000_000;

function replica(id: string, outstanding: number, extra: Partial<Replica> = {}): Replica {
  return { id, ready: true, outstanding, ...extra };
}

// Rows: name, replicas, exclude, want (leastOutstanding).
const rows: Array<[string, Replica[], string[], string | null]> = [
  ['no replicas', [], [], null],
  ['fewest outstanding wins', [replica('a', 3), replica('b', 1), replica('c', 2)], [], 'b'],
  [
    'tie goes to the smallest id, whatever the order',
    [replica('c', 1), replica('b', 1), replica('d', 1)],
    [],
    'b',
  ],
  ['not ready is skipped', [replica('a', 0, { ready: false }), replica('b', 5)], [], 'b'],
  [
    'ejected (now < ejectedUntil) is skipped',
    [replica('a', 0, { ejectedUntil: NOW + 1 }), replica('b', 5)],
    [],
    'b',
  ],
  ['ejection over at now exactly', [replica('a', 0, { ejectedUntil: NOW }), replica('b', 5)], [], 'a'],
  ['ejection long over', [replica('a', 0, { ejectedUntil: NOW - 10_000 }), replica('b', 5)], [], 'a'],
  ['excluded (already failed this request) is skipped', [replica('a', 0), replica('b', 5)], ['a'], 'b'],
  [
    'none eligible',
    [replica('a', 0, { ready: false }), replica('b', 0, { ejectedUntil: NOW + 1 }), replica('c', 0)],
    ['c'],
    null,
  ],
];

test('leastOutstanding: table rows', () => {
  for (const [name, replicas, exclude, want] of rows)
    assert.equal(leastOutstanding(replicas, NOW, new Set(exclude)), want, name);
  assert.equal(leastOutstanding([replica('a', 0)], NOW), 'a', 'exclude is optional');
});

test('powerOfTwoChoices: same eligibility rules (rows with at most one eligible replica)', () => {
  const random = seededRandom(1);
  for (const [name, replicas, exclude, want] of rows) {
    const eligible = replicas.filter((r) => leastOutstanding([r], NOW, new Set(exclude)) !== null);
    if (eligible.length > 1) continue;
    for (let i = 0; i < 20; i++)
      assert.equal(powerOfTwoChoices(replicas, NOW, random, new Set(exclude)), want, name);
  }
});

test('powerOfTwoChoices: of the two sampled, the one with fewer outstanding', () => {
  const replicas = [replica('a', 5), replica('b', 1), replica('c', 9)];
  // random() picks index floor(x * n) first, then floor(y * (n - 1)) among the others.
  const draws = (...xs: number[]) => {
    let k = 0;
    return () => xs[k++]!;
  };
  assert.equal(powerOfTwoChoices(replicas, NOW, draws(0, 0)), 'b', 'a vs b');
  assert.equal(powerOfTwoChoices(replicas, NOW, draws(0, 0.9)), 'a', 'a vs c');
  assert.equal(powerOfTwoChoices(replicas, NOW, draws(0.9, 0)), 'a', 'c vs a');
  assert.equal(powerOfTwoChoices(replicas, NOW, draws(0.5, 0.5)), 'b', 'b vs c');
  // Tie: the first sampled wins.
  const tied = [replica('a', 2), replica('b', 2)];
  assert.equal(powerOfTwoChoices(tied, NOW, draws(0, 0)), 'a');
  assert.equal(powerOfTwoChoices(tied, NOW, draws(0.9, 0)), 'b');
});

test('powerOfTwoChoices: never the worst replica, never an ineligible one, equal load shared evenly', () => {
  const random = seededRandom(3);
  const replicas = [
    replica('a', 0),
    replica('b', 0),
    replica('c', 0),
    replica('d', 9),
    replica('x', 0, { ready: false }),
    replica('y', 0, { ejectedUntil: NOW + 1 }),
  ];
  const counts = new Map<string, number>();
  for (let i = 0; i < 9_000; i++) {
    const id = powerOfTwoChoices(replicas, NOW, random, new Set(['c']));
    assert.ok(id !== null);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), ['a', 'b']);
  assert.ok(Math.abs(counts.get('a')! - 4_500) < 300, `a: ${counts.get('a')}, b: ${counts.get('b')}`);
});

test('a retry loop never visits the same replica twice and ends with null', () => {
  const replicas = [replica('a', 0), replica('b', 1), replica('c', 2)];
  for (const pick of [
    (ex: Set<string>) => leastOutstanding(replicas, NOW, ex),
    (ex: Set<string>) => powerOfTwoChoices(replicas, NOW, seededRandom(4), ex),
  ]) {
    const failed = new Set<string>();
    for (let id = pick(failed); id !== null; id = pick(failed)) {
      assert.ok(!failed.has(id));
      failed.add(id);
    }
    assert.equal(failed.size, 3);
  }
});
