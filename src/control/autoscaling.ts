/**
 * The control plane's side of autoscaling (issue 11): once per loop pass, the gateway's load samples since the
 * last pass go to each autoscaled deployment's policy (src/autoscaler, pure), and its decision becomes the
 * deployment's desired replicas, as `ferry scale` would set them (a rollout in progress keeps its step and gets
 * the new count, rollout-record.ts `rescaled`). Each change is an event that says why:
 * "scaled iris 1 -> 3: concurrency 27.4 over 6 s (panic), target 8". Nothing here waits: the loop calls it.
 */
import { decide, type FerryState, initialState } from '../autoscaler/decide.ts';
import { DEFAULT_TARGET } from '../autoscaler/settings.ts';
import type { Sample, ScalingSettings } from '../autoscaler/types.ts';
import type { HeldSample, RevisionLoadSample } from '../core/route-table.ts';
import { plainName, splitKey } from '../core/tenant.ts';
import type { RecordEvent } from './events.ts';
import { type DeploymentUse, maxReplicasWithin, usageOf } from './quota.ts';
import type { CapacitySource } from './replica-load.ts';
import type { RolloutState } from './rollout.ts';
import { rescaled } from './rollout-record.ts';
import type { Deployment, JsonValue, Store } from './store/store.ts';

/** What the gateway counts (src/gateway: loadSamples resets its period each call). */
export interface LoadSource {
  loadSamples(now?: number): RevisionLoadSample[];
  heldSamples(): HeldSample[];
}

/**
 * What the gateway's activator gets for an autoscaled deployment (src/core/route-table.ts): its bounds, and the
 * per-replica capacity at which a burst waits for replicas being started (the concurrency target; with the rps
 * metric, or a target derived live, the default concurrency target).
 */
export function activatorFor(s: ScalingSettings): {
  maxHeld: number;
  maxWaitMs: number;
  replicaCapacity: number;
} {
  const perReplica = s.metric === 'concurrency' && s.target !== null ? s.target : DEFAULT_TARGET;
  return {
    maxHeld: s.maxHeld,
    maxWaitMs: s.maxHeldWaitMs,
    replicaCapacity: Math.max(1, Math.ceil(perReplica)),
  };
}

/** Decisions are made this often at most (and at once when a pass sees requests held at zero). */
export const DECISION_MS = 1000;

export class Autoscaling {
  readonly #states = new Map<string, FerryState>();
  readonly #pending = new Map<string, Sample[]>();
  #lastDecision = new Map<string, number>();
  /** Deployments started from zero by a decision, and when: the next replica ready ends the cold start. */
  readonly #coldSince = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly load: LoadSource,
    private readonly event: RecordEvent,
    /** The replicas' own measure (replica-load.ts): saturation in the samples, the derived target. */
    private readonly capacity?: CapacitySource,
  ) {}

  /**
   * Takes the samples since the last pass and decides for every autoscaled deployment whose decision is due (or
   * that has requests held at zero). `ready(name)` counts ready replicas of the deployment's serving revisions.
   * Returns when the next decision is due, or null when nothing autoscales.
   */
  step(now: number, ready: (name: string) => number): number | null {
    const samples = this.load.loadSamples(now);
    const held = new Map(this.load.heldSamples().map((h) => [h.deployment, h.held]));
    const bySample = new Map<string, Map<number, Sample>>();
    for (const s of samples) {
      // A deployment's load is its revisions' together (a canary's own share: a later step).
      const perAt = bySample.get(s.deployment) ?? new Map<number, Sample>();
      const prev = perAt.get(s.at);
      perAt.set(s.at, {
        at: s.at,
        periodMs: s.periodMs,
        concurrency: (prev?.concurrency ?? 0) + s.concurrency,
        arrivals: (prev?.arrivals ?? 0) + s.arrivals,
      });
      bySample.set(s.deployment, perAt);
    }
    let next: number | null = null;
    const seen = new Set<string>();
    for (const dep of this.store.listDeployments()) {
      if (dep.scaling === null) continue;
      seen.add(dep.name);
      const pending = [...(this.#pending.get(dep.name) ?? []), ...(bySample.get(dep.name)?.values() ?? [])];
      const holding = held.get(dep.name) ?? 0;
      const last = this.#lastDecision.get(dep.name) ?? Number.NEGATIVE_INFINITY;
      if (now - last < DECISION_MS && holding === 0) {
        this.#pending.set(dep.name, pending);
        next = Math.min(next ?? Number.POSITIVE_INFINITY, last + DECISION_MS);
        continue;
      }
      this.#pending.delete(dep.name);
      this.#lastDecision.set(dep.name, now);
      // In units of the deployment's count: a split or a rollout runs revisions side by side (a split's each at
      // least one), whose ready replicas together may exceed it; counted whole, they would hold the count up
      // (a scale-down goes at most to ready / maxScaleDownRate) and a split at one replica never reached zero.
      this.decideFor(dep, now, pending, Math.min(ready(dep.name), dep.replicas), holding);
      next = Math.min(next ?? Number.POSITIVE_INFINITY, now + DECISION_MS);
    }
    for (const name of [...this.#states.keys()]) if (!seen.has(name)) this.forget(name);
    return next;
  }

  forget(name: string): void {
    this.#states.delete(name);
    this.#pending.delete(name);
    this.#lastDecision.delete(name);
    this.#coldSince.delete(name);
  }

  /**
   * A replica of `name` became ready: when the deployment was started from zero, its cold start ends there (the
   * loop records its phases, cold-start.ts) and this returns when it was decided; else undefined. Once per start.
   */
  replicaReady(name: string): { decidedAt: number } | undefined {
    const since = this.#coldSince.get(name);
    if (since === undefined) return undefined;
    this.#coldSince.delete(name);
    return { decidedAt: since };
  }

  /** True while `name` is starting from zero (decided, no replica ready yet): requests wait for it. */
  coldStarting(name: string): boolean {
    return this.#coldSince.has(name);
  }

  /** Requests the gateway holds for `name` now (at zero replicas: those a cold start releases). */
  heldNow(name: string): number {
    return this.load.heldSamples().find((h) => h.deployment === name)?.held ?? 0;
  }

  private decideFor(dep: Deployment, now: number, samples: Sample[], ready: number, held: number): void {
    const settings = dep.scaling!;
    const state = this.#states.get(dep.name) ?? { ...initialState(settings, now), desired: dep.replicas };
    // Batching-aware (replica-load.ts): the replicas' saturation goes with the samples this decision takes in,
    // and their capacity gives the target when the settings have none.
    const saturation = this.capacity?.saturation(dep.name, ready);
    const derivedTarget = this.capacity?.derivedTarget(dep.name, dep.revision, settings.metric);
    const observation = {
      // Only where requests came: an idle replica's own measure is its background (the poll itself, timers on its
      // main thread), not load, and must not keep a deployment from zero.
      samples:
        saturation === undefined
          ? samples
          : samples.map((s) => (s.arrivals > 0 || s.concurrency > 0 ? { ...s, saturation } : s)),
      ready,
      held,
      ...(derivedTarget === undefined ? {} : { derivedTarget }),
    };
    const d = decide(now, observation, settings, state);
    // Within the tenant's quotas: the decision is cut to what they leave (and the event says so).
    const cap = this.quotaCap(dep);
    const desired = Math.min(d.desired, Math.max(cap, settings.minReplicas === 0 ? 0 : 1));
    const reason = desired < d.desired ? `${d.reason}; the tenant's quota allows ${cap}` : d.reason;
    this.#states.set(dep.name, { ...d.state, desired });
    if (desired === dep.replicas) return;
    if (dep.replicas === 0 && desired > 0 && ready === 0) this.#coldSince.set(dep.name, now);
    this.store.transaction(() => {
      this.store.setDesiredReplicas(dep.name, desired);
      const rollout = this.store.getRollout(dep.name);
      const rs = rollout?.state as unknown as RolloutState | undefined;
      const next = rs ? rescaled(rs, desired) : undefined;
      if (rollout && next) this.store.setRolloutState(dep.name, next as unknown as JsonValue);
    });
    this.event(
      dep.name,
      'Normal',
      'Autoscaled',
      `scaled ${plainName(dep.name)} ${dep.replicas} -> ${desired}: ${reason}`,
    );
  }

  /** The most replicas the deployment's tenant quotas leave it. */
  private quotaCap(dep: Deployment): number {
    const { tenant } = splitKey(dep.name);
    const quotas = this.store.getTenant(tenant)?.quotas ?? {};
    if (Object.keys(quotas).length === 0) return Number.POSITIVE_INFINITY;
    const others: DeploymentUse[] = [];
    for (const d of this.store.listDeployments(tenant)) {
      if (d.name === dep.name) continue;
      const r = this.store.getRevision(d.name, d.revision)?.spec.resources;
      others.push({ replicas: d.replicas, cpu: r?.cpu ?? null, memoryBytes: r?.memoryBytes ?? null });
    }
    const mine = this.store.getRevision(dep.name, dep.revision)?.spec.resources;
    return maxReplicasWithin(quotas, usageOf(others), {
      cpu: mine?.cpu ?? null,
      memoryBytes: mine?.memoryBytes ?? null,
    });
  }
}
