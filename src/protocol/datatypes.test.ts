import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FerryError } from '../core/errors.ts';
import {
  allocate,
  elementByteSize,
  elementCount,
  fp16ToNumber,
  isDatatype,
  numberToFp16,
  typedArrayConstructor,
} from './datatypes.ts';
import { DATATYPES } from './types.ts';

describe('datatypes', () => {
  it('knows element sizes and constructors', () => {
    assert.equal(elementByteSize('BYTES'), undefined);
    assert.equal(elementByteSize('BOOL'), 1);
    assert.equal(elementByteSize('FP16'), 2);
    assert.equal(elementByteSize('INT64'), 8);
    for (const datatype of DATATYPES) {
      if (datatype === 'BYTES') continue;
      const Ctor = typedArrayConstructor(datatype);
      assert.equal(Ctor.BYTES_PER_ELEMENT, elementByteSize(datatype), datatype);
      const data = allocate(datatype, 3);
      assert.ok(data instanceof Ctor);
      assert.equal(data.length, 3);
    }
    assert.deepEqual(allocate('BYTES', 2), [new Uint8Array(0), new Uint8Array(0)]);
  });

  it('guards datatypes', () => {
    assert.ok(isDatatype('FP32'));
    assert.ok(!isDatatype('fp32'));
    assert.ok(!isDatatype('FLOAT'));
    assert.ok(!isDatatype(3));
    assert.ok(!isDatatype(undefined));
  });

  it('counts elements safely', () => {
    assert.equal(elementCount([]), 1);
    assert.equal(elementCount([2, 3, 4]), 24);
    assert.equal(elementCount([0, 1e15]), 0);
    assert.throws(
      () => elementCount([2, -1], 'inputs[0].shape'),
      (e: FerryError) => {
        assert.equal(e.code, 'FERRY_INVALID_INPUT');
        assert.match(e.message, /inputs\[0\]\.shape\[1\] is -1/);
        return true;
      },
    );
    assert.throws(() => elementCount([1.5]), { code: 'FERRY_INVALID_INPUT' });
    assert.throws(() => elementCount(['3']), { code: 'FERRY_INVALID_INPUT' });
    assert.throws(() => elementCount([1e9, 1e9]), { code: 'FERRY_PAYLOAD_TOO_LARGE' });
    assert.throws(() => elementCount([2 ** 60]), { code: 'FERRY_INVALID_INPUT' });
  });

  it('converts FP16 exactly', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -24, 0x0001],
      [2 ** -14, 0x0400],
      [Number.POSITIVE_INFINITY, 0x7c00],
      [Number.NEGATIVE_INFINITY, 0xfc00],
      [0.333251953125, 0x3555],
    ];
    for (const [value, bits] of cases) {
      assert.equal(numberToFp16(value), bits, `encode ${value}`);
      assert.ok(Object.is(fp16ToNumber(bits), value), `decode ${bits.toString(16)}`);
    }
    assert.ok(Number.isNaN(fp16ToNumber(numberToFp16(Number.NaN))));
    // Rounding: to nearest, ties to even; overflow to infinity; underflow to zero.
    assert.equal(numberToFp16(1 + 2 ** -11), 0x3c00); // tie -> even (down)
    assert.equal(numberToFp16(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
    assert.equal(numberToFp16(1 + 2 ** -11 + 2 ** -30), 0x3c01); // just above the tie: up
    assert.equal(numberToFp16(65520), 0x7c00);
    assert.equal(numberToFp16(65519), 0x7bff);
    assert.equal(numberToFp16(2 ** -26), 0x0000);
    assert.equal(numberToFp16(0.1), 0x2e66);
    // Every half value survives a round trip.
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = fp16ToNumber(bits);
      if (Number.isNaN(value)) continue;
      assert.equal(numberToFp16(value), bits);
    }
  });
});
