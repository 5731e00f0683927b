/**
 * A virtual-clock simulator that runs any autoscaling Policy (src/autoscaler/types.ts) against a Trace. Pure and
 * deterministic: the same options and seed give the same numbers; no real time, no I/O.
 *
 * The model:
 * - Arrivals follow trace.rate(t): Poisson (thinning, seeded PRNG) or evenly spaced (1 ms resolution): arrivals.ts.
 * - A replica serves `slots` requests at once, each for `serviceMs` (fixed, or exponential with that mean); more
 *   wait in its FIFO queue of at most `queueCap`; a new request goes to the ready replica with the fewest
 *   outstanding (ties: the oldest replica); when that replica's slots and queue are full it fails (overflow), or
 *   with `holdAtLimit` (Ferry's gateway, which knows the replicas' limit) it waits in the activator for room.
 * - With no ready replica, requests wait in the activator (at most `activatorCap`, at most `activatorWaitMs`) and
 *   go to replicas as they become ready. With `burstCapacity` (Ferry's gateway, src/gateway/activator.ts
 *   `waitForStarting`; Knative's activator in the path does the like), a request also waits there, behind any
 *   already waiting, while replicas are starting and the least loaded ready one carries `burstCapacity` or more;
 *   it goes out when a replica has room below that or another becomes ready.
 * - A request still waiting (queue or activator) `deadlineMs` after it arrived fails (timeout).
 * - Replicas the policy asks for become ready `startMs` later. Scale-down cancels starting replicas first (newest
 *   first), then drains ready ones with the fewest outstanding: no new requests, removed once empty.
 * - Every `sampleMs` the simulator produces a Sample as the gateway would: average requests in flight over the
 *   period (in service, queued, held in the activator), arrivals, period, saturation (the fullest ready replica's
 *   queue over its capacity at that instant). Every `tickMs` it calls decide() with the samples since the last
 *   decision, the ready count and the held count. With `pokeAtZero`, a request held while no replica is ready or
 *   starting also calls decide() at once (Knative's activator pokes its autoscaler; Ferry does the same).
 * Measured: per load step, the time to the first decision past the step that raises (or, for a step down,
 * lowers) desired, and to ready capacity >= needed (ceil(rps x serviceS / slots) replicas); SLO-violation
 * seconds (seconds whose arriving requests had a p99 latency over sloMs, a failed request counting as infinite);
 * failures and the success ratio; replica-seconds (every replica from the moment it is asked for until removed,
 * starting and draining included).
 */

import type { Observation, Policy, Sample, ScalingSettings } from '../../../src/autoscaler/types.ts';
import { seededRandom } from '../../../src/gateway/random.ts';
import { arrivalGenerator } from './arrivals.ts';
import type { Trace } from './traces.ts';

export interface ReplicaModel {
  /** Requests a replica serves at once. */
  slots: number;
  /** Mean service time of one request (ms). */
  serviceMs: number;
  service: 'fixed' | 'exp';
  /** Requests waiting per replica beyond its slots. */
  queueCap: number;
  /** Cold start: from asked for to ready (ms). */
  startMs: number;
}

export interface SimOptions {
  trace: Trace;
  policy: Policy<unknown>;
  settings: ScalingSettings;
  /** The policy's decision cadence (ms). */
  tickMs: number;
  /** Decide at once on a request held with nothing ready or starting. */
  pokeAtZero: boolean;
  /**
   * Also decide on a request held while nothing is ready (replicas starting), at most this often (ms): Ferry's
   * gateway tells the control loop of every held request and its loop decides at once while requests are held.
   * Left out: only `pokeAtZero`.
   */
  pokeWhileHeldMs?: number;
  replica: ReplicaModel;
  /** What the capacity model would suggest per replica (Observation.derivedTarget); left out when undefined. */
  derivedTarget?: number;
  seed: number;
  arrivals: 'poisson' | 'even';
  /** Gateway sample period (ms). */
  sampleMs: number;
  deadlineMs: number;
  activatorCap: number;
  activatorWaitMs: number;
  /** Per-replica in-flight at which, with replicas starting, arrivals wait in the activator; left out: never. */
  burstCapacity?: number;
  /**
   * An arrival that finds every ready replica full (slots and queue) waits in the activator for room instead of
   * failing (Ferry's gateway knows each revision's replica limit: src/gateway/activator.ts `atReplicaLimit`).
   */
  holdAtLimit?: boolean;
  sloMs: number;
  /** Replicas ready at t = 0 (default: settings.initialScale within min/max). */
  initialReplicas?: number;
}

export interface StepResult {
  label: string;
  atMs: number;
  fromRps: number;
  toRps: number;
  needed: number;
  /** ms from the step to the first decision moving desired in the step's direction; null: none. */
  decisionMs: number | null;
  /** ms from the step to ready >= needed (up steps only); null: never, or a down step. */
  readyMs: number | null;
}

export interface DecisionRecord {
  at: number;
  desired: number;
  ready: number;
  reason: string;
}

export interface SimResult {
  policy: string;
  trace: string;
  arrived: number;
  succeeded: number;
  failed: number;
  failedTimeout: number;
  failedOverflow: number;
  failedActivator: number;
  /** Still in flight when the trace ended (not counted either way). */
  unfinished: number;
  successRatio: number | null;
  sloViolationS: number;
  replicaSeconds: number;
  peakReplicas: number;
  p50Ms: number | null;
  p99Ms: number | null;
  decisions: number;
  steps: StepResult[];
  /** Decisions that changed the count. */
  changes: DecisionRecord[];
  /** Replicas at t = 0 (asked for and ready): where the desired count starts before the first change. */
  initialDesired: number;
  /**
   * Per second: arrivals, ready replicas at the end of the second, p99 of that second's arrivals (null: none; -1:
   * one failed), failed requests by the second they arrived in, and (when recorded: the simulator, not live) the
   * most requests held at once in the activator during the second.
   */
  perSecond: {
    arrivals: number[];
    ready: number[];
    p99Ms: (number | null)[];
    failed: number[];
    held?: number[];
  };
}

type Where = 'activator' | 'queued' | 'service' | 'done' | 'failed';
interface Req {
  at: number;
  where: Where;
  replica: Replica | null;
}
interface Replica {
  id: number;
  state: 'starting' | 'ready' | 'draining' | 'gone';
  busy: number;
  queue: Req[];
  head: number;
  live: number;
}

// Event kinds in the order they run at equal times.
const DONE = 0;
const READY = 1;
const TIMEOUT = 2;
const ARRIVAL = 3;
const SAMPLE = 4;
const DECIDE = 5;
interface Ev {
  t: number;
  kind: number;
  seq: number;
  req?: Req;
  rep?: Replica;
}

class Heap {
  private a: Ev[] = [];
  get size(): number {
    return this.a.length;
  }
  private less(x: Ev, y: Ev): boolean {
    return x.t !== y.t ? x.t < y.t : x.kind !== y.kind ? x.kind < y.kind : x.seq < y.seq;
  }
  push(e: Ev): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i] as Ev, a[p] as Ev)) break;
      [a[i], a[p]] = [a[p] as Ev, a[i] as Ev];
      i = p;
    }
  }
  pop(): Ev | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l] as Ev, a[m] as Ev)) m = l;
        if (r < a.length && this.less(a[r] as Ev, a[m] as Ev)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as Ev, a[i] as Ev];
        i = m;
      }
    }
    return top;
  }
}

export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? null;
}

function check(o: SimOptions): void {
  const bad = (m: string) => {
    throw new Error(`sim: ${m}`);
  };
  const r = o.replica;
  if (!Number.isInteger(r.slots) || r.slots < 1) bad(`replica.slots must be an integer >= 1, got ${r.slots}`);
  if (!(r.serviceMs > 0)) bad(`replica.serviceMs must be > 0, got ${r.serviceMs}`);
  if (!Number.isInteger(r.queueCap) || r.queueCap < 0) bad(`replica.queueCap must be an integer >= 0`);
  if (!(r.startMs >= 0)) bad(`replica.startMs must be >= 0, got ${r.startMs}`);
  if (!(o.tickMs > 0)) bad(`tickMs must be > 0, got ${o.tickMs}`);
  if (!(o.sampleMs > 0)) bad(`sampleMs must be > 0, got ${o.sampleMs}`);
  if (!(o.deadlineMs > 0)) bad(`deadlineMs must be > 0, got ${o.deadlineMs}`);
  if (!(o.sloMs > 0)) bad(`sloMs must be > 0, got ${o.sloMs}`);
  if (!Number.isInteger(o.activatorCap) || o.activatorCap < 0) bad('activatorCap must be an integer >= 0');
  if (!(o.trace.durationMs > 0)) bad('trace.durationMs must be > 0');
}

export function simulate(o: SimOptions): SimResult {
  check(o);
  const { trace, policy, settings, replica: model } = o;
  const end = trace.durationMs;
  const rand = seededRandom(o.seed);
  const heap = new Heap();
  let seq = 0;
  const at = (t: number, kind: number, extra: Partial<Ev> = {}) =>
    heap.push({ t, kind, seq: seq++, ...extra });

  // Arrival generator (arrivals.ts: the live replay uses the same).
  const nextArrival = arrivalGenerator(trace, o.seed, o.arrivals);
  const serviceTime = () =>
    model.service === 'exp' ? -Math.log(1 - rand()) * model.serviceMs : model.serviceMs;

  // State.
  const replicas: Replica[] = [];
  let nextId = 0;
  const activator: Req[] = [];
  let actHead = 0;
  let actLive = 0;
  let inflight = 0;
  let inflightArea = 0;
  let alive = 0;
  let aliveArea = 0;
  let lastT = 0;
  let peak = 0;
  const advance = (t: number) => {
    inflightArea += inflight * (t - lastT);
    aliveArea += alive * (t - lastT);
    lastT = t;
  };
  const seconds = Math.ceil(end / 1000);
  const lat: number[][] = Array.from({ length: seconds }, () => []);
  const perArrivals = new Array<number>(seconds).fill(0);
  const perReady = new Array<number>(seconds).fill(0);
  const perHeld = new Array<number>(seconds).fill(0);
  const noteHeld = (t: number) => {
    const s = Math.floor(t / 1000);
    if (s < seconds) perHeld[s] = Math.max(perHeld[s] ?? 0, actLive);
  };
  const all: number[] = [];
  let arrived = 0;
  let succeeded = 0;
  let failedTimeout = 0;
  let failedOverflow = 0;
  let failedActivator = 0;
  let periodArrivals = 0;
  let pending: Sample[] = [];
  let decisions = 0;
  const changes: DecisionRecord[] = [];
  const decisionLog: { at: number; desired: number }[] = [];
  const readyLog: { at: number; ready: number }[] = [];

  const readyCount = () => replicas.filter((r) => r.state === 'ready').length;
  const provisioned = () => replicas.filter((r) => r.state === 'ready' || r.state === 'starting').length;
  const noteReady = (t: number) => {
    const n = readyCount();
    if (readyLog.length === 0 || readyLog[readyLog.length - 1]?.ready !== n)
      readyLog.push({ at: t, ready: n });
  };
  const removeIfDrained = (t: number, r: Replica) => {
    if (r.state === 'draining' && r.busy === 0 && r.live === 0) {
      advance(t);
      r.state = 'gone';
      alive--;
    }
  };
  const fail = (req: Req, kind: 'timeout' | 'overflow' | 'activator') => {
    req.where = 'failed';
    const s = Math.floor(req.at / 1000);
    lat[s]?.push(Number.POSITIVE_INFINITY);
    if (kind === 'timeout') failedTimeout++;
    else if (kind === 'overflow') failedOverflow++;
    else failedActivator++;
  };
  const startService = (t: number, r: Replica, req: Req) => {
    r.busy++;
    req.where = 'service';
    req.replica = r;
    at(t + serviceTime(), DONE, { req, rep: r });
  };
  const startingCount = () => replicas.filter((r) => r.state === 'starting').length;
  /** Burst capacity: replicas are starting and the least loaded ready one carries burstCapacity or more. */
  const waitForStarting = (): boolean => {
    if (o.burstCapacity === undefined || startingCount() === 0) return false;
    let least = Number.POSITIVE_INFINITY;
    for (const r of replicas) if (r.state === 'ready') least = Math.min(least, r.busy + r.live);
    return least >= o.burstCapacity;
  };
  /** Place a request on a ready replica; false when every ready replica is full (or none is ready). */
  const place = (t: number, req: Req): boolean => {
    let best: Replica | null = null;
    for (const r of replicas) {
      if (r.state !== 'ready') continue;
      if (best === null || r.busy + r.live < best.busy + best.live) best = r;
    }
    if (best === null) return false;
    if (best.busy < model.slots) {
      startService(t, best, req);
      return true;
    }
    if (best.live < model.queueCap) {
      req.where = 'queued';
      req.replica = best;
      best.queue.push(req);
      best.live++;
      return true;
    }
    return false;
  };
  const drainActivator = (t: number) => {
    while (actLive > 0) {
      const req = activator[actHead];
      if (!req) break;
      if (req.where !== 'activator') {
        actHead++;
        continue;
      }
      if (waitForStarting() || !place(t, req)) break;
      actHead++;
      actLive--;
      if (o.activatorWaitMs < o.deadlineMs && (req.where as Where) === 'queued')
        at(req.at + o.deadlineMs, TIMEOUT, { req });
    }
  };
  const apply = (t: number, desired: number) => {
    let have = provisioned();
    advance(t);
    while (have < desired) {
      const r: Replica = { id: nextId++, state: 'starting', busy: 0, queue: [], head: 0, live: 0 };
      replicas.push(r);
      alive++;
      at(t + model.startMs, READY, { rep: r });
      have++;
    }
    while (have > desired) {
      const starting = replicas.filter((r) => r.state === 'starting');
      const victim = starting.at(-1);
      if (victim) {
        victim.state = 'gone';
        alive--;
      } else {
        let best: Replica | null = null;
        for (const r of replicas) {
          if (r.state !== 'ready') continue;
          if (best === null || r.busy + r.live < best.busy + best.live) best = r;
        }
        if (!best) break;
        best.state = 'draining';
        removeIfDrained(t, best);
      }
      have--;
    }
    peak = Math.max(peak, alive);
    noteReady(t);
  };
  let lastPoke = Number.NEGATIVE_INFINITY;
  let state = policy.initial(settings, 0);
  let lastDesired = 0;
  const runDecision = (t: number) => {
    const obs: Observation = {
      samples: pending,
      ready: readyCount(),
      held: actLive,
      ...(o.derivedTarget === undefined ? {} : { derivedTarget: o.derivedTarget }),
    };
    pending = [];
    const d = policy.decide(t, obs, settings, state);
    if (!Number.isInteger(d.desired) || d.desired < 0) {
      throw new Error(
        `sim: policy ${policy.name} decided ${d.desired} replicas at ${t} ms (not an integer >= 0)`,
      );
    }
    state = d.state;
    decisions++;
    decisionLog.push({ at: t, desired: d.desired });
    if (d.desired !== lastDesired)
      changes.push({ at: t, desired: d.desired, ready: obs.ready, reason: d.reason });
    lastDesired = d.desired;
    apply(t, d.desired);
  };

  // Start.
  const init =
    o.initialReplicas ??
    Math.min(Math.max(settings.initialScale, settings.minReplicas), settings.maxReplicas);
  for (let i = 0; i < init; i++) {
    replicas.push({ id: nextId++, state: 'ready', busy: 0, queue: [], head: 0, live: 0 });
    alive++;
  }
  peak = alive;
  lastDesired = init;
  decisionLog.push({ at: 0, desired: init });
  noteReady(0);
  const first = nextArrival();
  if (first !== null) at(first, ARRIVAL);
  at(o.sampleMs, SAMPLE);
  at(o.tickMs, DECIDE);

  for (let e = heap.pop(); e !== undefined && e.t <= end; e = heap.pop()) {
    const t = e.t;
    switch (e.kind) {
      case ARRIVAL: {
        advance(t);
        arrived++;
        periodArrivals++;
        const s = Math.floor(t / 1000);
        if (s < seconds) perArrivals[s] = (perArrivals[s] ?? 0) + 1;
        const req: Req = { at: t, where: 'activator', replica: null };
        const waits =
          (o.burstCapacity !== undefined || o.holdAtLimit === true) && (actLive > 0 || waitForStarting());
        const goes = readyCount() > 0 && !waits;
        if (goes && place(t, req)) {
          inflight++;
          if ((req.where as Where) === 'queued') at(t + o.deadlineMs, TIMEOUT, { req });
        } else if (goes && o.holdAtLimit !== true) {
          fail(req, 'overflow');
        } else if (actLive < o.activatorCap) {
          activator.push(req);
          actLive++;
          noteHeld(t);
          inflight++;
          at(t + Math.min(o.activatorWaitMs, o.deadlineMs), TIMEOUT, { req });
          if (o.pokeAtZero && provisioned() === 0) {
            runDecision(t);
            lastPoke = t;
          } else if (
            o.pokeWhileHeldMs !== undefined &&
            readyCount() === 0 &&
            t - lastPoke >= o.pokeWhileHeldMs
          ) {
            runDecision(t);
            lastPoke = t;
          }
        } else fail(req, 'activator');
        const n = nextArrival();
        if (n !== null) at(n, ARRIVAL);
        break;
      }
      case DONE: {
        const r = e.rep as Replica;
        const req = e.req as Req;
        advance(t);
        r.busy--;
        inflight--;
        req.where = 'done';
        succeeded++;
        const l = t - req.at;
        lat[Math.floor(req.at / 1000)]?.push(l);
        all.push(l);
        while (r.live > 0 && r.busy < model.slots) {
          const next = r.queue[r.head++];
          if (!next) break;
          if (next.where !== 'queued') continue;
          r.live--;
          startService(t, r, next);
        }
        if (r.head > 1024 && r.head * 2 > r.queue.length) {
          r.queue = r.queue.slice(r.head);
          r.head = 0;
        }
        if (r.state === 'ready' && actLive > 0) drainActivator(t);
        removeIfDrained(t, r);
        break;
      }
      case READY: {
        const r = e.rep as Replica;
        if (r.state !== 'starting') break;
        r.state = 'ready';
        noteReady(t);
        drainActivator(t);
        break;
      }
      case TIMEOUT: {
        const req = e.req as Req;
        if (req.where === 'queued') {
          advance(t);
          const r = req.replica as Replica;
          r.live--;
          inflight--;
          fail(req, 'timeout');
          removeIfDrained(t, r);
        } else if (req.where === 'activator') {
          advance(t);
          actLive--;
          inflight--;
          fail(req, t - req.at >= o.deadlineMs ? 'timeout' : 'activator');
        }
        break;
      }
      case SAMPLE: {
        advance(t);
        let saturation: number | undefined;
        if (model.queueCap > 0) {
          for (const r of replicas) {
            if (r.state !== 'ready') continue;
            saturation = Math.max(saturation ?? 0, r.live / model.queueCap);
          }
        }
        pending.push({
          at: t,
          concurrency: inflightArea / o.sampleMs,
          arrivals: periodArrivals,
          periodMs: o.sampleMs,
          ...(saturation === undefined ? {} : { saturation }),
        });
        inflightArea = 0;
        periodArrivals = 0;
        const s = Math.floor((t - 1) / 1000);
        if (s < seconds) perReady[s] = readyCount();
        noteHeld(t); // what is still held as the next second starts
        at(t + o.sampleMs, SAMPLE);
        break;
      }
      case DECIDE: {
        runDecision(t);
        at(t + o.tickMs, DECIDE);
        break;
      }
    }
  }
  advance(end);

  // Results.
  const failed = failedTimeout + failedOverflow + failedActivator;
  const unfinished = arrived - succeeded - failed;
  const p99s = lat.map((l) => {
    if (l.length === 0) return null;
    l.sort((a, b) => a - b);
    return percentile(l, 0.99);
  });
  const sloViolationS = p99s.filter((p) => p !== null && p > o.sloMs).length;
  const perFailed = lat.map((l) => l.filter((v) => v === Number.POSITIVE_INFINITY).length);
  all.sort((a, b) => a - b);
  const steps = stepResults(trace, model, 0, decisionLog, readyLog);
  return {
    policy: policy.name,
    trace: trace.name,
    arrived,
    succeeded,
    failed,
    failedTimeout,
    failedOverflow,
    failedActivator,
    unfinished,
    successRatio: succeeded + failed === 0 ? null : succeeded / (succeeded + failed),
    sloViolationS,
    replicaSeconds: aliveArea / 1000,
    peakReplicas: peak,
    p50Ms: percentile(all, 0.5),
    p99Ms: percentile(all, 0.99),
    decisions,
    steps,
    changes,
    initialDesired: init,
    perSecond: {
      arrivals: perArrivals,
      ready: perReady,
      p99Ms: p99s.map((p) => (p === Infinity ? -1 : p)),
      failed: perFailed,
      held: perHeld,
    },
  };
}

/**
 * Per load step of the trace: the time to the first decision past it that moves the count its way, and (a rising
 * step) to ready replicas >= needed, from a log of decisions and of the ready count (both by time, oldest first).
 * Shared by the simulator and the live replay (live.ts), so both rows are read the same way.
 */
export function stepResults(
  trace: Trace,
  model: Pick<ReplicaModel, 'serviceMs' | 'slots'>,
  initialDesired: number,
  decisions: ReadonlyArray<{ at: number; desired: number }>,
  readyLog: ReadonlyArray<{ at: number; ready: number }>,
): StepResult[] {
  return trace.steps.map((st) => {
    const up = st.toRps > st.fromRps;
    const needed = Math.ceil((st.toRps * model.serviceMs) / 1000 / model.slots);
    let before = initialDesired;
    for (const d of decisions) if (d.at < st.atMs) before = d.desired;
    const moved = decisions.find((d) => d.at >= st.atMs && (up ? d.desired > before : d.desired < before));
    let readyMs: number | null = null;
    if (up) {
      let cur = 0;
      for (const r of readyLog) {
        if (r.at <= st.atMs) cur = r.ready;
        else break;
      }
      if (cur >= needed) readyMs = 0;
      else {
        const hit = readyLog.find((r) => r.at > st.atMs && r.ready >= needed);
        readyMs = hit ? hit.at - st.atMs : null;
      }
    }
    return {
      label: st.label,
      atMs: st.atMs,
      fromRps: st.fromRps,
      toRps: st.toRps,
      needed,
      decisionMs: moved ? moved.at - st.atMs : null,
      readyMs,
    };
  });
}
