/**
 * What `ferry k8s apply` keeps in the cluster (issue 12): state lives with the objects, not on the machine that
 * applied them, so any machine (a laptop, a CI job) can apply, promote, undo or ask the status. Pure: objects in,
 * objects out.
 *
 * | ConfigMap (labels: Ferry's, `ferry.dev/record`) | keys                                                      |
 * |-------------------------------------------------|-----------------------------------------------------------|
 * | `ferry-deployment-<dep>` (record: deployment)   | `input.json`: what is applied now (the renderer's input: revisions with their images, traffic, scaling; env values, secret names, never a secret value); `history.json`: the inputs before it, newest last, at most 10, each with when it was left; `next-revision`: the number a new revision gets; `canary.json`: a canary waiting for `ferry k8s promote` (or absent) |
 * | `ferry-namespace` (record: namespace)           | `options.json`: the gateway image and KEDA's Prometheus; `callers.json`: who may call private deployments (token ids and sha256 hashes: a hash is not a token) |
 */
import { isDeepStrictEqual } from 'node:util';
import { FerryError } from '../core/errors.ts';
import type { RouteCaller } from '../core/route-table.ts';
import type { RenderInput } from './render.ts';
import type { KubernetesObject } from './types.ts';

export const RECORD_LABEL = 'ferry.dev/record';
/** Inputs kept for `ferry k8s undo`. */
export const HISTORY_LIMIT = 10;
export const NAMESPACE_RECORD = 'ferry-namespace';

export interface HistoryEntry {
  input: RenderInput;
  /** When this input stopped being the applied one (ISO 8601). */
  leftAt: string;
}

/** A canary rollout that stopped at a step, waiting for `ferry k8s promote` (or `undo`, which abandons it). */
export interface CanaryState {
  /** What was applied before the rollout began. */
  from: RenderInput;
  /** What the rollout ends at. */
  target: RenderInput;
  /** The steps' percents, e.g. [10, 50, 100]. */
  steps: number[];
  /** The percent reached. */
  at: number;
}

export interface DeploymentRecord {
  input: RenderInput;
  history: HistoryEntry[];
  nextRevision: number;
  canary: CanaryState | null;
}

export interface NamespaceRecord {
  gatewayImage: string;
  kedaPrometheus: string | null;
  callers: RouteCaller[];
}

const managed = { 'app.kubernetes.io/managed-by': 'ferry', 'app.kubernetes.io/part-of': 'ferry' };

export function deploymentRecordName(deployment: string): string {
  return `ferry-deployment-${deployment}`;
}

export function deploymentRecordObject(record: DeploymentRecord, namespace: string): KubernetesObject {
  const name = record.input.name;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: deploymentRecordName(name),
      namespace,
      labels: { ...managed, [RECORD_LABEL]: 'deployment', 'ferry.dev/deployment': name },
    },
    data: {
      'input.json': `${JSON.stringify(record.input, null, 2)}\n`,
      'history.json': `${JSON.stringify(record.history, null, 2)}\n`,
      'next-revision': String(record.nextRevision),
      ...(record.canary === null ? {} : { 'canary.json': `${JSON.stringify(record.canary, null, 2)}\n` }),
    },
  };
}

export function namespaceRecordObject(record: NamespaceRecord, namespace: string): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: NAMESPACE_RECORD,
      namespace,
      labels: { ...managed, [RECORD_LABEL]: 'namespace' },
    },
    data: {
      'options.json': `${JSON.stringify({ gatewayImage: record.gatewayImage, kedaPrometheus: record.kedaPrometheus }, null, 2)}\n`,
      'callers.json': `${JSON.stringify(record.callers, null, 2)}\n`,
    },
  };
}

function broken(object: KubernetesObject, what: string): FerryError {
  return new FerryError(
    'FERRY_BAD_REQUEST',
    `ConfigMap/${object.metadata.namespace ?? ''}/${object.metadata.name}: ${what}`,
    {
      hint: "Ferry's record in the cluster was changed by hand. Restore it (kubectl rollout history cannot), or delete it and apply again: the next apply starts a new history.",
    },
  );
}

function jsonKey(object: KubernetesObject, key: string, required: boolean): unknown {
  const data = (object as { data?: Record<string, string> }).data ?? {};
  const text = data[key];
  if (text === undefined) {
    if (required) throw broken(object, `${key} is missing`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw broken(object, `${key} is not JSON (${(error as Error).message})`);
  }
}

function isInput(value: unknown): value is RenderInput {
  const v = value as Partial<RenderInput> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.name === 'string' &&
    typeof v.tenant === 'string' &&
    Array.isArray(v.revisions) &&
    Array.isArray(v.traffic) &&
    v.revisions.every((r) => typeof r?.revision === 'number' && typeof r.image === 'string') &&
    v.traffic.every((t) => typeof t?.revision === 'number' && typeof t.percent === 'number')
  );
}

export function parseDeploymentRecord(object: KubernetesObject): DeploymentRecord {
  const input = jsonKey(object, 'input.json', true);
  if (!isInput(input)) throw broken(object, 'input.json is not a deployment input');
  const history = jsonKey(object, 'history.json', false) ?? [];
  if (!Array.isArray(history) || !history.every((h) => isInput(h?.input) && typeof h.leftAt === 'string'))
    throw broken(object, 'history.json is not a list of inputs');
  const data = (object as { data?: Record<string, string> }).data ?? {};
  const next = Number(data['next-revision']);
  const canary = jsonKey(object, 'canary.json', false) as CanaryState | undefined;
  if (
    canary !== undefined &&
    !(isInput(canary?.from) && isInput(canary.target) && Array.isArray(canary.steps))
  )
    throw broken(object, 'canary.json is not a canary rollout');
  const highest = Math.max(
    0,
    ...[input, ...history.map((h: HistoryEntry) => h.input)].flatMap((i) =>
      i.revisions.map((r) => r.revision),
    ),
  );
  return {
    input,
    history: history as HistoryEntry[],
    nextRevision: Number.isInteger(next) && next > highest ? next : highest + 1,
    canary: canary ?? null,
  };
}

export function parseNamespaceRecord(object: KubernetesObject): NamespaceRecord {
  const options = jsonKey(object, 'options.json', true) as Partial<NamespaceRecord> | null;
  if (typeof options?.gatewayImage !== 'string') throw broken(object, 'options.json has no gatewayImage');
  const callers = jsonKey(object, 'callers.json', false) ?? [];
  if (
    !Array.isArray(callers) ||
    !callers.every((c) => typeof c?.id === 'string' && typeof c.hash === 'string')
  )
    throw broken(object, 'callers.json is not a list of callers');
  return {
    gatewayImage: options.gatewayImage,
    kedaPrometheus: typeof options.kedaPrometheus === 'string' ? options.kedaPrometheus : null,
    callers: callers as RouteCaller[],
  };
}

/**
 * The record as a change begins at `now`: the applied input joins the history (unless the history ends with it),
 * so that `undo` goes back to it whether the change completes or fails half way. The steps then set `input`.
 */
export function beginChange(record: DeploymentRecord, now: string): DeploymentRecord {
  const last = record.history.at(-1);
  if (last !== undefined && isDeepStrictEqual(last.input, record.input)) return record;
  return {
    ...record,
    history: [...record.history, { input: record.input, leftAt: now }].slice(-HISTORY_LIMIT),
  };
}

/** The record with `input` applied (a step of a change): the next revision number stays above every number used. */
export function withInput(record: DeploymentRecord, input: RenderInput): DeploymentRecord {
  const highest = Math.max(0, ...input.revisions.map((r) => r.revision));
  return { ...record, input, nextRevision: Math.max(record.nextRevision, highest + 1) };
}

/**
 * What `ferry k8s undo` goes back to: with no revision, the newest earlier input that differs from the applied
 * one; with `--to-revision N`, the newest earlier input in which N has all the traffic, else any share of it.
 */
export function undoTarget(record: DeploymentRecord, toRevision?: number): RenderInput {
  const earlier = [...record.history].reverse().map((h) => h.input);
  if (toRevision === undefined) {
    const found = earlier.find((i) => !isDeepStrictEqual(i, record.input));
    if (found === undefined)
      throw new FerryError('FERRY_BAD_REQUEST', `${record.input.name} has no earlier state to go back to`, {
        hint: 'Its history is empty: it was applied once.',
      });
    return found;
  }
  const share = (i: RenderInput) => i.traffic.find((t) => t.revision === toRevision)?.percent ?? 0;
  const found = earlier.find((i) => share(i) === 100) ?? earlier.find((i) => share(i) > 0);
  if (found === undefined) {
    const known = [
      ...new Set(earlier.flatMap((i) => i.traffic.filter((t) => t.percent > 0).map((t) => t.revision))),
    ]
      .sort((a, b) => a - b)
      .map((n) => `r${n}`);
    throw new FerryError(
      'FERRY_NOT_FOUND',
      `${record.input.name}: revision ${toRevision} is not in its history (the history has ${known.length > 0 ? known.join(', ') : 'nothing'})`,
      { hint: `Ferry keeps the last ${HISTORY_LIMIT} states of a deployment.` },
    );
  }
  return found;
}
