/**
 * Checks a decoded request against a model's declared inputs and outputs. Pure.
 * All problems are collected into one FERRY_INVALID_INPUT error (message + details list).
 */
import { FerryError } from '../core/errors.ts';
import type { InferRequest, ModelMetadata, TensorSpec } from './types.ts';

/** `FP32 [-1,4]` */
export function describeSpec(spec: TensorSpec): string {
  return `${spec.datatype} [${spec.shape.join(',')}]`;
}

function listSpecs(specs: readonly TensorSpec[]): string {
  return specs.length === 0 ? 'none' : specs.map((s) => `"${s.name}" ${describeSpec(s)}`).join(', ');
}

export function validateInferRequest(request: InferRequest, model: ModelMetadata): void {
  const problems: string[] = [];
  const byName = new Map(model.inputs.map((spec) => [spec.name, spec]));
  const given = new Set<string>();
  for (const tensor of request.inputs) {
    given.add(tensor.name);
    const spec = byName.get(tensor.name);
    const label = `input ${JSON.stringify(tensor.name)}`;
    if (spec === undefined) {
      problems.push(`${label} is not an input of the model`);
      continue;
    }
    if (tensor.datatype !== spec.datatype) {
      problems.push(`${label}: datatype ${tensor.datatype} does not match the model's ${spec.datatype}`);
    }
    const shape = `[${tensor.shape.join(',')}]`;
    const expected = `[${spec.shape.join(',')}]`;
    if (tensor.shape.length !== spec.shape.length) {
      problems.push(
        `${label}: shape ${shape} has rank ${tensor.shape.length}, the model's ${expected} has rank ${spec.shape.length}`,
      );
    } else {
      const bad = spec.shape.findIndex((dim, i) => dim >= 0 && tensor.shape[i] !== dim);
      if (bad >= 0) {
        problems.push(
          `${label}: shape ${shape} does not match the model's ${expected} at dimension ${bad} (${tensor.shape[bad]} vs ${spec.shape[bad]}; -1 means any size)`,
        );
      }
    }
  }
  for (const spec of model.inputs) {
    if (!given.has(spec.name))
      problems.push(`input ${JSON.stringify(spec.name)} (${describeSpec(spec)}) is missing`);
  }
  if (request.outputs !== undefined) {
    const outputs = new Set(model.outputs.map((spec) => spec.name));
    for (const output of request.outputs) {
      if (!outputs.has(output.name))
        problems.push(`requested output ${JSON.stringify(output.name)} is not an output of the model`);
    }
  }
  if (problems.length === 0) return;
  throw new FerryError(
    'FERRY_INVALID_INPUT',
    `request does not match model "${model.name}": ${problems.join('; ')}`,
    {
      hint: `The model expects inputs ${listSpecs(model.inputs)} and has outputs ${listSpecs(model.outputs)}.`,
      details: problems,
    },
  );
}

/**
 * validateInferRequest for one model, made once per model version: a request that matches (the common
 * case) is accepted by a few comparisons against precomputed specs, without building a Map and a Set per
 * request; anything else goes through validateInferRequest, which lists every problem.
 */
export function compileValidator(model: ModelMetadata): (request: InferRequest) => void {
  const byName = new Map(model.inputs.map((spec) => [spec.name, spec]));
  const outputs = new Set(model.outputs.map((spec) => spec.name));
  const count = model.inputs.length;
  const matches = (request: InferRequest): boolean => {
    const inputs = request.inputs;
    if (inputs.length !== count) return false;
    for (let i = 0; i < count; i++) {
      const tensor = inputs[i]!;
      const spec = byName.get(tensor.name);
      if (spec === undefined || tensor.datatype !== spec.datatype) return false;
      const shape = tensor.shape;
      const expected = spec.shape;
      if (shape.length !== expected.length) return false;
      for (let d = 0; d < shape.length; d++) if (expected[d]! >= 0 && shape[d] !== expected[d]) return false;
      // As many inputs as the model has and all known: each given once means none is missing.
      for (let j = 0; j < i; j++) if (inputs[j]!.name === tensor.name) return false;
    }
    if (request.outputs !== undefined) {
      for (const output of request.outputs) if (!outputs.has(output.name)) return false;
    }
    return true;
  };
  return (request) => {
    if (!matches(request)) validateInferRequest(request, model);
  };
}
