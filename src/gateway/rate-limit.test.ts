import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { newBucket, type RateLimit, rateLimitProblems, takeToken } from './rate-limit.ts';

const LIMIT: RateLimit = { ratePerSecond: 2, burst: 3 };

test('a new bucket lets a burst through, then refuses with the seconds until the next token', () => {
  const bucket = newBucket(LIMIT, 0);
  assert.deepEqual(
    [0, 0, 0].map(() => takeToken(bucket, LIMIT, 0)),
    [0, 0, 0],
  );
  assert.equal(takeToken(bucket, LIMIT, 0), 1, 'empty: one token comes in 0.5 s, Retry-After is at least 1');
  assert.equal(takeToken(bucket, LIMIT, 499), 1, 'not yet');
  assert.equal(takeToken(bucket, LIMIT, 500), 0, 'one token after 0.5 s at 2/s');
  assert.equal(takeToken(bucket, LIMIT, 500), 1);
});

test('refill is capped at the burst, and a refused request takes nothing', () => {
  const bucket = newBucket(LIMIT, 0);
  for (let i = 0; i < 3; i++) takeToken(bucket, LIMIT, 0);
  for (let i = 0; i < 10; i++) takeToken(bucket, LIMIT, 100); // refused retries
  assert.equal(takeToken(bucket, LIMIT, 500), 0, 'the retries did not delay the refill');
  const rested = newBucket(LIMIT, 0);
  takeToken(rested, LIMIT, 60_000);
  assert.equal(rested.tokens, 2, 'a minute of rest refills to the burst (3), not 120');
});

test('Retry-After grows with the wait at a slow rate', () => {
  const slow: RateLimit = { ratePerSecond: 0.1, burst: 1 };
  const bucket = newBucket(slow, 0);
  assert.equal(takeToken(bucket, slow, 0), 0);
  assert.equal(takeToken(bucket, slow, 0), 10, 'one token every 10 s');
  assert.equal(takeToken(bucket, slow, 4000), 6);
});

test('a clock that steps back refills nothing', () => {
  const bucket = newBucket(LIMIT, 10_000);
  for (let i = 0; i < 3; i++) takeToken(bucket, LIMIT, 10_000);
  assert.equal(takeToken(bucket, LIMIT, 5_000), 1);
  assert.equal(bucket.updatedAt, 10_000);
});

test('over any window, at most burst + rate x seconds requests pass', () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.1, max: 100, noNaN: true }),
      fc.integer({ min: 1, max: 20 }),
      fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 300 }),
      (ratePerSecond, burst, gaps) => {
        const limit = { ratePerSecond, burst };
        const bucket = newBucket(limit, 0);
        let now = 0;
        let passed = 0;
        for (const gap of gaps) {
          now += gap;
          const wait = takeToken(bucket, limit, now);
          if (wait === 0) passed++;
          else assert.ok(wait >= 1 && Number.isInteger(wait));
        }
        assert.ok(passed <= burst + (now / 1000) * ratePerSecond + 1e-9);
      },
    ),
  );
});

test('limits are checked with a sentence per problem', () => {
  assert.deepEqual(rateLimitProblems(LIMIT), []);
  assert.deepEqual(rateLimitProblems({ ratePerSecond: 0, burst: 0.5 }), [
    'ratePerSecond must be a number above 0, got 0',
    'burst must be a number of at least 1, got 0.5',
  ]);
});
