/**
 * The models the scenarios serve, in one place. Each entry says how to make the ONNX bytes and the
 * names of the input and output the scenarios send and check.
 */
import { addModel, imageMeanModel, matmulStack } from '../../tools/onnx/models.ts';

export interface BenchModel {
  /** Model name in ferry.yaml and in /v2/models/<name>/infer. */
  name: string;
  bytes: Uint8Array;
  input: string;
  output: string;
}

/** y = x + x on FP32 [N,4] (S1): a dynamic first dimension, so the server may batch requests. */
export function tinyAdd(): BenchModel {
  return { name: 'add', bytes: addModel(), input: 'x', output: 'y' };
}

/** y = x + x on FP32 [1,4] (S1's unbatched row): a fixed shape, no batch dimension to batch on. */
export function tinyAddFixed(): BenchModel {
  return { name: 'add', bytes: addModel({ batch: 1 }), input: 'x', output: 'y' };
}

/** image FP32 [N,3,224,224] -> per-channel mean FP32 [N,3] (S2): compute is negligible, payload is not. */
export function imageMean(): BenchModel {
  return { name: 'image', bytes: imageMeanModel(), input: 'image', output: 'mean' };
}

/** x FP32 [N,width] through `layers` x (MatMul width x width + Relu) (S4, S6). */
export function wideMatmul(layers = 4, width = 1024): BenchModel {
  return { name: 'wide', bytes: matmulStack({ layers, width, seed: 1 }), input: 'x', output: 'y' };
}
