/**
 * `ferry k8s apply | promote | undo | status` against a cluster (issue 12): read Ferry's records (records.ts),
 * plan the steps (rollout-plan.ts), and for each step render every deployment of the namespace (the gateway's
 * route file needs them all), check the objects offline, server-side apply them with the records, prune what Ferry
 * rendered before and no longer does, and wait until every Deployment of the step has rolled out
 * (rollout-status.ts: kubectl's rules) before the next step. A failed rollout (ProgressDeadlineExceeded) or the
 * timeout stops the change where it is; the record says what is applied, and `undo` goes back.
 *
 * The clock and the sleep come in (RunContext), so the decisions stay outside and the waits are the caller's.
 */
import type { KubernetesObjectApi } from '@kubernetes/client-node';
import { FerryError } from '../core/errors.ts';
import type { RouteCaller } from '../core/route-table.ts';
import { prune, refusal, serverSideApply } from './apply.ts';
import {
  beginChange,
  type DeploymentRecord,
  deploymentRecordObject,
  type NamespaceRecord,
  namespaceRecordObject,
  parseDeploymentRecord,
  parseNamespaceRecord,
  RECORD_LABEL,
  undoTarget,
  withInput,
} from './records.ts';
import { type RenderInput, render } from './render.ts';
import { type RolloutStep, rolloutSteps, wantedInput } from './rollout-plan.ts';
import { overallStatus, type RolloutStatus, rolloutStatus } from './rollout-status.ts';
import type { KubernetesObject } from './types.ts';
import { assertRenderedValid } from './validate.ts';

export const GATEWAY_DEPLOYMENT = 'ferry-gateway';
const FERRY_SELECTOR = 'app.kubernetes.io/managed-by=ferry';

export interface RunContext {
  api: KubernetesObjectApi;
  namespace: string;
  /** Take over fields another manager owns. */
  force: boolean;
  /** How long one step may wait for its rollouts. */
  timeoutMs: number;
  onProgress: (line: string) => void;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  /** Between reads of the Deployments while waiting; default 1 s. */
  pollMs?: number;
}

export interface ClusterState {
  deployments: Map<string, DeploymentRecord>;
  namespace: NamespaceRecord | null;
}

/** Ferry's records in the namespace (none when it does not exist yet). */
export async function readState(api: KubernetesObjectApi, namespace: string): Promise<ClusterState> {
  const list = await api.list(
    'v1',
    'ConfigMap',
    namespace,
    undefined,
    undefined,
    undefined,
    undefined,
    RECORD_LABEL,
  );
  const state: ClusterState = { deployments: new Map(), namespace: null };
  for (const item of list.items as unknown as KubernetesObject[]) {
    const object = { ...item, apiVersion: 'v1', kind: 'ConfigMap' };
    const kind = item.metadata.labels?.[RECORD_LABEL];
    if (kind === 'namespace') state.namespace = parseNamespaceRecord(object);
    else if (kind === 'deployment') {
      const record = parseDeploymentRecord(object);
      state.deployments.set(record.input.name, record);
    }
  }
  return state;
}

/** Every object of the namespace's state, rendered and checked, the records last. */
export function stateObjects(state: ClusterState, namespace: string): KubernetesObject[] {
  if (state.namespace === null) throw new Error('stateObjects: no namespace record');
  const inputs = [...state.deployments.values()].map((r) => r.input);
  const rendered = render(inputs, {
    namespace,
    gatewayImage: state.namespace.gatewayImage,
    kedaPrometheus: state.namespace.kedaPrometheus,
    callers: state.namespace.callers,
  });
  const records = [
    namespaceRecordObject(state.namespace, namespace),
    ...[...state.deployments.values()]
      .sort((a, b) => (a.input.name < b.input.name ? -1 : 1))
      .map((r) => deploymentRecordObject(r, namespace)),
  ];
  const objects = [...rendered, ...records];
  assertRenderedValid(objects);
  return objects;
}

/** Applies the state (server-side apply, records included) and prunes what Ferry no longer renders. */
export async function applyState(ctx: RunContext, state: ClusterState, dryRun = false): Promise<void> {
  const objects = stateObjects(state, ctx.namespace);
  await serverSideApply(ctx.api, objects, { force: ctx.force, dryRun });
  const gone = await prune(ctx.api, ctx.namespace, FERRY_SELECTOR, objects, { dryRun });
  for (const ref of gone) ctx.onProgress(`  ${dryRun ? 'would remove' : 'removed'} ${ref}`);
}

/** The Deployments a deployment's input runs, and the gateway's. */
export function deploymentNames(input: RenderInput): string[] {
  return [...input.revisions.map((r) => `${input.name}-r${r.revision}`), GATEWAY_DEPLOYMENT];
}

async function readDeployment(
  api: KubernetesObjectApi,
  namespace: string,
  name: string,
): Promise<KubernetesObject | null> {
  try {
    return (await api.read({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace },
    })) as unknown as KubernetesObject;
  } catch (error) {
    if (refusal(error).status === 404) return null;
    throw error;
  }
}

/** Each named Deployment's rollout now (one that does not exist is progressing: not created yet). */
export async function rolloutsNow(
  api: KubernetesObjectApi,
  namespace: string,
  names: readonly string[],
): Promise<RolloutStatus[]> {
  return Promise.all(
    names.map(async (name) => {
      const d = await readDeployment(api, namespace, name);
      return d === null
        ? { state: 'progressing' as const, message: `${name}: not created yet` }
        : rolloutStatus(d);
    }),
  );
}

/** Waits until every named Deployment has rolled out; throws when one failed or the timeout passed. */
export async function waitForRollouts(ctx: RunContext, names: readonly string[]): Promise<RolloutStatus[]> {
  const deadline = ctx.now().getTime() + ctx.timeoutMs;
  let said = '';
  for (;;) {
    const statuses = await rolloutsNow(ctx.api, ctx.namespace, names);
    const waiting = statuses.filter((s) => s.state !== 'complete').map((s) => s.message);
    const line = waiting.join('; ');
    if (line !== '' && line !== said) ctx.onProgress(`  waiting: ${line}`);
    said = line;
    const state = overallStatus(statuses);
    if (state === 'complete') return statuses;
    if (state === 'failed')
      throw new FerryError(
        'FERRY_DEADLINE_EXCEEDED',
        `rollout failed: ${statuses
          .filter((s) => s.state === 'failed')
          .map((s) => s.message)
          .join('; ')}`,
        {
          hint: 'kubectl describe the Deployment and its pods for why (image pull, crash, a probe). `ferry k8s undo` goes back to what was applied before.',
        },
      );
    if (ctx.now().getTime() >= deadline)
      throw new FerryError(
        'FERRY_DEADLINE_EXCEEDED',
        `still waiting after ${Math.round(ctx.timeoutMs / 1000)} s: ${line}`,
        {
          hint: 'The change is applied and the cluster goes on with it: `ferry k8s status` follows it; `ferry k8s undo` goes back.',
        },
      );
    await ctx.sleep(ctx.pollMs ?? 1000);
  }
}

/** The deployment's record, or a clear error. */
function recordOf(state: ClusterState, name: string, namespace: string): DeploymentRecord {
  const record = state.deployments.get(name);
  if (record === undefined) {
    const known = [...state.deployments.keys()].sort();
    throw new FerryError(
      'FERRY_NOT_FOUND',
      `no deployment ${name} in namespace ${namespace}${known.length > 0 ? ` (there: ${known.join(', ')})` : ''}`,
      { hint: 'ferry k8s apply <dir> creates it; --namespace or --tenant names another namespace.' },
    );
  }
  return record;
}

type Outcome = { kind: 'done'; input: RenderInput } | { kind: 'paused'; at: number; input: RenderInput };

/**
 * Runs `steps[from..]` for one deployment: each applied with the rest of the namespace, then waited for. After a
 * canary step, waits `pauseMs` and goes on, or (null) stops there: the record keeps the canary for `promote`.
 */
async function runSteps(
  ctx: RunContext,
  state: ClusterState,
  name: string,
  change: { from: RenderInput; target: RenderInput; canary: number[] },
  steps: readonly RolloutStep[],
  first: number,
  pauseMs: number | null,
): Promise<Outcome> {
  let record = recordOf(state, name, ctx.namespace);
  for (let i = first; i < steps.length; i++) {
    const step = steps[i]!;
    const last = i === steps.length - 1;
    const pause = step.canary !== undefined && pauseMs === null;
    record = {
      ...withInput(record, step.input),
      canary: pause
        ? { from: change.from, target: change.target, steps: change.canary, at: step.canary ?? 0 }
        : null,
    };
    state.deployments.set(name, record);
    ctx.onProgress(`${name}: ${step.say} (step ${i + 1} of ${steps.length})`);
    await applyState(ctx, state);
    await waitForRollouts(ctx, deploymentNames(step.input));
    if (pause) return { kind: 'paused', at: step.canary ?? 0, input: step.input };
    if (step.canary !== undefined && pauseMs !== null && !last) {
      ctx.onProgress(`  holding at ${step.canary}% for ${Math.round(pauseMs / 1000)} s`);
      await ctx.sleep(pauseMs);
    }
  }
  return { kind: 'done', input: record.input };
}

export interface ApplyRequest {
  /** The spec's input: one revision (its number is chosen here) at 100%. */
  fromSpec: RenderInput;
  /** Flags that set the namespace's options; the record's (or the defaults) otherwise. */
  gatewayImage?: string;
  kedaPrometheus?: string;
  defaultGatewayImage: string;
  /** Canary percents (rising, the last 100), or empty. */
  canary: number[];
  /** Hold at each canary step this long, or null: stop at the first one until `promote`. */
  pauseMs: number | null;
  /** Only check with the cluster (dryRun=All) what the change would end at. */
  dryRun: boolean;
}

export interface ApplyResult {
  revision: number;
  isNew: boolean;
  outcome: Outcome;
  steps: string[];
}

/** The Secret a deployment's revisions read (`<dep>-secrets`) has every key they name, or a clear error. */
async function checkSecrets(ctx: RunContext, input: RenderInput): Promise<void> {
  const wanted = [...new Set(input.revisions.flatMap((r) => r.secretRefs))].sort();
  if (wanted.length === 0) return;
  const name = `${input.name}-secrets`;
  let data: Record<string, string> = {};
  try {
    const secret = (await ctx.api.read({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: ctx.namespace },
    })) as unknown as { data?: Record<string, string> };
    data = secret.data ?? {};
  } catch (error) {
    if (refusal(error).status !== 404) throw error;
  }
  const missing = wanted.filter((k) => data[k] === undefined);
  if (missing.length > 0)
    throw new FerryError(
      'FERRY_NOT_FOUND',
      `${input.name} reads the secret(s) ${missing.join(', ')}, which the Secret ${ctx.namespace}/${name} does not have`,
      {
        hint: `Ferry never puts secret values in what it renders. Set them with: ferry k8s secrets set ${input.name} ${missing[0]} --namespace ${ctx.namespace} (the value from stdin)`,
      },
    );
}

/** `ferry k8s apply`: the spec's revision becomes what serves, through the steps of rollout-plan.ts. */
export async function applyDeployment(ctx: RunContext, request: ApplyRequest): Promise<ApplyResult> {
  const state = await readState(ctx.api, ctx.namespace);
  const name = request.fromSpec.name;
  const other = [...state.deployments.values()].find((r) => r.input.tenant !== request.fromSpec.tenant);
  if (other !== undefined)
    throw new FerryError(
      'FERRY_CONFLICT',
      `namespace ${ctx.namespace} holds deployments of tenant ${other.input.tenant}, not ${request.fromSpec.tenant}`,
      {
        hint: 'One namespace per tenant: leave out --namespace (ferry-<tenant>), or give the tenant of that namespace.',
      },
    );
  state.namespace = {
    gatewayImage: request.gatewayImage ?? state.namespace?.gatewayImage ?? request.defaultGatewayImage,
    kedaPrometheus: request.kedaPrometheus ?? state.namespace?.kedaPrometheus ?? null,
    callers: state.namespace?.callers ?? [],
  };
  const record = state.deployments.get(name) ?? null;
  if (record?.canary)
    throw new FerryError('FERRY_CONFLICT', `a canary of ${name} is at ${record.canary.at}%`, {
      hint: `Finish it first: ferry k8s promote ${name} (next step) or ferry k8s undo ${name} (back to before it).`,
    });
  const wanted = wantedInput(record?.input ?? null, request.fromSpec, record?.nextRevision ?? 1);
  const steps = rolloutSteps(record?.input ?? null, wanted.input, request.canary);
  await checkSecrets(ctx, wanted.input);
  const says = steps.map((s) => s.say);
  if (request.dryRun) {
    state.deployments.set(name, {
      input: wanted.input,
      history: record?.history ?? [],
      nextRevision: wanted.revision + 1,
      canary: null,
    });
    await applyState(ctx, state, true);
    return {
      revision: wanted.revision,
      isNew: wanted.isNew,
      outcome: { kind: 'done', input: wanted.input },
      steps: says,
    };
  }
  const from = record?.input ?? wanted.input;
  state.deployments.set(
    name,
    record === null
      ? { input: wanted.input, history: [], nextRevision: wanted.revision + 1, canary: null }
      : beginChange(record, ctx.now().toISOString()),
  );
  const outcome = await runSteps(
    ctx,
    state,
    name,
    { from, target: wanted.input, canary: request.canary },
    steps,
    0,
    request.pauseMs,
  );
  return { revision: wanted.revision, isNew: wanted.isNew, outcome, steps: says };
}

/** `ferry k8s promote`: a canary waiting at a step goes to the next one (and stops there unless it was the last). */
export async function promoteDeployment(
  ctx: RunContext,
  name: string,
  pauseMs: number | null,
): Promise<Outcome> {
  const state = await readState(ctx.api, ctx.namespace);
  const record = recordOf(state, name, ctx.namespace);
  const canary = record.canary;
  if (canary === null)
    throw new FerryError('FERRY_CONFLICT', `${name} has no canary waiting to be promoted`, {
      hint: 'ferry k8s apply <dir> --canary 10,50,100 starts one.',
    });
  const steps = rolloutSteps(canary.from, canary.target, canary.steps);
  const at = steps.findIndex((s) => s.canary === canary.at);
  return runSteps(
    ctx,
    state,
    name,
    { from: canary.from, target: canary.target, canary: canary.steps },
    steps,
    at + 1,
    pauseMs,
  );
}

/** `ferry k8s undo [--to-revision N]`: back to an earlier state (an unfinished canary: to before it). */
export async function undoDeployment(
  ctx: RunContext,
  name: string,
  toRevision?: number,
): Promise<{ target: RenderInput; outcome: Outcome }> {
  const state = await readState(ctx.api, ctx.namespace);
  const record = recordOf(state, name, ctx.namespace);
  const target =
    record.canary !== null && toRevision === undefined ? record.canary.from : undoTarget(record, toRevision);
  await checkSecrets(ctx, target);
  const steps = rolloutSteps(record.input, target);
  state.deployments.set(name, { ...beginChange(record, ctx.now().toISOString()), canary: null });
  const outcome = await runSteps(
    ctx,
    state,
    name,
    { from: record.input, target, canary: [] },
    steps,
    0,
    null,
  );
  return { target, outcome };
}

export interface DeploymentStatusReport {
  name: string;
  traffic: string;
  canary: string | null;
  rollouts: RolloutStatus[];
}

/** `ferry k8s status`: each deployment's (or one's) revisions and the gateway, as the cluster reports them. */
export async function statusOf(
  api: KubernetesObjectApi,
  namespace: string,
  name?: string,
): Promise<DeploymentStatusReport[]> {
  const state = await readState(api, namespace);
  const records =
    name === undefined
      ? [...state.deployments.values()].sort((a, b) => (a.input.name < b.input.name ? -1 : 1))
      : [recordOf(state, name, namespace)];
  return Promise.all(
    records.map(async (r) => ({
      name: r.input.name,
      traffic: r.input.traffic.map((t) => `r${t.revision} ${t.percent}%`).join(', '),
      canary:
        r.canary === null
          ? null
          : `canary at ${r.canary.at}% of ${r.canary.steps.join(',')}: ferry k8s promote ${r.input.name} goes on, ferry k8s undo ${r.input.name} goes back`,
      rollouts: await rolloutsNow(api, namespace, deploymentNames(r.input)),
    })),
  );
}

/**
 * Changes who may call private deployments (`ferry k8s token create | revoke`): the namespace's callers, then the
 * gateway's route file, applied and waited for (the gateway rolls out with the new table).
 */
export async function changeCallers(
  ctx: RunContext,
  defaultGatewayImage: string,
  change: (callers: RouteCaller[]) => RouteCaller[],
): Promise<RouteCaller[]> {
  const state = await readState(ctx.api, ctx.namespace);
  const current = state.namespace ?? { gatewayImage: defaultGatewayImage, kedaPrometheus: null, callers: [] };
  state.namespace = { ...current, callers: change(current.callers) };
  await applyState(ctx, state);
  await waitForRollouts(ctx, [GATEWAY_DEPLOYMENT]);
  return state.namespace.callers;
}

/** The namespace's callers (none before anything was applied). */
export async function callersOf(api: KubernetesObjectApi, namespace: string): Promise<RouteCaller[]> {
  return (await readState(api, namespace)).namespace?.callers ?? [];
}

/**
 * Sets (value) or removes (null) one key of the Secret `<deployment>-secrets` (`ferry k8s secrets set | unset`),
 * creating the namespace as Ferry renders it if needed. Each key has its own field manager (`ferry-secret-<KEY>`)
 * in a server-side apply, so setting one key never touches another.
 */
export async function setSecretKey(
  ctx: RunContext,
  deployment: string,
  key: string,
  value: string | null,
): Promise<void> {
  const { PatchStrategy } = await import('@kubernetes/client-node');
  const [namespaceObject] = render([], { namespace: ctx.namespace, gatewayImage: 'unused' });
  await serverSideApply(ctx.api, [namespaceObject!], { force: ctx.force });
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: `${deployment}-secrets`,
      namespace: ctx.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'ferry', 'ferry.dev/deployment': deployment },
    },
    type: 'Opaque',
    ...(value === null ? {} : { data: { [key]: Buffer.from(value, 'utf8').toString('base64') } }),
  };
  try {
    await ctx.api.patch(
      secret as never,
      undefined,
      undefined,
      `ferry-secret-${key}`,
      true,
      PatchStrategy.ServerSideApply,
    );
  } catch (error) {
    const r = refusal(error);
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `the cluster refused Secret/${ctx.namespace}/${deployment}-secrets${r.status === null ? '' : ` (${r.status})`}: ${r.message}`,
    );
  }
}

/**
 * `ferry k8s delete`: the gateway's routes leave the deployment first (and every gateway rolls out with that
 * table), then its objects and its record are pruned. Its Secret (`<name>-secrets`) stays: it is the user's data,
 * and `ferry k8s secrets unset` or kubectl removes it.
 */
export async function deleteDeployment(ctx: RunContext, name: string): Promise<void> {
  const state = await readState(ctx.api, ctx.namespace);
  const record = recordOf(state, name, ctx.namespace);
  if (record.input.traffic.length > 0) {
    state.deployments.set(name, { ...record, input: { ...record.input, traffic: [] }, canary: null });
    ctx.onProgress(`${name}: the gateway stops routing to it (step 1 of 2)`);
    await applyState(ctx, state);
    await waitForRollouts(ctx, [GATEWAY_DEPLOYMENT]);
  }
  state.deployments.delete(name);
  ctx.onProgress(`${name}: remove its objects (step 2 of 2)`);
  await applyState(ctx, state);
}
