/**
 * A reader of the Prometheus text exposition format (version 0.0.4), as prom-client writes it: one sample per
 * line, `name{label="value",...} value [timestamp]`, `# HELP` / `# TYPE` comments. Only the samples are kept (the
 * metrics history knows the families it reads). Label values are unescaped (`\\`, `\"`, `\n`); values are
 * floats with `NaN`, `+Inf` and `-Inf` (in any case). A line that is not a sample is an error naming the line: the input is
 * our own processes' /metrics, so a bad line means something else answered.
 *
 * Why not the npm package `parse-prometheus-text-format` (1.1.1, last published 2019): tried on the model server's
 * /metrics, its histograms come back without their labels (model, version), `_sum` and `_count` (the server's
 * families print `le` first, metric-families.ts), which are what the history needs (batch size = sum / count).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of a text exposition, in order. Throws on a line that is not a sample nor a comment. */
export function parsePromText(text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseLine(line);
    if (sample === null) throw new Error(`metrics text, line ${n + 1}: not a sample: ${line.slice(0, 200)}`);
    out.push(sample);
  }
  return out;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseLine(line: string): Sample | null {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) return null;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const label = LABEL_NAME.exec(line.slice(i))?.[0];
      if (label === undefined) return null;
      i += label.length;
      while (line[i] === ' ') i++;
      if (line[i] !== '=') return null;
      i++;
      while (line[i] === ' ') i++;
      if (line[i] !== '"') return null;
      i++;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return null;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i + 1];
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else return null;
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++;
      labels[label] = value;
      while (line[i] === ' ') i++;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return null;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === '') return null;
  const value = parseValue(rest[0]!);
  if (value === null) return null;
  return { name, labels, value };
}

/** A float as Go's ParseFloat reads it (what Prometheus does): NaN and Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string): number | null {
  const lower = text.toLowerCase();
  if (lower === 'nan') return Number.NaN;
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return null;
  return Number(text);
}
