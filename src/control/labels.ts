/**
 * The labels Ferry puts on every replica it creates, in one place. The reconciler finds its own replicas
 * by these after a restart (adoption): a replica without `managed-by: ferry` is never touched.
 */
import type { Revision } from './types.ts';

export const LABELS = {
  managedBy: 'ferry.dev/managed-by',
  deployment: 'ferry.dev/deployment',
  revision: 'ferry.dev/revision',
  specHash: 'ferry.dev/spec-hash',
  /** Slot 0..n-1 within the revision: two replicas in one slot are duplicates. */
  index: 'ferry.dev/replica-index',
  /**
   * Which Ferry installation (state directory) runs it: two platforms on one Docker engine (a laptop and a
   * test run) never take each other's replicas for orphans.
   */
  platform: 'ferry.dev/platform',
} as const;

export const MANAGED_BY = 'ferry';

/** The labels every replica of one platform (`platformId`) carries; its lists of replicas filter by them. */
export function platformLabels(platformId: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.platform]: platformId };
}

export function makeReplicaLabels(rev: Revision, index: number): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.deployment]: rev.deployment,
    [LABELS.revision]: String(rev.number),
    [LABELS.specHash]: rev.specHash,
    [LABELS.index]: String(index),
  };
}

/** Where a managed replica says it belongs; `undefined` fields when a label is missing or malformed. */
export interface ReplicaClaim {
  deployment: string | undefined;
  revision: number | undefined;
  specHash: string | undefined;
  index: number | undefined;
}

export function isManaged(labels: Record<string, string>): boolean {
  return labels[LABELS.managedBy] === MANAGED_BY;
}

export function readReplicaClaim(labels: Record<string, string>): ReplicaClaim {
  return {
    deployment: labels[LABELS.deployment] || undefined,
    revision: parseCount(labels[LABELS.revision], 1),
    specHash: labels[LABELS.specHash] || undefined,
    index: parseCount(labels[LABELS.index], 0),
  };
}

function parseCount(text: string | undefined, min: number): number | undefined {
  if (text === undefined || !/^\d{1,9}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min ? n : undefined;
}
