/**
 * Per-revision load as the autoscaler reads it (issue 11; src/core/route-table.ts RevisionLoadSample): an
 * in-flight counter, the time it last changed, the integral of in-flight over time (ms·requests) and an arrivals
 * counter. Plain numbers on one object per (deployment, revision), kept across route tables like the revision's
 * metrics: two calls per request (`arrive` where the request is routed to the revision, `leave` where its
 * response closes, whatever the outcome), no allocation.
 *
 * What counts: a request routed to the revision (retries are the same request; shadow copies are not counted),
 * from the moment the gateway chose the revision until the client's response closes (answered, failed, timed
 * out or the client went away), including the time it waited in the activator for a replica (demand at zero).
 * A request answered 503 at once because the revision had no ready replica arrives and leaves in the same
 * instant: it counts as an arrival, not as concurrency.
 */
import type { RevisionLoadSample } from '../core/route-table.ts';

export class RevisionLoad {
  /** Requests in flight to the revision now (held ones included). */
  inFlight = 0;
  /** Requests arrived in the current period. */
  arrivals = 0;
  /** ∫ inFlight dt over the current period up to changedAt (ms·requests). */
  integral = 0;
  /** When inFlight last changed (or the period began). */
  changedAt: number;
  /** When the current period began. */
  periodStart: number;
  /** The revision is in the current route table. */
  routed = true;

  constructor(
    readonly deployment: string,
    readonly revision: number,
    now: number,
  ) {
    this.changedAt = now;
    this.periodStart = now;
  }

  #advance(now: number): void {
    const dt = now - this.changedAt;
    // A clock that went back adds nothing (and never a negative area).
    if (dt > 0) this.integral += this.inFlight * dt;
    this.changedAt = now;
  }

  /** A request was routed to the revision (it is now in flight). */
  arrive(now: number): void {
    this.#advance(now);
    this.inFlight++;
    this.arrivals++;
  }

  /** A request routed to the revision finished, whatever the outcome. */
  leave(now: number): void {
    this.#advance(now);
    this.inFlight--;
  }

  /** A request answered at once (no replica, no activator): an arrival that was never in flight. */
  arriveAndLeave(): void {
    this.arrivals++;
  }

  /** A held request moved to another revision (its own left the split): in flight here, not a new arrival. */
  enter(now: number): void {
    this.#advance(now);
    this.inFlight++;
  }

  /** The period up to `now` as a sample; starts the next period. */
  sample(now: number): RevisionLoadSample {
    this.#advance(now);
    const periodMs = Math.max(0, now - this.periodStart);
    const sample: RevisionLoadSample = {
      deployment: this.deployment,
      revision: this.revision,
      at: now,
      periodMs,
      concurrency: periodMs > 0 ? this.integral / periodMs : this.inFlight,
      arrivals: this.arrivals,
    };
    this.integral = 0;
    this.arrivals = 0;
    this.periodStart = now;
    return sample;
  }
}
