/**
 * Builders for the control plane's table tests, knative style:
 * `replica('iris', 1, withIndex(2), withState('failed', 1))`. Test-only; not exported from index.ts.
 */
import { LABELS, makeReplicaLabels } from './labels.ts';
import type { DesiredState } from './reconcile.ts';
import type { Action, ActualReplica, RemoveReason, ReplicaState, Revision } from './types.ts';

/** Revision n of a deployment; its spec hash is `<name>-h<n>` unless told otherwise. */
export function rev(deployment: string, number: number, specHash = `${deployment}-h${number}`): Revision {
  return { deployment, number, specHash, image: `${deployment}:${number}`, replicas: 1, createdAt: 0 };
}

/** `desired(['iris', [1, 2], [2, 1]])`: iris wants 2 replicas of revision 1 and 1 of revision 2. */
export function desired(...deployments: Array<[string, ...Array<[number, number]>]>): DesiredState {
  return {
    deployments: deployments.map(([name, ...revs]) => ({
      name,
      revisions: revs.map(([n, replicas]) => ({ revision: rev(name, n), replicas })),
    })),
  };
}

type ReplicaOption = (r: ActualReplica) => void;

/** A ready replica of slot 0, id `<name>-<revision>-<slot>`, labelled the way Ferry labels its own. */
export function replica(deployment: string, revision: number, ...options: ReplicaOption[]): ActualReplica {
  const r: ActualReplica = {
    id: '',
    labels: makeReplicaLabels(rev(deployment, revision), 0),
    state: 'ready',
    startedAt: 0,
    restarts: 0,
  };
  for (const option of options) option(r);
  if (r.id === '') r.id = `${deployment}-${revision}-${r.labels[LABELS.index] ?? 'x'}`;
  return r;
}

export const withIndex =
  (index: number): ReplicaOption =>
  (r) => {
    r.labels[LABELS.index] = String(index);
  };
export const withState =
  (state: ReplicaState, exitCode?: number): ReplicaOption =>
  (r) => {
    r.state = state;
    if (exitCode !== undefined) r.exitCode = exitCode;
  };
export const withId =
  (id: string): ReplicaOption =>
  (r) => {
    r.id = id;
  };
export const withStartedAt =
  (startedAt: number): ReplicaOption =>
  (r) => {
    r.startedAt = startedAt;
  };
/** Set labels; `undefined` deletes one. */
export const withLabels =
  (patch: Record<string, string | undefined>): ReplicaOption =>
  (r) => {
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete r.labels[k];
      else r.labels[k] = v;
    }
  };

export const create = (deployment: string, revision: number, index: number): Action => ({
  kind: 'create',
  deployment,
  revision: rev(deployment, revision),
  index,
});
export const remove = (id: string, reason: RemoveReason): Action => ({ kind: 'remove', id, reason });
export const drain = (id: string): Action => ({ kind: 'drain', id });
/** A ready replica leaves: drained first, then removed. */
export const drainAndRemove = (id: string, reason: RemoveReason): Action[] => [drain(id), remove(id, reason)];
