/**
 * A gateway that runs apart from its control plane (Docker Swarm: `ferry gateway --routes-url`) tells it its load, as
 * the built-in gateway does in-process (issue 11): every `everyMs` (and soon after a request is held at zero), a POST
 * of what it counted since its last report, per revision (average requests in flight, arrivals) and per deployment
 * (requests held), to `<control plane>/v1/gateway/load` with its token. The control plane sums the reports of every
 * gateway for the autoscaler (src/control/gateway-load.ts). A report that does not go through is sent again with
 * the next one (at most MAX_PENDING samples kept); reports never overlap.
 */
import type { HeldSample, RevisionLoadSample } from '../core/route-table.ts';

export interface LoadReporterOptions {
  /** `.../v1/gateway/load`. */
  url: string;
  token: string | undefined;
  /** This gateway's name in its reports (its host name: a task's container). */
  gateway: string;
  source: { loadSamples(now?: number): RevisionLoadSample[]; heldSamples(): HeldSample[] };
  everyMs: number;
  fetch?: typeof fetch;
  logger?: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

const MAX_PENDING = 10_000;
/** How soon after a held request the report goes (several held at once share one). */
const SOON_MS = 20;

export class LoadReporter {
  private pending: RevisionLoadSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private failing = false;

  constructor(private readonly opts: LoadReporterOptions) {}

  start(): void {
    this.stopped = false;
    this.schedule(this.opts.everyMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** A request was held: report at once (the control plane starts a replica for it). */
  soon(): void {
    if (!this.stopped) this.schedule(SOON_MS);
  }

  /** Sends one report now (tests; the timer calls it). */
  async report(): Promise<void> {
    if (this.sending) {
      this.again = true;
      return this.sending;
    }
    this.sending = this.send().finally(() => {
      this.sending = undefined;
    });
    await this.sending;
    if (this.again) {
      this.again = false;
      await this.report();
    }
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.report().finally(() => {
        if (!this.stopped) this.schedule(this.opts.everyMs);
      });
    }, ms);
    this.timer.unref();
  }

  private async send(): Promise<void> {
    this.pending.push(...this.opts.source.loadSamples(Date.now()));
    if (this.pending.length > MAX_PENDING) this.pending = this.pending.slice(-MAX_PENDING);
    const samples = this.pending;
    const body = JSON.stringify({
      gateway: this.opts.gateway,
      samples,
      held: this.opts.source.heldSamples(),
    });
    try {
      const res = await (this.opts.fetch ?? fetch)(this.opts.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}),
        },
        body,
        signal: AbortSignal.timeout(5000),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`${this.opts.url} answered ${res.status}`);
      this.pending = this.pending.slice(samples.length);
      if (this.failing)
        this.opts.logger?.warn({ url: this.opts.url }, 'gateway: load reports go through again');
      this.failing = false;
    } catch (error) {
      if (!this.failing)
        this.opts.logger?.warn({ url: this.opts.url, err: String(error) }, 'gateway: cannot report its load');
      this.failing = true;
    }
  }
}
