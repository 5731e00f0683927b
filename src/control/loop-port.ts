/**
 * Where the command service (commands.ts) meets the reconcile loop (loop.ts): what the one may ask of the
 * other. Neither imports the other; controller.ts hands the loop to the command service as a `LoopPort`.
 */
import type { ColdStartView } from './cold-start.ts';
import type { KnownReplica } from './replica-metrics.ts';
import type { Condition } from './types.ts';
import type { CrashView, ReplicaView, RevisionStatusView } from './views.ts';

/** What the loop last observed and decided for one deployment: its part of the deployment's view. */
export interface LoopStatus {
  /** Its replicas as last observed, those on their way out included. */
  replicas: ReplicaView[];
  /** Each revision wanted, with traffic, running or with a problem: replicas wanted and ready (newest first). */
  revisions: RevisionStatusView[];
  /** Ready replicas per revision (as a string key), not counting those on their way out. */
  readyByRevision: Record<string, number>;
  conditions: Condition[];
  lastCrash: CrashView | null;
  /** The newest start from zero replicas, in phases (since this control plane started). */
  lastColdStart: ColdStartView | null;
}

/**
 * What the command service (commands.ts) may ask of the loop; the rest of the loop is out of its reach.
 * A snapshot is for reading: the caller does not change it.
 */
export interface LoopPort {
  /** Asks for a pass soon (the store changed); passes never overlap. */
  nudge(): void;
  /** What the loop knows of one deployment now (empty for one it has not seen). */
  status(deployment: string): LoopStatus;
  /** The revision is rolled out again: forget that it failed and that it was ever ready. */
  forgetFailure(deployment: string, revision: number): void;
  /** A split was asked for by hand: what it waits for is reported anew, even when that did not change. */
  forgetTrafficWait(deployment: string): void;
  /** Every replica of every deployment as last observed (replica-metrics.ts). */
  knownReplicas(): KnownReplica[];
  /** This process reaches replicas at their urls (false on an orchestrator's overlay network: swarm). */
  readonly reachesReplicas: boolean;
}
