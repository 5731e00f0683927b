/**
 * Server-side apply of rendered objects, and pruning of what Ferry rendered before and no longer does (issue 12,
 * `ferry k8s apply`). Through @kubernetes/client-node's KubernetesObjectApi, with the user's kubeconfig as kubectl
 * uses it.
 *
 * | step                | how                                                                                   |
 * |---------------------|---------------------------------------------------------------------------------------|
 * | apply each object   | PATCH application/apply-patch+yaml, fieldManager `ferry`, in render order (namespace   |
 * |                     | first); `force` only when asked (--force-conflicts)                                   |
 * | a 409 conflict      | collected with the fields and the other manager the cluster names; the rest still     |
 * |                     | applies; the whole fails at the end, saying how to take the fields over               |
 * | any other refusal   | stops at once: FerryError naming the object and the cluster's message                 |
 * | prune               | per kind Ferry renders, objects in the namespace with Ferry's labels (the given        |
 * |                     | selector) that were not rendered are deleted; never a Namespace, never anything else  |
 *
 * The decisions (what conflicts, what to prune) are pure functions here; the calls are thin.
 */
import type { KubernetesObjectApi } from '@kubernetes/client-node';
import { FerryError } from '../core/errors.ts';
import type { KubernetesObject } from './types.ts';

/** What a Ferry render can contain, namespaced, in the order they are pruned (dependents first). */
export const PRUNABLE_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject' },
  { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
];

/** `Kind/namespace/name` (or `Kind/name`): how objects are named in messages. */
export function objectRef(o: KubernetesObject): string {
  return o.metadata.namespace
    ? `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`
    : `${o.kind}/${o.metadata.name}`;
}

/** The cluster's refusal as {status, message}, from an ApiException (body a Status object or its JSON). */
export function refusal(error: unknown): { status: number | null; message: string } {
  const e = error as { code?: unknown; body?: unknown; message?: string };
  const status = typeof e.code === 'number' ? e.code : null;
  let body = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // a plain text body
    }
  }
  const message =
    typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string'
      ? (body as { message: string }).message
      : typeof body === 'string' && body !== ''
        ? body
        : (e.message ?? String(error));
  return { status, message };
}

/** Objects to delete: those listed (Ferry's, by label) that the render no longer has. Pure. */
export function toPrune(
  listed: readonly KubernetesObject[],
  rendered: readonly KubernetesObject[],
): KubernetesObject[] {
  const keep = new Set(rendered.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`));
  return listed.filter(
    (o) => o.kind !== 'Namespace' && !keep.has(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`),
  );
}

export interface ApplyOptions {
  /** Take over fields another manager owns (--force-conflicts). */
  force?: boolean;
  /** The cluster checks and computes, and keeps nothing (dryRun=All). */
  dryRun?: boolean;
  onProgress?: (line: string) => void;
}

export interface ApplyReport {
  applied: string[];
  conflicts: string[];
}

/**
 * Applies every object (server-side apply, fieldManager `ferry`). Conflicts are collected and thrown together at
 * the end (FERRY_CONFLICT); any other refusal is thrown at once, naming the object.
 */
export async function serverSideApply(
  api: KubernetesObjectApi,
  objects: readonly KubernetesObject[],
  options: ApplyOptions = {},
): Promise<ApplyReport> {
  const { PatchStrategy, loadAllYaml } = await import('@kubernetes/client-node');
  const { toYaml } = await import('./render.ts');
  // Through client-node's own models: it serializes what it sends with them, and a plain object's fields it
  // names otherwise are dropped (a NetworkPolicy rule's `from` is its `_from`: sent as a plain object, the rule
  // would lose its sources and admit ingress from anywhere; test/k8s/fake-api-server.test.ts shows it).
  const modelled = loadAllYaml(toYaml(objects));
  const report: ApplyReport = { applied: [], conflicts: [] };
  for (const [i, o] of objects.entries()) {
    try {
      await api.patch(
        modelled[i] as never,
        undefined,
        options.dryRun ? 'All' : undefined,
        'ferry',
        options.force === true,
        PatchStrategy.ServerSideApply,
      );
      report.applied.push(objectRef(o));
      options.onProgress?.(`applied ${objectRef(o)}`);
    } catch (error) {
      const r = refusal(error);
      if (r.status === 409) {
        report.conflicts.push(`${objectRef(o)}: ${r.message}`);
        continue;
      }
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `the cluster refused ${objectRef(o)}${r.status === null ? '' : ` (${r.status})`}: ${r.message}`,
      );
    }
  }
  if (report.conflicts.length > 0)
    throw new FerryError(
      'FERRY_CONFLICT',
      `fields of ${report.conflicts.length} object(s) are managed by someone else:\n  ${report.conflicts.join('\n  ')}`,
      {
        hint: 'Another tool (kubectl edit, a controller) owns them. Take them over with --force-conflicts, or leave them to it by removing them from ferry.yaml.',
        details: report.conflicts,
      },
    );
  return report;
}

/** Deletes what `selector` (Ferry's labels) finds in `namespace` and the render no longer has; returns them. */
export async function prune(
  api: KubernetesObjectApi,
  namespace: string,
  selector: string,
  rendered: readonly KubernetesObject[],
  options: ApplyOptions = {},
): Promise<string[]> {
  const listed: KubernetesObject[] = [];
  for (const { apiVersion, kind } of PRUNABLE_KINDS) {
    try {
      const list = await api.list(
        apiVersion,
        kind,
        namespace,
        undefined,
        undefined,
        undefined,
        undefined,
        selector,
      );
      for (const item of list.items as unknown as KubernetesObject[])
        listed.push({ ...item, apiVersion, kind });
    } catch (error) {
      // A kind the cluster does not serve (KEDA not installed) has nothing of Ferry's to prune.
      if (refusal(error).status === 404) continue;
      throw error;
    }
  }
  const gone = toPrune(listed, rendered);
  for (const o of gone) {
    if (!options.dryRun) await api.delete(o as never);
    options.onProgress?.(`pruned ${objectRef(o)}`);
  }
  return gone.map(objectRef);
}
