/** The servers the scenarios compare: Ferry, the node:http floor, the Python baselines (FastAPI, Flask, KServe). */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CommonOptions } from './options.ts';
import { REPO_ROOT } from './options.ts';
import { freePort, type RunningProcess, startProcess } from './process.ts';

/** Debian's interpreter: the Python baselines' packages come from Debian, not a pyenv python on PATH. */
export const PYTHON = '/usr/bin/python3';

/** A Python baseline's needs: the modules it imports and the Debian packages that provide them. */
interface PythonDeps {
  label: string;
  modules: string[];
  packages: string[];
}

const FASTAPI_DEPS: PythonDeps = {
  label: 'FastAPI',
  modules: ['fastapi', 'uvicorn', 'numpy'],
  packages: ['python3-fastapi', 'python3-uvicorn', 'python3-numpy', 'python3-uvloop', 'python3-httptools'],
};
const FLASK_DEPS: PythonDeps = {
  label: 'Flask + gunicorn',
  modules: ['flask', 'gunicorn', 'numpy'],
  packages: ['python3-flask', 'gunicorn', 'python3-numpy'],
};

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

function pythonImports(modules: string[]): boolean {
  const r = spawnSync(PYTHON, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Make sure Debian's python3 can import a baseline's modules; install its Debian packages when missing
 * (apt-get install, then apt-get update + retry). Returns null when ready, otherwise the reason the
 * baseline cannot run.
 */
function ensurePython(deps: PythonDeps): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  if (pythonImports(deps.modules)) return null;
  process.stderr.write(
    `bench: installing ${deps.packages.join(' ')} (apt-get) for the ${deps.label} baseline\n`,
  );
  const install = () =>
    spawnSync('apt-get', ['install', '-y', ...deps.packages], {
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
  if (r.status !== 0 || !pythonImports(deps.modules)) {
    const err = r.error?.message ?? r.stderr?.toString().trim().split('\n').slice(-3).join(' | ');
    return `could not install ${deps.packages.join(' ')}: ${err || `apt-get exited with ${r.status}`}`;
  }
  return null;
}

/** FastAPI, uvicorn and numpy for Debian's python3 (installed when missing); null when ready, else why not. */
export function ensureFastApi(): string | null {
  return ensurePython(FASTAPI_DEPS);
}

/** Flask, gunicorn and numpy for Debian's python3 (installed when missing); null when ready, else why not. */
export function ensureFlask(): string | null {
  return ensurePython(FLASK_DEPS);
}

/**
 * KServe is not a Debian package and PyPI may be out of reach: it is used when Debian's python3 can import it
 * already (pip install kserve), never installed here. Null when ready, else why not.
 */
export function kserveAvailable(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import kserve, numpy'], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const last = (r.stderr ?? '').trim().split('\n').pop() ?? '';
  return `${PYTHON} cannot import kserve (${last || `exit ${r.status}`}); it is not packaged by Debian: pip install kserve`;
}

async function startPython(
  o: CommonOptions,
  name: string,
  script: string,
  extraArgs: string[] = [],
): Promise<Server> {
  const port = await freePort();
  const proc = await startProcess({
    name,
    command: PYTHON,
    args: [
      join(REPO_ROOT, 'bench', 'baselines', script),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      ...extraArgs,
    ],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    readyTimeoutMs: o.readyTimeoutS * 1000,
    cpus: serverCpus(o),
  });
  return { name, proc, baseUrl: `http://127.0.0.1:${port}` };
}

/** Start the FastAPI + uvicorn baseline (one worker). Call ensureFastApi() first. */
export function startFastApi(o: CommonOptions): Promise<Server> {
  return startPython(o, 'fastapi', 'fastapi_oip.py');
}

/**
 * Start the Flask + gunicorn baseline: one worker process, gthread worker class with one thread (why: see
 * bench/README.md, S1). Call ensureFlask() first.
 */
export function startFlask(o: CommonOptions): Promise<Server> {
  return startPython(o, 'flask', 'flask_oip.py', ['--worker-class', 'gthread', '--threads', '1']);
}

/** Start KServe's Python model server with the add model. Check kserveAvailable() first. */
export function startKserve(o: CommonOptions): Promise<Server> {
  return startPython(o, 'kserve', 'kserve_oip.py');
}

/** Start `node bin/ferry.js serve <modelDir> --host 127.0.0.1 --port <port>` and wait for /v2/health/ready. */
/**
 * `ferry serve` on 127.0.0.1:<free port>, or (socket) on that unix socket; baseUrl is then `unix:<path>`,
 * which the gateway takes as a replica url but fetch does not.
 */
export async function startFerry(
  o: CommonOptions,
  modelDir: string,
  name = 'ferry',
  socket?: string,
): Promise<Server> {
  if (!existsSync(o.ferryBin)) throw new Error(`bench: Ferry entry point ${o.ferryBin} does not exist`);
  const port = await freePort();
  const listen =
    socket === undefined ? ['--host', '127.0.0.1', '--port', String(port)] : ['--socket', socket];
  const proc = await startProcess({
    name,
    command: process.execPath,
    args: [o.ferryBin, 'serve', modelDir, ...listen],
    cwd: REPO_ROOT,
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    ...(socket === undefined ? {} : { readySocket: socket }),
    readyTimeoutMs: o.readyTimeoutS * 1000,
    cpus: serverCpus(o),
  });
  return { name, proc, baseUrl: socket === undefined ? `http://127.0.0.1:${port}` : `unix:${socket}` };
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
