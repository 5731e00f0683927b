/**
 * Starting a Ferry image on the local engine with hardened settings (non-root, read-only root with a
 * tmpfs /tmp, no capabilities, no-new-privileges, CPU/memory/pids limits, host networking bound to
 * 127.0.0.1), waiting until it is ready, and removing it again. Used by `ferry run` and `ferry test`.
 */
import type { Engine } from './engine/index.ts';

export interface StartImageOptions {
  image: string;
  port: number;
  cpus?: number;
  memoryBytes?: number;
  pidsLimit?: number;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  labels?: Record<string, string>;
}

export interface StartedImage {
  id: string;
  url: string;
  /** Stops (SIGTERM, then kill after the grace period) and removes the container. */
  stop(graceSeconds?: number): Promise<void>;
}

export const RUN_DEFAULTS = {
  cpus: 1,
  memoryBytes: 1024 * 1024 * 1024,
  pidsLimit: 256,
  readyTimeoutMs: 120_000,
};

export async function startImage(engine: Engine, options: StartImageOptions): Promise<StartedImage> {
  const { id } = await engine.runContainer({
    image: options.image,
    network: 'host',
    hostPort: options.port,
    readOnly: true,
    cpus: options.cpus ?? RUN_DEFAULTS.cpus,
    memoryBytes: options.memoryBytes ?? RUN_DEFAULTS.memoryBytes,
    pidsLimit: options.pidsLimit ?? RUN_DEFAULTS.pidsLimit,
    env: options.env ?? {},
    labels: { 'dev.ferry.managed-by': 'ferry', ...options.labels },
  });
  const url = `http://127.0.0.1:${options.port}`;
  const stop = async (graceSeconds = 10) => {
    await engine.stop(id, graceSeconds);
    await engine.remove(id);
  };
  try {
    await engine.waitReady(url, options.readyTimeoutMs ?? RUN_DEFAULTS.readyTimeoutMs, { containerId: id });
  } catch (error) {
    // A half-started container is removed before the error reaches the user.
    await stop(1).catch(() => undefined);
    throw error;
  }
  return { id, url, stop };
}
