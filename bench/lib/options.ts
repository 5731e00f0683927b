/** Command-line flags shared by every scenario (with BENCH_* environment fallbacks). */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CommonOptions {
  /** Seconds per measurement. */
  durationS: number;
  /** Seconds of discarded load before each measurement. */
  warmupS: number;
  /** Measurements per configuration; the one with the median rps is reported. */
  repeat: number;
  /** Pin servers to CPU 1 and the load generator to CPU 0 (taskset). */
  pin: boolean;
  /** Path of bin/ferry.js. */
  ferryBin: string;
  /** Intra-op threads for Ferry (ferry.yaml serving.threads) and the in-process baseline. */
  threads: number;
  /** Seconds to wait for a server to become ready. */
  readyTimeoutS: number;
}

const COMMON_HELP = `Common options (environment variable in brackets):
  --duration <s>       seconds per measurement, default 10 [BENCH_DURATION]
  --warmup <s>         seconds of discarded load before each measurement, default 2 [BENCH_WARMUP]
  --repeat <n>         measurements per configuration, median reported, default 1 [BENCH_REPEAT]
  --threads <n>        intra-op threads for Ferry and the in-process baseline, default 1 [BENCH_THREADS]
  --pin                pin servers to CPU 1 and the load generator to CPU 0 (taskset) [BENCH_PIN=1]
  --ferry <path>       path of bin/ferry.js, default <repo>/bin/ferry.js [FERRY_BIN]
  --ready-timeout <s>  seconds to wait for a server to be ready, default 60
  -h, --help           show this help`;

type Extra = NonNullable<ParseArgsConfig['options']>;

function num(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    process.stderr.write(`bench: ${name} must be a number in [${min}, ${max}], got "${raw}"\n`);
    process.exit(2);
  }
  return v;
}

/**
 * Parse the common flags plus the scenario's own. `usage` is printed for --help (followed by the
 * common options). Exits with code 2 on a bad value.
 */
export function parseOptions<E extends Extra>(
  usage: string,
  extra: E,
): { common: CommonOptions; values: Record<string, string | boolean | undefined> } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      allowPositionals: false,
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        repeat: { type: 'string' },
        threads: { type: 'string' },
        pin: { type: 'boolean' },
        ferry: { type: 'string' },
        'ready-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...extra,
      },
    });
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n\n${usage}\n\n${COMMON_HELP}\n`);
    process.exit(2);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) {
    process.stdout.write(`${usage}\n\n${COMMON_HELP}\n`);
    process.exit(0);
  }
  const env = process.env;
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const common: CommonOptions = {
    durationS: num('--duration', str('duration') ?? env.BENCH_DURATION, 10, 0.5, 600),
    warmupS: num('--warmup', str('warmup') ?? env.BENCH_WARMUP, 2, 0, 600),
    repeat: Math.round(num('--repeat', str('repeat') ?? env.BENCH_REPEAT, 1, 1, 20)),
    threads: Math.round(num('--threads', str('threads') ?? env.BENCH_THREADS, 1, 1, 64)),
    pin: v.pin === true || env.BENCH_PIN === '1',
    ferryBin: resolve(str('ferry') ?? env.FERRY_BIN ?? join(REPO_ROOT, 'bin', 'ferry.js')),
    readyTimeoutS: num('--ready-timeout', str('ready-timeout'), 60, 1, 600),
  };
  return { common, values: v };
}

/** Read a scenario's own numeric flag (already parsed as a string) with a default and bounds. */
export function numberFlag(
  values: Record<string, string | boolean | undefined>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = values[name];
  return num(`--${name}`, typeof raw === 'string' ? raw : undefined, fallback, min, max);
}
