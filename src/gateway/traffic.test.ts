import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from './random.ts';
import { pickRevision, shadowTargets, type TrafficTarget, validateTraffic } from './traffic.ts';

const PICKS = 10_000;

function split(targets: TrafficTarget[], seed: number): Map<string, number> {
  const random = seededRandom(seed);
  const counts = new Map<string, number>();
  for (let i = 0; i < PICKS; i++) {
    const r = pickRevision(targets, {}, random);
    assert.ok('revision' in r && !('error' in r), JSON.stringify(r));
    assert.equal(r.pinned, false);
    counts.set(r.revision, (counts.get(r.revision) ?? 0) + 1);
  }
  return counts;
}

const tables: Array<[string, TrafficTarget[]]> = [
  [
    '90/10',
    [
      { revision: 'r1', percent: 90 },
      { revision: 'r2', percent: 10 },
    ],
  ],
  [
    '50/50',
    [
      { revision: 'r1', percent: 50 },
      { revision: 'r2', percent: 50 },
    ],
  ],
  [
    '33.3/33.3/33.4',
    [
      { revision: 'r1', percent: 33.3 },
      { revision: 'r2', percent: 33.3 },
      { revision: 'r3', percent: 33.4 },
    ],
  ],
  [
    '1/99',
    [
      { revision: 'r1', percent: 1 },
      { revision: 'r2', percent: 99 },
    ],
  ],
  [
    '100 with a tagged 0',
    [
      { revision: 'r1', percent: 100 },
      { revision: 'r2', percent: 0 },
    ],
  ],
  [
    '80/20 plus a shadow row',
    [
      { revision: 'r1', percent: 80 },
      { revision: 'r2', percent: 20 },
      { revision: 'r3', percent: 0, shadow: 50 },
    ],
  ],
];

for (const [name, targets] of tables) {
  test(`split ${name}: each revision within 1 point of its percent over ${PICKS} picks`, () => {
    assert.deepEqual(validateTraffic(targets), []);
    for (const seed of [1, 2, 3]) {
      const counts = split(targets, seed);
      for (const t of targets) {
        const got = ((counts.get(t.revision) ?? 0) / PICKS) * 100;
        assert.ok(
          Math.abs(got - t.percent) <= 1,
          `seed ${seed}: ${t.revision} got ${got}%, want ${t.percent}%`,
        );
        if (t.percent === 0) assert.equal(counts.get(t.revision), undefined);
      }
    }
  });
}

test('the same seed gives the same sequence of picks', () => {
  const t = tables[0]![1];
  assert.deepEqual(split(t, 9), split(t, 9));
});

test('pinning: decision table rows', () => {
  const targets: TrafficTarget[] = [
    { revision: 'r2', percent: 100 },
    { revision: 'r1', percent: 0 },
    { revision: 'r3', percent: 0, shadow: 10 },
  ];
  const never = () => {
    throw new Error('a pinned request must not draw');
  };
  const rows: Array<[string, { pinnedRevision?: string; knownRevisions?: string[] }, unknown]> = [
    ['pin to the serving revision', { pinnedRevision: 'r2' }, { revision: 'r2', pinned: true }],
    ['pin to a 0-percent (tagged) row', { pinnedRevision: 'r1' }, { revision: 'r1', pinned: true }],
    ['pin to a shadow row', { pinnedRevision: 'r3' }, { revision: 'r3', pinned: true }],
    [
      'pin to a known revision outside the table',
      { pinnedRevision: 'r0', knownRevisions: ['r0'] },
      { revision: 'r0', pinned: true },
    ],
    ['pin to an unknown revision', { pinnedRevision: 'r9' }, { error: 'unknown-revision', revision: 'r9' }],
    [
      'unknown although other revisions are known',
      { pinnedRevision: 'r9', knownRevisions: ['r0'] },
      { error: 'unknown-revision', revision: 'r9' },
    ],
  ];
  for (const [name, options, want] of rows)
    assert.deepEqual(pickRevision(targets, options, never), want, name);
  // An empty header is no pin: the weighted draw decides.
  assert.deepEqual(
    pickRevision(targets, { pinnedRevision: '' }, () => 0.5),
    { revision: 'r2', pinned: false },
  );
});

test('a table without a serving row yields an error value, not a throw', () => {
  assert.deepEqual(pickRevision([{ revision: 'r1', percent: 0 }], {}, seededRandom(1)), {
    error: 'no-serving-revision',
  });
  assert.deepEqual(pickRevision([], {}, seededRandom(1)), { error: 'no-serving-revision' });
});

test('draw boundaries: [0, 90) goes to the first row, [90, 100) to the second', () => {
  const t: TrafficTarget[] = [
    { revision: 'a', percent: 90 },
    { revision: 'b', percent: 10 },
  ];
  assert.deepEqual(
    pickRevision(t, {}, () => 0),
    { revision: 'a', pinned: false },
  );
  assert.deepEqual(
    pickRevision(t, {}, () => 0.8999),
    { revision: 'a', pinned: false },
  );
  assert.deepEqual(
    pickRevision(t, {}, () => 0.9),
    { revision: 'b', pinned: false },
  );
  assert.deepEqual(
    pickRevision(t, {}, () => 0.999999),
    { revision: 'b', pinned: false },
  );
});

test('shadow shares: each shadow row gets about its share, independently', () => {
  const targets: TrafficTarget[] = [
    { revision: 'live', percent: 100 },
    { revision: 's10', percent: 0, shadow: 10 },
    { revision: 's50', percent: 0, shadow: 50 },
    { revision: 's100', percent: 0, shadow: 100 },
    { revision: 's0', percent: 0, shadow: 0 },
  ];
  assert.deepEqual(validateTraffic(targets), []);
  const random = seededRandom(5);
  const counts = new Map<string, number>();
  let both = 0;
  for (let i = 0; i < PICKS; i++) {
    const got = shadowTargets(targets, random);
    for (const r of got) counts.set(r, (counts.get(r) ?? 0) + 1);
    if (got.includes('s10') && got.includes('s50')) both++;
  }
  assert.equal(counts.get('live'), undefined);
  assert.equal(counts.get('s0'), undefined);
  assert.equal(counts.get('s100'), PICKS);
  for (const [r, share] of [
    ['s10', 10],
    ['s50', 50],
  ] as const) {
    const got = ((counts.get(r) ?? 0) / PICKS) * 100;
    assert.ok(Math.abs(got - share) <= 1, `${r} got ${got}%, want ${share}%`);
  }
  // Independent draws: about 10% x 50% = 5% of requests go to both.
  assert.ok(Math.abs((both / PICKS) * 100 - 5) <= 1, `both: ${both}`);
});

test('validateTraffic: one problem per broken rule, naming the row', () => {
  const rows: Array<[string, TrafficTarget[], string[]]> = [
    [
      'valid 90/10',
      [
        { revision: 'a', percent: 90 },
        { revision: 'b', percent: 10 },
      ],
      [],
    ],
    [
      'decimals summing to 100',
      [
        { revision: 'a', percent: 66.7 },
        { revision: 'b', percent: 33.3 },
      ],
      [],
    ],
    ['empty table', [], ['traffic: the table is empty; give at least one revision at 100 percent']],
    [
      'sum below 100',
      [
        { revision: 'a', percent: 90 },
        { revision: 'b', percent: 5 },
      ],
      ['traffic: serving percents sum to 95; they must sum to 100'],
    ],
    [
      'only shadows',
      [{ revision: 'a', percent: 0, shadow: 100 }],
      ['traffic: serving percents sum to 0; they must sum to 100'],
    ],
    [
      'duplicate revision',
      [
        { revision: 'a', percent: 50 },
        { revision: 'a', percent: 50 },
      ],
      ["traffic[1].revision: 'a' appears twice; list each revision once"],
    ],
    [
      'empty revision name',
      [{ revision: '', percent: 100 }],
      ['traffic[0].revision: must be a non-empty revision name'],
    ],
    [
      'negative, over 100 and NaN percents',
      [
        { revision: 'a', percent: -10 },
        { revision: 'b', percent: 110 },
        { revision: 'c', percent: Number.NaN },
      ],
      [
        'traffic[0].percent: -10 is not a number from 0 to 100',
        'traffic[1].percent: 110 is not a number from 0 to 100',
        'traffic[2].percent: NaN is not a number from 0 to 100',
        'traffic: serving percents sum to 0; they must sum to 100',
      ],
    ],
    [
      'bad shadow',
      [
        { revision: 'a', percent: 100 },
        { revision: 'b', percent: 0, shadow: 101 },
      ],
      ['traffic[1].shadow: 101 is not a number from 0 to 100'],
    ],
    [
      'a row that serves and shadows',
      [
        { revision: 'a', percent: 90, shadow: 10 },
        { revision: 'b', percent: 10 },
      ],
      [
        "traffic[0]: 'a' both serves (percent 90) and shadows (shadow 10); " +
          'a revision either serves or receives mirrored copies, set one of them to 0',
      ],
    ],
  ];
  for (const [name, targets, want] of rows) assert.deepEqual(validateTraffic(targets), want, name);
});
