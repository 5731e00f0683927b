/**
 * Autoscaling (issue 11), the virtual-clock half: every load trace (lib/autoscale/traces.ts) through Knative's KPA
 * and Kubernetes' HPA with their documented defaults (lib/autoscale/kpa.ts, hpa.ts) and Ferry's policy
 * (src/autoscaler/decide.ts `ferryPolicy`), on the same simulated replicas and the same seeded
 * arrivals (lib/autoscale/sim.ts). Prints a table per trace and the goal rows; saves JSON. No server is started
 * unless --live: then the same (time-compressed) traces are also replayed open-loop against a real `ferry up`
 * (lib/autoscale/live.ts) and measured from the client and the platform's API: the `ferry-live` row.
 * Goals (issue 11): decision <= 2 s after a step; >= 99.9% success through scale from zero; SLO-violation
 * seconds <= 0.5x the KPA-default policy's at equal or lower replica-seconds. (Cold start of iris <= 1 s with
 * processes, <= 2 s with Docker: bench/cold-start.ts, against a live ferry up.)
 */
import { ferryPolicy } from '../src/autoscaler/decide.ts';
import { DEFAULT_SETTINGS } from '../src/autoscaler/settings.ts';
import type { Policy, ScalingSettings } from '../src/autoscaler/types.ts';
import { expectedArrivals } from './lib/autoscale/arrivals.ts';
import { hpaPolicy } from './lib/autoscale/hpa.ts';
import { kpaPolicy } from './lib/autoscale/kpa.ts';
import { type LiveResult, runLive, uploadLiveModel } from './lib/autoscale/live.ts';
import { type ReplicaModel, type SimResult, simulate } from './lib/autoscale/sim.ts';
import { compressTrace, TRACES, type Trace, type TraceName } from './lib/autoscale/traces.ts';
import { type TimelineSpec, writeTimeline } from './lib/chart-timeline.ts';
import { dockerAnswers, type LivePlatform, startLivePlatform } from './lib/live-platform.ts';
import { log } from './lib/measure.ts';
import { numberFlag, parseOptions } from './lib/options.ts';
import {
  type Cell,
  chartSubtitle,
  type Goal,
  printGoals,
  printTable,
  saveResults,
  shownPath,
} from './lib/report.ts';

const USAGE = `autoscale: Ferry's scaling policy vs Knative KPA-default and HPA-default on the same virtual-clock traces.
usage: node --import tsx bench/autoscale.ts [options]
  --trace <names>        comma-separated: step,burst,idle-burst,diurnal (default all)
  --seed <n>             PRNG seed for arrivals and service times, default 1
  --arrivals <a>         poisson (default) or even
  --slo-ms <ms>          latency SLO: a second violates it when its p99 is above, default 3 x service time
  --service-ms <ms>      mean service time of one request on a replica, default 50
  --service <d>          fixed (default) or exp (exponential service times)
  --slots <n>            requests a replica serves at once, default 4 (also the derived per-replica target)
  --queue <n>            requests waiting per replica beyond its slots, default 10 x slots
  --start-ms <ms>        cold start: from asked for to ready, default 1000
  --deadline-ms <ms>     a request still waiting this long after arriving fails, default 5000
  --activator-cap <n>    requests held while no replica is ready, default 10000
  --max-replicas <n>     maxReplicas for every policy, default 50
  --ferry-tick-ms <ms>   Ferry's decision period, default 1000
  --burst-capacity <n>   per-replica in-flight at which Ferry's gateway holds a burst for starting replicas
                         (the activator's replicaCapacity: the per-replica target, as live), default slots;
                         0: no burst holding (requests overflow full replicas as before)
  --hold-at-limit <0|1>  1 (default): Ferry's gateway holds a request that finds every ready replica full (slots
                         and queue: the replica limit) until one has room; 0: it fails (overflow), as before
  --time-scale <x>       compress every trace's time by x (0 < x <= 1; rates unchanged), default 1, 0.25 with
                         --live; with --live a trace whose requests would pass --max-requests is compressed further
  --max-requests <n>     --live: at most this many requests per trace (by the expected count), default 20000
  --live                 also replay each trace against a real ferry up on 127.0.0.1: the ferry-live row
                         (max replicas default 6 then: a 2-core machine)
  --live-runtime <r>     process (default) or docker
  --poll-ms <ms>         live: how often the replicas are read from the API, default 250
  --live-scaling-at <w>  live, a trace not starting from zero: autoscaling set with the deploy (deploy, default)
                         or once the initial replicas are ready and warmed, just before the trace (ready)`;

const { common, values } = parseOptions(USAGE, {
  trace: { type: 'string' },
  seed: { type: 'string' },
  arrivals: { type: 'string' },
  'slo-ms': { type: 'string' },
  'service-ms': { type: 'string' },
  service: { type: 'string' },
  slots: { type: 'string' },
  queue: { type: 'string' },
  'start-ms': { type: 'string' },
  'deadline-ms': { type: 'string' },
  'activator-cap': { type: 'string' },
  'max-replicas': { type: 'string' },
  'ferry-tick-ms': { type: 'string' },
  'burst-capacity': { type: 'string' },
  'hold-at-limit': { type: 'string' },
  'time-scale': { type: 'string' },
  'max-requests': { type: 'string' },
  live: { type: 'boolean' },
  'live-runtime': { type: 'string' },
  'poll-ms': { type: 'string' },
  'live-scaling-at': { type: 'string' },
});
const die = (m: string): never => {
  process.stderr.write(`bench: ${m}\n`);
  process.exit(2);
};
const traceNames = (typeof values.trace === 'string' ? values.trace : Object.keys(TRACES).join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const n of traceNames)
  if (!(n in TRACES)) die(`--trace: unknown trace "${n}" (${Object.keys(TRACES).join(', ')})`);
const seed = numberFlag(values, 'seed', 1, 0, 2 ** 32 - 1);
const arrivals = values.arrivals ?? 'poisson';
if (arrivals !== 'poisson' && arrivals !== 'even')
  die(`--arrivals must be poisson or even, got "${arrivals}"`);
const service = values.service ?? 'fixed';
if (service !== 'fixed' && service !== 'exp') die(`--service must be fixed or exp, got "${service}"`);
const serviceMs = numberFlag(values, 'service-ms', 50, 0.1, 60_000);
const slots = Math.round(numberFlag(values, 'slots', 4, 1, 1024));
const replica: ReplicaModel = {
  slots,
  serviceMs,
  service: service as 'fixed' | 'exp',
  queueCap: Math.round(numberFlag(values, 'queue', 10 * slots, 0, 1_000_000)),
  startMs: numberFlag(values, 'start-ms', 1000, 0, 600_000),
};
const sloMs = numberFlag(values, 'slo-ms', 3 * serviceMs, 0.1, 600_000);
const deadlineMs = numberFlag(values, 'deadline-ms', 5000, 1, 3_600_000);
const activatorCap = Math.round(numberFlag(values, 'activator-cap', 10_000, 0, 10_000_000));
const live = values.live === true;
const liveRuntime = values['live-runtime'] ?? 'process';
if (liveRuntime !== 'process' && liveRuntime !== 'docker')
  die(`--live-runtime must be process or docker, got "${liveRuntime}"`);
const timeScale = numberFlag(values, 'time-scale', live ? 0.25 : 1, 0.001, 1);
const maxRequests = Math.round(numberFlag(values, 'max-requests', 20_000, 1, 10_000_000));
const scalingAt = values['live-scaling-at'] ?? 'deploy';
if (scalingAt !== 'deploy' && scalingAt !== 'ready')
  die(`--live-scaling-at must be deploy or ready, got "${scalingAt}"`);
const pollMs = numberFlag(values, 'poll-ms', 250, 20, 10_000);
const maxReplicas = Math.round(numberFlag(values, 'max-replicas', live ? 6 : 50, 1, 10_000));
const ferryTickMs = numberFlag(values, 'ferry-tick-ms', 1000, 1, 600_000);
const burstCapacity = Math.round(numberFlag(values, 'burst-capacity', replica.slots, 0, 1_000_000));
const holdAtLimit = numberFlag(values, 'hold-at-limit', 1, 0, 1) === 1;
/**
 * The per-replica set point the reference policies share: Knative's documented defaults (the same numbers as
 * Ferry's, src/autoscaler/settings.ts, which lists them side by side) with containerConcurrency = slots.
 */
const BASE: ScalingSettings = { ...DEFAULT_SETTINGS, minReplicas: 0, maxReplicas, target: null };

interface Runner {
  label: string;
  policy: Policy<unknown>;
  tickMs: number;
  pokeAtZero: boolean;
  /** Decide again on requests held while nothing is ready, at most this often (Ferry's loop does). */
  pokeWhileHeldMs?: number;
  /**
   * The gateway holds a burst for replicas being started (Ferry: replicaCapacity = the per-replica target).
   * Knative's activator with the default containerConcurrency 0 has no per-pod limit to hold on: left out.
   */
  burstCapacity?: number;
  /** The gateway holds what finds every replica full (Ferry: the replica limit) instead of failing it. */
  holdAtLimit?: boolean;
  settings(trace: Trace, initial: number): ScalingSettings;
}
const runners: Runner[] = [
  {
    label: 'kpa-default',
    policy: kpaPolicy() as Policy<unknown>,
    tickMs: kpaPolicy().config.tickMs,
    pokeAtZero: true,
    settings: (_t, initial) => ({ ...BASE, minReplicas: 0, initialScale: initial }),
  },
  {
    label: 'hpa-default',
    policy: hpaPolicy() as Policy<unknown>,
    tickMs: hpaPolicy().config.syncPeriodMs,
    pokeAtZero: false,
    settings: (_t, initial) => ({ ...BASE, minReplicas: 1, initialScale: initial }),
  },
];
runners.push({
  label: 'ferry',
  policy: ferryPolicy as Policy<unknown>,
  tickMs: ferryTickMs,
  pokeAtZero: true,
  pokeWhileHeldMs: 100,
  ...(burstCapacity > 0 ? { burstCapacity } : {}),
  holdAtLimit,
  // Ferry's defaults; min 0 on the trace that starts from zero (its default min is 1: no cold start unless asked).
  settings: (t, initial) => ({
    ...DEFAULT_SETTINGS,
    maxReplicas,
    initialScale: initial,
    minReplicas: t.rate(0) === 0 ? 0 : DEFAULT_SETTINGS.minReplicas,
  }),
});

const results: Record<string, SimResult[]> = {};
/** Per trace: time x timeScale, and with --live further when its expected requests would pass --max-requests. */
const traces: Trace[] = traceNames.map((n) => {
  const full = TRACES[n as TraceName]();
  const n0 = expectedArrivals(full);
  let k = timeScale;
  if (live && n0 * k > maxRequests) k = Math.floor((1000 * maxRequests) / n0) / 1000;
  return compressTrace(full, k);
});
const ferrySettings = (t: Trace, initial: number): ScalingSettings =>
  (runners.find((r) => r.label === 'ferry') as Runner).settings(t, initial);
const initialOf = (trace: Trace) => {
  const r0 = trace.rate(0);
  return r0 === 0 ? 0 : Math.ceil((r0 * serviceMs) / 1000 / (slots * 0.7));
};
for (const trace of traces) {
  const initial = initialOf(trace);
  log(
    `trace ${trace.name}: ${trace.description}, ${trace.durationMs / 1000} s, ${initial} replicas at start`,
  );
  results[trace.name] = runners.map((run) => {
    const res = simulate({
      trace,
      policy: run.policy,
      settings: run.settings(trace, initial),
      tickMs: run.tickMs,
      pokeAtZero: run.pokeAtZero,
      ...(run.pokeWhileHeldMs === undefined ? {} : { pokeWhileHeldMs: run.pokeWhileHeldMs }),
      replica,
      derivedTarget: slots,
      seed,
      arrivals: arrivals as 'poisson' | 'even',
      sampleMs: 1000,
      deadlineMs,
      activatorCap,
      activatorWaitMs: deadlineMs,
      ...(run.burstCapacity === undefined ? {} : { burstCapacity: run.burstCapacity }),
      ...(run.holdAtLimit === true ? { holdAtLimit: true } : {}),
      sloMs,
      initialReplicas: initial,
    });
    return { ...res, policy: run.label };
  });
}

/**
 * The live row: every trace against one real ferry up, a deployment of its own each (Ferry's defaults as the
 * `ferry` row has them; the per-replica target pinned to --slots, what the simulator gives every policy as the
 * derived target; live, a handler's would be derived as workers x pipeline depth = 2 x slots).
 */
const liveRuns: Record<string, LiveResult> = {};
const liveProblems: string[] = [];
if (live) {
  let platform: LivePlatform | undefined;
  const made: string[] = [];
  try {
    if (liveRuntime === 'docker' && !(await dockerAnswers())) throw new Error('no Docker engine answers');
    platform = await startLivePlatform({
      runtime: liveRuntime as 'process' | 'docker',
      ferryBin: common.ferryBin,
      label: `autoscale-${liveRuntime}`,
      readyTimeoutMs: common.readyTimeoutS * 1000,
    });
    await uploadLiveModel(platform, slots, replica.queueCap);
    for (const trace of traces) {
      const name = `live-${trace.name}`;
      const initial = initialOf(trace);
      const f = ferrySettings(trace, initial);
      made.push(name);
      const res = await runLive({
        platform,
        trace,
        seed,
        arrivals: arrivals as 'poisson' | 'even',
        serviceMs,
        slots,
        queueCap: replica.queueCap,
        deadlineMs,
        sloMs,
        scaling: {
          minReplicas: f.minReplicas,
          maxReplicas: f.maxReplicas,
          initialScale: f.initialScale,
          target: slots,
        },
        initial,
        pollMs,
        scalingAt: scalingAt as 'deploy' | 'ready',
        name,
      });
      liveRuns[trace.name] = res;
      results[trace.name]?.push(res);
      log(
        `${name}: ${res.succeeded}/${res.arrived} answered, failed ${JSON.stringify(res.failures)}, worst send lag ${res.maxSendLagMs.toFixed(0)} ms${res.firstError ? `; first failure: ${res.firstError}` : ''}`,
      );
      await platform.client.deleteDeployment(name).catch(() => undefined);
      made.pop();
    }
  } catch (e) {
    liveProblems.push((e as Error).message);
    log(`live: FAILED: ${(e as Error).message}`);
    if (platform) log(platform.process.output().slice(-2000));
    process.exitCode = 1;
  } finally {
    await platform?.stop(made);
  }
}

const s = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : ms / 1000);
for (const trace of traces) {
  const rows: Record<string, Cell>[] = (results[trace.name] ?? []).map((r) => {
    const up = r.steps.find((st) => st.toRps > st.fromRps);
    const down = r.steps.find((st) => st.toRps < st.fromRps);
    return {
      policy: r.policy,
      tick:
        (runners.find((x) => x.label === (r.policy === 'ferry-live' ? 'ferry' : r.policy))?.tickMs ?? 0) /
        1000,
      decide: up ? (s(up.decisionMs) ?? 'never') : '-',
      ready: up ? (s(up.readyMs) ?? 'never') : '-',
      down: down ? (s(down.decisionMs) ?? 'never') : '-',
      slo: r.sloViolationS,
      failed: r.failed,
      success: r.successRatio === null ? null : r.successRatio * 100,
      rs: r.replicaSeconds,
      peak: r.peakReplicas,
      p99: r.p99Ms,
      note:
        r.policy === 'ferry-live'
          ? `${liveRuntime}; ${
              Object.entries((r as LiveResult).failures)
                .map(([k, v]) => `${v} ${k}`)
                .join(', ') || 'no failure'
            }; send lag <= ${(r as LiveResult).maxSendLagMs.toFixed(0)} ms`
          : '-',
    };
  });
  const up = trace.steps.find((st) => st.toRps > st.fromRps);
  printTable(
    `autoscale ${trace.name}: ${trace.description}; replica ${slots} slots x ${serviceMs} ms, start ${replica.startMs} ms, SLO p99 <= ${sloMs} ms${up ? `; needed after the step: ${Math.ceil((up.toRps * serviceMs) / 1000 / slots)}` : ''}`,
    [
      { key: 'policy', title: 'policy' },
      { key: 'tick', title: 'tick s', digits: 0 },
      { key: 'decide', title: 'step->decision s', digits: 2 },
      { key: 'ready', title: 'step->ready s', digits: 2 },
      { key: 'down', title: 'down->decision s', digits: 0 },
      { key: 'slo', title: 'SLO-viol s', digits: 0 },
      { key: 'failed', title: 'failed', digits: 0 },
      { key: 'success', title: 'success %', digits: 3 },
      { key: 'rs', title: 'replica-s', digits: 0 },
      { key: 'peak', title: 'peak', digits: 0 },
      { key: 'p99', title: 'p99 ms', digits: 0 },
      { key: 'note', title: 'note' },
    ],
    rows,
  );
}

// Goals.
const byPolicy = (trace: string, policy: string) => results[trace]?.find((r) => r.policy === policy);
const goals: Goal[] = [];
const worstDecision = (policy: string): number | null => {
  let worst: number | null = null;
  for (const t of traces) {
    for (const st of byPolicy(t.name, policy)?.steps ?? []) {
      if (st.toRps <= st.fromRps) continue;
      const d = st.decisionMs === null ? Number.POSITIVE_INFINITY : st.decisionMs / 1000;
      worst = worst === null ? d : Math.max(worst, d);
    }
  }
  return worst;
};
goals.push({
  name: 'ferry: step -> decision (worst up-step)',
  value: worstDecision('ferry'),
  op: '<=',
  target: 2,
  unit: ' s',
  detail: 'virtual clock, all traces',
});
for (const p of ['kpa-default', 'hpa-default']) {
  goals.push({ name: `${p}: step -> decision (worst)`, value: worstDecision(p), op: 'info', unit: ' s' });
}
if (traceNames.includes('idle-burst')) {
  const f = byPolicy('idle-burst', 'ferry');
  goals.push({
    name: 'ferry: success through scale from zero',
    value: f?.successRatio === null || f?.successRatio === undefined ? null : f.successRatio * 100,
    op: '>=',
    target: 99.9,
    unit: '%',
    detail: 'idle-burst trace',
  });
  const k = byPolicy('idle-burst', 'kpa-default');
  if (k?.successRatio != null) {
    goals.push({
      name: 'kpa-default: success from zero',
      value: k.successRatio * 100,
      op: 'info',
      unit: '%',
    });
  }
}
for (const t of traces) {
  const k = byPolicy(t.name, 'kpa-default');
  const f = byPolicy(t.name, 'ferry');
  goals.push({
    name: `ferry: SLO-violation s, ${t.name}`,
    value: f ? f.sloViolationS : null,
    op: '<=',
    target: k ? 0.5 * k.sloViolationS : undefined,
    unit: ' s',
    detail: f ? `<= 0.5 x kpa-default's ${k?.sloViolationS ?? '?'} s` : 'not yet: no ferryPolicy',
  });
  goals.push({
    name: `ferry / kpa-default replica-s, ${t.name}`,
    value: f && k && k.replicaSeconds > 0 ? f.replicaSeconds / k.replicaSeconds : null,
    op: '<=',
    target: 1,
    detail: f ? 'at equal or lower cost' : 'not yet: no ferryPolicy',
  });
}
if (live) {
  const lw = worstDecision('ferry-live');
  goals.push({
    name: 'ferry-live: step -> decision (worst up-step)',
    value: lw,
    op: '<=',
    target: 2,
    unit: ' s',
    detail: liveProblems.length
      ? `failed: ${liveProblems[0]}`.slice(0, 100)
      : `${liveRuntime}, Autoscaled events`,
  });
  const lf = liveRuns['idle-burst'];
  if (traceNames.includes('idle-burst'))
    goals.push({
      name: 'ferry-live: success through scale from zero',
      value: lf?.successRatio == null ? null : lf.successRatio * 100,
      op: '>=',
      target: 99.9,
      unit: '%',
      detail: lf ? `idle-burst, ${lf.succeeded}/${lf.arrived} answered` : 'not measured',
    });
}
goals.push({
  name: 'cold start of iris, zero -> first answer',
  value: null,
  op: 'info',
  detail: 'live: bench/cold-start.ts',
});
printGoals(goals);

const resultsFile = saveResults('autoscale', {
  options: {
    traces: traceNames,
    seed,
    arrivals,
    replica,
    sloMs,
    deadlineMs,
    activatorCap,
    maxReplicas,
    ferryTickMs,
    timeScale,
    maxRequests,
    live: live ? { runtime: liveRuntime, pollMs, scalingAt, problems: liveProblems } : false,
  },
  ferry: { defaults: DEFAULT_SETTINGS },
  reference: { kpa: kpaPolicy().config, hpa: hpaPolicy().config },
  traces: Object.fromEntries(
    traces.map((t) => [t.name, { description: t.description, params: t.params, durationMs: t.durationMs }]),
  ),
  runs: results,
});

/** The timeline chart of one trace: offered load, and per policy replicas needed/desired/ready, held, failed. */
function timelineOf(trace: Trace, runs: SimResult[], subtitle: string): TimelineSpec {
  const T = trace.durationMs / 1000;
  // The rate sampled finely, and exactly on both sides of every step, so a step is drawn upright.
  const at = new Set<number>();
  const n = 1600;
  for (let k = 0; k <= n; k++) at.add((k / n) * trace.durationMs);
  for (const st of trace.steps) at.add(Math.max(0, st.atMs - 1e-6)).add(st.atMs);
  const times = [...at].filter((t) => t <= trace.durationMs).sort((a, b) => a - b);
  const offered = times.map((t): [number, number] => [
    t / 1000,
    trace.rate(Math.min(t, trace.durationMs - 1e-6)),
  ]);
  const needed: Array<[number, number]> = [];
  for (const [t, r] of offered) {
    const k = Math.ceil((r * serviceMs) / 1000 / slots);
    if (needed.length === 0 || needed[needed.length - 1]?.[1] !== k) needed.push([t, k]);
  }
  return {
    title: `autoscale ${trace.name}: ${trace.description}; replica ${slots} slots x ${serviceMs} ms, start ${replica.startMs} ms`,
    subtitle: `${subtitle}; seed ${seed}, ${arrivals} arrivals, max ${maxReplicas} replicas`,
    durationS: T,
    offered,
    arrivals: runs.find((r) => r.policy !== 'ferry-live')?.perSecond.arrivals ?? runs[0]?.perSecond.arrivals,
    needed,
    steps: trace.steps.map((st) => ({ atS: st.atMs / 1000, label: st.label })),
    slo: `p99 > ${sloMs} ms`,
    runs: runs.map((r) => {
      const liveSamples = (r as Partial<LiveResult>).samples;
      const ready: Array<[number, number]> = liveSamples
        ? [[0, r.initialDesired], ...liveSamples.map((x): [number, number] => [x.t / 1000, x.ready])]
        : [[0, r.initialDesired], ...r.perSecond.ready.map((v, k): [number, number] => [k + 1, v])];
      const success =
        r.successRatio === null ? 'no request' : `${(r.successRatio * 100).toFixed(2)}% answered`;
      return {
        label: r.policy,
        note:
          `${r.failed.toLocaleString('en-US')} failed, ${success}, SLO missed ${r.sloViolationS} s, ` +
          `${Math.round(r.replicaSeconds).toLocaleString('en-US')} replica-s, peak ${r.peakReplicas}` +
          (r.policy === 'ferry-live' ? `; live (${liveRuntime}, polled every ${pollMs} ms)` : '; simulated'),
        ready,
        desired: [[0, r.initialDesired], ...r.changes.map((c): [number, number] => [c.at / 1000, c.desired])],
        failed: r.perSecond.failed ?? null,
        held: r.perSecond.held ?? null,
        sloViolated: r.perSecond.p99Ms.map((p) => p !== null && (p < 0 || p > sloMs)),
      };
    }),
  };
}

const subtitle = chartSubtitle(new Date());
for (const trace of traces) {
  const runs = results[trace.name];
  if (!runs?.length) continue;
  const file = writeTimeline(resultsFile, trace.name, timelineOf(trace, runs, subtitle));
  process.stdout.write(`timeline of ${trace.name} saved to ${shownPath(file)}\n`);
}
