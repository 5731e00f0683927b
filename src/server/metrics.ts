/**
 * Prometheus metrics of the model server. Naming scheme (docs/metrics.md): `ferry_` prefix, base units
 * (seconds, bytes), counters end in `_total`; labels `model`, `version`, and `status` (HTTP status code).
 * Label children are resolved once per model version and kept, so the hot path only observes numbers.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export interface ModelMetrics {
  request(status: number, seconds: number): void;
  queued(seconds: number): void;
  batch(samples: number, seconds: number): void;
  queueDepth(depth: number): void;
  loaded(seconds: number): void;
  ready(ready: boolean): void;
  loadFailed(): void;
  workerExited(): void;
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requestsCounter = new Counter({
    name: 'ferry_requests_total',
    help: 'Inference requests answered, by model, version and HTTP status.',
    labelNames: ['model', 'version', 'status'] as const,
    registers: [this.registry],
  });
  readonly #requestDuration = new Histogram({
    name: 'ferry_request_duration_seconds',
    help: 'Time from a request being decoded to its response being encoded, including queueing.',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #queueDuration = new Histogram({
    name: 'ferry_queue_duration_seconds',
    help: 'Time a request waited in the batching queue before its batch started.',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #inferenceDuration = new Histogram({
    name: 'ferry_inference_duration_seconds',
    help: 'Time to run one batch in an inference worker, including the hop to and from the worker.',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #batchSize = new Histogram({
    name: 'ferry_batch_size',
    help: 'Samples (sum of the first dimension) per executed batch.',
    labelNames: ['model', 'version'] as const,
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });
  readonly #queueDepth = new Gauge({
    name: 'ferry_queue_depth',
    help: 'Requests waiting in the batching queue.',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly #loadDuration = new Gauge({
    name: 'ferry_model_load_duration_seconds',
    help: 'How long the last successful load of a model version took, warm-up included.',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly #modelReady = new Gauge({
    name: 'ferry_model_ready',
    help: '1 when a model version is loaded and serving, else 0.',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly #loadFailures = new Counter({
    name: 'ferry_model_load_failures_total',
    help: 'Failed attempts to load a model version.',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly #workerExits = new Counter({
    name: 'ferry_worker_exits_total',
    help: 'Inference workers that exited unexpectedly (and were replaced).',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly #httpRequests = new Counter({
    name: 'ferry_http_requests_total',
    help: 'HTTP requests by route and status, all endpoints (inference requests are also in ferry_requests_total).',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  readonly #httpChildren = new Map<string, { inc(): void }>();

  http(route: string, status: number): void {
    const key = `${status} ${route}`;
    let child = this.#httpChildren.get(key);
    if (child === undefined) {
      child = this.#httpRequests.labels(route, String(status));
      this.#httpChildren.set(key, child);
    }
    child.inc();
  }

  forModel(model: string, version: string): ModelMetrics {
    const labels = { model, version };
    const requestDuration = this.#requestDuration.labels(labels);
    const queueDuration = this.#queueDuration.labels(labels);
    const inferenceDuration = this.#inferenceDuration.labels(labels);
    const batchSize = this.#batchSize.labels(labels);
    const queueDepth = this.#queueDepth.labels(labels);
    const byStatus = new Map<number, ReturnType<typeof this.requestsCounter.labels>>();
    return {
      request: (status, seconds) => {
        let counter = byStatus.get(status);
        if (counter === undefined) {
          counter = this.requestsCounter.labels(model, version, String(status));
          byStatus.set(status, counter);
        }
        counter.inc();
        requestDuration.observe(seconds);
      },
      queued: (seconds) => queueDuration.observe(seconds),
      batch: (samples, seconds) => {
        batchSize.observe(samples);
        inferenceDuration.observe(seconds);
      },
      queueDepth: (depth) => queueDepth.set(depth),
      loaded: (seconds) => this.#loadDuration.labels(labels).set(seconds),
      ready: (ready) => this.#modelReady.labels(labels).set(ready ? 1 : 0),
      loadFailed: () => this.#loadFailures.labels(labels).inc(),
      workerExited: () => this.#workerExits.labels(labels).inc(),
    };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
