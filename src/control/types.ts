/**
 * Shapes shared by the control plane's pure decisions (reconciler, rollouts). No I/O here: the loop that
 * lists replicas, applies actions and stores revisions lives elsewhere and feeds these functions `now`.
 */

/** An immutable, numbered snapshot of a deployment's spec. A new spec makes a new revision. */
export interface Revision {
  deployment: string;
  /** 1, 2, 3, ... per deployment; never reused. */
  number: number;
  /** Hash of everything that shapes a replica (image, env, resources, ...). Stored as a label on it. */
  specHash: string;
  image: string;
  /** Replica count the revision was created with (the reconciler's desired count may differ in a rollout). */
  replicas: number;
  createdAt: number;
}

export type ReplicaState = 'starting' | 'ready' | 'failed' | 'exited';

/** A replica as a runtime lists it (process, container). Ferry knows its own by their labels (labels.ts). */
export interface ActualReplica {
  id: string;
  labels: Record<string, string>;
  state: ReplicaState;
  exitCode?: number;
  startedAt: number;
  /** Restarts the runtime did by itself (engine restart policy); informative only. */
  restarts: number;
}

/**
 * What the reconciler asks the runtime to do. Apply in the order given: for a replica that serves
 * traffic, `drain` (out of the router, in-flight requests finish) comes right before its `remove`.
 */
export type Action =
  | { kind: 'create'; deployment: string; revision: Revision; index: number }
  | { kind: 'drain'; id: string }
  | { kind: 'remove'; id: string; reason: RemoveReason };

export type RemoveReason =
  /** Its deployment no longer exists. */
  | 'orphaned'
  /** Managed by Ferry but a deployment, revision or slot label is missing or malformed. */
  | 'invalid-labels'
  /** Its revision is no longer desired (rolled out, rolled back). */
  | 'revision-retired'
  /** More replicas than desired. */
  | 'scale-down'
  /** Its spec-hash label differs from its revision's hash. */
  | 'spec-changed'
  /** A second replica in the same slot (e.g. created twice around a control-plane restart). */
  | 'duplicate'
  /** It failed or exited; a new one replaces it after the crash backoff. */
  | 'crashed';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** Status in the knative style: a type, a tri-state status, a CamelCase reason and a human message. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  /** When status or reason last changed. */
  since: number;
}
