import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../core/errors.ts';
import type { InferRequest, ModelMetadata, Tensor } from './types.ts';
import { compileValidator, validateInferRequest } from './validate.ts';

const model: ModelMetadata = {
  name: 'm',
  versions: ['1'],
  platform: 'onnx',
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [-1, 4] },
    { name: 'mask', datatype: 'BOOL', shape: [-1, 4] },
  ],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
};

const tensor = (name: string, datatype: Tensor['datatype'], shape: number[]): Tensor => ({
  name,
  datatype,
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
});

function problems(request: InferRequest): string[] {
  try {
    validateInferRequest(request, model);
  } catch (error) {
    assert.ok(error instanceof FerryError);
    assert.equal(error.code, 'FERRY_INVALID_INPUT');
    assert.match(
      error.hint ?? '',
      /expects inputs "x" FP32 \[-1,4\], "mask" BOOL \[-1,4\] and has outputs "y" FP32 \[-1,3\]/,
    );
    for (const problem of error.details as string[]) assert.ok(error.message.includes(problem));
    return error.details as string[];
  }
  return [];
}

describe('validateInferRequest', () => {
  it('accepts a matching request with any batch size', () => {
    assert.deepEqual(
      problems({
        inputs: [tensor('x', 'FP32', [7, 4]), tensor('mask', 'BOOL', [7, 4])],
        outputs: [{ name: 'y' }],
      }),
      [],
    );
    assert.deepEqual(problems({ inputs: [tensor('mask', 'BOOL', [0, 4]), tensor('x', 'FP32', [1, 4])] }), []);
  });

  it('collects every problem into one error', () => {
    assert.deepEqual(
      problems({
        inputs: [tensor('x', 'FP64', [2, 5]), tensor('extra', 'FP32', [1]), tensor('x2', 'FP32', [1])],
        outputs: [{ name: 'y' }, { name: 'z' }],
      }),
      [
        'input "x": datatype FP64 does not match the model\'s FP32',
        'input "x": shape [2,5] does not match the model\'s [-1,4] at dimension 1 (5 vs 4; -1 means any size)',
        'input "extra" is not an input of the model',
        'input "x2" is not an input of the model',
        'input "mask" (BOOL [-1,4]) is missing',
        'requested output "z" is not an output of the model',
      ],
    );
  });

  it('checks the rank', () => {
    assert.deepEqual(problems({ inputs: [tensor('x', 'FP32', [4]), tensor('mask', 'BOOL', [1, 4])] }), [
      'input "x": shape [4] has rank 1, the model\'s [-1,4] has rank 2',
    ]);
  });
});

describe('compileValidator', () => {
  it('accepts and refuses exactly what validateInferRequest does, with the same error', () => {
    const check = compileValidator(model);
    const names = fc.constantFrom('x', 'mask', 'y', 'z');
    const arbTensor = fc.record({
      name: names,
      datatype: fc.constantFrom<Tensor['datatype']>('FP32', 'BOOL', 'INT64'),
      shape: fc.array(fc.constantFrom(1, 2, 3, 4), { minLength: 1, maxLength: 3 }),
    });
    const arbRequest = fc.record(
      {
        inputs: fc.array(arbTensor, { maxLength: 3 }),
        outputs: fc.array(fc.record({ name: names }), { maxLength: 2 }),
      },
      { requiredKeys: ['inputs'] },
    );
    fc.assert(
      fc.property(arbRequest, (raw) => {
        const request: InferRequest = {
          ...raw,
          inputs: raw.inputs.map((t) => tensor(t.name, t.datatype, t.shape)),
        };
        const outcome = (fn: () => void) => {
          try {
            fn();
            return 'ok';
          } catch (error) {
            return (error as FerryError).message;
          }
        };
        assert.equal(
          outcome(() => check(request)),
          outcome(() => validateInferRequest(request, model)),
        );
      }),
      { numRuns: 2000 },
    );
    // The common case, and a duplicate that hides a missing input.
    assert.doesNotThrow(() =>
      check({ inputs: [tensor('x', 'FP32', [2, 4]), tensor('mask', 'BOOL', [2, 4])] }),
    );
    assert.throws(
      () => check({ inputs: [tensor('x', 'FP32', [2, 4]), tensor('x', 'FP32', [2, 4])] }),
      /"mask" \(BOOL \[-1,4\]\) is missing/,
    );
  });
});
