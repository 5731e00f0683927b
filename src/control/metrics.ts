/**
 * Prometheus metrics of the control plane (docs/metrics.md, section Control plane), served by the control-plane
 * API at GET /metrics (platform admins). Labels follow the gateway's: `deployment` is the deployment's key
 * (`tenant/name` outside the default tenant), `revision` its number; no label holds anything a request chose.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { COLD_START_PHASES, type ColdStartView } from './cold-start.ts';

/** From a few ms (a phase that is nothing but a hop) to the activator's longest wait (30 s) and past it. */
const COLD_START_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60];

/** What the metrics history reports of itself (metrics-history/). */
export interface HistoryStats {
  series: number;
  points: number;
  bytes: number;
  failures: number;
  refused: number;
}

export class ControlMetrics {
  readonly registry = new Registry();
  readonly #coldStart = new Histogram({
    name: 'ferry_cold_start_seconds',
    help: 'Cold starts from zero replicas, by phase (start, boot, load, warmup, ready, release) and total: decision to held requests released.',
    labelNames: ['deployment', 'revision', 'phase'] as const,
    buckets: COLD_START_BUCKETS,
    registers: [this.registry],
  });

  /** What the metrics history holds and how often a source failed (metrics-history/), read when scraped. */
  #history: () => HistoryStats = () => ({ series: 0, points: 0, bytes: 0, failures: 0, refused: 0 });
  readonly #historySeries: Gauge = new Gauge({
    name: 'ferry_metrics_history_series',
    help: 'Revisions the metrics history keeps points of (bounded: docs/metrics.md, Metrics history).',
    registers: [this.registry],
    collect: () => this.#historySeries.set(this.#history().series),
  });
  readonly #historyPoints: Gauge = new Gauge({
    name: 'ferry_metrics_history_points',
    help: 'Points the metrics history holds, all revisions.',
    registers: [this.registry],
    collect: () => this.#historyPoints.set(this.#history().points),
  });
  readonly #historyBytes: Gauge = new Gauge({
    name: 'ferry_metrics_history_bytes',
    help: "Bytes of the metrics history's point columns (allocated for full rings).",
    registers: [this.registry],
    collect: () => this.#historyBytes.set(this.#history().bytes),
  });
  readonly #historyFailures: Counter = new Counter({
    name: 'ferry_metrics_history_scrape_failures_total',
    help: 'Sources the metrics history could not read in a step (a replica that did not answer, ...).',
    registers: [this.registry],
    collect: () => {
      this.#historyFailures.reset();
      this.#historyFailures.inc(this.#history().failures);
    },
  });

  readonly #historyRefused: Counter = new Counter({
    name: 'ferry_metrics_history_refused_total',
    help: 'New revisions the metrics history did not keep: it held its maximum and none had been idle 10 minutes.',
    registers: [this.registry],
    collect: () => {
      this.#historyRefused.reset();
      this.#historyRefused.inc(this.#history().refused);
    },
  });

  /** Where the history gauges read from (the platform's MetricsHistory). */
  setHistorySource(source: () => HistoryStats): void {
    this.#history = source;
  }

  /** One cold start: each phase that was measured, and the total. */
  coldStart(deployment: string, v: ColdStartView): void {
    const revision = String(v.revision);
    for (const phase of COLD_START_PHASES) {
      const ms = v.phases[phase];
      if (ms !== null) this.#coldStart.observe({ deployment, revision, phase }, ms / 1000);
    }
    this.#coldStart.observe({ deployment, revision, phase: 'total' }, v.totalMs / 1000);
  }

  /** Prometheus text format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
