import { type IncomingMessage, request } from 'node:http';
import { type ReplicaStartup, socketPathOf } from '../core/replica.ts';
import type { ReplicaStatus } from './types.ts';

const READY_PATH = '/v2/health/ready';

type Target = { target: { socketPath: string } | { host: string; port: number }; base: string };

/** Where a replica's url (`http://host:port` or `unix:<socket path>`) connects; throws on any other url. */
function targetOf(url: string): Target {
  const socketPath = socketPathOf(url);
  if (socketPath !== null) return { target: { socketPath }, base: '' };
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`not an http:// or unix: url: ${url}`);
  return {
    target: { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) },
    base: u.pathname.replace(/\/+$/, ''),
  };
}

/**
 * A GET of `path` on a replica; `read` gets the response. One connection, not kept; an error, or no answer
 * within timeoutMs from the start (the body included, when read), rejects.
 */
function get<T>(
  url: string,
  path: string,
  timeoutMs: number,
  read: (res: IncomingMessage, resolve: (v: T) => void, reject: (e: Error) => void) => void,
): Promise<T> {
  let where: Target;
  try {
    where = targetOf(url);
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve, reject) => {
    const req = request(
      { ...where.target, path: `${where.base}${path}`, method: 'GET', agent: false },
      (res) =>
        read(
          res,
          (v) => {
            clearTimeout(timer);
            resolve(v);
          },
          (e) => {
            clearTimeout(timer);
            req.destroy();
            reject(e);
          },
        ),
    );
    const timer = setTimeout(() => {
      const error = new Error(`no answer within ${timeoutMs} ms`);
      req.destroy(error);
      reject(error);
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end();
  });
}

/**
 * Status of a GET of `path` on a replica's url (`http://host:port` or `unix:<socket path>`), or an error;
 * the body is discarded. One connection, not kept.
 */
export function replicaGet(url: string, path: string, timeoutMs: number): Promise<number> {
  return get(url, path, timeoutMs, (res, resolve) => {
    res.resume();
    resolve(res.statusCode ?? 0);
  });
}

/**
 * The text body of a GET of `path` on a replica (as replicaGet), with its content type; rejects on a status other
 * than 200, a body over maxBytes, or no whole answer within timeoutMs. (Its /metrics, for the control plane.)
 */
export function replicaGetText(
  url: string,
  path: string,
  timeoutMs: number,
  maxBytes = 64 * 1024,
): Promise<{ body: string; contentType: string }> {
  return get(url, path, timeoutMs, (res, resolve, reject) => {
    if (res.statusCode !== 200) {
      res.resume();
      reject(new Error(`GET ${path} answered ${res.statusCode}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) res.destroy(new Error(`GET ${path}: body over ${maxBytes} bytes`));
      else chunks.push(chunk);
    });
    res.on('error', reject);
    res.on('end', () =>
      resolve({
        body: Buffer.concat(chunks).toString('utf8'),
        contentType: String(res.headers['content-type'] ?? 'text/plain'),
      }),
    );
  });
}

/**
 * The JSON body of a GET of `path` on a replica (as replicaGetText); rejects as it does, and on invalid JSON.
 */
export async function replicaGetJson(
  url: string,
  path: string,
  timeoutMs: number,
  maxBytes = 64 * 1024,
): Promise<unknown> {
  const { body } = await replicaGetText(url, path, timeoutMs, maxBytes);
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new Error(`GET ${path}: not JSON: ${(error as Error).message}`);
  }
}

/** The most of a readiness answer's body that is read (the startup report is a few hundred bytes). */
const MAX_READY_BODY = 4096;

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
    const { status, body } = await get<{ status: number; body: Buffer }>(
      url,
      READY_PATH,
      timeoutMs,
      (res, resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_READY_BODY) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, MAX_READY_BODY) }),
        );
      },
    );
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
