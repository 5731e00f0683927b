/**
 * Prometheus metrics of the control plane (docs/metrics.md, section Control plane), served by the control-plane
 * API at GET /metrics (platform admins). Labels follow the gateway's: `deployment` is the deployment's key
 * (`tenant/name` outside the default tenant), `revision` its number; no label holds anything a request chose.
 */
import { Histogram, Registry } from 'prom-client';
import { COLD_START_PHASES, type ColdStartView } from './cold-start.ts';

/** From a few ms (a phase that is nothing but a hop) to the activator's longest wait (30 s) and past it. */
const COLD_START_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60];

export class ControlMetrics {
  readonly registry = new Registry();
  readonly #coldStart = new Histogram({
    name: 'ferry_cold_start_seconds',
    help: 'Cold starts from zero replicas, by phase (start, boot, load, warmup, ready, release) and total: decision to held requests released.',
    labelNames: ['deployment', 'revision', 'phase'] as const,
    buckets: COLD_START_BUCKETS,
    registers: [this.registry],
  });

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
