/**
 * The metrics history (contract A, docs/metrics.md "Metrics history"): every `stepMs` (5 s) one reading of
 *   - the gateway's counters: the in-process gateway's registry (requests by code, the latency histogram), or on
 *     Docker Swarm, where the gateways are not reachable, the requests their load reports said arrived;
 *   - every ready replica's /metrics (batch size sum and count, queue depth), over its `unix:` or http url (not on
 *     Swarm: the replicas are on the overlay network);
 *   - the control plane's registry (completed cold starts);
 *   - the controller's ready replicas per revision;
 * and, from it and the previous reading, one point per revision (points.ts) into the bounded store (store.ts).
 * Listeners of a deployment (the SSE stream) get the points of each step, or `deleted` when the deployment went.
 * A source that fails is left out of that step (a replica's counters carry over, so its next step is whole); a
 * step never throws.
 */
import { replicaGetText } from '../../runtime/index.ts';
import {
  coldStartCounts,
  emptyReading,
  gatewayCounts,
  type Point,
  pointBetween,
  type Reading,
  replicaCounts,
  type SeriesKey,
  seriesKey,
  splitKey,
} from './points.ts';
import { parsePromText } from './prom-text.ts';
import { type HistoryLimits, HistoryStore, type RevisionHistory } from './store.ts';

export type HistorySource = 'scraped' | 'gateway-reports';

export interface ReplicaEndpoint {
  id: string;
  deployment: string;
  revision: number;
  /** `http://host:port` or `unix:<socket path>`. */
  url: string;
}

export interface HistorySources {
  /** The in-process gateway's metrics text; absent on Swarm. */
  gatewayText?: () => Promise<string>;
  /** Swarm: requests that arrived per revision as the gateways reported them, cumulative since this process started. */
  gatewayArrivals?: () => Iterable<{ deployment: string; revision: number; arrivals: number }>;
  /** Ready replicas whose /metrics this process can read ([] on Swarm). */
  replicas: () => readonly ReplicaEndpoint[];
  /** Ready replicas per revision. */
  readyCounts: () => Iterable<{ deployment: string; revision: number; ready: number }>;
  /** The control plane's metrics text. */
  controlText: () => Promise<string>;
  /** Whether a deployment (key) exists. */
  deploymentExists: (deployment: string) => boolean;
  /** Default: GET /metrics with replicaGetText, 1 s timeout, 256 KiB at most. */
  replicaText?: (url: string) => Promise<string>;
}

export interface MetricsHistoryOptions {
  sources: HistorySources;
  /** Default 5000. */
  stepMs?: number;
  /** Default 3,600,000 (one hour); the rings hold windowMs / stepMs points. */
  windowMs?: number;
  limits?: Partial<Omit<HistoryLimits, 'capacity'>>;
  /** Wall clock, ms since epoch. Default Date.now. */
  now?: () => number;
  /** Replica scrapes at once. Default 8. */
  concurrency?: number;
  /** Told about a source that failed (logged by the caller). */
  onError?: (what: string, error: unknown) => void;
}

export interface HistoryListener {
  point(revision: number, point: Point): void;
  deleted(): void;
}

/** The body of GET /v1/deployments/{name}/metrics (contract A), but for `deployment`, which the route sets. */
export interface HistoryView {
  stepMs: number;
  windowMs: number;
  source: HistorySource;
  revisions: RevisionHistory[];
}

export class MetricsHistory {
  readonly stepMs: number;
  readonly windowMs: number;
  readonly source: HistorySource;
  readonly store: HistoryStore;
  readonly #sources: HistorySources;
  readonly #now: () => number;
  readonly #concurrency: number;
  readonly #onError: (what: string, error: unknown) => void;
  readonly #listeners = new Map<string, Set<HistoryListener>>();
  #previous: Reading | null = null;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = true;
  /** Source failures since start (a gauge of the control plane's registry reads it). */
  failures = 0;

  constructor(options: MetricsHistoryOptions) {
    this.stepMs = options.stepMs ?? 5000;
    this.windowMs = options.windowMs ?? 3_600_000;
    if (!(this.stepMs > 0) || !(this.windowMs >= this.stepMs))
      throw new Error('metrics history: stepMs must be positive and windowMs at least stepMs');
    this.store = new HistoryStore({ ...options.limits, capacity: Math.ceil(this.windowMs / this.stepMs) });
    this.#sources = options.sources;
    this.source = options.sources.gatewayText ? 'scraped' : 'gateway-reports';
    this.#now = options.now ?? Date.now;
    this.#concurrency = options.concurrency ?? 8;
    this.#onError = options.onError ?? (() => {});
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.step().finally(() => {
        this.#running = null;
        if (!this.#stopped) {
          this.#timer = setTimeout(loop, this.stepMs);
          this.#timer.unref();
        }
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  view(deployment: string, since?: number): HistoryView {
    return {
      stepMs: this.stepMs,
      windowMs: this.windowMs,
      source: this.source,
      revisions: this.store.view(deployment, since),
    };
  }

  /** Calls `listener` with each step's points of the deployment; returns the unsubscribe. */
  subscribe(deployment: string, listener: HistoryListener): () => void {
    let set = this.#listeners.get(deployment);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(deployment, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(deployment) === set) this.#listeners.delete(deployment);
    };
  }

  /** One step: read everything, append a point per revision, tell the listeners. Never throws. */
  async step(): Promise<void> {
    const reading = await this.read();
    const previous = this.#previous;
    this.#previous = reading;
    const exists = (d: string) => {
      try {
        return this.#sources.deploymentExists(d);
      } catch {
        return true;
      }
    };
    const appended = new Map<string, Array<{ revision: number; point: Point }>>();
    if (previous !== null) {
      const keys = new Set<SeriesKey>([
        ...reading.gateway.keys(),
        ...reading.arrivals.keys(),
        ...reading.ready.keys(),
        ...reading.coldStarts.keys(),
        ...[...reading.replicas.values()].map((r) => r.key),
      ]);
      for (const key of keys) {
        const { deployment, revision } = splitKey(key);
        if (!Number.isInteger(revision) || !exists(deployment)) continue;
        const point = pointBetween(key, previous, reading);
        if (this.store.append(deployment, revision, point)) {
          let list = appended.get(deployment);
          if (list === undefined) {
            list = [];
            appended.set(deployment, list);
          }
          list.push({ revision, point });
        }
      }
      this.store.prune(exists, reading.at - this.windowMs);
    }
    for (const [deployment, listeners] of this.#listeners) {
      const gone = !exists(deployment);
      const points = (appended.get(deployment) ?? []).sort((a, b) => a.revision - b.revision);
      for (const listener of [...listeners]) {
        try {
          if (gone) listener.deleted();
          else for (const { revision, point } of points) listener.point(revision, point);
        } catch (error) {
          this.#onError('listener', error);
        }
      }
    }
  }

  /** One reading of every source; a source that fails is left out (its replicas' counters carried over). */
  async read(): Promise<Reading> {
    const sources = this.#sources;
    const reading = emptyReading(0);
    const fail = (what: string, error: unknown) => {
      this.failures++;
      this.#onError(what, error);
    };
    const tasks: Promise<void>[] = [];
    /** Set when the gateway could not be read: the time of the counters carried over. */
    let gatewayAt: number | undefined;
    if (sources.gatewayText) {
      const text = sources.gatewayText;
      tasks.push(
        text().then(
          (t) => {
            reading.gateway = gatewayCounts(parsePromText(t));
          },
          (e) => {
            // Carried over, with the time they were read at: the next step counts from these, not from zero.
            reading.gateway = this.#previous?.gateway ?? new Map();
            gatewayAt = this.#previous?.gatewayAt;
            fail('gateway', e);
          },
        ),
      );
    }
    tasks.push(
      sources.controlText().then(
        (t) => {
          reading.coldStarts = coldStartCounts(parsePromText(t));
        },
        (e) => {
          reading.coldStarts = this.#previous?.coldStarts ?? new Map();
          fail('control plane', e);
        },
      ),
    );
    try {
      if (sources.gatewayArrivals)
        for (const a of sources.gatewayArrivals())
          reading.arrivals.set(seriesKey(a.deployment, a.revision), a.arrivals);
      for (const r of sources.readyCounts()) reading.ready.set(seriesKey(r.deployment, r.revision), r.ready);
    } catch (error) {
      fail('controller', error);
    }
    let replicas: readonly ReplicaEndpoint[] = [];
    try {
      replicas = sources.replicas();
    } catch (error) {
      fail('controller', error);
    }
    const getText =
      sources.replicaText ??
      (async (url: string) => (await replicaGetText(url, '/metrics', 1000, 256 * 1024)).body);
    const queue = [...replicas];
    const previous = this.#previous;
    const worker = async () => {
      for (let r = queue.shift(); r !== undefined; r = queue.shift()) {
        const key = seriesKey(r.deployment, r.revision);
        try {
          reading.replicas.set(r.id, replicaCounts(key, parsePromText(await getText(r.url))));
        } catch (error) {
          fail(`replica ${r.id}`, error);
          // Its counters carry over: no step is counted twice nor lost once it answers again.
          const before = previous?.replicas.get(r.id);
          if (before) reading.replicas.set(r.id, { ...before, queueDepth: null });
        }
      }
    };
    for (let i = 0; i < Math.min(this.#concurrency, queue.length); i++) tasks.push(worker());
    await Promise.all(tasks);
    reading.at = this.#now();
    reading.gatewayAt = gatewayAt ?? reading.at;
    return reading;
  }
}
