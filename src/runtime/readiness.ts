import type { ReplicaStatus } from './types.ts';

const READY_PATH = '/v2/health/ready';

/** True when `${url}/v2/health/ready` answers 200 within timeoutMs; false on any other answer or error. */
export async function readiness(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`${url.replace(/\/+$/, '')}${READY_PATH}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    return res.status === 200;
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
