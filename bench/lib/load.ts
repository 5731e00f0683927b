/**
 * Bounded HTTP load with autocannon, run in a worker thread (see load-worker.mjs).
 * Only 127.0.0.1 targets are accepted: benchmarks never send traffic anywhere else.
 */
import { Worker } from 'node:worker_threads';
import type { PercentileCurve } from './latency.mjs';

export interface LoadOptions {
  /** Full URL; its host must be 127.0.0.1. */
  url: string;
  method?: 'GET' | 'POST';
  /** Fixed request body, sent as-is on every request. */
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** Concurrent connections (closed loop: each waits for its response before sending again). */
  connections: number;
  /** Measurement length in seconds. */
  durationS: number;
  /** Optional cap on the total request rate (requests/s across all connections). */
  rate?: number;
  /** Processes whose CPU time (with their descendants) is sampled over the run. */
  cpuPids?: number[];
  /** Per-request timeout, seconds (default 10). */
  timeoutS?: number;
}

export interface LoadResult {
  /** Completed 2xx responses. */
  requests: number;
  wallS: number;
  /** 2xx responses per second of wall time. */
  rps: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * The latency distribution of the 2xx responses: [percent, ms] pairs (p0, p1, ... p99.9 as far as the sample
   * resolves, then [100, max]; latency.mjs percentileCurve). Drawn by chart-latency.ts.
   */
  percentiles: PercentileCurve;
  /** Responses with a status outside 2xx. */
  non2xx: number;
  /** Connection errors (refused, reset) as counted by autocannon. */
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** CPU time (user + system) of cpuPids and descendants over the run, ms; null when not measured. */
  serverCpuMs: number | null;
}

/** Server CPU milliseconds per completed request, or null when CPU was not measured. */
export function cpuMsPerRequest(r: LoadResult): number | null {
  return r.serverCpuMs === null || r.requests === 0 ? null : r.serverCpuMs / r.requests;
}

function checkTarget(url: string): void {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1') {
    throw new Error(`bench: load target must be http://127.0.0.1:<port>/..., got ${url}`);
  }
  if (u.protocol !== 'http:') throw new Error(`bench: only http:// targets are supported, got ${url}`);
}

/** Run one bounded autocannon measurement in its own worker thread. */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  checkTarget(opts.url);
  if (!(opts.durationS > 0 && opts.durationS <= 600)) {
    throw new Error(`bench: durationS must be in (0, 600], got ${opts.durationS}`);
  }
  if (!(Number.isInteger(opts.connections) && opts.connections >= 1 && opts.connections <= 1024)) {
    throw new Error(`bench: connections must be an integer in [1, 1024], got ${opts.connections}`);
  }
  const body = typeof opts.body === 'string' ? new TextEncoder().encode(opts.body) : opts.body;
  const worker = new Worker(new URL('./load-worker.mjs', import.meta.url), {
    workerData: {
      url: opts.url,
      method: opts.method ?? (body ? 'POST' : 'GET'),
      body,
      headers: opts.headers ?? {},
      connections: opts.connections,
      durationS: opts.durationS,
      rate: opts.rate ?? 0,
      cpuPids: opts.cpuPids ?? [],
      timeoutS: opts.timeoutS ?? 10,
    },
    // The worker is plain JS; do not make it load tsx again.
    execArgv: [],
  });
  const limitMs = (opts.durationS + (opts.timeoutS ?? 10) + 15) * 1000;
  return new Promise<LoadResult>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
      void worker.terminate();
    };
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(new Error(`bench: load run against ${opts.url} did not end within ${limitMs} ms`)),
        ),
      limitMs,
    );
    worker.on('message', (m: { result?: LoadResult; error?: string }) => {
      if (m.error)
        finish(() => reject(new Error(`bench: autocannon failed against ${opts.url}: ${m.error}`)));
      else if (m.result) finish(() => resolve(m.result as LoadResult));
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) =>
      finish(() => reject(new Error(`bench: load worker exited with code ${code} before reporting`))),
    );
  });
}
