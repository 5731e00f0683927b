/**
 * The model server's operations, independent of HTTP: health, metadata, inference, repository.
 * HTTP routes (http-app.ts) only translate between these and the wire.
 */
import { FerryError } from '../core/errors.ts';
import { FERRY_VERSION } from '../core/version.ts';
import { validateInferRequest } from '../protocol/index.ts';
import type {
  InferRequest,
  InferResponse,
  ModelMetadata,
  ServerMetadata,
  Tensor,
} from '../protocol/types.ts';
import type { ModelVersion } from './model-version.ts';
import type { ModelRepository } from './repository.ts';

export const SERVER_NAME = 'ferry';
export const SERVER_VERSION = FERRY_VERSION;
export const EXTENSIONS = ['binary_tensor_data', 'model_repository', 'kserve_v1'];

export interface ModelMetadataWithState extends ModelMetadata {
  state: ModelVersion['state'];
  reason?: string;
}

export class DataPlane {
  #draining = false;
  #startupDone = false;

  constructor(readonly repository: ModelRepository) {}

  live(): boolean {
    return true;
  }

  /** Ready once startup loading finished with at least one READY model, and until draining starts. */
  ready(): boolean {
    return !this.#draining && this.#startupDone && this.repository.all().some((v) => v.state === 'READY');
  }

  markStartupDone(): void {
    this.#startupDone = true;
  }

  startDraining(): void {
    this.#draining = true;
  }

  get draining(): boolean {
    return this.#draining;
  }

  serverMetadata(): ServerMetadata {
    return { name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS };
  }

  modelMetadata(name: string, version?: string): ModelMetadataWithState {
    const found = this.repository.resolve(name, version);
    const versions = this.repository.versionsOf(name);
    const declared = found.spec.model;
    const base = found.metadata ?? {
      name,
      versions,
      platform: declared.format === 'onnx' ? 'onnxruntime_onnx' : 'ferry_handler',
      inputs: declared.inputs ?? [],
      outputs: declared.outputs ?? [],
    };
    return {
      ...base,
      versions,
      state: found.state,
      ...(found.state === 'READY' ? {} : { reason: found.reason || `model is ${found.state.toLowerCase()}` }),
    };
  }

  modelReady(name: string, version?: string): boolean {
    return this.repository.resolve(name, version).serving;
  }

  /** The version that will serve a request, checked ready; used by routes that decode per model limits. */
  target(name: string, version?: string): ModelVersion {
    const found = this.repository.resolve(name, version);
    if (found.state !== 'READY') {
      throw new FerryError(
        'FERRY_MODEL_NOT_READY',
        `model "${name}" version "${found.version}" is not ready (${found.state.toLowerCase()}${found.reason ? `: ${found.reason}` : ''})`,
        { retryAfterSeconds: found.state === 'LOADING' ? 1 : undefined },
      );
    }
    return found;
  }

  async infer(target: ModelVersion, request: InferRequest, receivedAt: number): Promise<InferResponse> {
    validateInferRequest(request, target.metadata!);
    const deadline = receivedAt + target.spec.serving.timeoutMs;
    const outputs = await withDeadline(
      target.submit(request, deadline),
      deadline,
      target.spec.serving.timeoutMs,
    );
    return {
      model_name: target.name,
      model_version: target.version,
      ...(request.id === undefined ? {} : { id: request.id }),
      outputs: selectOutputs(outputs, request),
    };
  }
}

function selectOutputs(outputs: Tensor[], request: InferRequest): Tensor[] {
  if (request.outputs === undefined || request.outputs.length === 0) return outputs;
  const wanted = new Set(request.outputs.map((o) => o.name));
  return outputs.filter((t) => wanted.has(t.name));
}

/** Answers 504 when the deadline passes, even if the batch is still running (its result is then dropped). */
function withDeadline<T>(work: Promise<T>, deadline: number, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new FerryError(
            'FERRY_DEADLINE_EXCEEDED',
            `inference did not finish within the model's timeout of ${timeoutMs} ms`,
            {
              hint: 'Raise serving.timeout in ferry.yaml, add workers (serving.concurrency), or send less load.',
            },
          ),
        ),
      Math.max(0, deadline - performance.now()),
    );
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
