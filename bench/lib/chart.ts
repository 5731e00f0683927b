/**
 * A chart of a scenario's results as an SVG file next to its results JSON (same basename, .svg): one row per
 * server or configuration, throughput as a horizontal bar on the left, p50 and p99 latency as two bars on the
 * right. Hand-written SVG text (no dependency); any browser, or `rsvg-convert -o x.png x.svg`, shows it.
 */
import { writeFileSync } from 'node:fs';

export interface ChartRow {
  label: string;
  /** Throughput (the unit is ChartSpec.throughputTitle's); null or missing = not measured. */
  rps?: number | null;
  p50Ms?: number | null;
  p99Ms?: number | null;
  /** Shown after the label in grey, e.g. "n/a: kserve not installed" or "c=1". */
  note?: string;
}

export interface ChartSpec {
  title: string;
  /** A second line under the title (options, machine, date). */
  subtitle?: string;
  /** Default "throughput, req/s". */
  throughputTitle?: string;
  /** Default "latency, ms". */
  latencyTitle?: string;
  /** 'log' when throughputs span decades (S2: in-process run() next to JSON over HTTP). Default 'linear'. */
  throughputScale?: 'linear' | 'log';
  /** 'log' when latencies span decades (S6: health probes next to saturated inference). Default 'linear'. */
  latencyScale?: 'linear' | 'log';
  rows: ChartRow[];
}

const W = 980;
const LABEL_X = 12;
const LABEL_W = 210;
const PANEL_W = 330;
const GAP = 60;
const TP_X = LABEL_X + LABEL_W;
const LAT_X = TP_X + PANEL_W + GAP;
const TOP = 92;
const ROW_H = 40;
const BOTTOM = 56;
/** The bar chart's colours (exported for the contrast test). */
export const BAR_COLORS = {
  rps: '#3b6fb6',
  p50: '#357f45',
  p99: '#b85c00',
  axis: '#666666',
  muted: '#595959',
} as const;

const COLORS = { ...BAR_COLORS, grid: '#e2e2e2' };

/** The WCAG 2 contrast ratio of two #rrggbb colours (1 to 21; text wants >= 4.5, lines and bars >= 3). */
export function contrastRatio(a: string, b: string): number {
  const lum = (hex: string) => {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) throw new Error(`contrastRatio: not a #rrggbb colour: "${hex}"`);
    const [r, g, bl] = [m[1], m[2], m[3]].map((h) => {
      const c = Number.parseInt(h as string, 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** Text for an SVG text node or attribute value. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The opening of an accessible SVG: role="img", a <title> (what screen readers announce, browsers show on hover)
 * and a <desc> (the figures in words), both referenced by aria-labelledby, and a white background.
 */
export function svgOpen(w: number, h: number, title: string, desc: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-labelledby="chart-title chart-desc" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<title id="chart-title">${esc(title)}</title>`,
    `<desc id="chart-desc">${esc(desc)}</desc>`,
    `<rect width="${w}" height="${h}" fill="#fff"/>`,
  ];
}

/**
 * Split text into at most `maxLines` lines of at most `maxChars` characters at spaces (a word longer than a line
 * is cut); what does not fit ends the last line with an ellipsis.
 */
export function wrapText(text: string, maxChars: number, maxLines = 2): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const next = cur ? `${cur} ${word}` : word;
    if (next.length <= maxChars) cur = next;
    else {
      if (cur) lines.push(cur);
      cur = word.length > maxChars ? `${word.slice(0, maxChars - 1)}…` : word;
    }
  }
  if (cur) lines.push(cur);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  const last = kept[maxLines - 1] as string;
  kept[maxLines - 1] = `${last.length >= maxChars ? last.slice(0, maxChars - 1) : last}…`;
  return kept;
}

/** `text` cut to `maxChars` with an ellipsis. */
export function clip(text: string, maxChars: number): string {
  return text.length > maxChars ? `${text.slice(0, Math.max(1, maxChars - 1))}…` : text;
}

const ok = (v: number | null | undefined): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** A "nice" axis: 0..max in 4-6 steps of 1, 2 or 5 x 10^k. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let t = 0; t < max + step * 0.999; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/** Powers of ten covering [min, max] (both > 0). */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(Number((10 ** e).toPrecision(12)));
  return ticks;
}

/** A value as a bar or legend label: 3-4 significant digits, thousands separated. */
export function fmtNum(v: number): string {
  if (v >= 1000) return Math.round(v).toLocaleString('en-US');
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** An axis tick: 10k, 2.5k, 0.01. */
export function fmtTick(v: number): string {
  if (v >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

interface Scale {
  ticks: number[];
  /** Pixel offset within the panel for a value. */
  x(v: number): number;
}

function linearScale(values: number[]): Scale {
  const ticks = niceTicks(Math.max(0, ...values));
  const top = ticks[ticks.length - 1] as number;
  return { ticks, x: (v) => (top > 0 ? (Math.max(0, v) / top) * PANEL_W : 0) };
}

function logScale(values: number[]): Scale {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return linearScale(values);
  const ticks = logTicks(Math.min(...positive), Math.max(...positive));
  const lo = Math.log10(ticks[0] as number);
  const hi = Math.log10(ticks[ticks.length - 1] as number);
  return { ticks, x: (v) => (v <= 0 ? 0 : ((Math.log10(v) - lo) / (hi - lo)) * PANEL_W) };
}

function axis(out: string[], x0: number, scale: Scale, height: number, y0: number, title: string): void {
  out.push(`<text x="${x0}" y="${y0 - 22}" font-weight="bold">${esc(title)}</text>`);
  for (const t of scale.ticks) {
    const x = x0 + scale.x(t);
    out.push(
      `<line x1="${x.toFixed(1)}" y1="${y0 - 6}" x2="${x.toFixed(1)}" y2="${y0 + height}" stroke="${COLORS.grid}"/>`,
      `<text x="${x.toFixed(1)}" y="${y0 + height + 16}" text-anchor="middle" fill="${COLORS.axis}" font-size="11">${fmtTick(t)}</text>`,
    );
  }
  out.push(`<line x1="${x0}" y1="${y0 - 6}" x2="${x0}" y2="${y0 + height}" stroke="${COLORS.axis}"/>`);
}

/** A bar with its value written after it (or inside, in white, when it would run off the panel). */
function bar(
  out: string[],
  x0: number,
  y: number,
  h: number,
  w: number,
  color: string,
  value: number,
  unit = '',
) {
  const width = Math.max(1, w);
  out.push(`<rect x="${x0}" y="${y}" width="${width.toFixed(1)}" height="${h}" fill="${color}"/>`);
  const text = `${fmtNum(value)}${unit}`;
  const inside = width > PANEL_W - 60;
  const tx = inside ? x0 + width - 4 : x0 + width + 4;
  out.push(
    `<text x="${tx.toFixed(1)}" y="${y + h - 2}" font-size="11" ${inside ? 'text-anchor="end" fill="#fff"' : 'fill="#222"'}>${text}</text>`,
  );
}

/** The SVG text for a chart. */
export function renderChart(spec: ChartSpec): string {
  const rows = spec.rows;
  const height = rows.length * ROW_H;
  const H = TOP + height + BOTTOM;
  const tpValues = rows.map((r) => r.rps).filter(ok);
  const tp = spec.throughputScale === 'log' ? logScale(tpValues) : linearScale(tpValues);
  const latValues = rows.flatMap((r) => [r.p50Ms, r.p99Ms]).filter(ok);
  const lat = spec.latencyScale === 'log' ? logScale(latValues) : linearScale(latValues);
  const tpUnit = spec.throughputTitle ?? 'throughput, req/s';
  const desc = rows
    .map(
      (r) =>
        `${r.label}${r.note ? ` (${r.note})` : ''}: ${ok(r.rps) ? `${fmtNum(r.rps)} (${tpUnit})` : 'throughput n/a'}, ` +
        `${ok(r.p50Ms) ? `p50 ${fmtNum(r.p50Ms)} ms` : 'p50 n/a'}, ${ok(r.p99Ms) ? `p99 ${fmtNum(r.p99Ms)} ms` : 'p99 n/a'}`,
    )
    .join('; ');
  const out: string[] = [
    ...svgOpen(W, H, spec.title, `${spec.subtitle ? `${spec.subtitle}. ` : ''}${desc}.`),
    `<text x="${LABEL_X}" y="24" font-size="16" font-weight="bold">${esc(clip(spec.title, 96))}</text>`,
  ];
  if (spec.subtitle) {
    out.push(
      `<text x="${LABEL_X}" y="44" fill="${COLORS.muted}" font-size="11">${esc(spec.subtitle)}</text>`,
    );
  }
  axis(
    out,
    TP_X,
    tp,
    height,
    TOP,
    `${spec.throughputTitle ?? 'throughput, req/s'}${spec.throughputScale === 'log' ? ' (log scale)' : ''}`,
  );
  axis(
    out,
    LAT_X,
    lat,
    height,
    TOP,
    `${spec.latencyTitle ?? 'latency, ms'}${spec.latencyScale === 'log' ? ' (log scale)' : ''}`,
  );
  rows.forEach((r, i) => {
    const y = TOP + i * ROW_H;
    if (i % 2 === 1) {
      out.push(
        `<rect x="${LABEL_X - 4}" y="${y}" width="${W - 2 * LABEL_X + 8}" height="${ROW_H}" fill="#000" fill-opacity="0.03"/>`,
      );
    }
    out.push(
      `<text x="${LABEL_X}" y="${y + (r.note ? 17 : 24)}" font-weight="bold">${esc(clip(r.label, 27))}</text>`,
    );
    if (r.note) {
      const note = clip(r.note, 34);
      out.push(
        `<text x="${LABEL_X}" y="${y + 32}" fill="${COLORS.muted}" font-size="11">${esc(note)}</text>`,
      );
    }
    if (ok(r.rps)) bar(out, TP_X, y + 10, 20, tp.x(r.rps), COLORS.rps, r.rps);
    else out.push(`<text x="${TP_X + 6}" y="${y + 25}" fill="${COLORS.muted}">n/a</text>`);
    if (ok(r.p50Ms)) bar(out, LAT_X, y + 6, 13, lat.x(r.p50Ms), COLORS.p50, r.p50Ms);
    if (ok(r.p99Ms)) bar(out, LAT_X, y + 21, 13, lat.x(r.p99Ms), COLORS.p99, r.p99Ms);
    if (!ok(r.p50Ms) && !ok(r.p99Ms)) {
      out.push(`<text x="${LAT_X + 6}" y="${y + 25}" fill="${COLORS.muted}">n/a</text>`);
    }
  });
  const ly = H - 18;
  out.push(
    `<rect x="${LAT_X}" y="${ly - 10}" width="12" height="12" fill="${COLORS.p50}"/>`,
    `<text x="${LAT_X + 17}" y="${ly}">p50</text>`,
    `<rect x="${LAT_X + 60}" y="${ly - 10}" width="12" height="12" fill="${COLORS.p99}"/>`,
    `<text x="${LAT_X + 77}" y="${ly}">p99</text>`,
    '</svg>',
    '',
  );
  return out.join('\n');
}

/** Write the chart next to a results file: bench/results/x.json -> bench/results/x.svg. Returns its path. */
export function writeChart(resultsFile: string, spec: ChartSpec): string {
  const file = `${resultsFile.replace(/\.json$/, '')}.svg`;
  writeFileSync(file, renderChart(spec));
  return file;
}
