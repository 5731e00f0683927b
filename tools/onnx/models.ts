/**
 * Ready-made ONNX models for tests and benchmarks. Each function returns ModelProto bytes
 * (ir_version 8, opset 17) that onnxruntime-node loads from memory or from a written file.
 * Batch dimensions are symbolic ('N') so the models accept any batch size, unless a model's options fix it.
 */
import type { Datatype } from '../../src/protocol/types.ts';
import { buildModel, ELEM_TYPE_FOR_DATATYPE } from './builder.ts';

export interface AddModelOptions {
  /** A fixed first dimension (e.g. 1: the model has no batch dimension). Default: symbolic 'N'. */
  batch?: number;
}

/**
 * y = x + x, FP32 [N,4] (or [batch,4] with a fixed `batch`). The "tiny" model: compute is negligible next to
 * HTTP and codec overhead.
 */
export function addModel(options: AddModelOptions = {}): Uint8Array {
  const first = options.batch ?? 'N';
  return buildModel({
    graphName: 'add',
    inputs: [{ name: 'x', elemType: 'FLOAT', dims: [first, 4] }],
    outputs: [{ name: 'y', elemType: 'FLOAT', dims: [first, 4] }],
    nodes: [{ op: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
  });
}

/** y = Identity(x), x and y of the ONNX type carrying `datatype` (BYTES -> STRING), shape [N,3]. */
export function identityModel(datatype: Datatype): Uint8Array {
  const elemType = ELEM_TYPE_FOR_DATATYPE[datatype];
  return buildModel({
    graphName: `identity_${datatype.toLowerCase()}`,
    inputs: [{ name: 'x', elemType, dims: ['N', 3] }],
    outputs: [{ name: 'y', elemType, dims: ['N', 3] }],
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
  });
}

export interface MatmulStackOptions {
  /** Number of MatMul + Relu layers. Default 4. */
  layers?: number;
  /** Features in and out of every layer. Default 1024. */
  width?: number;
  /** Seed of the weight generator. Default 1. */
  seed?: number;
}

/**
 * The weights of matmulStack: one row-major [width,width] matrix per layer, uniform in ±sqrt(6/width)
 * (He initialisation), so activations keep roughly their magnitude through MatMul + Relu.
 */
export function matmulStackWeights(options: MatmulStackOptions = {}): Float32Array[] {
  const { layers = 4, width = 1024, seed = 1 } = options;
  const random = mulberry32(seed);
  const limit = Math.sqrt(6 / width);
  const weights: Float32Array[] = [];
  for (let l = 0; l < layers; l++) {
    const w = new Float32Array(width * width);
    for (let i = 0; i < w.length; i++) w[i] = (random() * 2 - 1) * limit;
    weights.push(w);
  }
  return weights;
}

/**
 * x FP32 [N,width] -> (MatMul W_l -> Relu) x layers -> y FP32 [N,width]. The batching benchmark's heavy model:
 * 2 * layers * width^2 FLOPs per sample (8.4 MFLOP at the defaults). Weights: matmulStackWeights(options).
 */
export function matmulStack(options: MatmulStackOptions = {}): Uint8Array {
  const { width = 1024 } = options;
  const weights = matmulStackWeights(options);
  const nodes = weights.flatMap((_, l) => {
    const input = l === 0 ? 'x' : `h${l - 1}`;
    const output = l === weights.length - 1 ? 'y' : `h${l}`;
    return [
      { op: 'MatMul', inputs: [input, `w${l}`], outputs: [`m${l}`] },
      { op: 'Relu', inputs: [`m${l}`], outputs: [output] },
    ];
  });
  if (weights.length === 0) nodes.push({ op: 'Identity', inputs: ['x'], outputs: ['y'] });
  return buildModel({
    graphName: 'matmul_stack',
    inputs: [{ name: 'x', elemType: 'FLOAT', dims: ['N', width] }],
    outputs: [{ name: 'y', elemType: 'FLOAT', dims: ['N', width] }],
    initializers: weights.map((data, l) => ({ name: `w${l}`, dims: [width, width], data })),
    nodes,
  });
}

export interface ImageMeanOptions {
  /** Image height and width. Default 224. */
  height?: number;
  width?: number;
}

/**
 * image FP32 [N,3,H,W] (default 224x224) -> GlobalAveragePool -> Flatten -> mean FP32 [N,3]: the per-channel mean.
 * Cheap on purpose: a benchmark with it measures payload decode/encode, not compute.
 */
export function imageMeanModel(options: ImageMeanOptions = {}): Uint8Array {
  const { height = 224, width = 224 } = options;
  return buildModel({
    graphName: 'image_mean',
    inputs: [{ name: 'image', elemType: 'FLOAT', dims: ['N', 3, height, width] }],
    outputs: [{ name: 'mean', elemType: 'FLOAT', dims: ['N', 3] }],
    nodes: [
      { op: 'GlobalAveragePool', inputs: ['image'], outputs: ['pooled'] },
      { op: 'Flatten', inputs: ['pooled'], outputs: ['mean'], attributes: { axis: 1 } },
    ],
  });
}

/** Small, fast, seeded PRNG (mulberry32): numbers in [0, 1), identical on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
