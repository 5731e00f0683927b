/**
 * Cold start of iris (issue 11, the live half of the autoscaling benchmark): a real `ferry up` (its own process,
 * on 127.0.0.1) per runtime, examples/iris deployed public with autoscaling min 0; each round waits until the
 * deployment is at zero with no replica left, sends one request through the gateway and times it to its answer
 * (zero -> first answer, as a client sees it). The platform's own phases of that start (decision, start, boot,
 * load, warm-up, ready, release: docs/autoscaling.md, Cold starts) come from the deployment's view
 * (`lastColdStart`), on the same clock. Beside it, the same request to the warm deployment (baseline).
 * Goals (issue 11): cold start of iris from zero to first answer <= 1 s with processes, <= 2 s with Docker
 * (the median of the rounds).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { addVersionFromDir } from '../src/cli/upload.ts';
import { dockerAnswers, sleep, startLivePlatform, until } from './lib/live-platform.ts';
import { log } from './lib/measure.ts';
import { numberFlag, parseOptions, REPO_ROOT } from './lib/options.ts';
import { type Goal, printGoals, printTable, saveResults } from './lib/report.ts';

const USAGE = `cold-start: zero -> first answer of examples/iris through a real ferry up, per runtime, with its phases.
usage: node --import tsx bench/cold-start.ts [options]
  --runtimes <list>    process,docker (default both; docker is n/a when no engine answers)
  --rounds <n>         cold starts per runtime, default 5
  --warm <n>           requests to the warm deployment for the baseline, default 50
  --settle <ms>        pause once at zero before each cold request (the removal's work done), default 1000
  --compare <bin>      also measure another checkout's bin/ferry.js (e.g. the commit before a change): both
                       platforms run at once, taking turns round by round
  (of the common options --ferry and --ready-timeout apply)`;

const { common, values } = parseOptions(USAGE, {
  runtimes: { type: 'string' },
  rounds: { type: 'string' },
  warm: { type: 'string' },
  settle: { type: 'string' },
  compare: { type: 'string' },
});
const compareBin = typeof values.compare === 'string' ? resolve(values.compare) : null;
const runtimes = (typeof values.runtimes === 'string' ? values.runtimes : 'process,docker')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const r of runtimes)
  if (r !== 'process' && r !== 'docker') {
    process.stderr.write(`bench: --runtimes takes process and docker, got "${r}"\n`);
    process.exit(2);
  }
const rounds = Math.round(numberFlag(values, 'rounds', 5, 1, 100));
const warmRequests = Math.round(numberFlag(values, 'warm', 50, 1, 10_000));
const settleMs = numberFlag(values, 'settle', 1000, 0, 60_000);
const GOAL_MS: Record<string, number> = { process: 1000, docker: 2000 };

const IRIS = join(REPO_ROOT, 'examples', 'iris');
const BODY = readFileSync(join(IRIS, 'requests', 'setosa.json'));
const EXPECTED = JSON.parse(readFileSync(join(IRIS, 'responses', 'setosa.json'), 'utf8')) as {
  outputs: Array<{ name: string; data: number[] }>;
};
const PHASES = ['start', 'boot', 'load', 'warmup', 'ready', 'release'] as const;

interface Round {
  round: number;
  /** Client: request sent -> answer read, ms. */
  totalMs: number;
  /** Client's send -> the autoscaler's decision (ms; the request's way to the gateway and the pass that decides). */
  decisionMs: number | null;
  phases: Record<(typeof PHASES)[number], number | null>;
  /** The platform's decision -> release. */
  platformMs: number | null;
  /** Release of the held request -> its answer at the client. */
  answerMs: number | null;
  held: number | null;
}

interface RuntimeResult {
  runtime: string;
  /** '' alone; 'this' and 'compare' with --compare. */
  side: string;
  status: 'ok' | 'n/a' | 'failed';
  reason?: string;
  warm?: { p50: number; p90: number; n: number };
  rounds: Round[];
}

/** The answer must be iris's for setosa: a fast wrong answer is not measured. */
function checkAnswer(status: number, text: string): void {
  if (status !== 200) throw new Error(`the request got ${status}: ${text.slice(0, 300)}`);
  const got = JSON.parse(text) as { outputs: Array<{ name: string; data: number[] }> };
  for (const want of EXPECTED.outputs) {
    const out = got.outputs.find((o) => o.name === want.name);
    if (
      !out ||
      out.data.length !== want.data.length ||
      out.data.some((v, i) => Math.abs(v - want.data[i]!) > 1e-4)
    )
      throw new Error(
        `wrong output ${want.name}: ${JSON.stringify(out?.data)}, expected ${JSON.stringify(want.data)}`,
      );
  }
}

async function infer(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    body: BODY,
    headers: { 'content-type': 'application/json' },
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  checkAnswer(res.status, text);
  return ms;
}

const pct = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? null;
};
const median = (xs: number[]) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** One platform under test: this checkout's ferry up, or the --compare one. */
interface Side {
  label: string;
  result: RuntimeResult;
  /** One cold round; throws on a wrong or failed answer. */
  round(n: number): Promise<void>;
  close(): Promise<void>;
}

async function startSide(runtime: 'process' | 'docker', label: string, ferryBin: string): Promise<Side> {
  const result: RuntimeResult = { runtime, side: label, status: 'ok', rounds: [] };
  const name = `${runtime}${label ? ` (${label})` : ''}`;
  const live = await startLivePlatform({
    runtime,
    ferryBin,
    label: `cold-${runtime}${label ? `-${label}` : ''}`,
    readyTimeoutMs: common.readyTimeoutS * 1000,
  });
  const close = () => live.stop(['iris']);
  try {
    const c = live.client;
    const inferUrl = `${live.gatewayUrl}/v2/models/iris/infer`;
    await c.createModel('iris');
    await addVersionFromDir(c, 'iris', '1', IRIS);
    await c.deploy({ name: 'iris', model: 'iris', version: '1', replicas: 1, public: true });
    log(`${name}: deployed iris (docker: the first start builds its image), waiting for a ready replica`);
    const readyTimeout = Math.max(common.readyTimeoutS * 1000, runtime === 'docker' ? 600_000 : 60_000);
    await until(
      'a ready replica',
      async () => (await c.replicas('iris')).some((r) => r.state === 'ready'),
      readyTimeout,
      100,
    );

    // Baseline: the same request to the warm deployment, one after another.
    for (let i = 0; i < 5; i++) await infer(inferUrl);
    const warm: number[] = [];
    for (let i = 0; i < warmRequests; i++) warm.push(await infer(inferUrl));
    result.warm = { p50: median(warm)!, p90: pct(warm, 0.9)!, n: warm.length };
    log(`${name}: warm request p50 ${result.warm.p50.toFixed(2)} ms`);

    await c.setScaling('iris', {
      minReplicas: 0,
      maxReplicas: 1,
      stableWindowMs: 2_000,
      panicWindowMs: 1_000,
      scaleToZeroGraceMs: 1_000,
    });
    const round = async (n: number) => {
      await until(
        'zero replicas',
        async () => (await c.getDeployment('iris')).replicas === 0 && (await c.replicas('iris')).length === 0,
        120_000,
        100,
      );
      await sleep(settleMs);
      const sentAt = Date.now();
      const totalMs = await infer(inferUrl);
      const answeredAt = sentAt + totalMs;
      let view = (await c.getDeployment('iris')).lastColdStart ?? null;
      // The view is read after the answer: the cold start is recorded before the request is released.
      if (view && view.at < sentAt - 5_000) view = null;
      const r: Round = {
        round: n,
        totalMs,
        decisionMs: view ? view.at - sentAt : null,
        phases: view
          ? view.phases
          : { start: null, boot: null, load: null, warmup: null, ready: null, release: null },
        platformMs: view ? view.totalMs : null,
        answerMs: view ? answeredAt - (view.at + view.totalMs) : null,
        held: view ? view.held : null,
      };
      result.rounds.push(r);
      log(
        `${name}: round ${n}: zero -> first answer ${totalMs.toFixed(0)} ms` +
          (view
            ? ` (decision ${r.decisionMs} ms, ${PHASES.map((p) => `${p} ${r.phases[p] ?? '-'}`).join(', ')}, answer ${r.answerMs?.toFixed(0)} ms)`
            : ' (no cold start in the view)'),
      );
    };
    return { label, result, round, close };
  } catch (e) {
    await close();
    throw e;
  }
}

async function runRuntime(runtime: 'process' | 'docker'): Promise<RuntimeResult[]> {
  const bins: Array<[string, string]> = [[compareBin ? 'this' : '', common.ferryBin]];
  if (compareBin) bins.push(['compare', compareBin]);
  const failed = (label: string, status: 'n/a' | 'failed', reason: string): RuntimeResult => ({
    runtime,
    side: label,
    status,
    reason,
    rounds: [],
  });
  if (runtime === 'docker' && !(await dockerAnswers()))
    return bins.map(([label]) => failed(label, 'n/a', 'no Docker engine answers'));
  const sides: Side[] = [];
  const results: RuntimeResult[] = [];
  try {
    for (const [label, bin] of bins) {
      try {
        sides.push(await startSide(runtime, label, bin));
      } catch (e) {
        log(`${runtime} ${label}: FAILED: ${(e as Error).message}`);
        results.push(failed(label, 'failed', (e as Error).message));
      }
    }
    // Taking turns, the order reversed every round (A B, B A, ...): drift of the machine hits both alike.
    for (let n = 1; n <= rounds; n++) {
      const order = n % 2 === 1 ? sides : [...sides].reverse();
      for (const side of order) {
        if (side.result.status !== 'ok') continue;
        try {
          await side.round(n);
        } catch (e) {
          side.result.status = 'failed';
          side.result.reason = (e as Error).message;
          log(`${runtime} ${side.label}: FAILED: ${(e as Error).message}`);
        }
      }
    }
  } finally {
    for (const side of sides) await side.close();
  }
  return [...sides.map((s) => s.result), ...results];
}

const results: RuntimeResult[] = [];
for (const r of runtimes) results.push(...(await runRuntime(r as 'process' | 'docker')));

const ms = (v: number | null | undefined) => (v === null || v === undefined ? null : v);
const who = (r: RuntimeResult) => (r.side ? `${r.runtime}, ${r.side}` : r.runtime);
const totals = (r: RuntimeResult) => r.rounds.map((x) => x.totalMs);
for (const res of results) {
  if (res.rounds.length === 0) continue;
  printTable(
    `Cold start of iris on ${who(res)}: each round, ms (zero -> first answer at the client; the platform's phases)`,
    [
      { key: 'round', title: 'round' },
      { key: 'total', title: 'zero -> answer', digits: 0 },
      { key: 'decision', title: 'decision', digits: 0 },
      ...PHASES.map((p) => ({ key: p, title: p, digits: 0 })),
      { key: 'answer', title: 'answer', digits: 0 },
      { key: 'held', title: 'held', digits: 0 },
    ],
    [
      ...res.rounds.map((r) => ({
        round: String(r.round),
        total: r.totalMs,
        decision: ms(r.decisionMs),
        ...Object.fromEntries(PHASES.map((p) => [p, ms(r.phases[p])])),
        answer: ms(r.answerMs),
        held: r.held,
      })),
      ...(['median', 'p90'] as const).map((stat) => {
        const f = (xs: Array<number | null>) => {
          const v = xs.filter((x): x is number => x !== null);
          return stat === 'median' ? median(v) : pct(v, 0.9);
        };
        return {
          round: stat,
          total: f(res.rounds.map((r) => r.totalMs)),
          decision: f(res.rounds.map((r) => r.decisionMs)),
          ...Object.fromEntries(PHASES.map((p) => [p, f(res.rounds.map((r) => r.phases[p]))])),
          answer: f(res.rounds.map((r) => r.answerMs)),
          held: null,
        };
      }),
    ],
  );
}
printTable(
  'Cold start vs warm (ms)',
  [
    { key: 'runtime', title: 'runtime' },
    { key: 'rounds', title: 'rounds', digits: 0 },
    { key: 'p50', title: 'cold p50', digits: 0 },
    { key: 'p90', title: 'cold p90', digits: 0 },
    { key: 'warm', title: 'warm p50', digits: 2 },
    { key: 'status', title: 'status' },
  ],
  results.map((r) => ({
    runtime: who(r),
    rounds: r.rounds.length,
    p50: median(totals(r)),
    p90: pct(totals(r), 0.9),
    warm: r.warm?.p50 ?? null,
    status: r.status === 'ok' ? 'ok' : `${r.status}: ${r.reason ?? ''}`.slice(0, 80),
  })),
);

const goals: Goal[] = [];
for (const r of results) {
  if (r.side === 'compare') continue;
  goals.push({
    name: `cold start of iris, zero -> first answer (${r.runtime}, median)`,
    value: r.status === 'ok' ? median(totals(r)) : null,
    op: '<=',
    target: GOAL_MS[r.runtime],
    unit: ' ms',
    detail: r.status === 'ok' ? `${r.rounds.length} rounds` : `${r.status}: ${r.reason ?? ''}`.slice(0, 100),
  });
  if (r.status !== 'ok') continue;
  goals.push({
    name: `  p90 (${r.runtime})`,
    value: pct(totals(r), 0.9),
    op: 'info',
    unit: ' ms',
    detail: r.warm ? `warm request p50 ${r.warm.p50.toFixed(2)} ms` : '',
  });
  const other = results.find((o) => o.runtime === r.runtime && o.side === 'compare' && o.status === 'ok');
  const a = median(totals(r));
  const b = other ? median(totals(other)) : null;
  if (other && a !== null && b !== null)
    goals.push({
      name: `  this / compare, median (${r.runtime})`,
      value: a / b,
      op: 'info',
      detail: `${a.toFixed(0)} ms vs ${b.toFixed(0)} ms, ${r.rounds.length} rounds each, taking turns`,
    });
}
printGoals(goals);
saveResults('cold-start', {
  options: { runtimes, rounds, warmRequests, settleMs, ferryBin: common.ferryBin, compareBin },
  results,
});
if (results.some((r) => r.status === 'failed')) process.exitCode = 1;
