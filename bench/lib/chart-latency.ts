/**
 * Latency distribution charts: per server or configuration, its percentile curve (latency.mjs percentileCurve:
 * min, p1 ... p99.9 as far as the sample resolves, max) on a log latency axis against the percentile on a "nines"
 * axis (x = -log10(1 - p/100): p90 at 1, p99 at 2, p99.9 at 3), the plot HdrHistogram made usual: the body on the
 * left, the tail spread out on the right. One line per side (colour, dash pattern and marker shape all differ, so
 * it reads in grey too), a legend with each side's p50 / p99 / max, `n/a` for a side not measured. Hand-written
 * SVG text like chart.ts; written beside the results JSON as <scenario>-<timestamp>-latency.svg.
 */
import { writeFileSync } from 'node:fs';
import { clip, esc, fmtNum, fmtTick, svgOpen, wrapText } from './chart.ts';
import type { PercentileCurve } from './latency.mjs';

export interface LatencySeries {
  label: string;
  /** Shown under the label in the legend, e.g. "c=1" or "n/a: not installed". */
  note?: string;
  /** [percent, ms] pairs, ascending, the last [100, max]; null, undefined or empty: not measured (n/a). */
  percentiles?: PercentileCurve | null;
  /** The sample's size: the max is drawn at its rank, x = log10(n). Unknown: half a decade after the point before. */
  requests?: number | null;
}

export interface LatencyPanel {
  /** What the panel's sides share, e.g. "closed loop, 50 connections". */
  title: string;
  series: LatencySeries[];
}

export interface LatencyChartSpec {
  title: string;
  subtitle?: string;
  /** One panel or more, stacked; they share the latency axis. */
  panels: LatencyPanel[];
}

const W = 980;
const PLOT_X = 78;
const PLOT_W = 520;
const LEGEND_X = PLOT_X + PLOT_W + 28;
const LEGEND_W = W - LEGEND_X - 12;
const PLOT_H = 250;
const LEGEND_ROW = 34;
const PANEL_GAP = 64;
/** Readable on white (contrast >= 3:1 for lines, most >= 4.5:1), told apart by colour-blind readers (Okabe-Ito). */
export const SERIES_COLORS = [
  '#0072B2',
  '#C84E00',
  '#007A5A',
  '#A83E86',
  '#1A1A1A',
  '#8A6400',
  '#5B4BBF',
  '#2F7FA6',
];
export const DASHES = ['', '7 4', '2 3', '9 3 2 3'];
const MUTED = '#595959';
const GRID = '#e2e2e2';
const AXIS = '#666';

export type Marker = 'circle' | 'square' | 'triangle' | 'diamond';
const MARKERS: Marker[] = ['circle', 'square', 'triangle', 'diamond'];

/** A marker shape centred on (x, y). */
export function marker(shape: Marker, x: number, y: number, color: string, r = 3.5): string {
  const f = (v: number) => v.toFixed(1);
  switch (shape) {
    case 'circle':
      return `<circle cx="${f(x)}" cy="${f(y)}" r="${r}" fill="${color}"/>`;
    case 'square':
      return `<rect x="${f(x - r)}" y="${f(y - r)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
    case 'triangle':
      return `<path d="M${f(x)},${f(y - r - 0.5)} L${f(x + r + 0.5)},${f(y + r)} L${f(x - r - 0.5)},${f(y + r)} Z" fill="${color}"/>`;
    case 'diamond':
      return `<path d="M${f(x)},${f(y - r - 1)} L${f(x + r + 1)},${f(y)} L${f(x)},${f(y + r + 1)} L${f(x - r - 1)},${f(y)} Z" fill="${color}"/>`;
  }
}

/** The style of the i-th line: colour, dash pattern and marker all change with i. */
export function seriesStyle(i: number): { color: string; dash: string; marker: Marker } {
  return {
    color: SERIES_COLORS[i % SERIES_COLORS.length] as string,
    dash: DASHES[i % DASHES.length] as string,
    marker: MARKERS[(i + Math.floor(i / SERIES_COLORS.length)) % MARKERS.length] as Marker,
  };
}

/** x of a percentile on the nines axis: -log10(1 - p/100); p = 100 (the max) at log10(n). */
export function ninesX(p: number, requests?: number | null): number {
  if (p >= 100) return requests && requests >= 1 ? Math.log10(requests) : Number.NaN;
  return p <= 0 ? 0 : -Math.log10(1 - p / 100);
}

/** Ticks of a log axis over [min, max] (both > 0): every decade, and 2 and 5 in between when it spans <= 2. */
export function logAxisTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  let hi = Math.ceil(Math.log10(max));
  if (hi <= lo) hi = lo + 1;
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) {
    const d = 10 ** e;
    ticks.push(Number(d.toPrecision(12)));
    if (hi - lo <= 2 && e < hi) ticks.push(Number((2 * d).toPrecision(12)), Number((5 * d).toPrecision(12)));
  }
  // Trim to the data: the first tick at or below min, the last at or above max.
  const first = ticks.findLastIndex((t) => t <= min);
  const last = ticks.findIndex((t) => t >= max);
  return ticks.slice(Math.max(0, first), last === -1 ? ticks.length : last + 1);
}

const measured = (s: LatencySeries): s is LatencySeries & { percentiles: PercentileCurve } =>
  Array.isArray(s.percentiles) && s.percentiles.some(([, ms]) => Number.isFinite(ms));

/** The points of a series as (nines x, ms), the max at its rank. */
function points(s: LatencySeries & { percentiles: PercentileCurve }): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [p, ms] of s.percentiles) {
    if (!Number.isFinite(ms)) continue;
    let x = ninesX(p, s.requests);
    if (Number.isNaN(x)) x = (out.length ? (out[out.length - 1] as [number, number])[0] : 0) + 0.5;
    out.push([x, ms]);
  }
  return out;
}

const valueAt = (s: LatencySeries, p: number): number | null => {
  const hit = s.percentiles?.find(([q]) => q === p);
  return hit && Number.isFinite(hit[1]) ? hit[1] : null;
};

function legendNumbers(s: LatencySeries): string {
  if (!measured(s))
    return s.note?.startsWith('n/a') || s.note?.startsWith('failed') ? '' : 'n/a: not measured';
  const parts: string[] = [];
  const p50 = valueAt(s, 50);
  const p99 = valueAt(s, 99);
  const max = valueAt(s, 100);
  if (p50 !== null) parts.push(`p50 ${fmtNum(p50)}`);
  if (p99 !== null) parts.push(`p99 ${fmtNum(p99)}`);
  if (max !== null) parts.push(`max ${fmtNum(max)}`);
  const n = s.requests ? `, n=${Math.round(s.requests).toLocaleString('en-US')}` : '';
  return `${parts.join(' · ')} ms${n}`;
}

const PCT_TICKS: Array<[number, string]> = [
  [0, 'min'],
  [50, 'p50'],
  [90, 'p90'],
  [99, 'p99'],
  [99.9, 'p99.9'],
  [99.99, 'p99.99'],
  [99.999, 'p99.999'],
  [99.9999, 'p99.9999'],
];

/** The SVG text of a latency distribution chart. */
export function renderLatencyChart(spec: LatencyChartSpec): string {
  if (spec.panels.length === 0) throw new Error('latency chart: no panel');
  const all = spec.panels.flatMap((p) => p.series.filter(measured).map(points));
  const values = all.flat().map(([, ms]) => ms);
  const positive = values.filter((v) => v > 0);
  const yMin = positive.length ? Math.min(...positive) : 0.1;
  const yMax = positive.length ? Math.max(...positive) : 1;
  const yTicks = logAxisTicks(yMin, yMax);
  const yLo = Math.log10(yTicks[0] as number);
  const yHi = Math.log10(yTicks[yTicks.length - 1] as number);
  const xMaxData = Math.max(2, ...all.flat().map(([x]) => x));
  // To the next half decade: a run of 12,000 ends at 4.08 (p99.99 and a bit), the axis at 4.5, not 5.
  const xMax = Math.ceil(xMaxData * 2 - 1e-9) / 2;
  const xTicks = PCT_TICKS.filter(([p]) => ninesX(p) <= xMax + 1e-9);
  const xPix = (x: number) => PLOT_X + (x / xMax) * PLOT_W;
  const yPix = (top: number, ms: number) =>
    top + PLOT_H - ((Math.log10(Math.max(ms, 10 ** yLo)) - yLo) / (yHi - yLo)) * PLOT_H;

  const titleLines = wrapText(spec.title, 100);
  const subLines = spec.subtitle ? wrapText(spec.subtitle, 150) : [];
  const headH = 14 + titleLines.length * 20 + subLines.length * 15 + 16;
  const panelH = spec.panels.map((p) => Math.max(PLOT_H, p.series.length * LEGEND_ROW) + 24 + PANEL_GAP);
  const H = headH + panelH.reduce((a, b) => a + b, 0) + 8;

  const descParts = spec.panels.map(
    (p) =>
      `${p.title}: ${p.series.map((s) => `${s.label}${s.note ? ` (${s.note})` : ''} ${legendNumbers(s)}`).join('; ')}`,
  );
  const out = svgOpen(
    W,
    H,
    spec.title,
    `Latency percentiles, ms on a log axis, against the percentile (min to max, tail spread out). ${spec.subtitle ? `${spec.subtitle}. ` : ''}${descParts.join('. ')}.`,
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
  // A side keeps its style in every panel: styles go to labels in the order they first appear.
  const styleIndex = new Map<string, number>();
  for (const p of spec.panels)
    for (const s of p.series) if (!styleIndex.has(s.label)) styleIndex.set(s.label, styleIndex.size);
  let top = headH;
  spec.panels.forEach((panel, pi) => {
    const ptop = top + 24;
    out.push(`<text x="${PLOT_X}" y="${ptop - 10}" font-weight="bold">${esc(clip(panel.title, 120))}</text>`);
    // Grid and axes.
    for (const t of yTicks) {
      const yy = yPix(ptop, t).toFixed(1);
      out.push(
        `<line x1="${PLOT_X}" y1="${yy}" x2="${PLOT_X + PLOT_W}" y2="${yy}" stroke="${GRID}"/>`,
        `<text x="${PLOT_X - 6}" y="${(Number(yy) + 4).toFixed(1)}" text-anchor="end" fill="${AXIS}" font-size="11">${fmtTick(t)}</text>`,
      );
    }
    let lastLabelX = Number.NEGATIVE_INFINITY;
    for (const [p, name] of xTicks) {
      const xx = xPix(ninesX(p));
      out.push(
        `<line x1="${xx.toFixed(1)}" y1="${ptop}" x2="${xx.toFixed(1)}" y2="${ptop + PLOT_H}" stroke="${GRID}"/>`,
      );
      if (xx - lastLabelX >= 26) {
        out.push(
          `<text x="${xx.toFixed(1)}" y="${ptop + PLOT_H + 15}" text-anchor="middle" fill="${AXIS}" font-size="11">${name}</text>`,
        );
        lastLabelX = xx;
      }
    }
    out.push(
      `<line x1="${PLOT_X}" y1="${ptop}" x2="${PLOT_X}" y2="${ptop + PLOT_H}" stroke="${AXIS}"/>`,
      `<line x1="${PLOT_X}" y1="${ptop + PLOT_H}" x2="${PLOT_X + PLOT_W}" y2="${ptop + PLOT_H}" stroke="${AXIS}"/>`,
      `<text transform="translate(${PLOT_X - 52},${ptop + PLOT_H / 2}) rotate(-90)" text-anchor="middle" fill="${AXIS}" font-size="11">latency, ms (log scale)</text>`,
      `<text x="${PLOT_X + PLOT_W / 2}" y="${ptop + PLOT_H + 32}" text-anchor="middle" fill="${AXIS}" font-size="11">percentile (each line ends at its max; the scale spreads the tail)</text>`,
    );
    // Lines, then the legend.
    panel.series.forEach((s, i) => {
      const st = seriesStyle(styleIndex.get(s.label) ?? i);
      const ly = ptop + i * LEGEND_ROW;
      // Label (bold, ~7.4 px a character) and note (~6.4 px) share the legend's width.
      const label = clip(s.label, 41);
      const noteChars = Math.floor((LEGEND_W - 36 - label.length * 7.4 - 6) / 6.4);
      const note = s.note && noteChars >= 6 ? clip(s.note, noteChars) : '';
      const full = `${s.label}${s.note ? `, ${s.note}` : ''}`;
      if (measured(s)) {
        const pts = points(s).map(([x, ms]) => [xPix(x), yPix(ptop, ms)] as const);
        const d = pts.map(([x, yy]) => `${x.toFixed(1)},${yy.toFixed(1)}`).join(' ');
        out.push(
          `<polyline points="${d}" fill="none" stroke="${st.color}" stroke-width="2"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''} stroke-linejoin="round"><title>${esc(full)}</title></polyline>`,
        );
        // Markers at p50, p99 and the max (or at the only point).
        s.percentiles.forEach(([p], k) => {
          const pt = pts[k];
          if (pt && (p === 50 || p === 99 || p === 100 || pts.length === 1))
            out.push(marker(st.marker, pt[0], pt[1], st.color));
        });
        out.push(
          `<line x1="${LEGEND_X}" y1="${ly + 8}" x2="${LEGEND_X + 28}" y2="${ly + 8}" stroke="${st.color}" stroke-width="2"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>`,
          marker(st.marker, LEGEND_X + 14, ly + 8, st.color),
        );
      } else {
        out.push(
          `<text x="${LEGEND_X + 14}" y="${ly + 12}" text-anchor="middle" fill="${MUTED}" font-size="11">n/a</text>`,
        );
      }
      out.push(
        `<text x="${LEGEND_X + 36}" y="${ly + 12}" font-weight="bold"${measured(s) ? '' : ` fill="${MUTED}"`}><title>${esc(full)}</title>${esc(label)}${note ? `<tspan dx="6" font-weight="normal" fill="${MUTED}" font-size="11">${esc(note)}</tspan>` : ''}</text>`,
        `<text x="${LEGEND_X + 36}" y="${ly + 26}" fill="${MUTED}" font-size="11">${esc(clip(legendNumbers(s), Math.floor((LEGEND_W - 36) / 6.3)))}</text>`,
      );
    });
    top += panelH[pi] as number;
  });
  out.push('</svg>', '');
  return out.join('\n');
}

/** Write the chart beside a results file: results/x.json -> results/x-latency.svg. Returns its path. */
export function writeLatencyChart(resultsFile: string, spec: LatencyChartSpec): string {
  const file = `${resultsFile.replace(/\.json$/, '')}-latency.svg`;
  writeFileSync(file, renderLatencyChart(spec));
  return file;
}
