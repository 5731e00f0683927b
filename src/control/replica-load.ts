/**
 * The replicas' own measure of their load, for the autoscaler (issue 11, batching-aware capacity): about once a
 * second, every ready replica of an autoscaled deployment is asked for its load report (GET /ferry/load,
 * src/core/replica.ts), a few at a time, each with a short timeout. A replica that does not answer is unknown,
 * never an error, and nothing here blocks the control loop: the loop reads the latest values, synchronously.
 *
 * Saturation of a replica, between two of its reports (pure, `saturationBetween`): the busiest of
 *   - fill: filled executor time over elapsed time x workers x pipeline depth (1 = every slot of the batcher
 *     held a full batch all the time; for a model without batching, every slot busy all the time), and
 *   - queue: requests waiting / the queue's bound (at 1 the replica sheds with 503), and
 *   - the main thread: its event loop's busy share (HTTP, JSON and the batcher run there: a replica whose main
 *     thread is full is at capacity however empty its batches are; S1 in bench/ fills it at ~50 connections).
 * A server with several models: its busiest model.
 *
 * Saturation of a deployment (`saturation`): the sum of its replicas' over the ready replicas, a ready replica
 * without a measure of the last 3 s counting as 0 (a replica just ready has had no traffic; so the replicas a
 * decision adds never make the load look bigger than measured); undefined when none is measured. The policy
 * (src/autoscaler/decide.ts) multiplies it by the ready replicas and the target: the load the replicas' own
 * fullness stands for. The mean, not the max: one full replica beside idle ones is a balancing matter, not a
 * reason to add replicas.
 *
 * Capacity of a revision (`derivedTarget`): workers, batch size and pipeline depth of its replicas' last report,
 * and the median of their full-batch service times, into capacity.ts `derivedTarget`. Kept after the last
 * replica goes (at zero the next start uses it), until the deployment stops autoscaling.
 */
import { type ReplicaCapacity, derivedTarget as targetFrom } from '../autoscaler/capacity.ts';
import type { ScalingMetric } from '../autoscaler/types.ts';
import { LOAD_PATH, type LoadReport, type ModelLoadReport } from '../core/replica.ts';
import { replicaGetJson } from '../runtime/index.ts';

/** What the autoscaler reads (src/control/autoscaling.ts). */
export interface CapacitySource {
  /**
   * How full the deployment's replicas are by their own measure (0..1+; of one revision, or all), with `ready`
   * replicas ready now; undefined when none was measured recently.
   */
  saturation(deployment: string, ready: number, revision?: number): number | undefined;
  /** The per-replica target the revision's replicas' capacity suggests for the metric; undefined when unknown. */
  derivedTarget(deployment: string, revision: number, metric: ScalingMetric): number | undefined;
}

/**
 * Requests one replica takes at once before it sheds (503 FERRY_QUEUE_FULL), from its report: a request in each
 * batch its workers have in flight (workers x pipeline depth; a batch holds one at least) plus its batching
 * queue's bound. A lower bound: the gateway's activator keeps requests past it rather than send them to be shed
 * (src/core/route-table.ts `replicaLimit`). Its busiest model's, as capacityOf. Pure.
 */
export function replicaLimitOf(report: LoadReport): number | undefined {
  let best: ModelLoadReport | undefined;
  for (const m of report.models) if (best === undefined || m.samples > best.samples) best = m;
  if (best === undefined) return undefined;
  return Math.max(1, best.workers) * Math.max(1, best.pipelineDepth) + best.maxQueueSize;
}

export interface ReplicaTarget {
  deployment: string;
  revision: number;
  id: string;
  /** `http://host:port` or `unix:<socket path>`. */
  url: string;
}

export interface LoadTargets {
  /** The deployments that autoscale (what is kept for others is dropped). */
  deployments: readonly string[];
  /** Their ready replicas (not draining). */
  replicas: readonly ReplicaTarget[];
}

export interface ReplicaLoadOptions {
  /** Asked at the start of every round. */
  targets: () => LoadTargets;
  /** Default: a GET of LOAD_PATH on the replica's url (runtime/readiness.ts). */
  fetchReport?: (url: string, timeoutMs: number) => Promise<unknown>;
  /** A round this often (from the start of one to the next). Default 1000. */
  intervalMs?: number;
  /** Per request. Default 500. */
  timeoutMs?: number;
  /** Requests at once. Default 8. */
  concurrency?: number;
  /** A replica's saturation older than this is unknown. Default 3000. */
  staleMs?: number;
  /** Monotonic ms. Default performance.now. */
  now?: () => number;
  /** Called when a revision's replica limit is new or changed (the route table should carry it now). */
  onLimitChange?: () => void;
}

interface Measured {
  deployment: string;
  revision: number;
  last: LoadReport | null;
  saturation: number | undefined;
  measuredAt: number;
  capacity: ReplicaCapacity | undefined;
}

/** A LoadReport from a replica's JSON, or null when it is not one (an older server, another program). */
export function parseLoadReport(json: unknown): LoadReport | null {
  if (typeof json !== 'object' || json === null) return null;
  const { at, models, loop } = json as Record<string, unknown>;
  if (!isNum(at) || !Array.isArray(models)) return null;
  const l = loop as Record<string, unknown> | undefined;
  const loopOk = typeof l === 'object' && l !== null && isNum(l.activeMs) && isNum(l.idleMs);
  const out: ModelLoadReport[] = [];
  for (const m of models) {
    if (typeof m !== 'object' || m === null) return null;
    const r = m as Record<string, unknown>;
    const numbers = [
      'workers',
      'pipelineDepth',
      'batchSize',
      'queueDepth',
      'maxQueueSize',
      'batches',
      'samples',
      'fillMs',
    ] as const;
    if (typeof r.model !== 'string' || typeof r.version !== 'string') return null;
    if (!numbers.every((k) => isNum(r[k]))) return null;
    if (r.batchServiceMs !== null && !isNum(r.batchServiceMs)) return null;
    out.push(r as unknown as ModelLoadReport);
  }
  return {
    at,
    models: out,
    ...(loopOk ? { loop: { activeMs: l.activeMs as number, idleMs: l.idleMs as number } } : {}),
  };
}

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/**
 * A replica's saturation over the time between two of its reports (see the module comment); undefined when
 * they share no model version, or the second is not later (the server restarted: counters began again).
 */
export function saturationBetween(prev: LoadReport, cur: LoadReport): number | undefined {
  const elapsed = cur.at - prev.at;
  if (!(elapsed > 0)) return undefined;
  let busiest: number | undefined;
  for (const m of cur.models) {
    const p = prev.models.find((x) => x.model === m.model && x.version === m.version);
    if (p === undefined || m.fillMs < p.fillMs || m.batches < p.batches) continue;
    const slots = Math.max(1, m.workers) * Math.max(1, m.pipelineDepth);
    const fill = (m.fillMs - p.fillMs) / (elapsed * slots);
    const queue = m.maxQueueSize > 0 ? m.queueDepth / m.maxQueueSize : 0;
    const s = Math.max(fill, queue);
    busiest = busiest === undefined ? s : Math.max(busiest, s);
  }
  // The main thread: its share of busy time between the reports (its busiest is whole-server, not per model).
  if (busiest !== undefined && prev.loop !== undefined && cur.loop !== undefined) {
    const active = cur.loop.activeMs - prev.loop.activeMs;
    const total = active + (cur.loop.idleMs - prev.loop.idleMs);
    if (active >= 0 && total > 0) busiest = Math.max(busiest, active / total);
  }
  return busiest;
}

/** What one replica holds, from its report: its busiest (most samples served) model's. */
export function capacityOf(report: LoadReport): ReplicaCapacity | undefined {
  let best: ModelLoadReport | undefined;
  for (const m of report.models) if (best === undefined || m.samples > best.samples) best = m;
  if (best === undefined) return undefined;
  return {
    workers: best.workers,
    batchSize: best.batchSize,
    pipelineDepth: best.pipelineDepth,
    ...(best.batchServiceMs === null ? {} : { batchServiceTimeMs: best.batchServiceMs }),
  };
}

/** Deployment saturation from its replicas' (see the module comment). */
export function deploymentSaturation(measured: readonly number[], ready: number): number | undefined {
  if (measured.length === 0) return undefined;
  return measured.reduce((a, b) => a + b, 0) / Math.max(ready, measured.length);
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** soon() starts a round at most this long after the last one started. */
const SOON_MS = 100;

const revisionKey = (deployment: string, revision: number) => `${deployment}\u0000${revision}`;

export class ReplicaLoad implements CapacitySource {
  readonly #targets: () => LoadTargets;
  readonly #fetch: (url: string, timeoutMs: number) => Promise<unknown>;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #staleMs: number;
  readonly #now: () => number;
  readonly #onLimitChange: (() => void) | undefined;
  /** By replica id. */
  readonly #replicas = new Map<string, Measured>();
  /** Last known capacity by revision (revisionKey), kept while no replica runs. */
  readonly #capacity = new Map<string, ReplicaCapacity>();
  /** Last known replicaLimitOf by revision, kept as #capacity. */
  readonly #limits = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = true;
  /** When the last round started (monotonic ms). */
  #lastRound = Number.NEGATIVE_INFINITY;

  constructor(options: ReplicaLoadOptions) {
    this.#targets = options.targets;
    this.#fetch = options.fetchReport ?? ((url, timeoutMs) => replicaGetJson(url, LOAD_PATH, timeoutMs));
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 500;
    this.#concurrency = Math.max(1, options.concurrency ?? 8);
    this.#staleMs = options.staleMs ?? 3000;
    this.#now = options.now ?? (() => performance.now());
    this.#onLimitChange = options.onLimitChange;
  }

  /** Polls every intervalMs until stop(); rounds never overlap. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Stops polling; resolves when a round in progress has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const started = this.#now();
      this.#lastRound = started;
      this.#running = this.poll().finally(() => {
        this.#running = null;
        this.#schedule(Math.max(0, this.#intervalMs - (this.#now() - started)));
      });
    }, ms);
    this.#timer.unref();
  }

  /** One round: every target asked once (at most `concurrency` at a time). Never rejects. Exposed for tests. */
  async poll(): Promise<void> {
    let targets: LoadTargets;
    try {
      targets = this.#targets();
    } catch {
      return;
    }
    const autoscaled = new Set(targets.deployments);
    const live = new Set(targets.replicas.map((r) => r.id));
    for (const id of this.#replicas.keys()) if (!live.has(id)) this.#replicas.delete(id);
    for (const map of [this.#capacity, this.#limits])
      for (const key of map.keys()) if (!autoscaled.has(key.slice(0, key.indexOf('\u0000')))) map.delete(key);
    const list = targets.replicas.filter((r) => autoscaled.has(r.deployment));
    let next = 0;
    const worker = async () => {
      while (next < list.length) await this.#pollOne(list[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, list.length) }, worker));
  }

  async #pollOne(target: ReplicaTarget): Promise<void> {
    let report: LoadReport | null;
    try {
      report = parseLoadReport(await this.#fetch(target.url, this.#timeoutMs));
    } catch {
      return; // unknown: its last measure ages out
    }
    if (report === null) return;
    const now = this.#now();
    const prev = this.#replicas.get(target.id);
    const capacity = capacityOf(report);
    const saturation = prev?.last ? saturationBetween(prev.last, report) : undefined;
    this.#replicas.set(target.id, {
      deployment: target.deployment,
      revision: target.revision,
      last: report,
      saturation: saturation ?? prev?.saturation,
      measuredAt: saturation === undefined ? (prev?.measuredAt ?? Number.NEGATIVE_INFINITY) : now,
      capacity,
    });
    if (capacity !== undefined) this.#capacity.set(revisionKey(target.deployment, target.revision), capacity);
    const limit = replicaLimitOf(report);
    const key = revisionKey(target.deployment, target.revision);
    if (limit !== undefined && this.#limits.get(key) !== limit) {
      this.#limits.set(key, limit);
      this.#onLimitChange?.();
    }
  }

  saturation(deployment: string, ready: number, revision?: number): number | undefined {
    const now = this.#now();
    const values: number[] = [];
    for (const r of this.#replicas.values()) {
      if (r.deployment !== deployment || (revision !== undefined && r.revision !== revision)) continue;
      if (r.saturation !== undefined && now - r.measuredAt <= this.#staleMs) values.push(r.saturation);
    }
    return deploymentSaturation(values, ready);
  }

  /** The revision's replicaLimitOf from its replicas' last report; undefined until one reported. */
  replicaLimit(deployment: string, revision: number): number | undefined {
    return this.#limits.get(revisionKey(deployment, revision));
  }

  /**
   * The next round now rather than at its time (a replica of a revision whose limit is unknown became ready);
   * nothing when a round is running, or one started in the last 100 ms (a replica that never reports must not
   * have every loop pass poll it).
   */
  soon(): void {
    if (this.#stopped || this.#timer === null || this.#now() - this.#lastRound < SOON_MS) return;
    clearTimeout(this.#timer);
    this.#schedule(0);
  }

  derivedTarget(deployment: string, revision: number, metric: ScalingMetric): number | undefined {
    const known = this.#capacity.get(revisionKey(deployment, revision));
    if (known === undefined) return undefined;
    const times: number[] = [];
    for (const r of this.#replicas.values())
      if (
        r.deployment === deployment &&
        r.revision === revision &&
        r.capacity?.batchServiceTimeMs !== undefined
      )
        times.push(r.capacity.batchServiceTimeMs);
    const serviceMs = median(times) ?? known.batchServiceTimeMs;
    const capacity = { ...known, ...(serviceMs === undefined ? {} : { batchServiceTimeMs: serviceMs }) };
    return targetFrom(metric, capacity) ?? undefined;
  }
}
