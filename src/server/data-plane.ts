/**
 * The model server's operations, independent of HTTP: health, metadata, inference, repository.
 * The HTTP layer (data-front.ts for inference and health, http-app.ts for the rest) only moves bytes
 * between these and the wire.
 */
import { FerryError, isFerryError } from '../core/errors.ts';
import type { LoadReport, ReplicaStartup } from '../core/replica.ts';
import { FERRY_VERSION } from '../core/version.ts';
import {
  decodeInferRequest,
  decodeV1Request,
  type EncodedBody,
  encodeInferResponse,
  encodeV1Response,
} from '../protocol/index.ts';
import type {
  InferRequest,
  InferResponse,
  ModelMetadata,
  ServerMetadata,
  Tensor,
} from '../protocol/types.ts';
import { checkInferMediaType, type InferRoute } from './media-type.ts';
import type { ModelVersion } from './model-version.ts';
import type { ModelRepository } from './repository.ts';
import type { RequestTrace } from './tracing.ts';

export const SERVER_NAME = 'ferry';
export const SERVER_VERSION = FERRY_VERSION;
export const EXTENSIONS = ['binary_tensor_data', 'model_repository', 'kserve_v1'];

/** An inference request as the HTTP layer received it. */
export interface InferCall {
  protocol: InferRoute;
  name: string;
  version?: string | undefined;
  body: Buffer;
  contentType?: string | undefined;
  /** The binary tensor extension's Inference-Header-Content-Length. */
  inferenceHeaderLength?: string | undefined;
  /** performance.now() when the request arrived; its deadline counts from here. */
  receivedAt: number;
  /** Tracing on: the request's span and state (server/tracing.ts). */
  trace?: RequestTrace | undefined;
}

export interface ModelMetadataWithState extends ModelMetadata {
  state: ModelVersion['state'];
  reason?: string;
}

export class DataPlane {
  #draining = false;
  #delaying = false;
  #startupDone = false;
  #listeningAt: number | null = null;
  #startup: ReplicaStartup | null = null;

  constructor(readonly repository: ModelRepository) {}

  live(): boolean {
    return true;
  }

  /**
   * Ready once startup loading finished with at least one READY model, and until shutdown starts (its delay,
   * when there is one, or else draining).
   */
  ready(): boolean {
    return (
      !this.#draining &&
      !this.#delaying &&
      this.#startupDone &&
      this.repository.all().some((v) => v.state === 'READY')
    );
  }

  markListening(): void {
    this.#listeningAt ??= Date.now();
  }

  markStartupDone(): void {
    this.#startupDone = true;
    const ready = this.repository.all().filter((v) => v.state === 'READY');
    const last = (pick: (v: ModelVersion) => number | null) => {
      const times = ready.map(pick).filter((t): t is number => t !== null);
      return times.length === 0 ? null : Math.max(...times);
    };
    const first = ready.map((v) => v.loadStartedAt).filter((t): t is number => t !== null);
    this.#startup = {
      processStartedAt: Math.round(performance.timeOrigin),
      listeningAt: this.#listeningAt,
      modelLoadStartedAt: first.length === 0 ? null : Math.min(...first),
      modelLoadedAt: last((v) => v.modelLoadedAt),
      warmedAt: last((v) => v.warmedAt),
      readyAt: Date.now(),
    };
  }

  /** When startup reached each step; null until it is over. */
  startup(): ReplicaStartup | null {
    return this.#startup;
  }

  /**
   * The shutdown delay (server.ts, FERRY_SHUTDOWN_DELAY_MS): readiness is false, requests are still served,
   * and each connection closes once its answer is out. Ends when draining starts.
   */
  startShutdownDelay(): void {
    if (!this.#draining) this.#delaying = true;
  }

  /** In the shutdown delay: serving as usual, but no longer ready, and not keeping connections alive. */
  get delaying(): boolean {
    return this.#delaying;
  }

  startDraining(): void {
    this.#draining = true;
    this.#delaying = false;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Every READY version's load (GET /ferry/load, for the autoscaler): counters it keeps, read, not computed. */
  loadReport(): LoadReport {
    const models = [];
    for (const version of this.repository.all()) {
      const report = version.loadReport();
      if (report !== null) models.push(report);
    }
    const elu = performance.eventLoopUtilization();
    return { at: performance.now(), models, loop: { activeMs: elu.active, idleMs: elu.idle } };
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

  /** The version that will serve a request, checked ready. */
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

  /**
   * One inference, from the bytes of a request to the bytes of its response: finds the model version,
   * checks the media type, decodes (OIP v2 JSON or binary tensors, or KServe v1), validates against the
   * model, queues it for its workers, encodes the answer, and counts it in the model's metrics. Failures
   * throw a FerryError (counted too, except for an unknown or unready model).
   */
  async infer(call: InferCall): Promise<EncodedBody> {
    const target = this.target(call.name, call.version);
    const metrics = target.metrics;
    try {
      checkInferMediaType(call.contentType, call.protocol);
      const request =
        call.protocol === 'v2'
          ? decodeInferRequest(call.body, call, target.spec.serving.limits)
          : decodeV1Request(call.body, target.metadata!);
      target.validate(request);
      const trace = call.trace;
      if (trace !== undefined) trace.span.setAttribute('ferry.model.version', target.version);
      const outputs = await target.submit(request, call.receivedAt + target.spec.serving.timeoutMs, trace);
      const response: InferResponse = {
        model_name: target.name,
        model_version: target.version,
        ...(request.id === undefined ? {} : { id: request.id }),
        outputs: selectOutputs(outputs, request),
      };
      const encoded =
        call.protocol === 'v2'
          ? encodeInferResponse(response, request)
          : { body: encodeV1Response(response), headers: JSON_HEADERS };
      metrics.request(200, (performance.now() - call.receivedAt) / 1000);
      return encoded;
    } catch (error) {
      const status = isFerryError(error) ? error.status : 500;
      metrics.request(status, (performance.now() - call.receivedAt) / 1000);
      throw error;
    }
  }
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function selectOutputs(outputs: Tensor[], request: InferRequest): Tensor[] {
  if (request.outputs === undefined || request.outputs.length === 0) return outputs;
  const wanted = new Set(request.outputs.map((o) => o.name));
  return outputs.filter((t) => wanted.has(t.name));
}
