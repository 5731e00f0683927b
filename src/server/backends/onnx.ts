/**
 * ONNX backend: one onnxruntime-node session. A batch concatenated along the first dimension (by the
 * worker pool, on the main thread) runs as one call (`runBatch`); a request of a group the batcher put
 * together only to share the hop to this thread is one call of its own (`infer`).
 */
import type * as ort from 'onnxruntime-node';
import { FerryError } from '../../core/errors.ts';
import type { InferRequest, Tensor, TensorSpec } from '../../protocol/types.ts';
import { chooseProvider, type ProviderChoice, providerFacts } from './execution-provider.ts';
import { fromOrtTensor, openSession, specsFromSession, toOrtTensor } from './onnx-tensors.ts';
import type { Backend, BackendLoadOptions } from './types.ts';

export async function loadOnnxBackend(options: BackendLoadOptions): Promise<Backend> {
  const choice = chooseProvider(await providerFacts(options.gpu));
  const session = await openSession(options.file, options.threads, choice.provider);
  const inputs = options.inputs ?? specsFromSession(session.inputMetadata, 'input');
  const outputs = options.outputs ?? specsFromSession(session.outputMetadata, 'output');
  checkDeclaredNames(inputs, session.inputNames, 'input');
  checkDeclaredNames(outputs, session.outputNames, 'output');
  return new OnnxBackend(session, inputs, outputs, choice);
}

function checkDeclaredNames(declared: TensorSpec[], actual: readonly string[], kind: string): void {
  const missing = declared.filter((t) => !actual.includes(t.name)).map((t) => t.name);
  if (missing.length > 0) {
    throw new FerryError(
      'FERRY_MODEL_LOAD_FAILED',
      `ferry.yaml declares ${kind}s the ONNX model does not have: ${missing.join(', ')} (the model has: ${actual.join(', ')})`,
      { hint: `Fix model.${kind}s in ferry.yaml, or remove it to read the ${kind}s from the model.` },
    );
  }
}

class OnnxBackend implements Backend {
  constructor(
    private readonly session: ort.InferenceSession,
    readonly inputs: TensorSpec[],
    readonly outputs: TensorSpec[],
    readonly executionProvider: ProviderChoice,
  ) {}

  infer(request: InferRequest): Promise<Tensor[]> {
    return this.runBatch(request.inputs);
  }

  async runBatch(inputs: Tensor[]): Promise<Tensor[]> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const tensor of inputs) feeds[tensor.name] = toOrtTensor(tensor);
    const results = await this.session.run(feeds);
    return this.outputs.map((spec) => {
      const value = results[spec.name];
      if (value === undefined) {
        throw new FerryError('FERRY_INFERENCE_FAILED', `the model did not produce output "${spec.name}"`);
      }
      return fromOrtTensor(spec.name, value as ort.Tensor);
    });
  }

  async unload(): Promise<void> {
    await this.session.release();
  }
}
