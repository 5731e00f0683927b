import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration } from './duration.ts';
import { SpecValueError } from './value-error.ts';

describe('parseDuration', () => {
  const valid: [string | number, number][] = [
    [0, 0],
    ['0', 0],
    ['1ns', 0.000001],
    ['500us', 0.5],
    ['500µs', 0.5],
    ['500μs', 0.5],
    ['2ms', 2],
    ['1.5ms', 1.5],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['1.005s', 1005],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['30d', 2_592_000_000],
    ['1m30s', 90_000],
    ['1h2m3.5s', 3_723_500],
    [' 10ms ', 10],
  ];
  for (const [text, ms] of valid) {
    it(`${JSON.stringify(text)} = ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  const invalid: [string | number, RegExp, RegExp][] = [
    [5, /has no unit/, /"5ms"/],
    ['500', /has no unit/, /"500ms"/],
    ['5 parsecs', /is not a duration/, /e\.g\. "2ms"/],
    ['5S', /is not a duration/, /unit/],
    ['5w', /unknown unit "w"/, /ms/],
    ['-5s', /negative/, /unit/],
    ['', /empty/, /unit/],
    ['ms', /is not a duration/, /unit/],
    ['1e3ms', /unknown unit "e"/, /unit/],
    [Number.NaN, /is not a duration/, /unit/],
    ['200000h', /too long/, /104 days/],
  ];
  for (const [text, message, hint] of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseDuration(text),
        (error: unknown) => {
          assert.ok(error instanceof SpecValueError);
          assert.equal(error.code, 'FERRY_SPEC_INVALID');
          assert.match(error.message, message);
          assert.match(error.hint ?? '', hint);
          return true;
        },
      );
    });
  }
});

describe('formatDuration', () => {
  const table: [number, string][] = [
    [0, '0'],
    [0.000001, '1ns'],
    [0.25, '250us'],
    [2, '2ms'],
    [1500, '1.5s'],
    [30_000, '30s'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [3_723_500, '1h2m3.5s'],
  ];
  for (const [ms, text] of table) it(`${ms} ms = ${text}`, () => assert.equal(formatDuration(ms), text));

  it('round-trips through parseDuration for any whole number of nanoseconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 50 }), (ns) => {
        const ms = ns / 1e6;
        assert.equal(Math.round(parseDuration(formatDuration(ms)) * 1e6), ns);
      }),
    );
  });

  it('refuses negative durations', () => assert.throws(() => formatDuration(-1), RangeError));
});
