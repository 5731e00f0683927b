/**
 * The autoscale timeline of one load trace (bench/autoscale.ts): the offered load on top (the trace's rate and the
 * arrivals per second), then one panel per policy compared, on the same time axis and the same replica scale:
 * replicas needed (grey), desired (dashed step line: the policy's decisions) and ready (solid), the seconds that
 * violated the latency SLO shaded, and under each panel two strips: the most requests held at once at the gateway
 * per second and the failed requests per second (by arrival second; a strip says "not recorded" when the run has
 * no such data). Hand-written SVG text like chart.ts, written beside the results JSON as
 * autoscale-<timestamp>-<trace>.svg.
 */
import { writeFileSync } from 'node:fs';
import { clip, esc, fmtNum, fmtTick, niceTicks, svgOpen, wrapText } from './chart.ts';
import { seriesStyle } from './chart-latency.ts';

export interface TimelineRun {
  /** The policy, e.g. "kpa-default" or "ferry-live". */
  label: string;
  /** Shown after the label, e.g. "12 failed, 99.93% answered, 355 replica-s". */
  note?: string;
  /** Ready replicas over time: [t s, count] in time order; a count holds until the next point. */
  ready: Array<[number, number]>;
  /** Desired replicas (the policy's decisions) over time, as `ready`. */
  desired: Array<[number, number]>;
  /** Failed requests per second (index = second); null or missing: not recorded. */
  failed?: number[] | null;
  /** Most requests held at once at the gateway per second; null or missing: not recorded. */
  held?: number[] | null;
  /** Per second: true when the second's requests missed the latency SLO (p99 over it, or one failed). */
  sloViolated?: boolean[] | null;
}

export interface TimelineSpec {
  title: string;
  subtitle?: string;
  /** The trace's length. */
  durationS: number;
  /** Offered load, req/s: [t s, rate] samples in time order (drawn as a line through them). */
  offered: Array<[number, number]>;
  /** Requests that arrived in each second (index = second). */
  arrivals?: number[] | null;
  /** Replicas the offered load needs over time, as TimelineRun.ready. */
  needed?: Array<[number, number]>;
  /** The trace's load steps, marked across every panel. */
  steps?: Array<{ atS: number; label: string }>;
  /** What "SLO violated" means, e.g. "p99 > 150 ms" (the legend and description say it). */
  slo?: string;
  runs: TimelineRun[];
}

const W = 980;
const PLOT_X = 70;
const PLOT_W = 790;
const RIGHT_X = PLOT_X + PLOT_W + 8;
const LOAD_H = 110;
const REPLICA_H = 96;
const STRIP_H = 22;
const MUTED = '#595959';
const GRID = '#e2e2e2';
const AXIS = '#666';
const NEEDED = '#d4d4d4';
const SLO_FILL = '#f6d3cf';
const FAILED = '#b2182b';
const HELD = '#8a6400';
const OFFERED = '#1a1a1a';
const ARRIVALS = '#9ec5e2';

const f1 = (v: number) => v.toFixed(1);
const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** An SVG path of a step function through [t, v] points (v holds until the next t), to `endS`. */
function stepPath(
  pts: Array<[number, number]>,
  endS: number,
  x: (t: number) => number,
  y: (v: number) => number,
): string {
  const ok = pts.filter(([t, v]) => finite(t) && finite(v) && t <= endS);
  if (ok.length === 0) return '';
  let d = `M${f1(x(ok[0]?.[0] as number))},${f1(y(ok[0]?.[1] as number))}`;
  for (let i = 1; i < ok.length; i++) {
    const [t, v] = ok[i] as [number, number];
    d += ` H${f1(x(t))} V${f1(y(v))}`;
  }
  return `${d} H${f1(x(endS))}`;
}

/** Runs of consecutive true seconds: [start, end) pairs. */
export function spans(flags: readonly boolean[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = -1;
  flags.forEach((on, i) => {
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      out.push([start, i]);
      start = -1;
    }
  });
  if (start >= 0) out.push([start, flags.length]);
  return out;
}

const maxOf = (xs: Iterable<number>): number => {
  let m = 0;
  for (const v of xs) if (finite(v) && v > m) m = v;
  return m;
};
const sum = (xs: readonly number[] | null | undefined) =>
  (xs ?? []).reduce((a, b) => a + (finite(b) ? b : 0), 0);

/** The SVG text of an autoscale timeline. */
export function renderTimeline(spec: TimelineSpec): string {
  if (!(spec.durationS > 0)) throw new Error(`timeline: durationS must be > 0, got ${spec.durationS}`);
  const T = spec.durationS;
  const x = (t: number) => PLOT_X + (Math.min(Math.max(t, 0), T) / T) * PLOT_W;
  const xTicks = niceTicks(T).filter((t) => t <= T + 1e-9);

  const titleLines = wrapText(spec.title, 100);
  const subLines = spec.subtitle ? wrapText(spec.subtitle, 150) : [];
  const legendY = 14 + titleLines.length * 20 + subLines.length * 15 + 18;
  // Legend: entries laid out left to right, each as wide as its symbol and text, wrapping to a second row.
  const legend: Array<[string, number, string]> = [
    [
      `<line x1="0" y1="-4" x2="22" y2="-4" stroke="${OFFERED}" stroke-width="2"/><rect x="26" y="-10" width="6" height="10" fill="${ARRIVALS}"/>`,
      38,
      'offered req/s, arrivals/s',
    ],
    [`<rect x="0" y="-10" width="22" height="10" fill="${NEEDED}"/>`, 28, 'replicas needed'],
    [
      `<line x1="0" y1="-4" x2="22" y2="-4" stroke="#333" stroke-width="2" stroke-dasharray="5 3"/>`,
      28,
      'desired',
    ],
    [`<line x1="0" y1="-4" x2="22" y2="-4" stroke="#333" stroke-width="2.5"/>`, 28, 'ready'],
    [
      `<rect x="0" y="-10" width="22" height="10" fill="${SLO_FILL}"/>`,
      28,
      `SLO missed${spec.slo ? ` (${clip(spec.slo, 40)})` : ''}`,
    ],
    [
      `<rect x="0" y="-10" width="5" height="10" fill="${HELD}"/><rect x="8" y="-7" width="5" height="7" fill="${FAILED}"/>`,
      19,
      'held, failed /s',
    ],
  ];
  const placed: Array<{ x: number; row: number }> = [];
  {
    let lx = 12;
    let row = 0;
    for (const [, textX, text] of legend) {
      const w = textX + text.length * 6.4 + 22;
      if (lx + w > W - 12 && lx > 12) {
        lx = 12;
        row++;
      }
      placed.push({ x: lx, row });
      lx += w;
    }
  }
  const legendRows = (placed.at(-1)?.row ?? 0) + 1;
  const loadTop = legendY + legendRows * 18 + 22;
  const runH = 22 + REPLICA_H + 6 + 2 * (STRIP_H + 4) + 30;
  const runsTop = loadTop + LOAD_H + 46;
  const H = runsTop + spec.runs.length * runH + 24;

  const replicaMax = Math.max(
    1,
    maxOf((spec.needed ?? []).map(([, v]) => v)),
    ...spec.runs.map((r) => maxOf([...r.ready.map(([, v]) => v), ...r.desired.map(([, v]) => v)])),
  );
  const rTicks = niceTicks(replicaMax).filter((t) => Number.isInteger(t));
  const rTop = rTicks[rTicks.length - 1] as number;
  const failedMax = maxOf(spec.runs.flatMap((r) => r.failed ?? []));
  const heldMax = maxOf(spec.runs.flatMap((r) => r.held ?? []));
  const loadMax = Math.max(maxOf(spec.offered.map(([, v]) => v)), maxOf(spec.arrivals ?? []));
  const lTicks = niceTicks(loadMax);
  const lTop = lTicks[lTicks.length - 1] as number;

  const peak = (pts: Array<[number, number]>) => maxOf(pts.map(([, v]) => v));
  const desc = [
    `Offered load up to ${fmtNum(loadMax)} req/s over ${fmtNum(T)} s${spec.steps?.length ? `, steps: ${spec.steps.map((s) => `${s.label} at ${fmtNum(s.atS)} s`).join(', ')}` : ''}.`,
    ...spec.runs.map(
      (r) =>
        `${r.label}${r.note ? ` (${r.note})` : ''}: peak ${peak(r.desired)} desired, ${peak(r.ready)} ready; ` +
        `${r.failed ? `${sum(r.failed)} failed` : 'failures not recorded'}; ` +
        `${r.held ? `at most ${maxOf(r.held)} held at once` : 'held not recorded'}; ` +
        `${r.sloViolated ? `${r.sloViolated.filter(Boolean).length} s over the SLO` : 'SLO not recorded'}.`,
    ),
  ].join(' ');
  const out = svgOpen(
    W,
    H,
    spec.title,
    `Autoscale timeline: time in s on every panel. ${spec.subtitle ? `${spec.subtitle}. ` : ''}${desc}`,
  );
  let y = 14;
  for (const line of titleLines) {
    y += 20;
    out.push(`<text x="12" y="${y - 4}" font-size="16" font-weight="bold">${esc(line)}</text>`);
  }
  for (const line of subLines) {
    y += 15;
    out.push(`<text x="12" y="${y - 2}" fill="${MUTED}" font-size="11">${esc(line)}</text>`);
  }

  legend.forEach(([sym, textX, text], i) => {
    const at = placed[i] as { x: number; row: number };
    out.push(
      `<g transform="translate(${f1(at.x)},${legendY + at.row * 18})">${sym}<text x="${textX}" y="0" font-size="11">${esc(text)}</text></g>`,
    );
  });

  const gridX = (top: number, h: number) => {
    for (const t of xTicks)
      out.push(`<line x1="${f1(x(t))}" y1="${top}" x2="${f1(x(t))}" y2="${top + h}" stroke="${GRID}"/>`);
  };
  const timeLabels = (yy: number) => {
    for (const t of xTicks)
      out.push(
        `<text x="${f1(x(t))}" y="${yy}" text-anchor="middle" fill="${AXIS}" font-size="11">${t.toLocaleString('en-US')}</text>`,
      );
  };
  const stepMarks = (top: number, h: number, labels: boolean) => {
    for (const st of spec.steps ?? []) {
      if (!(st.atS >= 0 && st.atS <= T)) continue;
      out.push(
        `<line x1="${f1(x(st.atS))}" y1="${top}" x2="${f1(x(st.atS))}" y2="${top + h}" stroke="#333" stroke-dasharray="1 3"/>`,
      );
      if (labels)
        out.push(
          `<text x="${f1(x(st.atS) + 3)}" y="${top + 11}" fill="#333" font-size="10">${esc(clip(st.label, 16))}</text>`,
        );
    }
  };

  // Offered load.
  out.push(`<text x="${PLOT_X}" y="${loadTop - 8}" font-weight="bold">offered load</text>`);
  gridX(loadTop, LOAD_H);
  const ly = (v: number) => loadTop + LOAD_H - (lTop > 0 ? (v / lTop) * LOAD_H : 0);
  for (const t of lTicks) {
    out.push(
      `<line x1="${PLOT_X}" y1="${f1(ly(t))}" x2="${PLOT_X + PLOT_W}" y2="${f1(ly(t))}" stroke="${GRID}"/>`,
      `<text x="${PLOT_X - 6}" y="${f1(ly(t) + 4)}" text-anchor="end" fill="${AXIS}" font-size="11">${fmtTick(t)}</text>`,
    );
  }
  (spec.arrivals ?? []).forEach((n, s) => {
    if (!(finite(n) && n > 0) || s >= T) return;
    const w = Math.max(0.6, x(Math.min(s + 1, T)) - x(s) - 0.3);
    out.push(
      `<rect x="${f1(x(s))}" y="${f1(ly(n))}" width="${f1(w)}" height="${f1(loadTop + LOAD_H - ly(n))}" fill="${ARRIVALS}"/>`,
    );
  });
  const offered = spec.offered.filter(([t, v]) => finite(t) && finite(v));
  if (offered.length > 0) {
    out.push(
      `<polyline points="${offered.map(([t, v]) => `${f1(x(t))},${f1(ly(v))}`).join(' ')}" fill="none" stroke="${OFFERED}" stroke-width="2" stroke-linejoin="round"/>`,
    );
  }
  stepMarks(loadTop, LOAD_H, true);
  out.push(
    `<line x1="${PLOT_X}" y1="${loadTop}" x2="${PLOT_X}" y2="${loadTop + LOAD_H}" stroke="${AXIS}"/>`,
    `<line x1="${PLOT_X}" y1="${loadTop + LOAD_H}" x2="${PLOT_X + PLOT_W}" y2="${loadTop + LOAD_H}" stroke="${AXIS}"/>`,
    `<text transform="translate(${PLOT_X - 46},${loadTop + LOAD_H / 2}) rotate(-90)" text-anchor="middle" fill="${AXIS}" font-size="11">req/s</text>`,
  );
  timeLabels(loadTop + LOAD_H + 15);
  out.push(
    `<text x="${PLOT_X + PLOT_W / 2}" y="${loadTop + LOAD_H + 30}" text-anchor="middle" fill="${AXIS}" font-size="11">time, s</text>`,
  );

  // One panel per run.
  spec.runs.forEach((run, i) => {
    const top = runsTop + i * runH;
    const pTop = top + 22;
    const color = seriesStyle(i).color;
    out.push(
      `<text x="${PLOT_X}" y="${top + 12}" font-weight="bold" fill="${color}"><title>${esc(`${run.label}${run.note ? `, ${run.note}` : ''}`)}</title>${esc(clip(run.label, 30))}${run.note ? `<tspan dx="8" font-weight="normal" fill="${MUTED}" font-size="11">${esc(clip(run.note, 110 - Math.min(30, run.label.length)))}</tspan>` : ''}</text>`,
    );
    const ry = (v: number) => pTop + REPLICA_H - (v / rTop) * REPLICA_H;
    for (const [a, b] of spans(run.sloViolated ?? [])) {
      out.push(
        `<rect x="${f1(x(a))}" y="${pTop}" width="${f1(Math.max(1, x(b) - x(a)))}" height="${REPLICA_H}" fill="${SLO_FILL}"/>`,
      );
    }
    gridX(pTop, REPLICA_H);
    for (const t of rTicks) {
      out.push(
        `<line x1="${PLOT_X}" y1="${f1(ry(t))}" x2="${PLOT_X + PLOT_W}" y2="${f1(ry(t))}" stroke="${GRID}"/>`,
        `<text x="${PLOT_X - 6}" y="${f1(ry(t) + 4)}" text-anchor="end" fill="${AXIS}" font-size="11">${t}</text>`,
      );
    }
    if (spec.needed?.length) {
      const d = stepPath(spec.needed, T, x, ry);
      if (d)
        out.push(
          `<path d="${d} V${f1(ry(0))} H${f1(x(spec.needed[0]?.[0] ?? 0))} Z" fill="${NEEDED}" fill-opacity="0.8"/>`,
        );
    }
    stepMarks(pTop, REPLICA_H, false);
    const dd = stepPath(run.desired, T, x, ry);
    if (dd)
      out.push(`<path d="${dd}" fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="5 3"/>`);
    const rd = stepPath(run.ready, T, x, ry);
    if (rd) out.push(`<path d="${rd}" fill="none" stroke="${color}" stroke-width="2.5"/>`);
    out.push(
      `<line x1="${PLOT_X}" y1="${pTop}" x2="${PLOT_X}" y2="${pTop + REPLICA_H}" stroke="${AXIS}"/>`,
      `<line x1="${PLOT_X}" y1="${pTop + REPLICA_H}" x2="${PLOT_X + PLOT_W}" y2="${pTop + REPLICA_H}" stroke="${AXIS}"/>`,
      `<text transform="translate(${PLOT_X - 46},${pTop + REPLICA_H / 2}) rotate(-90)" text-anchor="middle" fill="${AXIS}" font-size="11">replicas</text>`,
    );
    // Strips: held, failed.
    const strips: Array<[string, number[] | null | undefined, number, string]> = [
      ['held', run.held, heldMax, HELD],
      ['failed/s', run.failed, failedMax, FAILED],
    ];
    strips.forEach(([name, data, max, fill], k) => {
      const sTop = pTop + REPLICA_H + 6 + k * (STRIP_H + 4);
      out.push(
        `<rect x="${PLOT_X}" y="${sTop}" width="${PLOT_W}" height="${STRIP_H}" fill="#f7f7f7"/>`,
        `<text x="${PLOT_X - 6}" y="${sTop + 15}" text-anchor="end" fill="${MUTED}" font-size="11">${name}</text>`,
      );
      if (!data) {
        out.push(
          `<text x="${PLOT_X + 6}" y="${sTop + 15}" fill="${MUTED}" font-size="11">not recorded</text>`,
        );
        return;
      }
      const total = name === 'held' ? maxOf(data) : sum(data);
      data.forEach((v, s) => {
        if (!(finite(v) && v > 0) || s >= T || max <= 0) return;
        const h = Math.max(1.5, (v / max) * STRIP_H);
        out.push(
          `<rect x="${f1(x(s))}" y="${f1(sTop + STRIP_H - h)}" width="${f1(Math.max(1, x(Math.min(s + 1, T)) - x(s)))}" height="${f1(h)}" fill="${fill}"/>`,
        );
      });
      out.push(
        `<text x="${RIGHT_X}" y="${sTop + 15}" fill="${MUTED}" font-size="11">${total === 0 ? 'none' : name === 'held' ? `max ${total.toLocaleString('en-US')}` : `${total.toLocaleString('en-US')} in all`}</text>`,
      );
    });
    if (i === spec.runs.length - 1) timeLabels(pTop + REPLICA_H + 6 + 2 * (STRIP_H + 4) + 12);
  });
  out.push(
    `<text x="${PLOT_X + PLOT_W / 2}" y="${H - 8}" text-anchor="middle" fill="${AXIS}" font-size="11">time, s; strips share one scale across policies (held: most at once in the second; failed: by arrival second)</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}

/** Write the timeline beside a results file: results/autoscale-<ts>.json -> results/autoscale-<ts>-<trace>.svg. */
export function writeTimeline(resultsFile: string, trace: string, spec: TimelineSpec): string {
  if (!/^[a-z0-9-]+$/i.test(trace)) throw new Error(`timeline: bad trace name for a file: "${trace}"`);
  const file = `${resultsFile.replace(/\.json$/, '')}-${trace}.svg`;
  writeFileSync(file, renderTimeline(spec));
  return file;
}
