/**
 * Test-only: a small ControlPlane over a real store that records its calls, so the API's tests do not wait
 * for the real controller. Replicas, rollouts and log lines are whatever the test puts in. Not exported.
 */

import { FerryError } from '../../core/errors.ts';
import { tenantOf } from '../../core/tenant.ts';
import { ChangeFeed } from '../changes.ts';
import { eventRecorder, type RecordEvent } from '../events.ts';
import { type KnownReplica, replicaMetrics, scrapeTargets } from '../replica-metrics.ts';
import type { Store } from '../store/store.ts';
import type {
  ControlPlane,
  DeploymentView,
  LogLine,
  LogQuery,
  ReplicaView,
  RolloutView,
  StrategyInput,
} from '../views.ts';

export interface RecordingControl extends ControlPlane {
  calls: Array<{ method: string; args: unknown[] }>;
  replicas: Map<string, ReplicaView[]>;
  rollouts: Map<string, RolloutView>;
  lines: LogLine[];
  /** Pushes a line to every follower. */
  emit(line: LogLine): void;
  /** Signals handed to followLogs, in order. */
  followSignals: AbortSignal[];
  /** Resolves when the n-th (1-based) follower has started. */
  followerStarted(n: number): Promise<void>;
  /** What `watch` hands out: events recorded with `event`, and `state` after each change made here. */
  changes: ChangeFeed;
  /** Records an event as the controller does (events.ts: in the store, then to the watchers). */
  event: RecordEvent;
  /** Tells the watchers the views may have changed (what the loop's pass does), e.g. after `replicas.set`. */
  changed(): void;
}

export function recordingControl(store: Store, gatewayUrl = 'http://127.0.0.1:1'): RecordingControl {
  const strategies = new Map<string, StrategyInput>();
  const followers = new Set<(line: LogLine) => void>();
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  const changes = new ChangeFeed();
  const changed = () => changes.emit({ kind: 'state' });
  const self: RecordingControl = {
    changes,
    event: eventRecorder(store, Date.now, undefined, changes),
    changed,
    watch: (watcher) => changes.watch(watcher),
    calls: [],
    replicas: new Map(),
    rollouts: new Map(),
    lines: [],
    followSignals: [],
    emit: (line) => {
      for (const f of followers) f(line);
    },
    followerStarted: (n) =>
      new Promise((resolve) => {
        if (self.followSignals.length >= n) resolve();
        else waiting.push({ n, resolve });
      }),
    deploy(input) {
      record('deploy', input);
      const { strategy, scaling, replicas, ...rest } = input;
      store.createDeployment({ ...rest, replicas: replicas ?? 1 });
      if (scaling) store.setScaling(input.name, scaling);
      strategies.set(input.name, strategy ?? { kind: 'rolling', maxSurge: 1 });
      changed();
      return view(input.name);
    },
    update(name, patch) {
      record('update', name, patch);
      const { strategy, ...rest } = patch;
      store.updateDeployment(name, rest);
      if (strategy) strategies.set(name, strategy);
      changed();
      return view(name);
    },
    scale(name, replicas) {
      record('scale', name, replicas);
      store.updateDeployment(name, { replicas });
      changed();
      return view(name);
    },
    setTraffic(name, entries) {
      record('setTraffic', name, entries);
      if (self.rollouts.has(name)) {
        throw new FerryError('FERRY_CONFLICT', `A rollout of ${name} is in progress`, {
          hint: 'Promote or abort it first.',
        });
      }
      store.setTraffic(name, entries);
      changed();
      return view(name);
    },
    remove(name) {
      record('remove', name);
      store.deleteDeployment(name);
      changed();
    },
    setAlias(model, alias, version) {
      record('setAlias', model, alias, version);
      return store.setAlias(model, alias, version).updated;
    },
    view: (name) => view(name),
    list: (tenant) => store.listDeployments(tenant).map((d) => view(d.name)),
    accessChanged: () => record('accessChanged'),
    setScaling: (name, scaling) => {
      record('setScaling', name, scaling);
      store.setScaling(name, scaling);
      changed();
      return view(name);
    },
    checkSecretChange: (secret) => record('checkSecretChange', secret),
    secretChanged: (secret) => {
      record('secretChanged', secret);
      return [];
    },
    tenantUsage: (tenant) => {
      const ds = store.listDeployments(tenant);
      return {
        deployments: ds.length,
        replicas: ds.reduce((n, d) => n + d.replicas, 0),
        cpu: 0,
        memoryBytes: 0,
      };
    },
    rollout(name) {
      view(name);
      return self.rollouts.get(name) ?? null;
    },
    promote: (name) => command('promote', name, 'progressing'),
    abort: (name) => command('abort', name, 'aborting'),
    undo(name, toRevision) {
      record('undo', name, toRevision);
      const d = view(name);
      const to = toRevision ?? d.revision - 1;
      if (!store.getRevision(name, to)) {
        throw new FerryError('FERRY_NOT_FOUND', `${name} has no revision ${to}`);
      }
      const r: RolloutView = {
        deployment: name,
        from: d.revision,
        to,
        phase: 'progressing',
        percent: 0,
        strategy: d.strategy,
        step: 0,
        startedAt: 1,
        updatedAt: 1,
        message: `rolling back to ${to}`,
      };
      self.rollouts.set(name, r);
      return r;
    },
    async logs(name, query: LogQuery) {
      record('logs', name, query);
      view(name);
      const mine = self.lines.filter((l) => query.revision === undefined || l.revision === query.revision);
      return mine.slice(-(query.tail ?? 200));
    },
    scrapeTargets: () => scrapeTargets(known(), (d, r) => store.getRevision(d, r)),
    replicaMetrics: (replica) => {
      record('replicaMetrics', replica);
      return replicaMetrics(known(), replica, { reachable: true, timeoutMs: 2000 });
    },
    followLogs(name, query, signal) {
      record('followLogs', name, query);
      view(name);
      self.followSignals.push(signal);
      for (const w of waiting.filter((x) => x.n <= self.followSignals.length)) w.resolve();
      return follow(signal);
    },
  };

  async function* follow(signal: AbortSignal): AsyncGenerator<LogLine> {
    const queue: LogLine[] = [];
    let wake: (() => void) | undefined;
    const push = (line: LogLine) => {
      queue.push(line);
      wake?.();
    };
    followers.add(push);
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        const line = queue.shift();
        if (line) yield line;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      followers.delete(push);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The replicas the test put in, as the loop would know them (none leaving). */
  function known(): KnownReplica[] {
    return [...self.replicas].flatMap(([deployment, list]) =>
      list.map((replica) => ({ deployment, replica, leaving: false })),
    );
  }

  function record(method: string, ...args: unknown[]): void {
    self.calls.push({ method, args });
  }

  function command(method: string, name: string, phase: RolloutView['phase']): RolloutView {
    record(method, name);
    view(name);
    const r = self.rollouts.get(name);
    if (!r) throw new FerryError('FERRY_CONFLICT', `No rollout of ${name} is in progress`);
    const next = { ...r, phase };
    self.rollouts.set(name, next);
    return next;
  }

  function view(name: string): DeploymentView {
    const d = store.getDeployment(name);
    if (!d) {
      throw new FerryError('FERRY_NOT_FOUND', `No deployment named ${JSON.stringify(name)}`, {
        hint: 'List deployments to see the names.',
      });
    }
    return {
      ...d,
      tenant: tenantOf(name),
      strategy: strategies.get(name) ?? { kind: 'rolling', maxSurge: 1 },
      traffic: store.getTraffic(name),
      trafficTarget: store.getTrafficTarget(name) ?? null,
      revisionStatus: [],
      runtime: 'process',
      rollout: self.rollouts.get(name) ?? null,
      replicaStatus: self.replicas.get(name) ?? [],
      conditions: [],
      lastCrash: null,
      lastColdStart: null,
      endpoint: `${gatewayUrl}/v2/models/${name}/infer`,
    };
  }

  return self;
}
