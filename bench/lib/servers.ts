/** The servers the scenarios compare: Ferry, the node:http floor, the FastAPI baseline. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CommonOptions } from './options.ts';
import { REPO_ROOT } from './options.ts';
import { freePort, type RunningProcess, startProcess } from './process.ts';

/** Debian's interpreter: FastAPI/uvicorn/numpy come from Debian packages, not a pyenv python on PATH. */
export const PYTHON = '/usr/bin/python3';
const PY_PACKAGES = [
  'python3-fastapi',
  'python3-uvicorn',
  'python3-numpy',
  'python3-uvloop',
  'python3-httptools',
];

export interface Server {
  name: string;
  proc: RunningProcess;
  /** http://127.0.0.1:<port> */
  baseUrl: string;
}

function serverCpus(o: CommonOptions): string | undefined {
  return o.pin ? '1' : undefined;
}

/** Start the node:http floor (bench/baselines/floor.mjs). */
export async function startFloor(o: CommonOptions): Promise<Server> {
  const port = await freePort();
  const proc = await startProcess({
    name: 'floor',
    command: process.execPath,
    args: [join(REPO_ROOT, 'bench', 'baselines', 'floor.mjs'), '--host', '127.0.0.1', '--port', String(port)],
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    readyTimeoutMs: o.readyTimeoutS * 1000,
    cpus: serverCpus(o),
  });
  return { name: 'floor', proc, baseUrl: `http://127.0.0.1:${port}` };
}

function pythonHasDeps(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import fastapi, uvicorn, numpy'], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Make sure Debian's python3 can import fastapi, uvicorn and numpy; install the Debian packages
 * when missing (apt-get install, then apt-get update + retry). Returns null when ready, otherwise
 * the reason the FastAPI baseline cannot run.
 */
export function ensureFastApi(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  if (pythonHasDeps()) return null;
  process.stderr.write(`bench: installing ${PY_PACKAGES.join(' ')} (apt-get) for the FastAPI baseline\n`);
  const install = () =>
    spawnSync('apt-get', ['install', '-y', ...PY_PACKAGES], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  let r = install();
  if (r.status !== 0) {
    try {
      execFileSync('apt-get', ['update'], { stdio: 'ignore' });
    } catch {
      // the retry below reports the failure
    }
    r = install();
  }
  if (r.status !== 0 || !pythonHasDeps()) {
    const err = r.error?.message ?? r.stderr?.toString().trim().split('\n').slice(-3).join(' | ');
    return `could not install ${PY_PACKAGES.join(' ')}: ${err || `apt-get exited with ${r.status}`}`;
  }
  return null;
}

/** Start the FastAPI + uvicorn baseline (one worker). Call ensureFastApi() first. */
export async function startFastApi(o: CommonOptions): Promise<Server> {
  const port = await freePort();
  const proc = await startProcess({
    name: 'fastapi',
    command: PYTHON,
    args: [
      join(REPO_ROOT, 'bench', 'baselines', 'fastapi_oip.py'),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
    ],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    readyTimeoutMs: o.readyTimeoutS * 1000,
    cpus: serverCpus(o),
  });
  return { name: 'fastapi', proc, baseUrl: `http://127.0.0.1:${port}` };
}

/** Start `node bin/ferry.js serve <modelDir> --host 127.0.0.1 --port <port>` and wait for /v2/health/ready. */
export async function startFerry(o: CommonOptions, modelDir: string, name = 'ferry'): Promise<Server> {
  if (!existsSync(o.ferryBin)) throw new Error(`bench: Ferry entry point ${o.ferryBin} does not exist`);
  const port = await freePort();
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: [o.ferryBin, 'serve', modelDir, '--host', '127.0.0.1', '--port', String(port)],
    cwd: REPO_ROOT,
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    readyTimeoutMs: o.readyTimeoutS * 1000,
    cpus: serverCpus(o),
  });
  return { name, proc, baseUrl: `http://127.0.0.1:${port}` };
}

/** Start a server, run fn, and stop the server by PID whatever happens. */
export async function withServer<T>(start: () => Promise<Server>, fn: (s: Server) => Promise<T>): Promise<T> {
  const s = await start();
  try {
    return await fn(s);
  } finally {
    await s.proc.stop();
  }
}
