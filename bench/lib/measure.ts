/** Warm-up + measurement (+ repeats, median by rps), with one progress line per measurement. */
import { cpuMsPerRequest, type LoadOptions, type LoadResult, runLoad } from './load.ts';
import type { CommonOptions } from './options.ts';
import { pinSelf } from './process.ts';

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function summary(r: LoadResult): string {
  const cpu = cpuMsPerRequest(r);
  return (
    `${Math.round(r.rps).toLocaleString('en-US')} rps, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms` +
    (cpu === null ? '' : `, cpu ${(cpu * 1000).toFixed(1)} us/req`) +
    (r.non2xx || r.errors ? `, non-2xx ${r.non2xx}, errors ${r.errors}` : '')
  );
}

/**
 * Warm up for o.warmupS (results discarded), then measure o.repeat times for o.durationS each and
 * return the run with the median rps (all runs are in `runs`).
 */
export async function measure(
  label: string,
  load: Omit<LoadOptions, 'durationS'> & { durationS?: number },
  o: CommonOptions,
): Promise<LoadResult & { runs: LoadResult[] }> {
  const durationS = load.durationS ?? o.durationS;
  if (o.warmupS > 0) await runLoad({ ...load, durationS: o.warmupS });
  const runs: LoadResult[] = [];
  for (let i = 0; i < o.repeat; i++) {
    const r = await runLoad({ ...load, durationS });
    log(`  ${label}${o.repeat > 1 ? ` [${i + 1}/${o.repeat}]` : ''}: ${summary(r)}`);
    if (r.requests === 0 && r.non2xx + r.errors > 0) {
      const codes = Object.entries(r.statusCodes)
        .map(([k, v]) => `${k} x${v}`)
        .join(', ');
      log(`    warning: no 2xx responses (${codes || `${r.errors} connection errors`})`);
    }
    runs.push(r);
  }
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as LoadResult;
  return { ...median, runs };
}

/** Pin the benchmark process to CPU 0 when --pin is given (servers go to CPU 1). */
export async function setupPinning(o: CommonOptions): Promise<void> {
  if (!o.pin) return;
  await pinSelf('0');
  log('pinned: load generator on CPU 0, servers on CPU 1');
}

/** Per-request CPU in microseconds, or null. */
export function cpuUsPerRequest(r: LoadResult | null | undefined): number | null {
  if (!r) return null;
  const ms = cpuMsPerRequest(r);
  return ms === null ? null : ms * 1000;
}
