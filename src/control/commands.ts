/**
 * The command service: the `ControlPlane` the API calls. Each command checks the request, changes the desired
 * state in the store, records an event and asks the loop for a pass; the loop (loop.ts) makes it so. Views
 * join the store with what the loop last saw (`LoopPort.status`). The loop is reached only through `LoopPort`.
 */

import { initialState } from '../autoscaler/decide.ts';
import { scalingSettings } from '../autoscaler/settings.ts';
import type { ScalingSettings } from '../autoscaler/types.ts';
import { FerryError } from '../core/errors.ts';
import { DEFAULT_TENANT, plainName, splitKey, tenantOf } from '../core/tenant.ts';
import type { RuntimeKind } from '../runtime/index.ts';
import { servingOverrideProblems } from '../spec/index.ts';
import type { ChangeFeed, ChangeWatcher } from './changes.ts';
import type { RecordEvent } from './events.ts';
import type { LoopPort } from './loop-port.ts';
import { type DeploymentUse, quotaProblems, type Usage, usageOf } from './quota.ts';
import type { ReplicaLogs } from './replica-logs.ts';
import { replicaMetrics, scrapeTargets } from './replica-metrics.ts';
import {
  abort as abortRollout,
  promote as promoteRollout,
  type RolloutState,
  startRollout,
} from './rollout.ts';
import { isDone, rescaled, rolloutMessage, toStrategy } from './rollout-record.ts';
import { servingRevision } from './routing.ts';
import {
  canonicalJson,
  type Deployment,
  type DeploymentPatch,
  type JsonValue,
  type Store,
  type TrafficEntry,
} from './store/store.ts';
import { formatSplit, stepTrafficMove } from './traffic-move.ts';
import type {
  ControlPlane,
  DeploymentView,
  DeployRequest,
  LogLine,
  LogQuery,
  RolloutView,
  ScrapeTargetView,
  StrategyInput,
} from './views.ts';

export interface CommandServiceOptions {
  store: Store;
  loop: LoopPort;
  /** Where `logs` and `followLogs` read from. */
  logs: ReplicaLogs;
  /** The runtime replicas run on, for the view. */
  runtimeKind: RuntimeKind;
  /** Base URL of the gateway, for the endpoint shown in views. */
  gatewayUrl: string;
  now: () => number;
  event: RecordEvent;
  /** What `watch` hands out: the recorder's events and the loop's passes (controller.ts wires them). */
  changes: ChangeFeed;
}

export class CommandService implements ControlPlane {
  private readonly store: Store;
  private readonly loop: LoopPort;
  private readonly replicaLogs: ReplicaLogs;
  private readonly runtimeKind: RuntimeKind;
  private readonly gatewayUrl: string;
  private readonly now: () => number;
  private readonly event: RecordEvent;
  private readonly changes: ChangeFeed;

  constructor(opts: CommandServiceOptions) {
    this.store = opts.store;
    this.loop = opts.loop;
    this.replicaLogs = opts.logs;
    this.runtimeKind = opts.runtimeKind;
    this.gatewayUrl = opts.gatewayUrl.replace(/\/+$/, '');
    this.now = opts.now;
    this.event = opts.event;
    this.changes = opts.changes;
  }

  watch(watcher: ChangeWatcher): () => void {
    return this.changes.watch(watcher);
  }

  deploy(input: DeployRequest): DeploymentView {
    const { strategy, scaling: askedScaling, replicas: askedReplicas, ...rest } = input;
    if (strategy) toStrategy(strategy);
    checkServing(rest.serving);
    const scaling = this.scalingAtCreate(rest.model, rest.versionRef, askedScaling, askedReplicas);
    // Autoscaled, it starts as the autoscaler would (initialScale within min..max), unless replicas says.
    const replicas =
      askedReplicas ?? (scaling === null ? 1 : initialState(scaling.settings, this.now()).desired);
    const result = this.store.transaction(() => {
      const created = this.store.createDeployment({ ...rest, replicas });
      if (scaling !== null) this.store.setScaling(rest.name, scaling.settings);
      this.checkQuotas(rest.name, 'deploy');
      if (strategy) this.store.setStrategy(rest.name, strategy as unknown as JsonValue);
      return created;
    });
    this.event(
      rest.name,
      'Normal',
      'DeploymentCreated',
      `Deployment ${rest.name} created: ${rest.model}:${result.revision.spec.version} as revision 1 with ${replicas} replica(s)${replicas === 0 && scaling !== null ? ' (the first request starts one)' : ''}`,
    );
    if (scaling !== null) this.scalingEvent(this.store.getDeployment(rest.name)!, `from ${scaling.source}`);
    this.loop.nudge();
    return this.view(rest.name);
  }

  /**
   * The autoscaling a new deployment gets: the request's settings, else the version's ferry.yaml `scaling:`,
   * over the defaults and checked by the autoscaler's rules (FERRY_BAD_REQUEST naming the fields); null for a
   * fixed count. A replica count given with it must lie within minReplicas..maxReplicas.
   */
  private scalingAtCreate(
    model: string,
    versionRef: string,
    asked: Partial<ScalingSettings> | null | undefined,
    replicas: number | undefined,
  ): { settings: ScalingSettings; source: string } | null {
    if (asked === null) return null;
    const file = asked === undefined ? this.store.resolveVersion(model, versionRef).spec.scaling : undefined;
    if (asked === undefined && file === undefined) return null;
    const source = asked === undefined ? "the version's ferry.yaml" : 'the request';
    const settings = scalingSettings(asked ?? file);
    if (replicas !== undefined && (replicas < settings.minReplicas || replicas > settings.maxReplicas))
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `replicas ${replicas} is outside ${settings.minReplicas}..${settings.maxReplicas}, the range of the autoscaling ${source} asks for`,
        {
          hint: `Leave replicas out to start with initialScale (${initialState(settings, this.now()).desired}), or give a count within the range; for a fixed count, send "scaling": null (or turn it off after the deploy: ferry autoscale <name> --off).`,
        },
      );
    return { settings, source };
  }

  /**
   * The version's ferry.yaml `scaling:` behind the deployment's newest revision (undefined: it has none), so
   * that a deploy applies the file's settings only when they differ from the previous version's.
   */
  private fileScaling(name: string): ScalingSettings | undefined {
    const dep = this.store.getDeployment(name);
    const rev = dep ? this.store.getRevision(name, dep.revision) : undefined;
    if (!rev) return undefined;
    return this.store.resolveVersion(rev.spec.model, rev.spec.version).spec.scaling;
  }

  /** After a version change: the new version's `scaling:` when it differs from the one before (else nothing). */
  private followFileScaling(name: string, before: ScalingSettings | undefined): Deployment | undefined {
    const after = this.fileScaling(name);
    if (after === undefined || canonicalJson(after) === canonicalJson(before ?? null)) return undefined;
    return this.store.setScaling(name, after);
  }

  update(name: string, patch: DeploymentPatch & { strategy?: StrategyInput }): DeploymentView {
    const { strategy, ...rest } = patch;
    if (strategy) toStrategy(strategy);
    checkServing(rest.serving);
    this.requireNoActiveRollout(name, 'change it');
    // One transaction: a change refused by a quota leaves the strategy (and the autoscaling) as they were too.
    const result = this.store.transaction(() => {
      const before = this.fileScaling(name);
      if (strategy) this.store.setStrategy(name, strategy as unknown as JsonValue);
      const updated = this.store.updateDeployment(name, rest);
      this.checkQuotas(name, 'change');
      return { ...updated, scaled: this.followFileScaling(name, before) };
    });
    if (result.scaled)
      this.scalingEvent(result.scaled, `from the ferry.yaml of version ${result.revision.spec.version}`);
    if (result.created) {
      this.store.setTrafficTarget(name, null);
      this.beginRollout(name, result.revision.number, 'RevisionCreated');
    } else if (
      servingRevision(this.store.getTraffic(name)) !== result.revision.number &&
      result.deployment.replicas > 0
    ) {
      // The spec asked for is the newest revision's, which does not serve (its rollout was aborted, or traffic
      // was moved away): asking for it again means rolling it out again.
      this.store.setTrafficTarget(name, null);
      this.loop.forgetFailure(name, result.revision.number);
      this.beginRollout(
        name,
        result.revision.number,
        'RolloutRetried',
        `revision ${result.revision.number} did not serve`,
      );
    }
    this.loop.nudge();
    return this.view(name);
  }

  scale(name: string, replicas: number): DeploymentView {
    this.store.transaction(() => {
      this.store.updateDeployment(name, { replicas });
      this.checkQuotas(name, 'scale');
    });
    const stored = this.store.getRollout(name);
    const next = stored ? rescaled(stored.state as unknown as RolloutState, replicas) : undefined;
    if (next) this.store.setRolloutState(name, next as unknown as JsonValue);
    this.event(name, 'Normal', 'Scaled', `Desired replicas set to ${replicas}`);
    this.loop.nudge();
    return this.view(name);
  }

  /**
   * Asks for a split. It takes effect once every revision it gives live traffic to has ready replicas for its
   * share (they are started now); until then the split in effect stays (traffic-move.ts). A revision that
   * failed is refused at once.
   */
  setTraffic(name: string, entries: TrafficEntry[]): DeploymentView {
    this.requireNoActiveRollout(name, 'set its traffic by hand');
    const status = this.loop.status(name);
    for (const e of entries) {
      if (!this.store.getRevision(name, e.revision))
        throw new FerryError('FERRY_NOT_FOUND', `Deployment ${name} has no revision ${e.revision}`, {
          hint: `Revisions: ${this.store
            .listRevisions(name)
            .map((r) => r.number)
            .join(', ')} (ferry get revisions ${name}).`,
        });
      const problem = status.revisions.find((r) => r.revision === e.revision)?.problem;
      if (e.percent > 0 && problem?.fatal)
        throw new FerryError(
          'FERRY_CONFLICT',
          `Revision ${e.revision} of ${name} failed (${problem.reason}): ${problem.message}`,
          { hint: `It cannot take traffic. See ferry describe ${name}; deploy a fixed version instead.` },
        );
    }
    const target = this.store.setTrafficTarget(name, entries)!;
    this.loop.forgetTrafficWait(name);
    const dep = this.store.getDeployment(name)!;
    if (
      stepTrafficMove(dep.replicas, this.store.getTraffic(name), target.entries, status.readyByRevision).apply
    ) {
      // Every revision it gives traffic to is ready for its share already: no reason to wait for a pass.
      this.store.applyTrafficTarget(name);
      this.event(name, 'Normal', 'TrafficShifted', `Traffic set: ${formatSplit(target.entries)}`);
    } else {
      this.event(name, 'Normal', 'TrafficRequested', `Traffic asked for: ${formatSplit(target.entries)}`);
    }
    this.loop.nudge();
    return this.view(name);
  }

  remove(name: string): void {
    this.store.transaction(() => {
      this.store.deleteDeployment(name);
      this.store.deleteDeploymentKeys(name);
    });
    // The deployment is gone, so the event names none; it is still its tenant's (not the default tenant's).
    this.event(
      undefined,
      'Normal',
      'DeploymentDeleted',
      `Deployment ${name} deleted; its replicas are drained and removed`,
      tenantOf(name),
    );
    this.loop.nudge();
  }

  setAlias(model: string, alias: string, version: string): Array<{ deployment: string; revision: number }> {
    for (const d of this.store.listDeployments())
      if (d.model === model && d.versionRef === alias)
        this.requireNoActiveRollout(d.name, `move alias ${alias} it follows`);
    const { moved, scaled } = this.store.transaction(() => {
      const before = new Map(
        this.store
          .listDeployments()
          .filter((d) => d.model === model && d.versionRef === alias)
          .map((d) => [d.name, this.fileScaling(d.name)]),
      );
      const moved = this.store.setAlias(model, alias, version);
      const scaled = moved.updated.flatMap(
        (u) => this.followFileScaling(u.deployment, before.get(u.deployment)) ?? [],
      );
      return { moved, scaled };
    });
    for (const dep of scaled) this.scalingEvent(dep, `from the ferry.yaml of version ${version}`);
    for (const u of moved.updated) this.beginRollout(u.deployment, u.revision, 'AliasMoved');
    this.loop.nudge();
    return moved.updated;
  }

  view(name: string): DeploymentView {
    const dep = this.store.getDeployment(name);
    const { tenant, name: plain } = splitKey(name);
    if (!dep)
      throw new FerryError('FERRY_NOT_FOUND', `No deployment named ${JSON.stringify(plain)}`, {
        hint: 'ferry get deployments lists them.',
      });
    const traffic = this.store.getTraffic(name);
    const status = this.loop.status(name);
    return {
      ...dep,
      strategy: this.store.getStrategy(name) as unknown as StrategyInput,
      traffic,
      trafficTarget: this.store.getTrafficTarget(name) ?? null,
      revisionStatus: status.revisions,
      runtime: this.runtimeKind,
      rollout: this.rollout(name),
      replicaStatus: status.replicas,
      conditions: status.conditions,
      lastCrash: status.lastCrash,
      lastColdStart: status.lastColdStart,
      tenant,
      endpoint: `${this.gatewayUrl}${tenant === DEFAULT_TENANT ? '' : `/t/${tenant}`}/v2/models/${plain}/infer`,
    };
  }

  list(tenant?: string): DeploymentView[] {
    return this.store.listDeployments(tenant).map((d) => this.view(d.name));
  }

  setScaling(name: string, scaling: Partial<ScalingSettings> | null): DeploymentView {
    this.scalingEvent(this.store.setScaling(name, scaling));
    this.loop.nudge();
    return this.view(name);
  }

  private scalingEvent(dep: Deployment, source?: string): void {
    const s = dep.scaling;
    this.event(
      dep.name,
      'Normal',
      'AutoscalingSet',
      s === null
        ? `Autoscaling off: ${dep.replicas} replica(s) stay`
        : `Autoscaling on${source === undefined ? '' : ` ${source}`}: ${s.minReplicas}-${s.maxReplicas} replicas on ${s.metric}, target ${s.target ?? 'derived from the model'}`,
    );
  }

  accessChanged(): void {
    this.loop.nudge();
  }

  checkSecretChange(secret: string): void {
    for (const name of this.usersOfSecret(secret))
      this.requireNoActiveRollout(name, `change secret ${plainName(secret)} it uses`);
  }

  secretChanged(secret: string): Array<{ deployment: string; revision: number }> {
    const rolled: Array<{ deployment: string; revision: number }> = [];
    const { name: ref } = splitKey(secret);
    const newest = this.store.secretVersion(secret);
    for (const name of this.usersOfSecret(secret)) {
      const dep = this.store.getDeployment(name)!;
      const pinned = this.store.getRevision(name, dep.revision)?.spec.secretVersions?.[ref];
      // Not pinned: the secret was not set when the revision was made; its replicas take the newest.
      if (pinned === undefined || pinned === newest) continue;
      const result = this.store.updateDeployment(name, {});
      if (!result.created) continue;
      this.store.setTrafficTarget(name, null);
      this.beginRollout(
        name,
        result.revision.number,
        'SecretChanged',
        `secret ${ref} is now version ${newest}`,
      );
      rolled.push({ deployment: name, revision: result.revision.number });
    }
    this.loop.nudge();
    return rolled;
  }

  /** Deployments of the secret's tenant whose newest revision names it. */
  private usersOfSecret(secret: string): string[] {
    const { tenant, name: ref } = splitKey(secret);
    return this.store
      .listDeployments(tenant)
      .filter((d) => this.store.getRevision(d.name, d.revision)?.spec.secretRefs.includes(ref))
      .map((d) => d.name);
  }

  tenantUsage(tenant: string): Usage {
    const uses: DeploymentUse[] = [];
    for (const d of this.store.listDeployments(tenant)) {
      const resources = this.store.getRevision(d.name, d.revision)?.spec.resources;
      uses.push({
        replicas: d.replicas,
        cpu: resources?.cpu ?? null,
        memoryBytes: resources?.memoryBytes ?? null,
      });
    }
    return usageOf(uses);
  }

  /** Throws FERRY_QUOTA_EXCEEDED when the tenant of `name` is now over a quota (called inside the change's transaction). */
  private checkQuotas(name: string, verb: string): void {
    const tenant = tenantOf(name);
    const quotas = this.store.getTenant(tenant)?.quotas ?? {};
    if (Object.keys(quotas).length === 0) return;
    const deployments = this.store.listDeployments(tenant);
    const specs = deployments.map((d) => this.store.getRevision(d.name, d.revision)?.spec.resources);
    const problems = quotaProblems(quotas, this.tenantUsage(tenant), {
      cpu: specs.some((r) => r?.cpu == null),
      memory: specs.some((r) => r?.memoryBytes == null),
    });
    if (problems.length > 0)
      throw new FerryError(
        'FERRY_QUOTA_EXCEEDED',
        `Cannot ${verb} ${plainName(name)}: tenant ${JSON.stringify(tenant)} would be over its quota (${problems.join('; ')})`,
        {
          hint: 'Scale something down or delete a deployment, or ask a platform admin to raise the quota (ferry tenant set-quota).',
        },
      );
  }

  rollout(name: string): RolloutView | null {
    const stored = this.store.getRollout(name);
    if (!stored) return null;
    const state = stored.state as unknown as RolloutState;
    return {
      deployment: name,
      from: state.stable,
      to: state.target,
      phase: state.phase,
      percent: state.percent,
      strategy: stored.strategy as unknown as StrategyInput,
      step: state.step,
      startedAt: stored.startedAt,
      updatedAt: stored.updatedAt,
      message: rolloutMessage(state),
    };
  }

  promote(name: string): RolloutView {
    const state = this.activeRollout(name, 'promote');
    this.store.setRolloutState(name, promoteRollout(state) as unknown as JsonValue);
    this.event(
      name,
      'Normal',
      'RolloutPromoted',
      `Rollout to revision ${state.target} promoted past ${state.percent}%`,
    );
    this.loop.nudge();
    return this.rollout(name) as RolloutView;
  }

  abort(name: string): RolloutView {
    const state = this.activeRollout(name, 'abort');
    this.store.setRolloutState(name, abortRollout(state) as unknown as JsonValue);
    this.event(
      name,
      'Warning',
      'RolloutAborting',
      `Rollout to revision ${state.target} aborted; traffic goes back to revision ${state.stable}`,
    );
    this.loop.nudge();
    return this.rollout(name) as RolloutView;
  }

  undo(name: string, toRevision?: number): RolloutView {
    this.requireNoActiveRollout(name, 'undo', 'Abort the running rollout instead (ferry rollout abort).');
    const serving = servingRevision(this.store.getTraffic(name));
    const revisions = this.store.listRevisions(name);
    const target =
      toRevision ?? revisions.filter((r) => serving === undefined || r.number < serving).at(-1)?.number;
    const rev = target === undefined ? undefined : this.store.getRevision(name, target);
    if (!rev || target === undefined)
      throw new FerryError(
        'FERRY_NOT_FOUND',
        toRevision === undefined
          ? `Deployment ${name} has no revision before ${serving} to go back to`
          : `Deployment ${name} has no revision ${toRevision}`,
        { hint: `Revisions: ${revisions.map((r) => r.number).join(', ')}.` },
      );
    if (target === serving)
      throw new FerryError('FERRY_CONFLICT', `Deployment ${name} already serves revision ${target}`);
    // Like `kubectl rollout undo`: the old revision's spec comes back as the deployment's spec; a new revision
    // is made from it unless it is the newest one already.
    const versionRef =
      this.store.resolveVersion(rev.spec.model, rev.versionRef).version === rev.spec.version
        ? rev.versionRef
        : rev.spec.version;
    const result = this.store.updateDeployment(name, {
      model: rev.spec.model,
      versionRef,
      // What the deployment asked for then; the version's ferry.yaml and the defaults fill in as they did.
      resources: rev.settings.resources,
      env: rev.settings.env,
      secretRefs: rev.settings.secretRefs,
      serving: rev.settings.serving,
    });
    // An undo is a way back, not an experiment: it rolls (replica by replica) whatever the canary strategy says.
    this.beginRollout(name, result.revision.number, 'RolledBack', `back to the spec of revision ${target}`, {
      kind: 'rolling',
    });
    this.loop.nudge();
    return this.rollout(name) as RolloutView;
  }

  async logs(name: string, query: LogQuery): Promise<LogLine[]> {
    this.view(name);
    return this.replicaLogs.recent(name, query, { archived: true });
  }

  /**
   * The last `tail` lines of the live replicas (as `tail -f` starts; replicas that are gone are in logs()),
   * then new lines as they come, until the signal aborts.
   */
  async *followLogs(name: string, query: LogQuery, signal: AbortSignal): AsyncIterable<LogLine> {
    this.view(name);
    yield* this.replicaLogs.follow(name, query, signal);
  }

  scrapeTargets(): ScrapeTargetView[] {
    if (!this.loop.reachesReplicas) return [];
    return scrapeTargets(this.loop.knownReplicas(), (d, r) => this.store.getRevision(d, r));
  }

  replicaMetrics(replica: string): Promise<{ contentType: string; body: string }> {
    return replicaMetrics(this.loop.knownReplicas(), replica, { reachable: this.loop.reachesReplicas });
  }

  private activeRollout(name: string, verb: string): RolloutState {
    this.view(name);
    const stored = this.store.getRollout(name);
    const state = stored?.state as unknown as RolloutState | undefined;
    if (!stored || !state || isDone(state))
      throw new FerryError('FERRY_CONFLICT', `Deployment ${name} has no rollout in progress to ${verb}`, {
        hint: 'ferry rollout status shows the last one.',
      });
    return state;
  }

  private requireNoActiveRollout(name: string, what: string, hint?: string): void {
    const state = this.store.getRollout(name)?.state as unknown as RolloutState | undefined;
    if (state && !isDone(state))
      throw new FerryError(
        'FERRY_CONFLICT',
        `Deployment ${name} is rolling out revision ${state.target} (${state.phase}, ${state.percent}%); cannot ${what} now`,
        { hint: hint ?? 'Wait for it, promote it, or abort it (ferry rollout status|promote|abort).' },
      );
  }

  /** Starts a rollout from the serving revision to `target` (or switches at once when nothing serves yet). */
  private beginRollout(
    name: string,
    target: number,
    reason: string,
    why?: string,
    strategyOverride?: StrategyInput,
  ): void {
    const dep = this.store.getDeployment(name);
    if (!dep) return;
    const stable = servingRevision(this.store.getTraffic(name));
    const strategy = (strategyOverride as unknown as JsonValue) ?? this.store.getStrategy(name);
    if (stable === undefined || stable === target || dep.replicas < 1) {
      this.store.setTraffic(name, [{ revision: target, percent: 100 }]);
      this.event(name, 'Normal', reason, `Revision ${target} takes all traffic${why ? ` (${why})` : ''}`);
      return;
    }
    const state = startRollout({ deployment: name, stable, target, replicas: dep.replicas });
    this.store.saveRollout(name, { state: state as unknown as JsonValue, strategy, startedAt: this.now() });
    this.event(
      name,
      'Normal',
      reason,
      `Rolling out revision ${target} (from revision ${stable}${why ? `, ${why}` : ''}) with the ${(strategy as { kind?: string }).kind ?? 'rolling'} strategy`,
    );
  }
}

/** A deployment's serving options must be valid `serving` of ferry.yaml: refused at the API, not at replica start. */
function checkServing(serving: Record<string, JsonValue> | undefined): void {
  if (serving === undefined) return;
  const problems = servingOverrideProblems(serving);
  if (problems.length > 0)
    throw new FerryError('FERRY_BAD_REQUEST', `serving options are not valid: ${problems.join('; ')}`, {
      hint: 'They take the fields of the serving section of ferry.yaml (docs/spec.md), e.g. {"batching":{"maxBatchSize":32}}.',
      details: problems,
    });
}
