/**
 * For tests that need a Docker engine: makes sure one answers (scripts/ensure-docker.mjs installs Debian's
 * docker.io and starts dockerd when needed, never a second one), once per test process; plus unique names
 * and clean-up by label.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine, type DockerEngine } from '../src/image/engine/index.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ENSURE_DOCKER = join(ROOT, 'scripts', 'ensure-docker.mjs');

/** Label every test container carries, so a crashed run's leftovers can be found and removed. */
export const TEST_LABEL = 'dev.ferry.test';

let checked: { ok: boolean; reason: string } | undefined;
let engine: DockerEngine | undefined;

function ensureOnce(): { ok: boolean; reason: string } {
  if (checked === undefined) {
    const result = spawnSync(process.execPath, [ENSURE_DOCKER, '--quiet', '--timeout', '90'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // apt-get can take a while on a fresh machine; dockerd is given 90 s above.
      timeout: 600_000,
    });
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
    if (result.stderr) process.stderr.write(result.stderr);
    checked =
      result.status === 0
        ? { ok: true, reason: '' }
        : { ok: false, reason: output || `ensure-docker exited with ${result.status ?? result.signal}` };
  }
  return checked;
}

/** True when a Docker engine answers (starting one if this machine can). Checked once per process. */
export function dockerAvailable(): boolean {
  return ensureOnce().ok;
}

/**
 * The engine for a test; throws (failing the test, not skipping it) when none can be had: the suite is
 * meant to run against a real engine.
 */
export function requireDocker(): DockerEngine {
  const state = ensureOnce();
  if (!state.ok)
    throw new Error(`a Docker engine is required for this test and none is available:\n${state.reason}`);
  engine ??= createEngine();
  return engine;
}

/** A name no other test (or earlier run) uses: `${prefix}-<pid>-<random>`, valid for containers and tags. */
export function uniqueName(prefix: string): string {
  const safe = prefix.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-');
  return `${safe}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Force-removes every container carrying the label (key=value, or just the key with any value). */
export async function cleanupContainers(label: string | Record<string, string>): Promise<number> {
  const e = requireDocker();
  const labels =
    typeof label === 'string'
      ? Object.fromEntries([label.includes('=') ? label.split('=', 2) : [label, '']])
      : label;
  // A key alone matches any value: the API filter "key" (without "=") does that.
  const filters = Object.entries(labels).map(([k, v]) => (v === '' ? k : `${k}=${v}`));
  const list = await e.docker.listContainers({ all: true, filters: { label: filters } });
  await Promise.all(list.map((c) => e.remove(c.Id)));
  return list.length;
}
