/**
 * Prometheus metrics of the model server. Naming scheme (docs/metrics.md): `ferry_` prefix, base units
 * (seconds, bytes), counters end in `_total`; labels `model`, `version`, and `status` (HTTP status code).
 * The request path's metrics are metric-families.ts children, resolved once per model version, route and
 * status and kept: observing is arithmetic on numbers, no label hashing. Process metrics come from prom-client.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { statusLabel } from '../core/status-label.ts';
import {
  type CounterChild,
  CounterFamily,
  type GaugeChild,
  GaugeFamily,
  HistogramFamily,
} from './metric-families.ts';

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

/** Counts one route's HTTP requests by status; children made on first use of a status. */
export interface RouteCounter {
  count(status: number): void;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #requests = new CounterFamily({
    name: 'ferry_requests_total',
    help: 'Inference requests answered, by model, version and HTTP status.',
    labelNames: ['model', 'version', 'status'],
    registers: [this.registry],
  });
  readonly #requestDuration = new HistogramFamily({
    name: 'ferry_request_duration_seconds',
    help: 'Time from a request being decoded to its response being encoded, including queueing.',
    labelNames: ['model', 'version'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #queueDuration = new HistogramFamily({
    name: 'ferry_queue_duration_seconds',
    help: 'Time a request waited in the batching queue before its batch started.',
    labelNames: ['model', 'version'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #inferenceDuration = new HistogramFamily({
    name: 'ferry_inference_duration_seconds',
    help: 'Time to run one model call in an inference worker, including the hop to and from the worker (a group of unbatched requests counts as one call each, its time divided among them).',
    labelNames: ['model', 'version'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #batchSize = new HistogramFamily({
    name: 'ferry_batch_size',
    help: 'Samples (sum of the first dimension) per model call.',
    labelNames: ['model', 'version'],
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });
  readonly #queueDepth = new GaugeFamily({
    name: 'ferry_queue_depth',
    help: 'Requests waiting in the batching queue.',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });
  readonly #loadDuration = new GaugeFamily({
    name: 'ferry_model_load_duration_seconds',
    help: 'How long the last successful load of a model version took, warm-up included.',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });
  readonly #modelReady = new GaugeFamily({
    name: 'ferry_model_ready',
    help: '1 when a model version is loaded and serving, else 0.',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });
  readonly #loadFailures = new CounterFamily({
    name: 'ferry_model_load_failures_total',
    help: 'Failed attempts to load a model version.',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });
  readonly #workerExits = new CounterFamily({
    name: 'ferry_worker_exits_total',
    help: 'Inference workers that exited unexpectedly (and were replaced).',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });
  readonly #httpRequests = new CounterFamily({
    name: 'ferry_http_requests_total',
    help: 'HTTP requests by route and status, all endpoints (inference requests are also in ferry_requests_total).',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });

  readonly #inFlight = new GaugeFamily({
    name: 'ferry_requests_in_flight',
    help: 'Inference requests read and not yet answered (queued or running): the concurrency a Kubernetes HPA scales on.',
    labelNames: [],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** The in-flight gauge: one up when an inference request's body is in, one down when it is answered or failed. */
  inFlight(): GaugeChild {
    return this.#inFlight.child();
  }

  /** The counter of one route (its pattern, e.g. `/v2/models/:name/infer`), to keep and call per request. */
  route(route: string): RouteCounter {
    const byStatus: CounterChild[] = [];
    return {
      count: (status) => {
        let child = byStatus[status];
        if (child === undefined) {
          child = this.#httpRequests.child(route, statusLabel(status));
          byStatus[status] = child;
        }
        child.inc();
      },
    };
  }

  readonly #routes = new Map<string, RouteCounter>();

  /** Counts a request of a route looked up by name (for routes that do not keep their counter). */
  http(route: string, status: number): void {
    let counter = this.#routes.get(route);
    if (counter === undefined) {
      counter = this.route(route);
      this.#routes.set(route, counter);
    }
    counter.count(status);
  }

  forModel(model: string, version: string): ModelMetrics {
    const requestDuration = this.#requestDuration.child(model, version);
    const queueDuration = this.#queueDuration.child(model, version);
    const inferenceDuration = this.#inferenceDuration.child(model, version);
    const batchSize = this.#batchSize.child(model, version);
    const queueDepth = this.#queueDepth.child(model, version);
    const byStatus: CounterChild[] = [];
    return {
      request: (status, seconds) => {
        let counter = byStatus[status];
        if (counter === undefined) {
          counter = this.#requests.child(model, version, statusLabel(status));
          byStatus[status] = counter;
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
      loaded: (seconds) => this.#loadDuration.child(model, version).set(seconds),
      ready: (ready) => this.#modelReady.child(model, version).set(ready ? 1 : 0),
      loadFailed: () => this.#loadFailures.child(model, version).inc(),
      workerExited: () => this.#workerExits.child(model, version).inc(),
    };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
