/**
 * The controller as the platform runs it: the reconcile loop (loop.ts) and the command service the API calls
 * (commands.ts), wired together. Neither knows the other's class: the command service changes the store and
 * reaches the loop through `LoopPort` (nudge, status, forgetFailure, forgetTrafficWait); both record events
 * through one recorder (events.ts); `ferry logs` reads through ReplicaLogs (replica-logs.ts).
 *
 *   API -> CommandService --LoopPort--> ControlLoop -> runtime (replicas), gateway (routes)
 *               \-> store <-----------------/
 *
 * The platform gives the API `commands`; the controller itself is a ControlPlane too (each call goes to
 * `commands`), so that a test can drive one object: deploy, then tick, then view.
 */
import { ChangeFeed } from './changes.ts';
import { CommandService } from './commands.ts';
import { eventRecorder } from './events.ts';
import { ControlLoop, type ControlLoopOptions } from './loop.ts';
import { ControlMetrics } from './metrics.ts';
import { ReplicaLogs } from './replica-logs.ts';
import type { ControlPlane } from './views.ts';

export interface ControllerOptions extends Omit<ControlLoopOptions, 'now' | 'event' | 'afterPass'> {
  /** Base URL of the gateway, for the endpoint shown in views. */
  gatewayUrl: string;
  now?: () => number;
}

export class Controller implements ControlPlane {
  /** Makes what runs match the store: started, stopped and nudged here. */
  readonly loop: ControlLoop;
  /** What the API calls. */
  readonly commands: CommandService;
  /** The control plane's Prometheus metrics (the API serves them at GET /metrics). */
  readonly metrics: ControlMetrics;
  /** Events as they are recorded and the end of every pass, for the live stream (GET /v1/stream). */
  readonly changes: ChangeFeed;

  constructor(opts: ControllerOptions) {
    const { gatewayUrl, ...loopOptions } = opts;
    const now = opts.now ?? Date.now;
    this.changes = new ChangeFeed(opts.logger);
    const changes = this.changes;
    const event = eventRecorder(opts.store, now, opts.logger, changes);
    this.metrics = opts.metrics ?? new ControlMetrics();
    this.loop = new ControlLoop({
      ...loopOptions,
      metrics: this.metrics,
      now,
      event,
      afterPass: () => changes.emit({ kind: 'state' }),
    });
    this.commands = new CommandService({
      store: opts.store,
      loop: this.loop,
      logs: new ReplicaLogs({ runtime: opts.runtime, archive: opts.logs, platformId: opts.platformId, now }),
      runtimeKind: opts.runtime.kind,
      gatewayUrl,
      now,
      event,
      changes,
    });
  }

  /** Adopts what runs (first pass) and starts the loop. */
  start(): Promise<void> {
    return this.loop.start();
  }

  /**
   * Stops the loop. With `removeReplicas`, every replica Ferry runs is drained from the gateway and removed
   * (`ferry down`); without, they keep running for the next control plane to adopt.
   */
  stop(opts: { removeReplicas: boolean }): Promise<void> {
    return this.loop.stop(opts);
  }

  /** Asks for a pass soon; passes never overlap. */
  nudge(): void {
    this.loop.nudge();
  }

  /** One pass; resolves when it (and any pass asked for meanwhile) is done. Exposed for tests. */
  tick(): Promise<void> {
    return this.loop.tick();
  }

  readonly deploy: ControlPlane['deploy'] = (input) => this.commands.deploy(input);
  readonly update: ControlPlane['update'] = (name, patch) => this.commands.update(name, patch);
  readonly scale: ControlPlane['scale'] = (name, replicas) => this.commands.scale(name, replicas);
  readonly setScaling: ControlPlane['setScaling'] = (name, scaling) =>
    this.commands.setScaling(name, scaling);
  readonly setTraffic: ControlPlane['setTraffic'] = (name, entries) =>
    this.commands.setTraffic(name, entries);
  readonly remove: ControlPlane['remove'] = (name) => this.commands.remove(name);
  readonly setAlias: ControlPlane['setAlias'] = (model, alias, version) =>
    this.commands.setAlias(model, alias, version);
  readonly view: ControlPlane['view'] = (name) => this.commands.view(name);
  readonly list: ControlPlane['list'] = (tenant) => this.commands.list(tenant);
  readonly accessChanged: ControlPlane['accessChanged'] = () => this.commands.accessChanged();
  readonly checkSecretChange: ControlPlane['checkSecretChange'] = (secret) =>
    this.commands.checkSecretChange(secret);
  readonly secretChanged: ControlPlane['secretChanged'] = (secret) => this.commands.secretChanged(secret);
  readonly tenantUsage: ControlPlane['tenantUsage'] = (tenant) => this.commands.tenantUsage(tenant);
  readonly rollout: ControlPlane['rollout'] = (name) => this.commands.rollout(name);
  readonly promote: ControlPlane['promote'] = (name) => this.commands.promote(name);
  readonly abort: ControlPlane['abort'] = (name) => this.commands.abort(name);
  readonly undo: ControlPlane['undo'] = (name, toRevision) => this.commands.undo(name, toRevision);
  readonly logs: ControlPlane['logs'] = (name, query) => this.commands.logs(name, query);
  readonly followLogs: ControlPlane['followLogs'] = (name, query, signal) =>
    this.commands.followLogs(name, query, signal);
  readonly scrapeTargets: ControlPlane['scrapeTargets'] = () => this.commands.scrapeTargets();
  readonly replicaMetrics: ControlPlane['replicaMetrics'] = (replica) =>
    this.commands.replicaMetrics(replica);
  readonly watch: ControlPlane['watch'] = (watcher) => this.commands.watch(watcher);
}
