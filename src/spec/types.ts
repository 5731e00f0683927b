/**
 * The completed ferry.yaml (after parse -> validate -> complete). Every default is filled in;
 * durations are milliseconds, sizes are bytes, CPU is cores. The raw, all-optional input type is
 * inferred from the zod schema in schema.ts and never leaves this module.
 */
import type { ScalingSettings } from '../autoscaler/types.ts';
import type { TensorSpec } from '../protocol/types.ts';

export const API_VERSION = 'ferry.dev/v1alpha1';

export interface BatchingSpec {
  /** Largest batch, counted in samples (sum of the first dimension), not requests. */
  maxBatchSize: number;
  /** How long the oldest request may wait for a batch to fill, in ms. 0 = take what is queued. */
  maxQueueDelayMs: number;
  /** Batch sizes the batcher prefers to dispatch at (Triton's preferred_batch_size). Sorted ascending. */
  preferredBatchSizes: number[];
  /** Requests waiting beyond this are shed with 503 + Retry-After. */
  maxQueueSize: number;
  /**
   * Set when ferry.yaml does not configure batching: it is on with these defaults when the model allows it
   * (ONNX, every input and output with a dynamic first dimension) and off, without a warning, otherwise.
   */
  auto?: true;
}

/** A Kubernetes toleration, as ferry.yaml's `kubernetes.tolerations` gives it. */
export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface ServingSpec {
  /** null when batching is off (`false` or `null` in ferry.yaml); `auto` set when it was left out. */
  batching: BatchingSpec | null;
  /** Number of inference workers (each with its own session). */
  concurrency: number;
  /** Per-request deadline in ms. */
  timeoutMs: number;
  /** Intra-op threads per worker; null = derived from the CPU quota divided by concurrency. */
  threads: number | null;
  limits: {
    /** Largest request body accepted, in bytes. */
    maxBodyBytes: number;
  };
}

export interface ExampleSpec {
  name: string;
  /** Request body in OIP JSON form, as written in ferry.yaml or loaded from a file. */
  request: unknown;
  /** Expected response outputs (OIP JSON form); omitted = only check the request succeeds. */
  response?: unknown;
  /** Absolute tolerance for numeric comparisons. */
  tolerance: number;
}

export interface ModelSpec {
  apiVersion: typeof API_VERSION;
  kind: 'Model';
  model: {
    name: string;
    version: string;
    format: 'onnx' | 'handler';
    /** onnx: the .onnx file. handler: the module (.ts/.js/.mjs) exporting the handler. Relative to dir. */
    file: string;
    /** Other files that belong to the model (weights, vocabularies). Relative to dir. */
    files: string[];
    /** Declared tensors. Required for handlers; for onnx, read from the session when omitted. */
    inputs: TensorSpec[] | null;
    outputs: TensorSpec[] | null;
  };
  serving: ServingSpec;
  resources: {
    /** CPU cores (e.g. 0.5 for "500m"); null = no limit. */
    cpu: number | null;
    /** Memory in bytes; null = no limit. */
    memoryBytes: number | null;
    gpu: number;
  };
  network: {
    /** Replicas may connect to other machines (docker: a dedicated bridge network); default false: no network. */
    egress: boolean;
  };
  /** For the Kubernetes target only (src/k8s). */
  kubernetes: {
    /** The startup probe's budget, ms. */
    startupTimeoutMs: number;
    nodeSelector: Record<string, string>;
    tolerations: Toleration[];
  };
  build: {
    /** Base image reference; null = Ferry's default. */
    base: string | null;
    /** Extra npm dependencies for handler code: name -> version range. */
    dependencies: Record<string, string>;
  };
  examples: ExampleSpec[];
  env: Record<string, string>;
  /** Names of secrets the model needs at run time; values are never in the spec or the image. */
  secrets: string[];
  /**
   * Autoscaling for a deployment of this version (`scaling:`): the block over the autoscaler's defaults
   * (src/autoscaler/settings.ts), durations in whole ms; null when there is no block (a fixed replica count).
   * Applied by the platform when a deployment is created, and on a later deploy when it differs from the
   * previous version's (docs/autoscaling.md, "At deploy time").
   */
  scaling: ScalingSettings | null;
}

/** A loaded spec and where it came from. */
export interface LoadedSpec {
  spec: ModelSpec;
  /** Absolute path of the ferry.yaml. */
  file: string;
  /** Absolute directory the spec's relative paths are resolved against. */
  dir: string;
  warnings: SpecProblem[];
}

export interface SpecProblem {
  file: string;
  /** Dotted field path, e.g. "serving.batching.maxQueueDelay". Empty for the whole document. */
  path: string;
  message: string;
  /** What was found, shown to the user. */
  found?: string;
  /** What to do, with a valid example where it helps. */
  hint?: string;
  /** 1-based position in the file of the value (or key) concerned, when known. */
  line?: number;
  column?: number;
}
