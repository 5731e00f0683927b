/**
 * Processes, bounded waits and mounts for the swarm lab: processes are told apart by pid and start time and
 * stopped by pid, never by name.
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { argvOf } from '../../scripts/ensure-docker.mjs';
import type { Mount } from './lab.ts';

export const PATH_ENV = `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  /** Default 60 s; the process is SIGKILLed (by its pid) after it. */
  timeoutMs?: number;
  /** Throw (with the command, exit and stderr) when the exit code is not 0. */
  check?: boolean;
}

export function which(command: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], {
    encoding: 'utf8',
    env: { ...process.env, PATH: PATH_ENV },
  });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Blocks the thread (for the synchronous clean-up that runs in an exit handler). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Waits until probe() returns something other than undefined/false, polling every `everyMs`; throws
 * `<what> did not happen within <s> s: <detail()>` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; everyMs?: number; detail?: () => string | Promise<string> } = {},
): Promise<T> {
  const { timeoutMs = 60_000, everyMs = 250 } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = '';
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const detail = [options.detail ? await options.detail() : '', lastError && `last error: ${lastError}`]
        .filter((d) => d !== '')
        .join('; ');
      throw new Error(
        `${what} did not happen within ${Math.round(timeoutMs / 1000)} s${detail ? `: ${detail}` : ''}`,
      );
    }
    await sleep(everyMs);
  }
}

/** True while the process exists and is not a zombie. */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The process's start time (clock ticks since boot), to tell a pid from a reused one. */
export function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** Waits (bounded) until the pid has no /proc entry: dead and reaped (a zombie still holds its pid). */
export async function reaped(pid: number, what: string): Promise<void> {
  await waitFor(`${what} (pid ${pid}) reaped`, () => !existsSync(`/proc/${pid}`), {
    timeoutMs: 15_000,
    everyMs: 50,
  });
}

export { argvOf };

export function readPid(file: string): number {
  try {
    return Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  } catch {
    return Number.NaN;
  }
}

export function tail(file: string, lines = 15): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Runs a command to its end (bounded), collecting its output. */
export function run(
  command: string,
  args: string[],
  options: RunOptions & { env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const { timeoutMs = 60_000, env = { ...process.env, PATH: PATH_ENV } } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killPid(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${command} ${args.join(' ')}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      const line = `${command} ${args.join(' ')}`;
      if (timedOut)
        reject(new Error(`'${line}' did not finish within ${timeoutMs / 1000} s: ${stderr.trim()}`));
      else if (options.check && code !== 0)
        reject(new Error(`'${line}' failed (exit ${code ?? signal}): ${stderr.trim() || stdout.trim()}`));
      else resolve(result);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

export function mountsOf(pid: number | 'self'): Mount[] {
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return [];
  }
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = unescapeMount(left.split(' ')[4] ?? '');
    const [fsType = '', , superOptions = ''] = right.split(' ');
    mounts.push({ mountPoint, fsType, superOptions });
  }
  return mounts;
}

export function unescapeMount(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** The machine's cgroup mounts under /sys/fs/cgroup (the tmpfs of a v1 layout included), outermost first. */
export function cgroupMounts(): Mount[] {
  return mountsOf('self')
    .filter((m) => m.mountPoint === '/sys/fs/cgroup' || m.mountPoint.startsWith('/sys/fs/cgroup/'))
    .sort((a, b) => a.mountPoint.length - b.mountPoint.length);
}

/** The cgroup hierarchies' mount points (where the lab's cgroups are made). */
export function cgroupHierarchies(): string[] {
  return cgroupMounts()
    .filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2')
    .map((m) => m.mountPoint);
}
