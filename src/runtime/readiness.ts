import { request } from 'node:http';
import { type ReplicaStartup, socketPathOf } from '../core/replica.ts';
import type { ReplicaStatus } from './types.ts';

const READY_PATH = '/v2/health/ready';

/**
 * Status of a GET of `path` on a replica's url (`http://host:port` or `unix:<socket path>`), or an error;
 * the body is discarded. One connection, not kept.
 */
export function replicaGet(url: string, path: string, timeoutMs: number): Promise<number> {
  return replicaRequest(url, path, timeoutMs, 0).then((r) => r.status);
}

/** The most of a readiness answer's body that is read (the startup report is a few hundred bytes). */
const MAX_READY_BODY = 4096;

/**
 * GET of `path` on a replica: its status and, when `maxBody` > 0, up to that many bytes of its body (the rest is
 * discarded). One connection, not kept.
 */
function replicaRequest(
  url: string,
  path: string,
  timeoutMs: number,
  maxBody: number,
): Promise<{ status: number; body: Buffer }> {
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
        const status = res.statusCode ?? 0;
        if (maxBody <= 0) {
          res.resume();
          resolve({ status, body: Buffer.alloc(0) });
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < maxBody) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => resolve({ status, body: Buffer.concat(chunks).subarray(0, maxBody) }));
        res.on('error', reject);
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

/**
 * Readiness as `readiness` says, and the startup report of a ready server (its ready answer's `startup`, see
 * ReplicaStartup), or null when the answer has none (an older server, another body).
 */
export async function readinessReport(
  url: string,
  timeoutMs = 1000,
): Promise<{ ready: boolean; startup: ReplicaStartup | null }> {
  try {
    const { status, body } = await replicaRequest(url, READY_PATH, timeoutMs, MAX_READY_BODY);
    if (status !== 200) return { ready: false, startup: null };
    return { ready: true, startup: startupOf(body) };
  } catch {
    return { ready: false, startup: null };
  }
}

function startupOf(body: Buffer): ReplicaStartup | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  const s = (parsed as { startup?: Record<string, unknown> } | null)?.startup;
  if (typeof s !== 'object' || s === null) return null;
  const time = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null);
  const processStartedAt = time(s.processStartedAt);
  const readyAt = time(s.readyAt);
  if (processStartedAt === null || readyAt === null) return null;
  return {
    processStartedAt,
    listeningAt: time(s.listeningAt),
    modelLoadStartedAt: time(s.modelLoadStartedAt),
    modelLoadedAt: time(s.modelLoadedAt),
    warmedAt: time(s.warmedAt),
    readyAt,
  };
}

/** The same list with every `starting` replica whose server answers ready marked `ready` (probes in parallel). */
export async function withReadiness(list: ReplicaStatus[], timeoutMs = 1000): Promise<ReplicaStatus[]> {
  return Promise.all(
    list.map(async (r) =>
      r.state === 'starting' && (await readiness(r.url, timeoutMs)) ? { ...r, state: 'ready' as const } : r,
    ),
  );
}
