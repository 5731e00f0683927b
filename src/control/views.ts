/**
 * What the control-plane API shows and what it asks the controller to do. The API (api/) reads models,
 * versions, revisions, traffic and events from the store directly; every change of desired state and every
 * question about live replicas goes through `ControlPlane`, implemented by the command service (commands.ts).
 * These shapes are the API's JSON bodies: plain data, no class instances, timestamps in ms since the epoch.
 */
import type { ScalingSettings } from '../autoscaler/types.ts';
import type { ChangeWatcher } from './changes.ts';
import type { ColdStartView } from './cold-start.ts';
import type { Usage } from './quota.ts';
import type { RolloutPhase } from './rollout.ts';
import type {
  Deployment,
  DeploymentInput,
  DeploymentPatch,
  EventRecord,
  StoredRevision,
  TrafficEntry,
  TrafficTarget,
} from './store/store.ts';
import type { Condition } from './types.ts';

/** How a new revision replaces the serving one. Stored per deployment; default rolling with maxSurge 1. */
export type StrategyInput =
  | { kind: 'rolling'; maxSurge?: number }
  | { kind: 'canary'; steps: Array<{ percent: number; pauseMs?: number }> };

export interface RolloutView {
  deployment: string;
  /** Revision traffic moves away from. */
  from: number;
  /** Revision traffic moves to. */
  to: number;
  phase: RolloutPhase;
  /** Share of traffic on `to` right now. */
  percent: number;
  strategy: StrategyInput;
  /** Canary: the step being worked on (0-based) of `strategy.steps`. */
  step: number;
  startedAt: number;
  updatedAt: number;
  /** One line for humans: what it waits for. */
  message: string;
}

export interface ReplicaView {
  id: string;
  name: string;
  revision: number;
  index: number;
  state: 'starting' | 'ready' | 'failed' | 'exited';
  url: string;
  startedAt: number;
  exitCode?: number;
  restarts: number;
  /** The machine it runs on (swarm: the node's hostname); left out on one machine. */
  node?: string;
}

/** A replica as a Prometheus scrape target (GET /v1/prometheus/targets): its labels, all from the store. */
export interface ScrapeTargetView {
  tenant: string;
  /** The deployment's plain name (in its tenant). */
  deployment: string;
  revision: number;
  /** The replica's name (what GET /v1/replicas/{replica}/metrics takes). */
  replica: string;
  /** The model the revision serves (the platform's model name). */
  model: string;
}

/** The newest crash of one of the deployment's replicas: why CrashLoopBackOff, in the status itself. */
export interface CrashView {
  replica: string;
  revision: number;
  exitCode?: number;
  at: number;
  /** Its last log lines (at most 10). */
  logTail: string[];
}

/** What keeps a revision from serving. */
export interface RevisionProblem {
  /** CamelCase: ModelLoadFailed, CrashLoop, SecretMissing, NoArtifact, NoImage, ReplicaCreateFailed, ... */
  reason: string;
  message: string;
  /** It will not fix itself: a rollout to the revision aborts, `--wait` fails at once. */
  fatal: boolean;
  since: number;
}

/** A revision that runs, is wanted or has a problem: replicas wanted and ready, and what is wrong if anything. */
export interface RevisionStatusView {
  revision: number;
  /** Replicas the controller wants of it now. */
  desired: number;
  ready: number;
  /** Live traffic share right now. */
  percent: number;
  problem: RevisionProblem | null;
  /**
   * Requests one of its replicas takes at once before it sheds them (503 FERRY_QUEUE_FULL), as they reported it
   * and the gateway's route table last carried it: the gateway holds what is past it (autoscaled deployments).
   * null: not autoscaled, or not known yet.
   */
  replicaLimit: number | null;
}

export interface DeploymentView extends Deployment {
  tenant: string;
  strategy: StrategyInput;
  traffic: TrafficEntry[];
  /** A split asked for by hand that waits for its revisions' replicas to be ready; null when none waits. */
  trafficTarget: TrafficTarget | null;
  /** Per revision: wanted, ready, problems (newest first). */
  revisionStatus: RevisionStatusView[];
  /** The runtime replicas run on: limits are enforced on docker, only advised (threads) on process. */
  runtime: 'process' | 'docker' | 'swarm';
  rollout: RolloutView | null;
  replicaStatus: ReplicaView[];
  conditions: Condition[];
  lastCrash: CrashView | null;
  /** The newest start from zero replicas, in phases (cold-start.ts); null when none since the control plane started. */
  lastColdStart: ColdStartView | null;
  /** Gateway URL that serves it: `${gateway}/v2/models/${name}/infer` (`${gateway}/t/${tenant}/v2/...` outside the default tenant). */
  endpoint: string;
}

export interface DescribeView extends DeploymentView {
  revisions: StoredRevision[];
  events: EventRecord[];
}

export interface LogLine {
  /** ms since epoch when collected (or as the replica wrote it, when known). */
  at: number;
  replica: string;
  revision: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface LogQuery {
  revision?: number;
  /** Last N lines per replica (default 200). */
  tail?: number;
}

/** What `deploy` takes: the deployment, its strategy, and how it scales. */
export type DeployRequest = Omit<DeploymentInput, 'replicas'> & {
  /**
   * Replicas to start with. Left out: 1, or with autoscaling the settings' initialScale (kept within
   * minReplicas..maxReplicas); given with autoscaling, it must lie within minReplicas..maxReplicas.
   */
  replicas?: number;
  strategy?: StrategyInput;
  /**
   * Autoscaling settings over the defaults; they win over the version's ferry.yaml `scaling:`. null: a fixed
   * replica count, whatever the file says. Left out: the file's block when it has one, else a fixed count.
   */
  scaling?: Partial<ScalingSettings> | null;
};

/** The controller as the API sees it. Methods throw FerryError (FERRY_NOT_FOUND, FERRY_CONFLICT, ...). */
export interface ControlPlane {
  /**
   * Creates the deployment (revision 1, 100% traffic) and starts its replicas; autoscaled when the request or
   * the version's ferry.yaml says so (docs/autoscaling.md, "At deploy time").
   */
  deploy(input: DeployRequest): DeploymentView;
  /**
   * Changes the spec; a new revision rolls out with the deployment's strategy. A new version whose ferry.yaml
   * `scaling:` differs from the previous version's brings its autoscaling settings along.
   */
  update(name: string, patch: DeploymentPatch & { strategy?: StrategyInput }): DeploymentView;
  /** Desired replicas; same revision, no rollout. */
  scale(name: string, replicas: number): DeploymentView;
  /** Autoscaling on (these settings over the defaults) or off (null: the replica count stays where it is). */
  setScaling(name: string, scaling: Partial<ScalingSettings> | null): DeploymentView;
  /** Sets the split by hand (A/B, shadow). Refused with FERRY_CONFLICT while a rollout is in progress. */
  setTraffic(name: string, entries: TrafficEntry[]): DeploymentView;
  /** Deletes the deployment; its replicas are drained and removed. */
  remove(name: string): void;
  /** Moves a model alias; deployments following it roll out. Returns the deployments that changed. */
  setAlias(model: string, alias: string, version: string): Array<{ deployment: string; revision: number }>;
  view(name: string): DeploymentView;
  /** Every deployment, or those of one tenant. */
  list(tenant?: string): DeploymentView[];
  /** Tokens were made or revoked: the gateway's callers change. */
  accessChanged(): void;
  /** Refuses (FERRY_CONFLICT) to change a secret that a deployment in the middle of a rollout uses. */
  checkSecretChange(secret: string): void;
  /**
   * A secret got a new version: every deployment whose newest revision pinned an older one gets a new revision
   * with the new version, rolled out with its strategy. Returns those deployments.
   */
  secretChanged(secret: string): Array<{ deployment: string; revision: number }>;
  /** What a tenant's deployments use, against its quotas. */
  tenantUsage(tenant: string): Usage;
  rollout(name: string): RolloutView | null;
  promote(name: string): RolloutView;
  abort(name: string): RolloutView;
  /** Rolls out an earlier revision (default: the one before the serving one). */
  undo(name: string, toRevision?: number): RolloutView;
  logs(name: string, query: LogQuery): Promise<LogLine[]>;
  /** Lines as they come (after the last `tail`), until `signal` aborts. */
  followLogs(name: string, query: LogQuery, signal: AbortSignal): AsyncIterable<LogLine>;
  /** The ready replicas of every tenant, as Prometheus scrape targets (replica-metrics.ts). */
  scrapeTargets(): ScrapeTargetView[];
  /**
   * The /metrics of a replica the controller knows, by name (replica-metrics.ts): FERRY_NOT_FOUND,
   * FERRY_REPLICA_UNAVAILABLE or FERRY_UPSTREAM_FAILED when it cannot be had.
   */
  replicaMetrics(replica: string): Promise<{ contentType: string; body: string }>;
  /**
   * Calls `watcher` with each event as it is recorded and after each pass of the loop (changes.ts), until the
   * function returned is called. Every tenant's: the caller filters. The watcher must be cheap and not throw.
   */
  watch(watcher: ChangeWatcher): () => void;
}
