/**
 * Conversions between Ferry tensors and onnxruntime-node tensors, plus ONNX session options.
 * Numeric data is shared, not copied: ORT wraps the typed array's memory, and its CPU outputs
 * are returned as typed arrays we pass on as they are.
 */
import * as ort from 'onnxruntime-node';
import { FerryError } from '../../core/errors.ts';
import type { Datatype, Tensor, TensorSpec } from '../../protocol/types.ts';

const TO_ORT: Record<Datatype, ort.Tensor.Type> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

const FROM_ORT = new Map<string, Datatype>(Object.entries(TO_ORT).map(([k, v]) => [v, k as Datatype]));

export function datatypeFromOrt(type: string, where: string): Datatype {
  const datatype = FROM_ORT.get(type);
  if (datatype === undefined) {
    throw new FerryError(
      'FERRY_MODEL_LOAD_FAILED',
      `${where}: ONNX type "${type}" has no Open Inference Protocol datatype`,
      {
        hint: `Supported ONNX types: ${[...FROM_ORT.keys()].join(', ')}.`,
      },
    );
  }
  return datatype;
}

/** Reads a session's declared inputs or outputs; symbolic or unknown dimensions become -1. */
export function specsFromSession(
  metadata: readonly ort.InferenceSession.ValueMetadata[],
  kind: string,
): TensorSpec[] {
  return metadata.map((value) => {
    if (!value.isTensor) {
      throw new FerryError(
        'FERRY_MODEL_LOAD_FAILED',
        `${kind} "${value.name}" is not a tensor; Ferry serves tensor models only`,
      );
    }
    return {
      name: value.name,
      datatype: datatypeFromOrt(value.type, `${kind} "${value.name}"`),
      shape: value.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
    };
  });
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

export function toOrtTensor(tensor: Tensor): ort.Tensor {
  if (tensor.datatype === 'BYTES') {
    // onnxruntime-node holds string tensors as JS strings: BYTES elements must be valid UTF-8.
    const strings = (tensor.data as Uint8Array[]).map((bytes, index) => {
      try {
        return textDecoder.decode(bytes);
      } catch {
        throw new FerryError(
          'FERRY_INVALID_INPUT',
          `input "${tensor.name}": element ${index} is not valid UTF-8, which ONNX string tensors require`,
        );
      }
    });
    return new ort.Tensor('string', strings, tensor.shape);
  }
  // ORT's typings list one array type per element type; the datatype and array already agree.
  return new ort.Tensor(TO_ORT[tensor.datatype], tensor.data as never, tensor.shape);
}

export function fromOrtTensor(name: string, value: ort.Tensor): Tensor {
  const datatype = datatypeFromOrt(value.type, `output "${name}"`);
  const shape = [...value.dims];
  if (datatype === 'BYTES') {
    return { name, datatype, shape, data: (value.data as string[]).map((s) => textEncoder.encode(s)) };
  }
  let data = value.data as Tensor['data'];
  // float16 may come back as a Float16Array on runtimes that have one; we carry half bits.
  if (datatype === 'FP16' && !(data instanceof Uint16Array)) {
    const view = data as unknown as ArrayBufferView;
    data = new Uint16Array(view.buffer, view.byteOffset, view.byteLength / 2);
  }
  return { name, datatype, shape, data };
}

export function sessionOptions(
  threads: number,
  provider: 'cuda' | 'cpu' = 'cpu',
): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Spinning threads burn a core while idle; with small CPU quotas shared by workers, they hurt more than help.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** y = Identity(x), FP32 [N,3]: tools/onnx/models.ts identityModel('FP32'), 124 bytes (onnx-tensors.test.ts checks). */
export const TINY_MODEL_BASE64 =
  'CAgSEGZlcnJ5LXRvb2xzLW9ubngaATEyADpbCh4KAXgSAXkaCklkZW50aXR5XzAiCElkZW50aXR5OgASDWlkZW50aXR5X2ZwMzJaFAoBeBIPCg0IARIJCgMSAU4KAggDYhQKAXkSDwoNCAESCQoDEgFOCgIIA0IECgAQEQ==';

/**
 * Pays onnxruntime's one-time setup of the process (its first session costs 40-100 ms whatever the model; the
 * next about 1 ms) on a tiny model, so that it can happen before the real model is known (worker/preload.ts).
 */
export async function warmOnnxRuntime(): Promise<void> {
  const session = await ort.InferenceSession.create(
    Buffer.from(TINY_MODEL_BASE64, 'base64'),
    sessionOptions(1),
  );
  await session.release();
}

export async function openSession(
  path: string,
  threads: number,
  provider: 'cuda' | 'cpu' = 'cpu',
): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, sessionOptions(threads, provider));
  } catch (error) {
    throw new FerryError(
      'FERRY_MODEL_LOAD_FAILED',
      `cannot load ONNX model ${path}: ${(error as Error).message}`,
      {
        cause: error,
        hint: 'Check that the file is a valid ONNX model (opset supported by onnxruntime 1.30).',
      },
    );
  }
}
