/**
 * A bounded open-loop load generator for the platform tests: a fixed request rate to one 127.0.0.1 URL over
 * keep-alive connections, counting every answer by status and by the revision that served it
 * (`x-ferry-revision`), and keeping the first failures with their cause. Open loop: requests go out on
 * schedule whether or not earlier ones have answered, so a stall shows up as failures or latency, not as a
 * slower rate.
 */
import { Agent, request } from 'node:http';
import { HANG_MS, until } from './helpers.ts';

export interface LoadResult {
  sent: number;
  ok: number;
  /** Non-2xx answers by status code. */
  statuses: Record<string, number>;
  /** Requests that got no answer (connection refused/reset, timeout). */
  errors: number;
  /** The first failures, for the test's message: "503 FERRY_NO_READY_REPLICA ..." or "ECONNRESET". */
  failures: string[];
  byRevision: Record<string, number>;
  /** Per-request latency, ms. */
  p50: number;
  p99: number;
}

export interface SteadyLoad {
  /** Stops sending, waits for the answers still due, and returns the counts. */
  stop(): Promise<LoadResult>;
  /** Counts so far. */
  snapshot(): LoadResult;
}

export function steadyLoad(opts: {
  url: string;
  body: string | Buffer;
  rps: number;
  /** Hard stop even if stop() is never called. */
  maxDurationMs: number;
  headers?: Record<string, string>;
  /**
   * When a request without an answer counts as failed (default HANG_MS): a slow answer on a busy machine
   * is latency, not a failure; only a request that hangs is.
   */
  timeoutMs?: number;
}): SteadyLoad {
  const target = new URL(opts.url);
  if (target.hostname !== '127.0.0.1') throw new Error('load goes to 127.0.0.1 only');
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const result: LoadResult = {
    sent: 0,
    ok: 0,
    statuses: {},
    errors: 0,
    failures: [],
    byRevision: {},
    p50: 0,
    p99: 0,
  };
  const latencies: number[] = [];
  const pending = new Set<Promise<void>>();
  const started = Date.now();
  const intervalMs = 1000 / opts.rps;
  let stopped = false;

  const fail = (what: string) => {
    if (result.failures.length < 20) result.failures.push(what);
  };
  const one = () =>
    new Promise<void>((done) => {
      const t0 = performance.now();
      result.sent++;
      const req = request(
        target,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', ...opts.headers },
          timeout: opts.timeoutMs ?? HANG_MS,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            latencies.push(performance.now() - t0);
            const status = res.statusCode ?? 0;
            const rev = String(res.headers['x-ferry-revision'] ?? '?');
            if (status >= 200 && status < 300) {
              result.ok++;
              result.byRevision[rev] = (result.byRevision[rev] ?? 0) + 1;
            } else {
              result.statuses[status] = (result.statuses[status] ?? 0) + 1;
              fail(`${status} ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`);
            }
            done();
          });
          res.on('error', (e) => {
            result.errors++;
            fail(`response ${e.message}`);
            done();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => {
        result.errors++;
        fail(e.code ?? e.message);
        done();
      });
      req.end(opts.body);
    });

  let next = performance.now();
  let timer: NodeJS.Timeout;
  const tick = () => {
    if (stopped) return;
    const now = performance.now();
    while (next <= now) {
      const p = one();
      pending.add(p);
      void p.then(() => pending.delete(p));
      next += intervalMs;
    }
    if (Date.now() - started >= opts.maxDurationMs) stopped = true;
    else timer = setTimeout(tick, Math.max(0, next - performance.now()));
  };
  tick();

  const summarize = (): LoadResult => {
    const sorted = [...latencies].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
    return {
      ...result,
      statuses: { ...result.statuses },
      failures: [...result.failures],
      byRevision: { ...result.byRevision },
      p50: q(0.5),
      p99: q(0.99),
    };
  };
  return {
    snapshot: summarize,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await Promise.all(pending);
      agent.destroy();
      return summarize();
    },
  };
}

/**
 * Waits until `revision` has answered `atLeast` requests of the load, so that a step of a rollout is
 * crossed by traffic (a condition, not a pause); fails at once if a request failed meanwhile.
 */
export function servedBy(load: SteadyLoad, revision: number, atLeast = 10): Promise<true> {
  return until(`revision ${revision} to answer ${atLeast} requests of the load`, () => {
    const now = load.snapshot();
    if (now.failures.length > 0) throw new Error(`requests failed: ${JSON.stringify(now.failures)}`);
    return (now.byRevision[revision] ?? 0) >= atLeast;
  });
}

/** Waits until the load has had `count` more answers than it had when called. */
export async function moreAnswers(load: SteadyLoad, count: number): Promise<void> {
  const from = load.snapshot().ok;
  await until(`${count} more answers of the load`, () => load.snapshot().ok >= from + count);
}
