import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes, parseBytes, parseCpu } from './quantity.ts';
import { SpecValueError } from './value-error.ts';

function rejects(fn: () => unknown, message: RegExp, hint?: RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof SpecValueError);
    assert.match(error.message, message);
    if (hint !== undefined) assert.match(error.hint ?? '', hint);
    return true;
  });
}

describe('parseBytes', () => {
  const valid: [string | number, number][] = [
    [0, 0],
    [1024, 1024],
    ['1024', 1024],
    ['1k', 1000],
    ['64Mi', 64 * 1024 ** 2],
    ['64MiB', 64 * 1024 ** 2],
    ['64M', 64_000_000],
    ['64MB', 64_000_000],
    ['1Gi', 1024 ** 3],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['2G', 2e9],
    ['1Ti', 1024 ** 4],
    ['0.1k', 100],
    ['10B', 10],
    ['512 Ki', 512 * 1024],
  ];
  for (const [text, bytes] of valid) {
    it(`${JSON.stringify(text)} = ${bytes} bytes`, () => assert.equal(parseBytes(text), bytes));
  }

  it('rejects a fraction of a byte', () => rejects(() => parseBytes(1.5), /whole number of bytes/, /64Mi/));
  it('rejects "1.5" without a unit', () => rejects(() => parseBytes('1.5'), /whole number of bytes/));
  it('rejects negative sizes', () => rejects(() => parseBytes('-1Gi'), /negative/));
  it('rejects words', () => rejects(() => parseBytes('lots'), /is not a size/, /Ki, Mi, Gi/));
  it('explains "K"', () => rejects(() => parseBytes('64K'), /unknown size unit "K"/, /"64k".*"64Ki"/));
  it('explains lowercase "m"', () => rejects(() => parseBytes('64m'), /unknown size unit "m"/, /"64Mi"/));
  it('explains "mi"', () => rejects(() => parseBytes('64mi'), /unknown size unit/, /did you mean "64Mi"/));
  it('rejects sizes beyond 2^53', () => rejects(() => parseBytes('100000000Ti'), /too large/));
});

describe('formatBytes', () => {
  const table: [number, string][] = [
    [0, '0'],
    [1000, '1000'],
    [1024, '1Ki'],
    [64 * 1024 ** 2, '64Mi'],
    [1536 * 1024 ** 2, '1536Mi'],
    [1024 ** 3, '1Gi'],
  ];
  for (const [bytes, text] of table) {
    it(`${bytes} = ${text}`, () => {
      assert.equal(formatBytes(bytes), text);
      assert.equal(parseBytes(text), bytes);
    });
  }
});

describe('parseCpu', () => {
  const valid: [string | number, number][] = [
    ['2', 2],
    [2, 2],
    [0.5, 0.5],
    ['500m', 0.5],
    ['1500m', 1.5],
    ['1m', 0.001],
    ['0.25', 0.25],
    ['1.0001', 1],
  ];
  for (const [text, cores] of valid) {
    it(`${JSON.stringify(text)} = ${cores} cores`, () => assert.equal(parseCpu(text), cores));
  }
  it('rejects 0', () => rejects(() => parseCpu(0), /less than 1 millicore/, /no limit/));
  it('rejects negative', () => rejects(() => parseCpu(-1), /negative/));
  it('rejects "-1"', () => rejects(() => parseCpu('-1'), /not a CPU quantity/, /more than 0/));
  it('rejects fractional millicores', () => rejects(() => parseCpu('0.5m'), /fraction of a millicore/));
  it('rejects words', () => rejects(() => parseCpu('two'), /not a CPU quantity/, /500m/));
  it('rejects "2 cores"', () => rejects(() => parseCpu('2 cores'), /not a CPU quantity/));
});
