/**
 * `ferry top <deployment>`: the deployment's revisions live, from the metrics history's stream
 * (GET /v1/deployments/{name}/metrics/stream, docs/metrics.md): per revision requests/s, p50/p99, errors/s,
 * replicas, batch size, queue depth, cold starts and a sparkline of requests/s over the last minutes. On a terminal
 * the frame is redrawn in place after each step; otherwise one line per revision and step. `--once` prints one
 * frame from the snapshot and exits. The rendering is pure (`topFrame`, `topLines`, `sparkline`).
 */
import type { Command } from 'commander';
import type { MetricsHistoryBody, MetricsPoint } from '../control/index.ts';
import { type ConnectionFlags, run, say, withConnection } from './platform.ts';

/** How far back the sparkline looks. */
const SPARK_WINDOW_MS = 10 * 60_000;
const SPARK_WIDTH = 30;
const BLOCKS = '▁▂▃▄▅▆▇█';

export function registerTop(program: Command): void {
  withConnection(
    program
      .command('top')
      .description(
        "a deployment's revisions live: requests/s, latency, errors, replicas, batch size, queue, cold starts",
      )
      .argument('<deployment>')
      .option('--once', 'print one frame and exit'),
  ).action(
    run(async (name: string, opts: ConnectionFlags & { once?: boolean }) => {
      const { connect } = await import('./context.ts');
      await top(connect(opts), name, { once: opts.once === true, tty: process.stdout.isTTY === true });
    }),
  );
}

interface TopClient {
  metricsStream(
    name: string,
    signal?: AbortSignal,
  ): AsyncIterable<
    | { event: 'snapshot'; history: MetricsHistoryBody }
    | { event: 'point'; revision: number; point: MetricsPoint }
    | { event: 'deleted' }
  >;
}

async function top(client: TopClient, name: string, opts: { once: boolean; tty: boolean }): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let history: MetricsHistoryBody | undefined;
  const write = (text: string) => process.stdout.write(text);
  try {
    for await (const e of client.metricsStream(name, stop.signal)) {
      if (e.event === 'snapshot') {
        history = e.history;
        if (opts.once) {
          write(`${topFrame(history, Date.now())}\n`);
          return;
        }
        if (opts.tty) write(`\x1b[?25l\x1b[H\x1b[2J${topFrame(history, Date.now())}\n`);
      } else if (e.event === 'point' && history) {
        addPoint(history, e.revision, e.point);
        if (opts.tty) write(`\x1b[H\x1b[2J${topFrame(history, Date.now())}\n`);
        else write(`${topLine(e.revision, e.point)}\n`);
      } else if (e.event === 'deleted') {
        say(`deployment ${name} was deleted`);
        return;
      }
    }
    if (!stop.signal.aborted) say(`the metrics stream of ${name} ended (Ferry stopped?)`);
  } finally {
    stop.abort();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (opts.tty && !opts.once) write('\x1b[?25h');
  }
}

/** Appends a point to its revision, keeping the history's window. */
export function addPoint(history: MetricsHistoryBody, revision: number, point: MetricsPoint): void {
  let r = history.revisions.find((x) => x.revision === revision);
  if (!r) {
    r = { revision, points: [] };
    history.revisions.push(r);
    history.revisions.sort((a, b) => a.revision - b.revision);
  }
  r.points.push(point);
  const keep = Math.ceil(history.windowMs / history.stepMs);
  if (r.points.length > keep) r.points.splice(0, r.points.length - keep);
}

/** Requests/s with a 5xx status (`503`, or `5xx` for one Node does not know: core/status-label.ts). */
export function errorRate(p: MetricsPoint): number {
  let sum = 0;
  for (const [code, rate] of Object.entries(p.codes)) if (code.startsWith('5')) sum += rate;
  return sum;
}

/** A sparkline of `values` (at most `width` characters, the latest last), scaled to their maximum. */
export function sparkline(values: readonly number[], width = SPARK_WIDTH): string {
  if (values.length === 0) return '';
  // More values than characters: each character is the mean of a run of them (the latest run full).
  const per = Math.max(1, Math.ceil(values.length / width));
  const cells: number[] = [];
  for (let end = values.length; end > 0; end -= per) {
    const run = values.slice(Math.max(0, end - per), end);
    cells.unshift(run.reduce((a, b) => a + b, 0) / run.length);
  }
  const max = Math.max(...cells);
  return cells
    .map((v) =>
      max <= 0 ? BLOCKS[0] : BLOCKS[Math.min(BLOCKS.length - 1, Math.round((v / max) * (BLOCKS.length - 1)))],
    )
    .join('');
}

const num = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));
/** Seconds as ms (or s from 1 s). */
export function duration(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds >= 1) return `${seconds.toFixed(2)}s`;
  return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)}ms`;
}

const clock = (t: number) => new Date(t).toISOString().slice(11, 19);

/** The whole frame: a title line, a header and a row per revision (its latest point and sparkline). */
export function topFrame(history: MetricsHistoryBody, now: number): string {
  const title = `ferry top ${history.deployment}   step ${history.stepMs / 1000}s, ${history.source}   ${clock(now)}`;
  const header = [
    'REV',
    'REQ/S',
    'P50',
    'P99',
    'ERR/S',
    'REPLICAS',
    'BATCH',
    'QUEUE',
    'COLD',
    'REQ/S LAST 10 MIN',
  ];
  const rows = history.revisions
    .filter((r) => r.points.length > 0)
    .map((r) => {
      const last = r.points.at(-1)!;
      const spark = r.points.filter((p) => p.t > last.t - SPARK_WINDOW_MS).map((p) => p.rps);
      return [
        String(r.revision),
        num(last.rps),
        duration(last.p50),
        duration(last.p99),
        num(errorRate(last)),
        String(last.replicas),
        num(last.batchSize),
        num(last.queueDepth, 0),
        String(r.points.filter((p) => p.t > last.t - SPARK_WINDOW_MS).reduce((a, p) => a + p.coldStarts, 0)),
        sparkline(spark),
      ];
    });
  if (rows.length === 0)
    return `${title}\n(no points yet: the history takes a step every ${history.stepMs / 1000}s)`;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => [...r[i]!].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const notes =
    history.source === 'gateway-reports'
      ? "\n(Docker Swarm: from the gateways' load reports; latency, codes, batch size and queue depth are not known)"
      : '';
  return [title, '', line(header), ...rows.map(line)].join('\n') + notes;
}

/** One revision's step as one line (not a terminal). */
export function topLine(revision: number, p: MetricsPoint): string {
  return [
    new Date(p.t).toISOString(),
    `r${revision}`,
    `rps=${num(p.rps)}`,
    `p50=${duration(p.p50)}`,
    `p99=${duration(p.p99)}`,
    `err=${num(errorRate(p))}`,
    `replicas=${p.replicas}`,
    `batch=${num(p.batchSize)}`,
    `queue=${num(p.queueDepth, 0)}`,
    `cold=${p.coldStarts}`,
  ].join(' ');
}
