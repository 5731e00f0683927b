/**
 * The reconcile loop: makes what runs match what the store asks for. Each pass (a "tick") observes, decides
 * with the pure functions, then acts:
 *
 *   observe   runtime.list(managed-by=ferry) + readiness probes of starting replicas
 *   decide    per deployment: stepRollout (when a rollout runs) or steadyReplicas (traffic) -> desired state;
 *             reconcile(desired, actual) -> create / drain / remove; buildRoutes -> the gateway's table
 *   act       store the rollout step and traffic, publish routes, start replicas, and in the background
 *             drain (out of the routes, wait until the gateway has nothing in flight) then remove them,
 *             archiving their logs first
 *
 * Ticks never overlap; a change (API call, runtime event) during a tick asks for another one right after.
 * Between changes the loop wakes when a decision asked to (crash backoff, canary pause), every 250 ms while
 * replicas start, and every `resyncMs` regardless.
 *
 * After a restart the first tick adopts what runs (reconcile on the listed replicas, by their labels).
 *
 * The command service (commands.ts) changes the store and asks for a pass; it reaches the loop only through
 * `LoopPort`: nudge, a status snapshot per deployment, and forgetting what a new request makes stale.
 */

import { EXIT_MODEL_LOAD_FAILED } from '../core/replica.ts';
import type { DiscoveryTable } from '../core/route-table.ts';
import { plainName, qualify, tenantOf } from '../core/tenant.ts';
import type { EngineImageRequest } from '../image/provision.ts';
import type {
  ReplicaSpec,
  ReplicaStatus,
  RevisionRuntime,
  RevisionSpec,
  RevisionStatus,
  Runtime,
  RuntimeWatch,
} from '../runtime/index.ts';
import { readiness, readinessReport } from '../runtime/index.ts';
import { Autoscaling, activatorFor, type LoadSource } from './autoscaling.ts';
import { type ColdStartMoments, type ColdStartView, coldStartMessage, coldStartView } from './cold-start.ts';
import type { ControllerLogger, RecordEvent } from './events.ts';
import { LABELS, platformLabels, readReplicaClaim } from './labels.ts';
import { type LogArchive, toStored } from './log-archive.ts';
import type { LoopPort, LoopStatus } from './loop-port.ts';
import type { ControlMetrics } from './metrics.ts';
import {
  type CrashHistory,
  crashKey,
  type DesiredState,
  type ReconcilePolicy,
  reconcile,
} from './reconcile.ts';
import { type LoadTargets, ReplicaLoad, type ReplicaTarget } from './replica-load.ts';
import type { KnownReplica } from './replica-metrics.ts';
import { makeReplicaSpec } from './replica-spec.ts';
import { planRevisions, type RevisionAction } from './revision-plan.ts';
import { abort as abortRollout, type RolloutState, stepRollout } from './rollout.ts';
import { isDone, rolloutMessage, toStrategy } from './rollout-record.ts';
import {
  buildRoutes,
  type RoutePublisher,
  startingReplicas,
  steadyReplicas,
  toDiscoveryTable,
} from './routing.ts';
import { envName, type Secrets } from './secrets.ts';
import type { Deployment, JsonValue, Store, StoredRevision, TrafficEntry } from './store/store.ts';
import { formatSplit, stepTrafficMove, trafficMoveMessage } from './traffic-move.ts';
import type { Action, ActualReplica, Condition } from './types.ts';
import type { CrashView, ReplicaView, RevisionProblem, RevisionStatusView, StrategyInput } from './views.ts';

export interface ControlLoopOptions {
  store: Store;
  /** A runtime whose replicas the loop keeps (process, docker), or one that keeps them itself (swarm). */
  runtime: Runtime | RevisionRuntime;
  /** Where the table goes with a replica runtime: the gateway in this process. */
  routes: RoutePublisher;
  /**
   * Where the route file goes with a revision runtime: the gateways elsewhere pull it (GET /v1/gateway/routes).
   * Required with one.
   */
  discovery?: DiscoveryPublisher;
  /**
   * Revision runtime: how long a route change takes to reach every gateway (they poll each second); a revision
   * that lost its traffic is removed only after it. Default 3 s.
   */
  routePropagationMs?: number;
  logs: LogArchive;
  logger?: ControllerLogger;
  now: () => number;
  /** Where events go (events.ts); the command service records into the same. */
  event: RecordEvent;
  policy?: ReconcilePolicy;
  /** How long a drained replica may keep requests in flight before it is stopped anyway. Default 30 s. */
  drainTimeoutMs?: number;
  /** SIGTERM grace for a replica's server. Default 10 s. */
  stopGraceMs?: number;
  /** Full pass at least this often. Default 2 s. */
  resyncMs?: number;
  /** Extra environment for every replica (e.g. FERRY_LOG_LEVEL). */
  replicaEnv?: Record<string, string>;
  /** Where secretRefs are resolved; without it a revision that names secrets does not start. */
  secrets?: Secrets;
  /** Value of the `ferry.dev/platform` label: the loop sees and makes only replicas carrying it. */
  platformId: string;
  /** docker runtime: gets a version's image onto the engine (pulled, or built from its artifact). */
  images?: ImageProvisioner;
  /** The gateway's load counts (issue 11): without them no deployment autoscales (no data holds). */
  load?: LoadSource;
  /** Where cold starts are counted (ferry_cold_start_seconds); none: events and views only. */
  metrics?: ControlMetrics;
  /** Called after every pass (the views may have changed): the live stream looks then (changes.ts). */
  afterPass?: () => void;
}

/** Takes the route file of a revision runtime (src/control/route-file.ts RouteFile). */
export interface DiscoveryPublisher {
  set(table: DiscoveryTable): void;
}

/** What the loop needs to run a version on the docker runtime. */
export interface ImageProvisioner {
  /**
   * Makes sure the engine has the version's image: already there, pulled from its registry, or built from its
   * artifact. Resolves with what to run; `onProgress` gets a line per step. Rejects with the reason.
   */
  ensure(request: EngineImageRequest, onProgress: (line: string) => void): Promise<string>;
}

type ImageState =
  | { state: 'preparing' }
  | { state: 'ready'; image: string }
  | { state: 'failed'; message: string; at: number };

/** A failed pull or build is tried again after this long (a registry may come back). */
const IMAGE_RETRY_MS = 30_000;

const DEFAULT_POLICY: ReconcilePolicy = { backoff: { baseMs: 1000, maxMs: 60_000 } };
const STARTING_POLL_MS = 250;
/**
 * A replica started from zero (requests wait for it) is probed this often by a watcher of its own, which asks for
 * a pass the moment it is ready: at STARTING_POLL_MS, finding it ready took 125 ms on average, a fifth of a
 * cold start (bench/cold-start.ts). A probe of a replica that is not listening yet is a failed connect.
 */
const COLD_POLL_MS = 20;
/** The watcher gives up after this long (the passes go on probing at STARTING_POLL_MS). */
const COLD_WATCH_MS = 60_000;
const CRASH_LOG_LINES = 10;
/** Revision problems that running replicas show, cleared only once one of its replicas is ready. */
const SEEN_IN_REPLICAS = ['ModelLoadFailed', 'CrashLoop'];
/** A revision whose replicas crashed this many times in a row without one ever being ready has failed. */
const FAILED_AFTER_CRASHES = 3;
/**
 * Revision runtime: how long a replica may take to load its model before the orchestrator counts it failing (the
 * health check's start period); the Kubernetes target's startupTimeout default.
 */
const STARTUP_BUDGET_MS = 300_000;

interface Observed {
  status: ReplicaStatus;
  actual: ActualReplica;
  deployment: string | undefined;
  revision: number | undefined;
  index: number | undefined;
}

export class ControlLoop implements LoopPort {
  private readonly store: Store;
  private readonly runtime: Runtime | RevisionRuntime;
  private readonly routes: RoutePublisher;
  private readonly discovery: DiscoveryPublisher | undefined;
  private readonly routePropagationMs: number;
  /** Revision runtime: units being removed (their traffic gone, waiting for the gateways to know). */
  private readonly leavingUnits = new Set<string>();
  private readonly archive: LogArchive;
  private readonly log: ControllerLogger | undefined;
  private readonly event: RecordEvent;
  private readonly now: () => number;
  private readonly policy: ReconcilePolicy;
  private readonly drainTimeoutMs: number;
  private readonly stopGraceMs: number;
  private readonly resyncMs: number;
  private readonly replicaEnv: Record<string, string>;
  private readonly secrets: Secrets | undefined;
  private readonly autoscaling: Autoscaling | undefined;
  /** Polls autoscaled deployments' ready replicas for their own load (replica-load.ts); with `load` only. */
  readonly replicaLoad: ReplicaLoad | undefined;
  private readonly images: ImageProvisioner | undefined;
  private readonly metrics: ControlMetrics | undefined;
  /** When runtime.ensure returned, by replica id, until the replica is ready (a cold start's `started`). */
  private readonly ensuredAt = new Map<string, number>();
  /** Cold starts whose replica this pass saw ready: recorded once the pass has published its routes. */
  private endingColdStarts: Array<Omit<ColdStartMoments, 'releasedAt' | 'held'>> = [];
  private readonly lastColdStart = new Map<string, ColdStartView>();
  /** When each model:version's image became ready (docker), for a cold start that waited for it. */
  private readonly imageReadyAt = new Map<string, number>();
  /** Replica limits by deployment and revision, as the last route table carried them (what the gateway holds at). */
  private routedLimits = new Map<string, Record<string, number> | undefined>();
  /** Replica ids a cold-start watcher probes (watchReady). */
  private readonly coldWatch = new Set<string>();
  /** Images made ready for the docker runtime, by `${model}:${version}`. */
  private readonly imageStates = new Map<string, ImageState>();
  /** The labels every replica of this platform carries; lists are filtered by them. */
  private readonly mine: Record<string, string>;

  private history: CrashHistory = {};
  private conditions: Record<string, Condition[]> = {};
  private observed: Observed[] = [];
  /** Replica ids that answered ready once; forgotten when the replica goes. */
  private readonly ready = new Set<string>();
  /** Replica ids being drained or removed in the background. */
  private readonly leaving = new Set<string>();
  private readonly background = new Set<Promise<void>>();
  private readonly servedNames = new Map<string, string>();
  private readonly reportedCrashes = new Set<string>();
  private readonly lastCrash = new Map<string, CrashView>();
  /**
   * What keeps a revision from serving, by crashKey(deployment, revision): a model that cannot load, a crash
   * loop before it was ever ready, a secret not set, nothing this runtime can run. Cleared once one of its
   * replicas is ready (or the replica can be made). A `fatal` problem aborts a rollout to the revision.
   */
  private readonly problems = new Map<string, RevisionProblem>();
  /** Revisions (crashKey) that had a ready replica since this controller started. */
  private readonly everReady = new Set<string>();
  /** Replicas this controller stopped: their exit is not a crash, even after they leave `leaving`. */
  private readonly stoppedByUs = new Set<string>();
  /** Replicas per revision each deployment wanted in the last pass (for the view). */
  private desiredNow = new Map<string, Record<string, number>>();
  /** The last traffic-move wait reported per deployment, so an unchanged wait is not an event every pass. */
  private readonly moveWaits = new Map<string, string>();

  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private watcher: RuntimeWatch | null = null;
  private firstPass = true;
  private readonly afterPass: (() => void) | undefined;

  constructor(opts: ControlLoopOptions) {
    this.store = opts.store;
    this.runtime = opts.runtime;
    this.routes = opts.routes;
    this.discovery = opts.discovery;
    this.routePropagationMs = opts.routePropagationMs ?? 3000;
    this.archive = opts.logs;
    this.log = opts.logger;
    this.now = opts.now;
    this.policy = opts.policy ?? DEFAULT_POLICY;
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
    this.stopGraceMs = opts.stopGraceMs ?? 10_000;
    this.resyncMs = opts.resyncMs ?? 2000;
    this.replicaEnv = opts.replicaEnv ?? {};
    this.secrets = opts.secrets;
    // The replicas' own load reports are read at their URLs: only where this process reaches them (not on an
    // orchestrator's overlay network).
    this.replicaLoad =
      opts.load && opts.runtime.manages === 'replicas'
        ? new ReplicaLoad({ targets: () => this.loadTargets(), onLimitChange: () => this.nudge() })
        : undefined;
    this.autoscaling = opts.load
      ? new Autoscaling(opts.store, opts.load, opts.event, this.replicaLoad)
      : undefined;
    this.images = opts.images;
    this.metrics = opts.metrics;
    this.mine = platformLabels(opts.platformId);
    this.event = opts.event;
    this.afterPass = opts.afterPass;
  }

  // ------------------------------------------------------------------------------------------- lifecycle

  /** Adopts what runs (first tick) and starts the loop. */
  async start(): Promise<void> {
    this.stopped = false;
    this.watcher = this.runtime.watch(this.mine, () => this.nudge());
    await this.tick();
    this.replicaLoad?.start();
  }

  /**
   * Stops the loop. With `removeReplicas`, every replica Ferry runs is drained from the gateway and removed
   * (`ferry down`); without, they keep running for the next control plane to adopt.
   */
  async stop(opts: { removeReplicas: boolean }): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
    await this.replicaLoad?.stop();
    await this.running;
    const runtime = this.runtime;
    if (opts.removeReplicas && runtime.manages === 'revisions') {
      this.discovery?.set({ deployments: [], callers: [] });
      await new Promise((r) => setTimeout(r, this.routePropagationMs));
      await runtime.removeAll(this.mine);
    } else if (opts.removeReplicas && runtime.manages === 'replicas') {
      this.routes.setRoutes({ deployments: [] });
      const all = await runtime.list(this.mine);
      await this.routes.waitIdle(
        all.map((r) => r.id),
        this.drainTimeoutMs,
      );
      await Promise.all(all.map((r) => this.removeReplica(runtime, r, 'shutdown')));
    }
    await Promise.all(this.background);
  }

  /** Asks for a pass soon; passes never overlap. */
  nudge(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.tick();
  }

  /** One pass; resolves when it (and any pass asked for meanwhile) is done. Exposed for tests. */
  async tick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        let wakeAt: number | null = null;
        try {
          wakeAt = await this.pass();
        } catch (error) {
          this.log?.error({ err: error }, 'controller pass failed');
          wakeAt = this.now() + 1000;
        }
        this.schedule(wakeAt);
        this.afterPass?.();
      } while (this.again && !this.stopped);
    })();
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }

  private schedule(wakeAt: number | null): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const now = this.now();
    const starting = this.observed.some(
      (o) => o.actual.state === 'starting' && !this.leaving.has(o.status.id),
    );
    let at = now + this.resyncMs;
    if (starting) at = Math.min(at, now + STARTING_POLL_MS);
    if (wakeAt !== null) at = Math.min(at, Math.max(now, wakeAt));
    this.timer = setTimeout(() => this.nudge(), Math.max(0, at - now));
    this.timer.unref();
  }

  // ------------------------------------------------------------------------------------------- LoopPort

  status(deployment: string): LoopStatus {
    return {
      replicas: this.replicaViews(deployment),
      revisions: this.revisionStatus(deployment, this.store.getTraffic(deployment)),
      readyByRevision: this.readyByRevision(deployment),
      conditions: this.conditions[deployment] ?? [],
      lastCrash: this.lastCrash.get(deployment) ?? null,
      lastColdStart: this.lastColdStart.get(deployment) ?? null,
    };
  }

  knownReplicas(): KnownReplica[] {
    const out: KnownReplica[] = [];
    for (const o of this.observed)
      if (o.deployment !== undefined)
        out.push({
          deployment: o.deployment,
          replica: this.replicaView(o),
          leaving: this.leaving.has(o.status.id),
        });
    return out;
  }

  get reachesReplicas(): boolean {
    return this.runtime.manages === 'replicas';
  }

  forgetFailure(deployment: string, revision: number): void {
    this.problems.delete(crashKey(deployment, revision));
    this.everReady.delete(crashKey(deployment, revision));
  }

  forgetTrafficWait(deployment: string): void {
    this.moveWaits.delete(deployment);
  }

  // ------------------------------------------------------------------------------------------- one pass

  private async pass(): Promise<number | null> {
    if (this.runtime.manages === 'revisions') return this.passRevisions(this.runtime);
    const runtime = this.runtime;
    const listed = await runtime.list(this.mine);
    // A replica we are stopping or stopped, that the runtime still lists (a list read while it stopped, or a
    // removal not seen yet), is neither desired, running nor crashed: it is on its way out.
    const ids = new Set(listed.map((s) => s.id));
    for (const id of this.stoppedByUs) if (!ids.has(id) && !this.leaving.has(id)) this.stoppedByUs.delete(id);
    const statuses = listed.filter((s) => !this.stoppedByUs.has(s.id));
    await this.probe(statuses);
    this.observed = statuses.map((s) => this.observe(s));
    this.noteAdopted('replica');
    await this.reportCrashes();

    const now = this.now();
    const { desired, routing, desiredNow, wakeAt: decidedWake } = this.decide(now);
    let wakeAt = decidedWake;
    const actual = this.observed.filter((o) => !this.leaving.has(o.status.id)).map((o) => o.actual);
    const result = reconcile(desired, actual, now, this.policy, this.history, this.conditions);
    this.history = result.history;
    this.noteCrashLoops(result.history);
    this.noteConditions(result.conditions);
    if (result.nextWakeAt !== null)
      wakeAt = wakeAt === null ? result.nextWakeAt : Math.min(wakeAt, result.nextWakeAt);

    const removing = new Set(result.actions.flatMap((a) => (a.kind === 'remove' ? [a.id] : [])));
    routing.replicas = this.observed
      .filter(
        (o) => o.actual.state === 'ready' && !this.leaving.has(o.status.id) && !removing.has(o.status.id),
      )
      .flatMap((o) =>
        o.deployment === undefined || o.revision === undefined
          ? []
          : [{ id: o.status.id, url: o.status.url, deployment: o.deployment, revision: o.revision }],
      );
    routing.starting = startingReplicas(desiredNow, routing.replicas);
    // A replica of an autoscaled revision whose limit is not known yet (its first): its report at once.
    const limits = new Map(routing.deployments.map((d) => [d.name, d.replicaLimits]));
    this.routedLimits = limits;
    const unknownLimit = (r: { deployment: string; revision: number }) => {
      const known = limits.get(r.deployment);
      return known !== undefined && known[r.revision] === undefined;
    };
    if (routing.replicas.some(unknownLimit)) this.replicaLoad?.soon();
    const held = new Map(
      this.endingColdStarts.map((c) => [c.deployment, this.autoscaling?.heldNow(c.deployment) ?? 0]),
    );
    this.routes.setRoutes(buildRoutes(routing));
    this.recordColdStarts(held);
    await this.act(runtime, result.actions);
    return wakeAt;
  }

  /**
   * One pass with a runtime that keeps replicas itself (swarm): observe its units and their replicas, decide as
   * for any runtime, ensure or remove units (revision-plan.ts), publish the route file (revisions by DNS name).
   */
  private async passRevisions(runtime: RevisionRuntime): Promise<number | null> {
    const units = (await runtime.revisions(this.mine)).filter((u) => !this.leavingUnits.has(u.name));
    this.observed = units.flatMap((u) => u.running).map((s) => this.observe(s));
    this.noteAdopted('revision');
    await this.noteRevisionFailures(runtime, units);

    const now = this.now();
    const { desired, routing, wakeAt } = this.decide(now);
    const plan = planRevisions(
      desired,
      units.map((u) => ({
        name: u.name,
        labels: u.labels,
        replicas: u.replicas,
        ready: u.running.filter((r) => r.state === 'ready').length,
      })),
      now,
      this.conditions,
    );
    this.noteConditions(plan.conditions);
    this.routedLimits = new Map();
    const table = buildRoutes({ ...routing, replicas: [] });
    this.discovery?.set(
      toDiscoveryTable(
        table,
        (tenant, deployment, revision) => runtime.target(runtime.nameOf(tenant, deployment, revision)),
        (tenant, deployment, revision) => this.desiredNow.get(qualify(tenant, deployment))?.[revision] === 0,
      ),
    );
    await this.actRevisions(runtime, plan.actions);
    return wakeAt;
  }

  /** The first pass tells what it found running (a control plane restarted: adopted, not duplicated). */
  private noteAdopted(unit: 'replica' | 'revision'): void {
    if (!this.firstPass) return;
    this.firstPass = false;
    const adopted = this.observed.filter((o) => o.deployment !== undefined);
    if (adopted.length === 0) return;
    const what = unit === 'revision' ? ' (kept by the orchestrator)' : '';
    this.event(
      undefined,
      'Normal',
      'ReplicasAdopted',
      `Found ${adopted.length} running replica(s)${what}: ${adopted.map((o) => o.status.name).join(', ')}`,
    );
  }

  /**
   * Per deployment: the rollout or traffic step, the replicas each revision needs now (autoscaled first), and the
   * routing input without replicas (the caller adds what serves).
   */
  private decide(now: number): {
    desired: DesiredState;
    routing: Parameters<typeof buildRoutes>[0];
    desiredNow: Map<string, Record<string, number>>;
    wakeAt: number | null;
  } {
    let wakeAt: number | null = null;
    const desired: DesiredState = { deployments: [] };
    const routing: Parameters<typeof buildRoutes>[0] = {
      deployments: [],
      replicas: [],
      callers: this.store.invokerKeys(),
    };
    const desiredNow = new Map<string, Record<string, number>>();
    // Autoscaled deployments get their desired replicas first (what the steps below then work with).
    const autoscaleAt = this.autoscaling?.step(now, (name) =>
      Object.values(this.readyByRevision(name)).reduce((a, b) => a + b, 0),
    );
    if (autoscaleAt != null) wakeAt = wakeAt === null ? autoscaleAt : Math.min(wakeAt, autoscaleAt);
    for (const dep of this.store.listDeployments()) {
      const { replicas, wake } = this.stepDeployment(dep, now);
      desiredNow.set(dep.name, replicas);
      this.warmImages(dep, replicas);
      if (wake !== null) wakeAt = wakeAt === null ? wake : Math.min(wakeAt, wake);
      const revisions: DesiredState['deployments'][number]['revisions'] = [];
      const servedNames: Record<string, string> = {};
      for (const [rev, count] of Object.entries(replicas)) {
        const stored = this.store.getRevision(dep.name, Number(rev));
        if (!stored) continue;
        revisions.push({ revision: stored, replicas: count });
        servedNames[rev] = this.servedName(stored);
      }
      for (const t of this.store.getTraffic(dep.name)) {
        const stored = this.store.getRevision(dep.name, t.revision);
        if (stored) servedNames[t.revision] = this.servedName(stored);
      }
      desired.deployments.push({ name: dep.name, revisions });
      routing.deployments.push({
        name: dep.name,
        public: dep.public,
        ...(dep.scaling
          ? { activator: activatorFor(dep.scaling), replicaLimits: this.replicaLimits(dep.name) }
          : {}),
        traffic: this.store.getTraffic(dep.name),
        servedNames,
        unavailable: this.unavailableRevisions(dep.name),
      });
    }

    this.desiredNow = desiredNow;
    for (const key of this.problems.keys()) {
      const at = key.lastIndexOf('@');
      if (!desiredNow.has(key.slice(0, at))) this.problems.delete(key);
    }
    for (const name of this.lastColdStart.keys()) if (!desiredNow.has(name)) this.lastColdStart.delete(name);
    return { desired, routing, desiredNow, wakeAt };
  }

  private observe(status: ReplicaStatus): Observed {
    const claim = readReplicaClaim(status.labels);
    const state = status.state === 'starting' && this.ready.has(status.id) ? 'ready' : status.state;
    return {
      status,
      deployment: claim.deployment,
      revision: claim.revision,
      index: claim.index,
      actual: {
        id: status.id,
        labels: status.labels,
        state,
        ...(status.exitCode === undefined ? {} : { exitCode: status.exitCode }),
        startedAt: status.startedAt,
        restarts: (status as { restarts?: number }).restarts ?? 0,
      },
    };
  }

  /** Probes starting replicas that have not answered ready yet; forgets replicas that are gone or stopped. */
  private async probe(statuses: ReplicaStatus[]): Promise<void> {
    const live = new Set(
      statuses.filter((s) => s.state === 'starting' || s.state === 'ready').map((s) => s.id),
    );
    for (const id of this.ready) if (!live.has(id)) this.ready.delete(id);
    for (const id of this.ensuredAt.keys()) if (!live.has(id)) this.ensuredAt.delete(id);
    await Promise.all(
      statuses
        .filter((s) => s.state === 'starting' && !this.ready.has(s.id) && !this.leaving.has(s.id))
        .map(async (s) => {
          const report = await readinessReport(s.url, 1000);
          if (report.ready) {
            const readyAt = this.now();
            this.ready.add(s.id);
            const claim = readReplicaClaim(s.labels);
            if (claim.deployment !== undefined && claim.revision !== undefined) {
              const key = crashKey(claim.deployment, claim.revision);
              this.everReady.add(key);
              this.problems.delete(key);
            }
            this.event(
              claim.deployment,
              'Normal',
              'ReplicaReady',
              `${s.name} (revision ${claim.revision}) is ready at ${s.url}`,
            );
            const cold =
              claim.deployment === undefined ? undefined : this.autoscaling?.replicaReady(claim.deployment);
            if (cold && claim.deployment !== undefined)
              this.endingColdStarts.push({
                deployment: claim.deployment,
                revision: claim.revision ?? 0,
                replica: s.name,
                decidedAt: cold.decidedAt,
                imageReadyAt: this.imageReadyAtOf(claim.deployment, claim.revision),
                startedAt: this.ensuredAt.get(s.id) ?? s.startedAt,
                startup: report.startup,
                readyAt,
              });
            this.ensuredAt.delete(s.id);
          }
        }),
    );
  }

  /**
   * One event per replica that stopped by itself, with its exit code and last log lines. A clean exit (code 0)
   * is reported as such, not as a crash. A model that could not load (exit EXIT_MODEL_LOAD_FAILED) fails its
   * revision at once, with the server's reason; the newest crash shows in the view.
   */
  private async reportCrashes(): Promise<void> {
    for (const o of this.observed) {
      const s = o.status;
      if (s.state !== 'failed' && s.state !== 'exited') continue;
      if (this.reportedCrashes.has(s.id) || this.leaving.has(s.id)) continue;
      this.reportedCrashes.add(s.id);
      const lines = await this.runtime.logs(s.id, { tail: CRASH_LOG_LINES }).catch(() => []);
      const logTail = lines.map((l) => toStored(l, 0).line);
      const where = `${s.name} (revision ${o.revision})`;
      if (s.exitCode === 0) {
        this.event(
          o.deployment,
          'Normal',
          'ReplicaExited',
          `${where} exited cleanly (code 0); it is replaced`,
        );
        continue;
      }
      if (o.deployment !== undefined) {
        this.lastCrash.set(o.deployment, {
          replica: s.name,
          revision: o.revision ?? 0,
          ...(s.exitCode === undefined ? {} : { exitCode: s.exitCode }),
          at: this.now(),
          logTail,
        });
      }
      if (s.exitCode === EXIT_MODEL_LOAD_FAILED && o.deployment !== undefined && o.revision !== undefined) {
        const reason = loadFailureReason(logTail) ?? 'the model failed to load (no reason in its log)';
        this.setProblem(o.deployment, o.revision, {
          reason: 'ModelLoadFailed',
          message: reason,
          fatal: true,
        });
        continue;
      }
      this.event(
        o.deployment,
        'Warning',
        'ReplicaCrashed',
        `${where} exited with code ${s.exitCode ?? 'unknown'}${logTail.length > 0 ? `; last log lines:\n${logTail.join('\n')}` : ''}`,
      );
    }
  }

  /**
   * The cold starts whose replica was seen ready in this pass, now that the route table with it is out (the held
   * requests went to it): an event with every phase, the metrics, and the deployment's last cold start.
   * `held`: the requests held per deployment just before the table went out.
   */
  private recordColdStarts(held: Map<string, number>): void {
    if (this.endingColdStarts.length === 0) return;
    const releasedAt = this.now();
    for (const c of this.endingColdStarts) {
      const view = coldStartView({ ...c, releasedAt, held: held.get(c.deployment) ?? 0 });
      this.lastColdStart.set(c.deployment, view);
      this.metrics?.coldStart(c.deployment, view);
      this.event(c.deployment, 'Normal', 'ColdStart', coldStartMessage(c.deployment, view));
    }
    this.endingColdStarts = [];
  }

  /** A revision whose replicas keep crashing and never were ready has failed (its rollout aborts). */
  private noteCrashLoops(history: CrashHistory): void {
    for (const [key, record] of Object.entries(history)) {
      if (record.consecutive < FAILED_AFTER_CRASHES || this.everReady.has(key)) continue;
      if (this.problems.get(key)?.fatal) continue;
      const at = key.lastIndexOf('@');
      const crash = this.lastCrash.get(key.slice(0, at));
      const tail = crash?.logTail
        .filter((l) => l.trim() !== '')
        .slice(-3)
        .join(' | ');
      this.setProblem(key.slice(0, at), Number(key.slice(at + 1)), {
        reason: 'CrashLoop',
        message: `its replicas crashed ${record.consecutive} times in a row and none was ever ready (last exit code ${record.lastExitCode ?? 'unknown'})${tail ? `: ${tail}` : ''}`,
        fatal: true,
      });
    }
  }

  /** When the image of a deployment's revision became ready in this process (docker); null when not known. */
  private imageReadyAtOf(deployment: string, revision: number | undefined): number | null {
    const spec = revision === undefined ? undefined : this.store.getRevision(deployment, revision)?.spec;
    return spec === undefined ? null : (this.imageReadyAt.get(`${spec.model}:${spec.version}`) ?? null);
  }

  /**
   * The image a revision's replicas run on the docker runtime, once the engine has it; until then undefined,
   * with the revision's status saying what is being done (pulling, building) or why it cannot be.
   */
  private imageFor(revision: StoredRevision): string | undefined {
    const { model, version } = revision.spec;
    const key = `${model}:${version}`;
    const dep = revision.deployment;
    const state = this.imageStates.get(key);
    if (state?.state === 'ready') return state.image;
    if (state?.state === 'preparing') return undefined;
    if (state?.state === 'failed' && this.now() - state.at < IMAGE_RETRY_MS) {
      this.setProblem(dep, revision.number, {
        reason: 'ImageUnavailable',
        message: state.message,
        fatal: true,
      });
      return undefined;
    }
    this.imageStates.set(key, { state: 'preparing' });
    const what = revision.spec.image ? `pulling ${revision.spec.image}` : 'building an image of its artifact';
    this.setProblem(dep, revision.number, { reason: 'PreparingImage', message: what, fatal: false });
    const registered = this.store.getModel(model)?.versions.find((v) => v.version === version);
    const meta = registered?.metadata;
    const progress = (line: string) => {
      const p = this.problems.get(crashKey(dep, revision.number));
      if (p?.reason === 'PreparingImage') p.message = `${what}: ${line}`;
    };
    this.images!.ensure(
      {
        model,
        image: revision.spec.image,
        artifactDir: revision.spec.artifactDir,
        ...(typeof meta?.base === 'string' ? { base: meta.base } : {}),
        ...(registered ? { createdAt: registered.createdAt } : {}),
      },
      progress,
    ).then(
      (image) => {
        this.imageStates.set(key, { state: 'ready', image });
        this.imageReadyAt.set(key, this.now());
        // Nothing waits on it when it was prepared ahead (warmImages): the revision has no problem any more.
        if (this.problems.get(crashKey(dep, revision.number))?.reason === 'PreparingImage')
          this.problems.delete(crashKey(dep, revision.number));
        this.event(dep, 'Normal', 'ImageReady', `${model}:${version} runs as ${image}`);
        this.nudge();
      },
      (error: unknown) => {
        const message = `${what} failed: ${error instanceof Error ? error.message : String(error)}`;
        this.imageStates.set(key, { state: 'failed', message, at: this.now() });
        this.setProblem(dep, revision.number, { reason: 'ImageUnavailable', message, fatal: true });
        this.nudge();
      },
    );
    return undefined;
  }

  /**
   * Docker: the image of an autoscaled deployment's serving revision at zero replicas is prepared now, not when
   * the first request starts a replica (a build then would be most of that cold start).
   */
  private warmImages(dep: Deployment, replicas: Record<string, number>): void {
    if (this.runtime.kind !== 'docker' || !this.images || dep.scaling === null) return;
    for (const t of this.store.getTraffic(dep.name)) {
      if (t.percent <= 0 || (replicas[t.revision] ?? 0) > 0) continue;
      const stored = this.store.getRevision(dep.name, t.revision);
      if (stored) this.imageFor(stored);
    }
  }

  /** By revision number: requests one replica takes before it sheds, as its replicas last reported. */
  private replicaLimits(deployment: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.store.getTraffic(deployment)) {
      const limit = this.replicaLoad?.replicaLimit(deployment, t.revision);
      if (limit !== undefined) out[t.revision] = limit;
    }
    return out;
  }

  /**
   * Revisions of the deployment that cannot start a replica now, with why (for the gateway: a request finds out
   * at once instead of waiting for a replica that is not coming). An image still being prepared is on its way.
   * The words are the problem's kind only: its message (log lines, paths) is for the deployment's owners.
   */
  private unavailableRevisions(deployment: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const t of this.store.getTraffic(deployment)) {
      const p = this.problems.get(crashKey(deployment, t.revision));
      if (p !== undefined && p.reason !== 'PreparingImage') out[t.revision] = unavailableText(p.reason);
    }
    return out;
  }

  /** Records what keeps a revision from serving (one event per new reason). */
  private setProblem(deployment: string, revision: number, problem: Omit<RevisionProblem, 'since'>): void {
    const key = crashKey(deployment, revision);
    const old = this.problems.get(key);
    if (old && old.reason === problem.reason && old.message === problem.message) return;
    this.problems.set(key, { ...problem, since: this.now() });
    this.event(
      deployment,
      'Warning',
      problem.fatal ? 'RevisionFailed' : problem.reason,
      `Revision ${revision}${problem.fatal ? ' failed' : ''} (${problem.reason}): ${problem.message}`,
    );
  }

  /** The rollout step (if one runs) and the replicas each revision of this deployment needs now. */
  private stepDeployment(
    dep: Deployment,
    now: number,
  ): { replicas: Record<string, number>; wake: number | null } {
    const stored = this.store.getRollout(dep.name);
    let state = stored?.state as unknown as RolloutState | undefined;
    const readyByRevision = this.readyByRevision(dep.name);
    if (!stored || !state || isDone(state))
      return { replicas: this.stepTrafficTarget(dep, readyByRevision), wake: null };
    const strategy = toStrategy(stored.strategy as unknown as StrategyInput);
    // A target that failed (cannot load, crash loop, nothing to run) never gets more traffic: abort.
    const failure = this.problems.get(crashKey(dep.name, state.target));
    if (failure?.fatal && state.phase !== 'aborting') {
      state = abortRollout(state, `revision ${state.target} failed (${failure.reason}): ${failure.message}`);
      this.store.setRolloutState(dep.name, state as unknown as JsonValue);
      this.event(
        dep.name,
        'Warning',
        'RolloutAborting',
        `Rollout to revision ${state.target} aborted: it failed (${failure.reason}); traffic goes back to revision ${state.stable}`,
      );
    }
    const decision = stepRollout(state, { readyByRevision }, now, strategy);
    const before = this.store.getTraffic(dep.name);
    const traffic: TrafficEntry[] = decision.traffic.map((t) => ({
      revision: t.revision,
      percent: t.percent,
    }));
    if (!sameSplit(before, traffic)) {
      this.store.setTraffic(dep.name, traffic);
      this.event(
        dep.name,
        'Normal',
        'TrafficShifted',
        `Revision ${state.target} now takes ${decision.state.percent}% of traffic (revision ${state.stable}: ${100 - decision.state.percent}%)`,
      );
    }
    if (JSON.stringify(decision.state) !== JSON.stringify(state)) {
      this.store.setRolloutState(dep.name, decision.state as unknown as JsonValue);
      if (decision.state.phase !== state.phase) {
        const reason = {
          succeeded: 'RolloutSucceeded',
          aborted: 'RolloutAborted',
          paused: 'RolloutPaused',
          progressing: 'RolloutProgressing',
          aborting: 'RolloutAborting',
        }[decision.state.phase];
        this.event(
          dep.name,
          decision.state.phase === 'aborted' ? 'Warning' : 'Normal',
          reason,
          rolloutMessage(decision.state),
        );
      }
    }
    const replicas: Record<string, number> = {};
    for (const [rev, count] of Object.entries(decision.desiredReplicas)) if (count > 0) replicas[rev] = count;
    return { replicas, wake: decision.nextWakeAt };
  }

  /**
   * Without a rollout: the split in effect, or a split asked for by hand (ferry traffic) that waits until the
   * revisions it moves traffic to have ready replicas (traffic-move.ts). Returns the replicas per revision.
   */
  private stepTrafficTarget(
    dep: Deployment,
    readyByRevision: Record<string, number>,
  ): Record<string, number> {
    const current = this.store.getTraffic(dep.name);
    const target = this.store.getTrafficTarget(dep.name);
    if (!target) return steadyReplicas(dep.replicas, current, dep.scaling !== null);
    const failed = target.entries
      .filter((t) => t.percent > 0)
      .map((t) => ({ revision: t.revision, problem: this.problems.get(crashKey(dep.name, t.revision)) }))
      .find((f) => f.problem?.fatal);
    if (failed) {
      this.store.setTrafficTarget(dep.name, null);
      this.moveWaits.delete(dep.name);
      this.event(
        dep.name,
        'Warning',
        'TrafficMoveCancelled',
        `The split ${formatSplit(target.entries)} was not applied: revision ${failed.revision} failed (${failed.problem?.reason}): ${failed.problem?.message}; the split stays ${formatSplit(current)}`,
      );
      return steadyReplicas(dep.replicas, current, dep.scaling !== null);
    }
    const step = stepTrafficMove(
      dep.replicas,
      current,
      target.entries,
      readyByRevision,
      dep.scaling !== null,
    );
    if (step.apply) {
      this.store.applyTrafficTarget(dep.name);
      this.moveWaits.delete(dep.name);
      this.event(
        dep.name,
        'Normal',
        'TrafficShifted',
        `Traffic moved as asked: ${formatSplit(target.entries)}`,
      );
      this.nudge(); // the next pass shrinks what lost its traffic
      return step.desiredReplicas;
    }
    const message = trafficMoveMessage(step.waitingFor);
    if (this.moveWaits.get(dep.name) !== message) {
      this.moveWaits.set(dep.name, message);
      this.event(dep.name, 'Normal', 'TrafficMoveWaiting', `${formatSplit(target.entries)}: ${message}`);
    }
    return step.desiredReplicas;
  }

  private async act(runtime: Runtime, actions: Action[]): Promise<void> {
    const drained = new Set(actions.flatMap((a) => (a.kind === 'drain' ? [a.id] : [])));
    const creates: Array<Promise<void>> = [];
    for (const a of actions) {
      if (a.kind === 'create') creates.push(this.create(runtime, a.revision as StoredRevision, a.index));
      if (a.kind === 'remove') {
        const o = this.observed.find((x) => x.status.id === a.id);
        if (!o) continue;
        this.leaving.add(a.id);
        this.inBackground(async () => {
          try {
            if (drained.has(a.id)) await this.routes.waitIdle([a.id], this.drainTimeoutMs);
            await this.removeReplica(runtime, o.status, a.reason);
          } finally {
            this.leaving.delete(a.id);
            this.nudge();
          }
        });
      }
    }
    await Promise.all(creates);
  }

  private async create(runtime: Runtime, revision: StoredRevision, index: number): Promise<void> {
    const dep = revision.deployment;
    let image: string | undefined;
    if (runtime.kind === 'docker' && this.images) {
      image = this.imageFor(revision);
      if (image === undefined) return;
    }
    const made = makeReplicaSpec({
      ...(image === undefined ? {} : { image }),
      revision,
      index,
      runtime: runtime.kind,
      nameSuffix: Math.random().toString(36).slice(2, 7),
      platformLabels: this.mine,
      replicaEnv: this.replicaEnv,
      secrets: this.secretsOf(revision),
    });
    const spec = this.specOrProblem(revision, made);
    if (spec === undefined) return;
    try {
      const status = await runtime.ensure(spec);
      this.ensuredAt.set(status.id, this.now());
      if (this.autoscaling?.coldStarting(dep)) this.watchReady(status);
      this.event(
        dep,
        'Normal',
        'ReplicaCreated',
        `${status.name} (revision ${revision.number}, slot ${index}) started at ${status.url}`,
      );
    } catch (error) {
      // The engine may have lost the image (removed by hand): get it again on the next try.
      if (image !== undefined) this.imageStates.delete(`${revision.spec.model}:${revision.spec.version}`);
      this.setProblem(dep, revision.number, {
        reason: 'ReplicaCreateFailed',
        message: `could not start a replica: ${error instanceof Error ? error.message : String(error)}`,
        fatal: false,
      });
    }
  }

  /**
   * Probes a replica started from zero every COLD_POLL_MS and asks for a pass once it answers ready (the pass
   * probes it again, records it ready and publishes the routes that release the held requests). Ends then, when
   * a pass has seen it ready or no longer lists it, when the loop stops, or after COLD_WATCH_MS.
   */
  private watchReady(status: ReplicaStatus): void {
    if (this.coldWatch.has(status.id)) return;
    this.coldWatch.add(status.id);
    const until = this.now() + COLD_WATCH_MS;
    this.inBackground(async () => {
      try {
        // ensuredAt is dropped once the replica is ready or no longer listed (probe()).
        while (!this.stopped && this.ensuredAt.has(status.id) && this.now() < until) {
          if (await readiness(status.url, 1000)) {
            this.nudge();
            return;
          }
          await new Promise((r) => setTimeout(r, COLD_POLL_MS));
        }
      } finally {
        this.coldWatch.delete(status.id);
      }
    });
  }

  /**
   * Revision runtime: ensures units in the foreground (each is one engine call or a few), removes in the
   * background: a revision that lost its traffic goes once the gateways have the route file without it
   * (routePropagationMs), its replicas' logs archived first; its replicas then drain on SIGTERM.
   */
  private async actRevisions(runtime: RevisionRuntime, actions: RevisionAction[]): Promise<void> {
    const ensures: Array<Promise<void>> = [];
    for (const a of actions) {
      if (a.kind === 'ensure') {
        ensures.push(this.ensureRevision(runtime, a.revision as StoredRevision, a.replicas));
        continue;
      }
      if (this.leavingUnits.has(a.name)) continue;
      this.leavingUnits.add(a.name);
      this.inBackground(async () => {
        try {
          await new Promise((r) => setTimeout(r, this.routePropagationMs));
          const unit = (await runtime.revisions(this.mine)).find((u) => u.name === a.name);
          if (a.deployment !== undefined && a.revision !== undefined)
            for (const replica of unit?.running ?? []) {
              const lines = await runtime.logs(replica.id).catch(() => []);
              const at = this.now();
              await this.archive.archive(
                { name: replica.name, deployment: a.deployment, revision: a.revision },
                lines.map((line) => toStored(line, at)),
              );
            }
          await runtime.removeRevision(a.name);
          this.event(
            a.deployment,
            'Normal',
            'RevisionRemoved',
            `${a.name} (revision ${a.revision}) removed: ${a.reason}`,
          );
        } catch (error) {
          this.event(
            a.deployment,
            'Warning',
            'RevisionRemoveFailed',
            `Could not remove ${a.name}: ${error instanceof Error ? error.message : String(error)}`,
          );
        } finally {
          this.leavingUnits.delete(a.name);
          this.nudge();
        }
      });
    }
    await Promise.all(ensures);
  }

  /** The revision's unit with `replicas` replicas, once its image is in the registry and its secrets are set. */
  private async ensureRevision(
    runtime: RevisionRuntime,
    revision: StoredRevision,
    replicas: number,
  ): Promise<void> {
    const dep = revision.deployment;
    let image: string | undefined;
    if (this.images) {
      image = this.imageFor(revision);
      if (image === undefined) return;
    }
    const secrets = this.secretsOf(revision);
    const made = makeReplicaSpec({
      ...(image === undefined ? {} : { image }),
      revision,
      index: 0,
      runtime: runtime.kind,
      nameSuffix: '',
      platformLabels: this.mine,
      replicaEnv: this.replicaEnv,
      secrets,
    });
    const spec = this.specOrProblem(revision, made);
    if (spec === undefined) return;
    const labels = { ...spec.labels };
    delete labels[LABELS.index];
    const versions = revision.spec.secretVersions ?? {};
    const unit: RevisionSpec = {
      tenant: tenantOf(dep),
      deployment: plainName(dep),
      revision: revision.number,
      labels,
      image: spec.image!,
      replicas,
      env: spec.env ?? {},
      secrets: spec.secrets ?? {},
      secretVersions: Object.fromEntries(
        Object.entries(versions).map(([ref, version]) => [envName(ref), version]),
      ),
      egress: spec.egressNetwork !== undefined,
      cpus: spec.cpus ?? null,
      memoryBytes: spec.memoryBytes ?? null,
      gpus: revision.spec.resources.gpu,
      startupTimeoutMs: STARTUP_BUDGET_MS,
    };
    try {
      await runtime.ensureRevision(unit);
    } catch (error) {
      if (image !== undefined) this.imageStates.delete(`${revision.spec.model}:${revision.spec.version}`);
      this.setProblem(dep, revision.number, {
        reason: 'ReplicaCreateFailed',
        message: `could not run revision ${revision.number}: ${error instanceof Error ? error.message : String(error)}`,
        fatal: false,
      });
    }
  }

  /**
   * Revision runtime: what the orchestrator's failed replicas say. A revision none of whose replicas was ever
   * ready, with FAILED_AFTER_CRASHES failed ones, has failed (a model that does not load, a crash loop): its
   * rollout aborts and the gateway tells callers why. Its last failed replica's log lines say what happened.
   */
  private async noteRevisionFailures(runtime: RevisionRuntime, units: RevisionStatus[]): Promise<void> {
    for (const unit of units) {
      const claim = readReplicaClaim(unit.labels);
      if (claim.deployment === undefined || claim.revision === undefined) continue;
      const key = crashKey(claim.deployment, claim.revision);
      if (unit.running.some((r) => r.state === 'ready')) {
        this.everReady.add(key);
        const p = this.problems.get(key);
        if (p && SEEN_IN_REPLICAS.includes(p.reason)) this.problems.delete(key);
        continue;
      }
      if (this.everReady.has(key) || unit.failed.length < FAILED_AFTER_CRASHES) continue;
      const last = [...unit.failed].sort((a, b) => b.startedAt - a.startedAt)[0]!;
      if (this.reportedCrashes.has(last.id)) continue;
      this.reportedCrashes.add(last.id);
      const lines = (await runtime.logs(last.id, { tail: CRASH_LOG_LINES }).catch(() => [])).map(
        (l) => l.line,
      );
      const loadFailed = last.exitCode === EXIT_MODEL_LOAD_FAILED;
      const why = loadFailureReason(lines) ?? lines.at(-1) ?? `exit code ${last.exitCode ?? 'unknown'}`;
      this.lastCrash.set(claim.deployment, {
        replica: last.name,
        revision: claim.revision,
        ...(last.exitCode === undefined ? {} : { exitCode: last.exitCode }),
        at: last.startedAt,
        logTail: lines,
      });
      this.setProblem(claim.deployment, claim.revision, {
        reason: loadFailed ? 'ModelLoadFailed' : 'CrashLoop',
        message: `${unit.failed.length} of its replicas failed, none was ever ready: ${why}`,
        fatal: true,
      });
    }
  }

  /**
   * The spec made for the revision, or undefined with the revision's problem recorded: a missing secret waits for
   * the user; what cannot run here (no artifact, GPUs asked for) has failed. Once a spec is made, what kept one from
   * being made is gone; what running replicas showed (a failed load, a crash loop) stays until one of them is ready.
   */
  private specOrProblem(
    revision: StoredRevision,
    made: ReturnType<typeof makeReplicaSpec>,
  ): ReplicaSpec | undefined {
    const dep = revision.deployment;
    if ('blocked' in made) {
      this.setProblem(dep, revision.number, {
        ...made.blocked,
        fatal: made.blocked.reason !== 'SecretMissing',
      });
      return undefined;
    }
    const key = crashKey(dep, revision.number);
    const problem = this.problems.get(key);
    if (problem && !SEEN_IN_REPLICAS.includes(problem.reason)) this.problems.delete(key);
    return made.spec;
  }

  /** The revision's secrets as variables (by their pinned versions), and the names that are not set. */
  private secretsOf(revision: StoredRevision): { env: Record<string, string>; missing: string[] } {
    const refs = revision.spec.secretRefs;
    if (refs.length === 0) return { env: {}, missing: [] };
    return (
      this.secrets?.env(refs, tenantOf(revision.deployment), revision.spec.secretVersions) ?? {
        env: {},
        missing: refs,
      }
    );
  }

  /** Runs work apart from the pass; stop() waits for what is still running. */
  private inBackground(work: () => Promise<void>): void {
    const running = work();
    this.background.add(running);
    void running.finally(() => this.background.delete(running));
  }

  private async removeReplica(runtime: Runtime, status: ReplicaStatus, reason: string): Promise<void> {
    const claim = readReplicaClaim(status.labels);
    try {
      if (claim.deployment !== undefined && claim.revision !== undefined) {
        const lines = await this.runtime.logs(status.id).catch(() => []);
        const at = this.now();
        await this.archive.archive(
          { name: status.name, deployment: claim.deployment, revision: claim.revision },
          lines.map((line) => toStored(line, at)),
        );
      }
      this.stoppedByUs.add(status.id);
      await runtime.remove(status.id, this.stopGraceMs);
      this.ready.delete(status.id);
      this.reportedCrashes.delete(status.id);
      if (reason !== 'shutdown')
        this.event(
          claim.deployment,
          'Normal',
          'ReplicaRemoved',
          `${status.name} (revision ${claim.revision}) removed: ${reason}`,
        );
    } catch (error) {
      this.event(
        claim.deployment,
        'Warning',
        'ReplicaRemoveFailed',
        `Could not remove ${status.name}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  private noteConditions(next: Record<string, Condition[]>): void {
    for (const [dep, conds] of Object.entries(next)) {
      for (const c of conds) {
        const prev = this.conditions[dep]?.find((p) => p.type === c.type);
        if (prev && prev.reason === c.reason && prev.status === c.status) continue;
        if (c.reason === 'CrashLoopBackOff') this.event(dep, 'Warning', 'CrashLoopBackOff', c.message);
      }
    }
    this.conditions = next;
  }

  /** The model name the revision's replicas serve: what its ferry.yaml (or image label) said, else the model. */
  private servedName(rev: StoredRevision): string {
    const key = `${rev.spec.model}:${rev.spec.version}`;
    const known = this.servedNames.get(key);
    if (known) return known;
    const version = this.store.getModel(rev.spec.model)?.versions.find((v) => v.version === rev.spec.version);
    const fromMeta = version?.metadata.servedName;
    const name = version?.spec.servedName ?? (typeof fromMeta === 'string' ? fromMeta : rev.spec.model);
    this.servedNames.set(key, name);
    return name;
  }

  // ------------------------------------------------------------------------------- views of what was observed

  /** What ReplicaLoad polls: the ready replicas (not leaving) of the deployments that autoscale. */
  private loadTargets(): LoadTargets {
    const deployments = this.store
      .listDeployments()
      .filter((d) => d.scaling !== null)
      .map((d) => d.name);
    const autoscaled = new Set(deployments);
    const replicas: ReplicaTarget[] = [];
    for (const o of this.observed)
      if (
        o.deployment !== undefined &&
        o.revision !== undefined &&
        autoscaled.has(o.deployment) &&
        o.actual.state === 'ready' &&
        !this.leaving.has(o.status.id)
      )
        replicas.push({ deployment: o.deployment, revision: o.revision, id: o.status.id, url: o.status.url });
    return { deployments, replicas };
  }

  /**
   * Every deployment's ready replicas (not leaving) with their urls, as last observed: what the metrics history
   * scrapes (metrics-history/). On a revision runtime (Swarm) the urls are not reachable from here.
   */
  readyReplicas(): ReplicaTarget[] {
    const replicas: ReplicaTarget[] = [];
    for (const o of this.observed)
      if (
        o.deployment !== undefined &&
        o.revision !== undefined &&
        o.actual.state === 'ready' &&
        !this.leaving.has(o.status.id)
      )
        replicas.push({ deployment: o.deployment, revision: o.revision, id: o.status.id, url: o.status.url });
    return replicas;
  }

  /** Ready replicas per revision of a deployment, as last observed (not those on their way out). */
  private readyByRevision(name: string): Record<string, number> {
    const ready: Record<string, number> = {};
    for (const o of this.observed)
      if (
        o.deployment === name &&
        o.revision !== undefined &&
        o.actual.state === 'ready' &&
        !this.leaving.has(o.status.id)
      )
        ready[o.revision] = (ready[o.revision] ?? 0) + 1;
    return ready;
  }

  private revisionStatus(name: string, traffic: TrafficEntry[]): RevisionStatusView[] {
    const desired = this.desiredNow.get(name) ?? {};
    const ready = this.readyByRevision(name);
    const numbers = new Set<number>([
      ...Object.keys(desired).map(Number),
      ...traffic.map((t) => t.revision),
      ...this.observed
        .filter((o) => o.deployment === name && o.revision !== undefined)
        .map((o) => o.revision!),
      ...[...this.problems.keys()]
        .filter((k) => k.startsWith(`${name}@`))
        .map((k) => Number(k.slice(name.length + 1))),
    ]);
    return [...numbers]
      .sort((a, b) => b - a)
      .map((revision) => ({
        revision,
        desired: desired[revision] ?? 0,
        ready: ready[revision] ?? 0,
        percent: traffic.find((t) => t.revision === revision)?.percent ?? 0,
        problem: this.problems.get(crashKey(name, revision)) ?? null,
        replicaLimit: this.routedLimits.get(name)?.[revision] ?? null,
      }));
  }

  private replicaViews(name: string): ReplicaView[] {
    return this.observed.filter((o) => o.deployment === name).map((o) => this.replicaView(o));
  }

  private replicaView(o: Observed): ReplicaView {
    return {
      id: o.status.id,
      name: o.status.name,
      revision: o.revision ?? 0,
      index: o.index ?? 0,
      state: o.actual.state,
      url: o.status.url,
      startedAt: o.status.startedAt,
      ...(o.status.exitCode === undefined ? {} : { exitCode: o.status.exitCode }),
      restarts: o.actual.restarts,
      ...(o.status.node === undefined ? {} : { node: o.status.node }),
    };
  }
}

function sameSplit(a: TrafficEntry[], b: TrafficEntry[]): boolean {
  const live = (t: TrafficEntry[]) =>
    t
      .filter((e) => e.percent > 0)
      .map((e) => `${e.revision}:${e.percent}`)
      .sort()
      .join(',');
  return live(a) === live(b);
}

/**
 * Why a replica's model did not load, from its last log lines: the `error FERRY_MODEL_LOAD_FAILED: ...` line
 * `ferry serve` and the image's server print last, else the newest error-level JSON log line.
 */
/** What a caller of the data plane is told of a revision problem (src/control/views.ts RevisionProblem reasons). */
export function unavailableText(reason: string): string {
  const words: Record<string, string> = {
    ModelLoadFailed: 'the model fails to load',
    CrashLoop: 'its replicas keep crashing before they are ready',
    ImageUnavailable: 'its image cannot be had',
    ReplicaCreateFailed: 'the runtime cannot create its replicas',
    SecretMissing: 'a secret it needs is missing',
    NoArtifact: 'its model files are missing',
    NoImage: 'it has no image for this runtime',
    NoGpu: 'it needs a GPU this machine does not have',
  };
  return `${words[reason] ?? 'it cannot start'} (${reason})`;
}

export function loadFailureReason(lines: string[]): string | undefined {
  for (const line of [...lines].reverse()) {
    const m = /(?:^|ferry: )error FERRY_MODEL_LOAD_FAILED: (.*?)(?: \(hint: .*\))?$/.exec(line.trim());
    if (m) return m[1];
  }
  for (const line of [...lines].reverse()) {
    try {
      const record = JSON.parse(line) as {
        level?: number;
        msg?: string;
        reason?: string;
        err?: { message?: string };
      };
      if ((record.level ?? 0) >= 50)
        return [record.msg, record.reason ?? record.err?.message].filter(Boolean).join(': ');
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}
