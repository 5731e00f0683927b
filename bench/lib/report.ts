/** Plain-text result tables, goal lines, and the JSON results file. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChartSpec, writeChart } from './chart.ts';
import { type LatencyChartSpec, writeLatencyChart } from './chart-latency.ts';

export type Cell = string | number | null | undefined;

export interface Column {
  key: string;
  title: string;
  /** Decimal places for numbers (default 0 for |x| >= 100, else 2). */
  digits?: number;
}

function fmt(v: Cell, digits?: number): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** Render rows as an aligned table: text left-aligned, numbers right-aligned. */
export function formatTable(columns: Column[], rows: Record<string, Cell>[]): string {
  const cells = rows.map((r) => columns.map((c) => fmt(r[c.key], c.digits)));
  const numeric = columns.map((c) => rows.some((r) => typeof r[c.key] === 'number'));
  const widths = columns.map((c, i) =>
    Math.max(c.title.length, ...cells.map((row) => (row[i] ?? '').length)),
  );
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (numeric[i] ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(columns.map((c) => c.title)), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of cells) out.push(line(row));
  return out.join('\n');
}

export function printTable(title: string, columns: Column[], rows: Record<string, Cell>[]): void {
  process.stdout.write(`\n${title}\n${formatTable(columns, rows)}\n`);
}

export interface Goal {
  name: string;
  /** The measured value; null when it could not be measured (a server missing, a run failing). */
  value: number | null;
  /** "value >= target", "value <= target", "value < target"; 'info' = shown for context, no goal. */
  op: '>=' | '<=' | '<' | 'info';
  target?: number;
  unit?: string;
  /** What the value is, e.g. "ferry rps / floor rps". */
  detail?: string;
}

export interface GoalResult extends Goal {
  pass: boolean | null;
}

export function checkGoal(g: Goal): GoalResult {
  if (g.op === 'info' || g.target === undefined || g.value === null || !Number.isFinite(g.value)) {
    return { ...g, pass: null };
  }
  const pass = g.op === '>=' ? g.value >= g.target : g.op === '<=' ? g.value <= g.target : g.value < g.target;
  return { ...g, pass };
}

/** Print ratios/goals as aligned lines: name, value, goal, PASS/MISS/n/a. Returns the checked goals. */
export function printGoals(goals: Goal[]): GoalResult[] {
  const checked = goals.map(checkGoal);
  const rows = checked.map((g) => ({
    name: g.name,
    value: g.value === null ? null : `${fmt(g.value, Math.abs(g.value) >= 100 ? 0 : 2)}${g.unit ?? ''}`,
    goal: g.op === 'info' ? '-' : `${g.op} ${g.target}${g.unit ?? ''}`,
    result: g.op === 'info' ? 'info' : g.pass === null ? 'n/a' : g.pass ? 'PASS' : 'MISS',
    detail: g.detail ?? '',
  }));
  printTable(
    'Ratios and goals',
    [
      { key: 'name', title: 'measure' },
      { key: 'value', title: 'value' },
      { key: 'goal', title: 'goal' },
      { key: 'result', title: 'result' },
      { key: 'detail', title: 'what' },
    ],
    rows,
  );
  return checked;
}

/** Safe ratio: null when either side is missing or the denominator is zero. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return a / b;
}

export function diff(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  return a - b;
}

function gitRev(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch {
    return null;
  }
}

export interface Environment {
  node: string;
  platform: string;
  cpuModel: string | null;
  cpuCount: number;
  loadavg: number[];
  gitRev: string | null;
}

/** Facts about the machine and software that make a result file interpretable later. */
export function environment(): Environment {
  const c = cpus();
  return {
    node: process.version,
    platform: `${platform()} ${release()} ${arch()}`,
    cpuModel: c[0]?.model ?? null,
    cpuCount: c.length,
    loadavg: loadavg(),
    gitRev: gitRev(),
  };
}

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** A path as printed: relative to the working directory when it is under it. */
export function shownPath(f: string): string {
  const rel = relative(process.cwd(), f);
  return rel.startsWith('..') ? f : rel;
}

/** The subtitle charts carry: when, on what CPU, which node and git commit, at what load average. */
export function chartSubtitle(date: Date, env: Environment = environment()): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${env.cpuCount} CPUs (${env.cpuModel}), node ${env.node}, git ${env.gitRev ?? '?'}, load average ${env.loadavg[0]?.toFixed(2)}`;
}

/**
 * Write bench/results/<scenario>-<timestamp>.json, and with `chart` the chart of the results beside it
 * (<scenario>-<timestamp>.svg, lib/chart.ts), with `latencyChart` the latency distributions
 * (<scenario>-<timestamp>-latency.svg, lib/chart-latency.ts); their subtitle says when and where it was measured
 * unless the chart has one. Returns the JSON file's path.
 */
export function saveResults(
  scenario: string,
  data: Record<string, unknown>,
  chart?: ChartSpec,
  latencyChart?: LatencyChartSpec,
): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const date = new Date();
  const stamp = date.toISOString().replace(/[:.]/g, '-');
  const file = join(RESULTS_DIR, `${scenario}-${stamp}.json`);
  const env = environment();
  writeFileSync(
    file,
    `${JSON.stringify({ scenario, date: date.toISOString(), environment: env, ...data }, null, 2)}\n`,
  );
  process.stdout.write(`\nresults saved to ${shownPath(file)}\n`);
  const subtitle = chartSubtitle(date, env);
  if (chart) {
    const f = writeChart(file, { ...chart, subtitle: chart.subtitle ?? subtitle });
    process.stdout.write(`chart saved to ${shownPath(f)}\n`);
  }
  if (latencyChart) {
    const f = writeLatencyChart(file, { ...latencyChart, subtitle: latencyChart.subtitle ?? subtitle });
    process.stdout.write(`latency chart saved to ${shownPath(f)}\n`);
  }
  return file;
}
