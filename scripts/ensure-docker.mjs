#!/usr/bin/env node
// Makes sure a Docker engine answers, for the tests that need one (and for `ferry` users who ask for it):
// - if the engine already answers (DOCKER_HOST, or /var/run/docker.sock): nothing to do, a quick check;
// - if `dockerd` is missing: as root on Debian, `apt-get install docker.io docker-registry`;
// - if no engine answers on a local socket: start one `dockerd` detached (never a second one: a lock file
//   and the pid file keep concurrent callers from racing), then wait (bounded) until it answers.
// Plain JavaScript on purpose: it runs before npm dependencies matter.
//   node scripts/ensure-docker.mjs [--quiet] [--timeout <seconds>]
// Exit 0 when the engine answers; non-zero with a message saying what to do otherwise.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';

const DEFAULT_SOCKET = '/var/run/docker.sock';
const PID_FILE = '/var/run/docker.pid';
const LOCK_FILE = '/tmp/ferry-dockerd.lock';
export const DOCKERD_LOG = '/var/log/ferry-dockerd.log';
/**
 * dockerd's flags. Containers in Ferry's tests use host networking, and this machine has no netfilter
 * rules to manage, so the engine neither touches iptables nor creates the docker0 bridge.
 */
const DOCKERD_ARGS = ['--iptables=false', '--ip6tables=false', '--bridge=none'];

class SetupError extends Error {}

/** Where the engine should answer: a unix socket path, or a TCP host/port (then we never start one). */
export function engineAddress(env = process.env) {
  const host = env.DOCKER_HOST;
  if (!host) return { kind: 'unix', socketPath: DEFAULT_SOCKET, local: true };
  if (host.startsWith('unix://'))
    return { kind: 'unix', socketPath: host.slice('unix://'.length), local: true };
  if (host.startsWith('tcp://') || host.startsWith('http://')) {
    const url = new URL(host.replace(/^tcp:/, 'http:'));
    return { kind: 'tcp', host: url.hostname, port: Number(url.port || 2375), local: false };
  }
  throw new SetupError(
    `DOCKER_HOST='${host}' is not supported here (allowed: unix:///path or tcp://host:port).`,
  );
}

/** GET /_ping on the engine; resolves true when it answers "OK". */
export function ping(address, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const options =
      address.kind === 'unix'
        ? { socketPath: address.socketPath, path: '/_ping', timeout: timeoutMs }
        : { host: address.host, port: address.port, path: '/_ping', timeout: timeoutMs };
    const req = request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'OK'));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** GET /version on the engine (for the progress line). */
function version(address) {
  return new Promise((resolve) => {
    const options =
      address.kind === 'unix'
        ? { socketPath: address.socketPath, path: '/version', timeout: 2000 }
        : { host: address.host, port: address.port, path: '/version', timeout: 2000 };
    const req = request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => {
        try {
          const v = JSON.parse(body);
          resolve(`${v.Version} (API ${v.ApiVersion})`);
        } catch {
          resolve('unknown version');
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve('unknown version'));
    req.end();
  });
}

function which(command) {
  const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

function findDockerd() {
  return which('dockerd') ?? (existsSync('/usr/sbin/dockerd') ? '/usr/sbin/dockerd' : null);
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function readPid(file) {
  try {
    return Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  } catch {
    return Number.NaN;
  }
}

/** A dockerd already running on this machine (from its pid file, or by scanning /proc). */
function runningDockerd() {
  const fromPidFile = readPid(PID_FILE);
  if (alive(fromPidFile)) return fromPidFile;
  try {
    for (const name of spawnSync('ls', ['/proc'], { encoding: 'utf8' }).stdout.split('\n')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === 'dockerd') return Number(name);
      } catch {
        // the process went away
      }
    }
  } catch {
    // no /proc: nothing found
  }
  return null;
}

function runChecked(log, command, args, env = {}) {
  log(`${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...env },
  });
  if (result.status !== 0) {
    throw new SetupError(`'${command} ${args.join(' ')}' failed (exit ${result.status ?? result.signal}).`);
  }
}

function debianPackagesMissing() {
  const missing = [];
  if (!findDockerd()) missing.push('docker.io');
  if (!which('docker-registry') && !existsSync('/usr/bin/docker-registry')) missing.push('docker-registry');
  return missing;
}

function installDebianPackages(log, packages) {
  if (!isRoot()) {
    throw new SetupError(
      `${packages.join(', ')} missing and not running as root: install them with 'sudo apt-get install -y ${packages.join(' ')}'.`,
    );
  }
  if (!which('apt-get')) {
    throw new SetupError(
      `${packages.join(', ')} missing and this is not a Debian system (no apt-get): install Docker.`,
    );
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  runChecked(log, 'apt-get', ['update', '-q'], env);
  runChecked(log, 'apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], env);
}

/** Takes the start lock; returns false when another live process holds it. Stale locks are removed. */
function takeLock() {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(LOCK_FILE, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (alive(readPid(LOCK_FILE))) return false;
      try {
        unlinkSync(LOCK_FILE);
      } catch {
        // someone else removed it first
      }
    }
  }
  return false;
}

function releaseLock() {
  try {
    if (readPid(LOCK_FILE) === process.pid) unlinkSync(LOCK_FILE);
  } catch {
    // already gone
  }
}

function startDockerd(log, address) {
  const dockerd = findDockerd();
  if (!dockerd) throw new SetupError('dockerd not found after installing docker.io.');
  if (!isRoot()) {
    throw new SetupError(
      `no Docker engine answers on ${address.socketPath} and Ferry is not root: start one ('sudo dockerd &' or 'sudo systemctl start docker') or set DOCKER_HOST.`,
    );
  }
  const args = [...DOCKERD_ARGS];
  if (address.socketPath !== DEFAULT_SOCKET) args.push('--host', `unix://${address.socketPath}`);
  mkdirSync('/var/log', { recursive: true });
  const out = openSync(DOCKERD_LOG, 'a');
  log(`starting ${dockerd} ${args.join(' ')} (log: ${DOCKERD_LOG})`);
  // Its own session, so it outlives this process and the terminal; PATH must reach containerd and runc.
  const child = spawn(dockerd, args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/usr/bin:/sbin:/bin` },
  });
  closeSync(out);
  child.unref();
  return child.pid;
}

function tailLog(lines = 15) {
  try {
    return readFileSync(DOCKERD_LOG, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitUntilAnswering(address, deadline, watchPid) {
  while (Date.now() < deadline) {
    if (await ping(address)) return true;
    if (watchPid !== undefined && !alive(watchPid)) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * Ensures an engine answers. Resolves with { started, version } or throws an Error whose message says what
 * to do. `log` receives progress lines.
 */
export async function ensureDocker({ log = () => {}, timeoutMs = 60_000 } = {}) {
  const address = engineAddress();
  const where =
    address.kind === 'unix' ? `unix://${address.socketPath}` : `tcp://${address.host}:${address.port}`;
  if (await ping(address)) return { started: false, version: await version(address), where };
  if (!address.local) {
    throw new SetupError(
      `no Docker engine answers at DOCKER_HOST=${process.env.DOCKER_HOST}: start it there.`,
    );
  }
  const missing = debianPackagesMissing();
  if (missing.length > 0) installDebianPackages(log, missing);

  const deadline = Date.now() + timeoutMs;
  const existing = runningDockerd();
  if (existing !== null) {
    log(`dockerd already running (pid ${existing}); waiting for it to answer on ${where}`);
    if (await waitUntilAnswering(address, deadline, existing)) {
      return { started: false, version: await version(address), where };
    }
    throw new SetupError(
      `a dockerd is running (pid ${existing}) but nothing answers on ${where} within ${timeoutMs / 1000} s. ` +
        `Point DOCKER_HOST at the socket it serves (by default unix://${DEFAULT_SOCKET}), or look at its log (${DOCKERD_LOG} when Ferry started it).`,
    );
  }
  if (!takeLock()) {
    log(`another process is starting dockerd; waiting for it to answer on ${where}`);
    if (await waitUntilAnswering(address, deadline)) {
      return { started: false, version: await version(address), where };
    }
    throw new SetupError(
      `dockerd did not answer on ${where} within ${timeoutMs / 1000} s. Log:\n${tailLog()}`,
    );
  }
  try {
    // Check again under the lock: someone may have finished starting it meanwhile.
    if (await ping(address)) return { started: false, version: await version(address), where };
    const pid = startDockerd(log, address);
    if (await waitUntilAnswering(address, deadline, pid)) {
      return { started: true, pid, version: await version(address), where };
    }
    const state = alive(pid) ? `still not answering after ${timeoutMs / 1000} s` : 'exited';
    throw new SetupError(`dockerd (pid ${pid}) ${state}. Last lines of ${DOCKERD_LOG}:\n${tailLog()}`);
  } finally {
    releaseLock();
  }
}

async function main() {
  const args = process.argv.slice(2);
  const quiet = args.includes('--quiet');
  const t = args.indexOf('--timeout');
  const timeoutMs = t >= 0 ? Number(args[t + 1]) * 1000 : 60_000;
  const log = (line) => console.error(`[ferry docker] ${line}`);
  try {
    const result = await ensureDocker({ log, timeoutMs });
    if (!quiet || result.started) {
      log(
        `${result.started ? `started dockerd (pid ${result.pid}), ` : ''}engine ${result.version} answers on ${result.where}`,
      );
    }
  } catch (err) {
    log(`Docker engine not available: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
