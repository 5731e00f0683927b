/**
 * The load of gateways that run elsewhere (Docker Swarm: a gateway task per node), as the autoscaler reads it
 * (autoscaling.ts LoadSource). Each gateway posts what it counted since its last report (POST /v1/gateway/load):
 * per revision its average requests in flight and its arrivals over its period, and per deployment the requests its
 * activator holds. Read here as one gateway would count them all:
 *
 *   loadSamples(now)   per (deployment, revision): the time-weighted sum over the reports received since the last
 *                      call (concurrency: sum over gateways of their average in flight; arrivals: summed), over the
 *                      period since that call; then the next period starts
 *   arrivals()         per (deployment, revision): arrivals summed over every report (a counter, for the metrics
 *                      history: docs/metrics.md)
 *   heldSamples()      per deployment: the sum of each gateway's latest held count, gateways silent for longer
 *                      than STALE_MS left out (a gateway that died holds nothing)
 *
 * Pure bookkeeping, the clock passed in; no I/O.
 */
import type { HeldSample, RevisionLoadSample } from '../core/route-table.ts';
import type { LoadSource } from './autoscaling.ts';

export interface GatewayLoadReport {
  /** Which gateway (its task or host name): its held counts replace its previous ones. */
  gateway: string;
  samples: RevisionLoadSample[];
  held: HeldSample[];
}

/** A gateway not heard from for this long holds nothing. */
export const STALE_MS = 5000;

export class GatewayLoads implements LoadSource {
  private pending: RevisionLoadSample[] = [];
  private periodStart: number;
  private readonly held = new Map<string, { at: number; held: HeldSample[] }>();
  /** Arrivals per revision over every report since this process started (the metrics history's counter). */
  private readonly arrived = new Map<string, { deployment: string; revision: number; arrivals: number }>();

  constructor(private readonly now: () => number = Date.now) {
    this.periodStart = now();
  }

  /** Takes a gateway's report; true when it holds requests (the controller should look at once). */
  report(r: GatewayLoadReport): boolean {
    this.pending.push(...r.samples);
    for (const s of r.samples) {
      const key = `${s.deployment}@${s.revision}`;
      const total = this.arrived.get(key);
      if (total) total.arrivals += s.arrivals;
      else this.arrived.set(key, { deployment: s.deployment, revision: s.revision, arrivals: s.arrivals });
    }
    this.held.set(r.gateway, { at: this.now(), held: r.held });
    return r.held.some((h) => h.held > 0);
  }

  loadSamples(now: number = this.now()): RevisionLoadSample[] {
    const periodMs = Math.max(1, now - this.periodStart);
    const byRevision = new Map<string, RevisionLoadSample>();
    for (const s of this.pending) {
      const key = `${s.deployment}@${s.revision}`;
      const sum = byRevision.get(key) ?? {
        deployment: s.deployment,
        revision: s.revision,
        at: now,
        periodMs,
        concurrency: 0,
        arrivals: 0,
      };
      // A report's average in flight over its own period, weighted by the share of this period it covers.
      sum.concurrency += (s.concurrency * Math.min(s.periodMs, periodMs)) / periodMs;
      sum.arrivals += s.arrivals;
      byRevision.set(key, sum);
    }
    this.pending = [];
    this.periodStart = now;
    return [...byRevision.values()];
  }

  /**
   * Requests that arrived per revision, summed over every report since this process started: a counter the metrics
   * history turns into requests/s. Revisions of deployments that no longer exist are forgotten (`exists`).
   */
  arrivals(exists: (deployment: string) => boolean = () => true): Array<{
    deployment: string;
    revision: number;
    arrivals: number;
  }> {
    for (const [key, a] of this.arrived) if (!exists(a.deployment)) this.arrived.delete(key);
    return [...this.arrived.values()].map((a) => ({ ...a }));
  }

  heldSamples(): HeldSample[] {
    const now = this.now();
    const total = new Map<string, number>();
    for (const [gateway, h] of this.held) {
      if (now - h.at > STALE_MS) {
        this.held.delete(gateway);
        continue;
      }
      for (const s of h.held) total.set(s.deployment, (total.get(s.deployment) ?? 0) + s.held);
    }
    return [...total].map(([deployment, held]) => ({ deployment, held }));
  }
}
