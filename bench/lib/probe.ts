/**
 * S6's quiet health probe, run as a child process (probe-client.mjs): a raw keep-alive socket, a precomputed
 * request, hrtime timing, a fixed rate. Returns the same shape as runLoad so scenarios can swap the two.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadResult } from './load.ts';

export interface ProbeOptions {
  /** http://127.0.0.1:<port>/<path> */
  url: string;
  /** Requests per second. */
  rate: number;
  durationS: number;
  /** Send as autocannon's rate limit does: `rate` requests back to back at the start of each second. */
  burst?: boolean;
}

const CLIENT = fileURLToPath(new URL('./probe-client.mjs', import.meta.url));

/** Probe `url` at a fixed rate from a process of its own; resolves with its latencies (non-2xx counted apart). */
export function runProbe(o: ProbeOptions): Promise<LoadResult & { late: number }> {
  const u = new URL(o.url);
  if (u.hostname !== '127.0.0.1' || u.protocol !== 'http:') {
    throw new Error(`bench: probe target must be http://127.0.0.1:<port>/..., got ${o.url}`);
  }
  const args = [
    CLIENT,
    '--port',
    u.port,
    '--path',
    `${u.pathname}${u.search}`,
    '--rate',
    String(o.rate),
    '--duration',
    String(o.durationS),
    ...(o.burst ? ['--burst'] : []),
  ];
  // Plain node (spawn passes none of this process's --import flags): the probe loads only node's own modules
  // and raw-http.mjs.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Stopped by PID if the scenario exits first (Ctrl-C, a failure elsewhere).
  const stop = () => child.kill('SIGKILL');
  process.once('exit', stop);
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  const limitMs = (o.durationS + 30) * 1000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench: probe of ${o.url} did not end within ${limitMs} ms`));
    }, limitMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', stop);
      if (code !== 0) {
        reject(new Error(`bench: probe of ${o.url} exited with ${signal ?? `code ${code}`}: ${err.trim()}`));
        return;
      }
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? ''));
      } catch {
        reject(new Error(`bench: probe of ${o.url} printed no result: ${out.trim()} ${err.trim()}`));
      }
    });
  });
}
