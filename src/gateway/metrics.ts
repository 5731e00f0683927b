/**
 * Prometheus metrics of the gateway (docs/metrics.md, section Gateway). Names start with
 * `ferry_gateway_`. prom-client hashes the label values on every operation, even on a label
 * child, so the per-request counts (requests by code, outstanding) are kept in plain numbers per
 * revision and copied into the registry when it is read (`collect`); only the latency histogram
 * is observed per request.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { statusLabel } from '../core/status-label.ts';

const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Why an attempt to a replica failed (label `reason` of upstream_failures_total). */
export type FailureReason =
  /** connection refused / unreachable / reset before any response byte */
  | 'connect'
  /** the replica answered 503 FERRY_SHUTTING_DOWN (draining): nothing was processed */
  | 'shutting_down'
  /** the replica answered 502, 503 or 504 (passed on to the client) */
  | 'status_5xx'
  /** the request timeout ran out while this replica had it */
  | 'timeout'
  /** the connection broke after the response had started */
  | 'response_aborted';

/** Why the access check refused a request (label `reason` of denied_total). */
export type DeniedReason = 'unauthorized' | 'forbidden' | 'rate_limited';

/**
 * Why the activator answered a held (or to-be-held) request 503 itself (label `reason` of
 * activator_rejected_total): the deployment's queue was full, the request waited maxWaitMs, its body was too
 * large to keep, the deployment (or the pinned revision, or every serving share, or its activator) left the route
 * table, the revision cannot start a replica (the table's `unavailable`), or the gateway is closing.
 */
export type ActivatorRejectReason =
  | 'full'
  | 'timeout'
  | 'body_too_large'
  | 'removed'
  | 'unavailable'
  | 'closing';

const ACTIVATOR_REJECT_REASONS: readonly ActivatorRejectReason[] = [
  'full',
  'timeout',
  'body_too_large',
  'removed',
  'unavailable',
  'closing',
];

interface ActivatorCounts {
  released: number;
  rejected: Record<ActivatorRejectReason, number>;
}

export type ShadowOutcome = 'ok' | 'error_status' | 'failed' | 'no_replica' | 'body_too_large';

export interface RevisionMetrics {
  request(code: number, seconds: number): void;
  outstanding(delta: number): void;
  upstreamFailure(reason: FailureReason): void;
  ejection(): void;
  shadow(outcome: ShadowOutcome, seconds: number): void;
}

interface Tally {
  deployment: string;
  revision: string;
  codes: Map<number, number>;
  outstanding: number;
}

const DENIED_REASONS: readonly DeniedReason[] = ['unauthorized', 'forbidden', 'rate_limited'];

export class GatewayMetrics {
  readonly registry = new Registry();
  /** Per (deployment, revision): counts kept as plain numbers, exported at collect time. */
  readonly #tallies = new Map<string, Tally>();
  readonly #requests: Counter<'deployment' | 'revision' | 'code'> = new Counter({
    name: 'ferry_gateway_requests_total',
    help: 'Requests answered by the gateway, by deployment, revision and HTTP status (499 = client went away).',
    labelNames: ['deployment', 'revision', 'code'] as const,
    registers: [this.registry],
    collect: () => {
      const c = this.#requests;
      c.reset();
      for (const t of this.#tallies.values())
        for (const [code, n] of t.codes) c.labels(t.deployment, t.revision, statusLabel(code)).inc(n);
    },
  });
  /** Per deployment key: denials by reason, plain numbers exported at collect time (a flood of 429s is cheap). */
  readonly #deniedCounts = new Map<string, Record<DeniedReason, number>>();
  readonly #denied: Counter<'deployment' | 'reason'> = new Counter({
    name: 'ferry_gateway_denied_total',
    help: 'Requests to a private deployment refused by the access check, by reason (unauthorized, forbidden, rate_limited).',
    labelNames: ['deployment', 'reason'] as const,
    registers: [this.registry],
    collect: () => {
      const c = this.#denied;
      c.reset();
      for (const [deployment, counts] of this.#deniedCounts)
        for (const reason of DENIED_REASONS)
          if (counts[reason] > 0) c.labels(deployment, reason).inc(counts[reason]);
    },
  });
  readonly #duration = new Histogram({
    name: 'ferry_gateway_request_duration_seconds',
    help: 'From the request reaching the gateway to the last response byte, retries included.',
    labelNames: ['deployment', 'revision'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #retries = new Counter({
    name: 'ferry_gateway_retries_total',
    help: 'Attempts sent to another replica after a failure before any response byte.',
    labelNames: ['deployment'] as const,
    registers: [this.registry],
  });
  readonly #failures = new Counter({
    name: 'ferry_gateway_upstream_failures_total',
    help: 'Failed attempts to a replica, by reason.',
    labelNames: ['deployment', 'revision', 'reason'] as const,
    registers: [this.registry],
  });
  readonly #ejections = new Counter({
    name: 'ferry_gateway_ejections_total',
    help: 'Replicas taken out of the rotation by passive outlier ejection.',
    labelNames: ['deployment', 'revision'] as const,
    registers: [this.registry],
  });
  readonly #shadow = new Counter({
    name: 'ferry_gateway_shadow_requests_total',
    help: 'Mirrored (shadow) copies of requests, by outcome.',
    labelNames: ['deployment', 'revision', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly #shadowDuration = new Histogram({
    name: 'ferry_gateway_shadow_duration_seconds',
    help: 'Latency of mirrored (shadow) requests, by outcome.',
    labelNames: ['deployment', 'revision', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #outstanding: Gauge<'deployment' | 'revision'> = new Gauge({
    name: 'ferry_gateway_outstanding',
    help: 'Requests sent to replicas and not finished, shadow copies included.',
    labelNames: ['deployment', 'revision'] as const,
    registers: [this.registry],
    collect: () => {
      const g = this.#outstanding;
      for (const t of this.#tallies.values())
        if (t.revision !== '') g.labels(t.deployment, t.revision).set(t.outstanding);
    },
  });

  /** Per deployment key: the activator's releases and refusals (plain numbers, exported at collect time). */
  readonly #activatorCounts = new Map<string, ActivatorCounts>();
  /** What the activator holds now, per deployment key (set by the gateway). */
  #heldSource: () => Iterable<readonly [string, number]> = () => [];
  readonly #activatorHeld: Gauge<'deployment'> = new Gauge({
    name: 'ferry_gateway_activator_held',
    help: 'Requests the activator holds now because no replica of their revision is ready (scale from zero).',
    labelNames: ['deployment'] as const,
    registers: [this.registry],
    collect: () => {
      const g = this.#activatorHeld;
      g.reset();
      for (const [deployment, held] of this.#heldSource()) g.labels(deployment).set(held);
    },
  });
  readonly #activatorReleased: Counter<'deployment'> = new Counter({
    name: 'ferry_gateway_activator_released_total',
    help: 'Held requests sent on to a replica once a route table brought a ready one.',
    labelNames: ['deployment'] as const,
    registers: [this.registry],
    collect: () => {
      const c = this.#activatorReleased;
      c.reset();
      for (const [deployment, counts] of this.#activatorCounts)
        if (counts.released > 0) c.labels(deployment).inc(counts.released);
    },
  });
  readonly #activatorRejected: Counter<'deployment' | 'reason'> = new Counter({
    name: 'ferry_gateway_activator_rejected_total',
    help: 'Requests the activator answered 503 itself, by reason (full, timeout, body_too_large, removed, closing).',
    labelNames: ['deployment', 'reason'] as const,
    registers: [this.registry],
    collect: () => {
      const c = this.#activatorRejected;
      c.reset();
      for (const [deployment, counts] of this.#activatorCounts)
        for (const reason of ACTIVATOR_REJECT_REASONS)
          if (counts.rejected[reason] > 0) c.labels(deployment, reason).inc(counts.rejected[reason]);
    },
  });

  #activator(deployment: string): ActivatorCounts {
    let counts = this.#activatorCounts.get(deployment);
    if (counts === undefined) {
      counts = {
        released: 0,
        rejected: { full: 0, timeout: 0, body_too_large: 0, removed: 0, unavailable: 0, closing: 0 },
      };
      this.#activatorCounts.set(deployment, counts);
    }
    return counts;
  }

  /** Where the held gauge reads from: (deployment key, held) pairs. */
  setHeldSource(source: () => Iterable<readonly [string, number]>): void {
    this.#heldSource = source;
  }

  activatorReleased(deployment: string): void {
    this.#activator(deployment).released++;
  }

  activatorRejected(deployment: string, reason: ActivatorRejectReason): void {
    this.#activator(deployment).rejected[reason]++;
  }

  #tally(deployment: string, revision: string): Tally {
    const key = `${deployment}\u0000${revision}`;
    let t = this.#tallies.get(key);
    if (t === undefined) {
      t = { deployment, revision, codes: new Map(), outstanding: 0 };
      this.#tallies.set(key, t);
    }
    return t;
  }

  /** Requests the gateway answered itself before choosing a revision (404, 400, 503...). */
  unrouted(deployment: string, code: number, seconds: number): void {
    const codes = this.#tally(deployment, '').codes;
    codes.set(code, (codes.get(code) ?? 0) + 1);
    this.#duration.labels(deployment, '').observe(seconds);
  }

  /** A request to a known deployment refused by the access check (the deployment key, never a token). */
  denied(deployment: string, reason: DeniedReason): void {
    let counts = this.#deniedCounts.get(deployment);
    if (counts === undefined) {
      counts = { unauthorized: 0, forbidden: 0, rate_limited: 0 };
      this.#deniedCounts.set(deployment, counts);
    }
    counts[reason]++;
  }

  retry(deployment: string): () => void {
    const child = this.#retries.labels(deployment);
    return () => child.inc();
  }

  forRevision(deployment: string, revision: string): RevisionMetrics {
    const tally = this.#tally(deployment, revision);
    const codes = tally.codes;
    const duration = this.#duration.labels(deployment, revision);
    const failures = this.#failures;
    const ejections = this.#ejections.labels(deployment, revision);
    const shadow = this.#shadow;
    const shadowDuration = this.#shadowDuration;
    return {
      request(code, seconds) {
        codes.set(code, (codes.get(code) ?? 0) + 1);
        duration.observe(seconds);
      },
      outstanding(delta) {
        tally.outstanding += delta;
      },
      upstreamFailure(reason) {
        failures.labels(deployment, revision, reason).inc();
      },
      ejection() {
        ejections.inc();
      },
      shadow(outcome, seconds) {
        shadow.labels(deployment, revision, outcome).inc();
        shadowDuration.labels(deployment, revision, outcome).observe(seconds);
      },
    };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
