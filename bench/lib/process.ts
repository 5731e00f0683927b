/**
 * Child processes for benchmarks: start a server, wait until an HTTP readiness URL answers 2xx,
 * stop it by PID. Every started child is tracked, and stopped on SIGINT/SIGTERM and at exit,
 * so an interrupted benchmark leaves nothing running.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../../src/core/free-port.ts';
import { replicaGet } from '../../src/runtime/readiness.ts';

export { freePort };

/** Pick a free TCP port on 127.0.0.1 (listen on port 0, read the port, close). */

export interface StartOptions {
  /** Short name for messages and tables, e.g. "ferry" or "fastapi". */
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** GET this URL until it answers 2xx. */
  readyUrl: string;
  /** Send that GET over this unix socket instead (the URL's path is what is asked for). */
  readySocket?: string;
  /** Give up after this long (default 30 s). */
  readyTimeoutMs?: number;
  /** Pause between readiness probes (default 50 ms; bench/startup.ts polls faster to time the start). */
  pollMs?: number;
  /** Run the child pinned to these CPUs with `taskset -c` (e.g. "1"). */
  cpus?: string;
}

export interface RunningProcess {
  name: string;
  pid: number;
  /** The last ~64 KB of the child's stdout and stderr, for error messages. */
  output(): string;
  /** True once the child has exited. */
  exited(): boolean;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the child is gone. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Map<number, ChildProcess>();
let handlersInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  // Children run in their own process group (detached), so -pid reaches anything they started too.
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${signal}, stopping ${live.size} child process(es)\n`);
    for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
    live.clear();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => {
    for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function probe(url: string, timeoutMs: number, socket?: string): Promise<number | null> {
  if (socket !== undefined)
    return replicaGet(`unix:${socket}`, new URL(url).pathname, timeoutMs).catch(() => null);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return null;
  }
}

/**
 * Start a child process and wait until `readyUrl` answers 2xx. On timeout or early exit the child
 * is stopped and the error names the command, the reason and the child's last output.
 */
export async function startProcess(opts: StartOptions): Promise<RunningProcess> {
  installHandlers();
  const command = opts.cpus ? 'taskset' : opts.command;
  const args = opts.cpus ? ['-c', opts.cpus, opts.command, ...opts.args] : opts.args;
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const keep = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > 65536) out = out.slice(-65536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitInfo: string | null = null;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      if (child.pid !== undefined) live.delete(child.pid);
      resolve();
    });
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const pid = child.pid;
  const cmdline = `${command} ${args.join(' ')}`;
  if (pid === undefined) {
    const err = await spawnError;
    throw new Error(`bench: could not start ${opts.name} (${cmdline}): ${err.message}`);
  }
  live.set(pid, child);

  const handle: RunningProcess = {
    name: opts.name,
    pid,
    output: () => out,
    exited: () => exitInfo !== null,
    async stop(graceMs = 5000) {
      if (exitInfo !== null) return;
      killGroup(pid, 'SIGTERM');
      const done = await Promise.race([exitedP.then(() => true), sleep(graceMs).then(() => false)]);
      if (!done) {
        killGroup(pid, 'SIGKILL');
        await exitedP;
      }
      live.delete(pid);
    },
  };

  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastStatus: number | null = null;
  try {
    for (;;) {
      if (exitInfo !== null) {
        throw new Error(`${opts.name} exited (${exitInfo}) before ${opts.readyUrl} was ready`);
      }
      lastStatus = await probe(opts.readyUrl, 1000, opts.readySocket);
      if (lastStatus !== null && lastStatus >= 200 && lastStatus < 300) return handle;
      if (Date.now() > deadline) {
        throw new Error(
          `${opts.name} was not ready within ${timeoutMs} ms: GET ${opts.readyUrl} ` +
            (lastStatus === null ? 'got no answer' : `answered ${lastStatus}`),
        );
      }
      await sleep(opts.pollMs ?? 50);
    }
  } catch (e) {
    await handle.stop(1000);
    const tail = out.trim().split('\n').slice(-20).join('\n');
    throw new Error(
      `bench: ${(e as Error).message}\n  command: ${cmdline}\n  last output:\n${tail.replace(/^/gm, '    ')}`,
    );
  }
}

/** Run fn with a started process, stopping it afterwards whatever happens. */
export async function withProcess<T>(opts: StartOptions, fn: (p: RunningProcess) => Promise<T>): Promise<T> {
  const p = await startProcess(opts);
  try {
    return await fn(p);
  } finally {
    await p.stop();
  }
}

/** Pin this process (all its threads, and threads created later) to the given CPUs, e.g. "0". */
export async function pinSelf(cpus: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const c = spawn('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
    c.once('error', reject);
    c.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`bench: taskset -a -p -c ${cpus} failed with code ${code}`)),
    );
  });
}
