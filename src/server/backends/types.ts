/**
 * The contract between the model server and a backend. Backends run inside inference worker
 * threads; the main thread only sees ModelMetadata and Tensor batches crossing postMessage.
 */
import type { InferRequest, Tensor, TensorSpec } from '../../protocol/types.ts';
import type { RequestTimings } from '../worker/messages.ts';

export interface BackendLoadOptions {
  /** Absolute model directory (where ferry.yaml lives). */
  dir: string;
  /** Absolute path of the model file (onnx) or handler module (handler). */
  file: string;
  /** Declared tensors from ferry.yaml, if any (required for handlers). */
  inputs: TensorSpec[] | null;
  outputs: TensorSpec[] | null;
  /** Intra-op threads this worker may use. */
  threads: number;
  /** The model's env from ferry.yaml merged with secrets resolved at run time. */
  env: Record<string, string>;
  /** GPUs the model asks for (resources.gpu): an ONNX model then runs on CUDA when it can (execution-provider.ts). */
  gpu: number;
}

/** A traced model call (server/tracing.ts): what a handler is told, and where its phases' times go. */
export interface InferCallTrace {
  traceparent: string | undefined;
  timings: RequestTimings;
}

export interface Backend {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  /** ONNX: the execution provider its session runs on, and why (execution-provider.ts); handlers: absent. */
  readonly executionProvider?: { provider: 'cuda' | 'cpu'; why: string };
  /**
   * Runs one already-validated request as one model call (the worker runs a group's requests one by one).
   * `call`, when the request is traced: its traceparent for a handler, and the timings to fill in.
   */
  infer(request: InferRequest, call?: InferCallTrace): Promise<Tensor[]>;
  /**
   * Backends whose model takes a batch dimension run inputs already concatenated along it (by the
   * main thread, so one buffer per input crosses to the worker) as one call, and return outputs batched
   * the same way.
   */
  runBatch?(inputs: Tensor[]): Promise<Tensor[]>;
  unload(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// User handlers (model.format: handler). A handler module exports these functions (named exports
// or a default export object). Only `predict` is required. Like a KServe custom model or a Cog
// predictor: load once, then preprocess -> predict -> postprocess per request.

/** A tensor-by-name view of a request's inputs. */
export type NamedTensors = Record<string, Tensor>;

/** Minimal ONNX session surface offered to handlers (onnxruntime-node under the hood). */
export interface HandlerOnnxSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Feeds and results use Ferry tensors (typed arrays + shape), keyed by name. */
  run(feeds: NamedTensors): Promise<NamedTensors>;
}

export interface HandlerContext {
  /** Absolute model directory. */
  dir: string;
  threads: number;
  env: Record<string, string>;
  /** Opens an ONNX model (path absolute, or relative to dir) with Ferry's thread settings. */
  loadOnnx(path: string): Promise<HandlerOnnxSession>;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** About the call a handler's preprocess / predict / postprocess is part of. */
export interface HandlerCall {
  /**
   * With tracing on (docs/tracing.md): the W3C traceparent of this call's `ferry.inference` span, for spans or
   * requests the handler makes itself; undefined when tracing is off.
   */
  traceparent: string | undefined;
}

export interface HandlerModule<State = unknown, Pre = NamedTensors, Out = unknown> {
  /** Called once per worker before the model is ready. Its return value is passed back as `state`. */
  load?(ctx: HandlerContext): Promise<State> | State;
  preprocess?(
    inputs: NamedTensors,
    state: State,
    request: InferRequest,
    call: HandlerCall,
  ): Promise<Pre> | Pre;
  predict(input: Pre, state: State, request: InferRequest, call: HandlerCall): Promise<Out> | Out;
  /** Turns predict's result into output tensors. Without it, predict must return Tensor[] or NamedTensors. */
  postprocess?(
    output: Out,
    state: State,
    request: InferRequest,
    call: HandlerCall,
  ): Promise<Tensor[] | NamedTensors> | Tensor[] | NamedTensors;
  unload?(state: State): Promise<void> | void;
}
