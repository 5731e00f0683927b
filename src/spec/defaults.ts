import { DEFAULT_SETTINGS } from '../autoscaler/settings.ts';

/**
 * Every default of ferry.yaml, in one place, in completed units (ms, bytes, cores).
 * The schema (JSON Schema `default`s), the completion step, `ferry init` and docs/spec.md all read these.
 */
export const DEFAULTS = {
  model: {
    version: '1',
    files: [] as readonly string[],
    inputs: null,
    outputs: null,
  },
  serving: {
    /** The values used for fields left out when batching is on. */
    batchingWhenOn: {
      maxBatchSize: 32,
      /** 0 = take what is queued, never wait for a batch to fill. */
      maxQueueDelayMs: 0,
      preferredBatchSizes: [] as readonly number[],
      maxQueueSize: 1024,
    },
    concurrency: 1,
    timeoutMs: 30_000,
    /** null = auto: the CPU quota divided by concurrency. */
    threads: null,
    limits: {
      maxBodyBytes: 64 * 1024 * 1024,
    },
  },
  resources: {
    cpu: null,
    memoryBytes: null,
    gpu: 0,
  },
  /** Used only by the Kubernetes target (src/k8s). */
  kubernetes: {
    /** The startup probe's budget: how long a replica may take to load its model before it is restarted. */
    startupTimeoutMs: 300_000,
  },
  /** Sealed by default: no network for replicas. */
  network: {
    egress: false,
  },
  build: {
    base: null,
    dependencies: {} as Readonly<Record<string, string>>,
  },
  examples: [] as readonly never[],
  example: {
    tolerance: 1e-5,
  },
  env: {} as Readonly<Record<string, string>>,
  secrets: [] as readonly string[],
  /** No `scaling:` block: a fixed replica count. */
  scaling: null,
  /** The values used for fields a `scaling:` block leaves out: the autoscaler's own defaults, not a copy. */
  scalingWhenOn: DEFAULT_SETTINGS,
} as const;

/** The file name looked for in a model directory. */
export const SPEC_FILE_NAME = 'ferry.yaml';

/** Environment variable that carries a deployment's serving options to its replicas, as JSON. */
export const SERVING_OVERRIDES_ENV = 'FERRY_SERVING_OVERRIDES';
