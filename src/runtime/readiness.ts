import { request } from 'node:http';
import { socketPathOf } from '../core/replica.ts';
import type { ReplicaStatus } from './types.ts';

const READY_PATH = '/v2/health/ready';

/**
 * Status of a GET of `path` on a replica's url (`http://host:port` or `unix:<socket path>`), or an error;
 * the body is discarded. One connection, not kept.
 */
export function replicaGet(url: string, path: string, timeoutMs: number): Promise<number> {
  const socketPath = socketPathOf(url);
  let target: { socketPath: string } | { host: string; port: number };
  let base = '';
  if (socketPath !== null) target = { socketPath };
  else {
    const u = new URL(url);
    if (u.protocol !== 'http:') return Promise.reject(new Error(`not an http:// or unix: url: ${url}`));
    target = { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
    base = u.pathname.replace(/\/+$/, '');
  }
  return new Promise((resolve, reject) => {
    const req = request(
      { ...target, path: `${base}${path}`, method: 'GET', agent: false, timeout: timeoutMs },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * True when the replica's `/v2/health/ready` answers 200 within timeoutMs; false on any other answer or error.
 * url: `http://host:port` or `unix:<socket path>`.
 */
export async function readiness(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    return (await replicaGet(url, READY_PATH, timeoutMs)) === 200;
  } catch {
    return false;
  }
}

/** The same list with every `starting` replica whose server answers ready marked `ready` (probes in parallel). */
export async function withReadiness(list: ReplicaStatus[], timeoutMs = 1000): Promise<ReplicaStatus[]> {
  return Promise.all(
    list.map(async (r) =>
      r.state === 'starting' && (await readiness(r.url, timeoutMs)) ? { ...r, state: 'ready' as const } : r,
    ),
  );
}
