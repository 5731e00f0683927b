#!/usr/bin/env node
// Makes sure a Docker engine answers, for the tests that need one (and for `ferry` users who ask for it).
//   node scripts/ensure-docker.mjs [--quiet] [--timeout <seconds>]   make sure the engine answers
//   node scripts/ensure-docker.mjs --install-only                      only install the Debian packages
// Which engine (planEngine below decides; it is pure and tested in test/ensure-docker.test.ts):
// - DOCKER_HOST, or else /var/run/docker.sock, answers: nothing to do, a quick check;
// - a dockerd serves that socket but does not answer yet: wait for it (bounded);
// - no dockerd runs at all: start one detached on that socket (the machine's engine, left running; a lock
//   file and the pid file keep concurrent callers from starting two);
// - no engine answers there but a dockerd that is not Ferry's runs (another socket, another data root):
//   leave it alone. `node scripts/test.mjs` (so `npm test`) then runs Ferry's own test engine for the run
//   (engineForTestRun): a dockerd on its own socket, data root, exec root and pid file, shared by test runs
//   that overlap and stopped by PID by the last one to finish. This command alone says so and exits 1.
// Missing packages (docker.io, docker-registry, apache2-utils for the test registry's htpasswd) are installed
// with apt-get as root on Debian; when another program holds the apt or dpkg lock, it waits (and says for
// whom) instead of failing (scripts/apt.mjs).
// Plain JavaScript on purpose: it runs before npm dependencies matter.
// Exit 0 when the engine answers (or the packages are there); non-zero with a message saying what to do.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall } from './apt.mjs';

const DEFAULT_SOCKET = '/var/run/docker.sock';
const PID_FILE = '/var/run/docker.pid';
const LOCK_FILE = '/tmp/ferry-dockerd.lock';
export const DOCKERD_LOG = '/var/log/ferry-dockerd.log';
/**
 * dockerd's flags. Containers in Ferry's tests use host networking, and this machine has no netfilter
 * rules to manage, so the engine neither touches iptables nor creates the docker0 bridge.
 */
const DOCKERD_ARGS = ['--iptables=false', '--ip6tables=false', '--bridge=none'];

/**
 * Ferry's own test engine, for when the machine's socket has no engine but someone else's dockerd runs:
 * everything it owns is apart from any other dockerd (socket, pid file, exec root with containerd's
 * state, data root, config file, log).
 */
export const TEST_ENGINE = Object.freeze({
  dir: '/run/ferry-test-docker',
  socket: '/run/ferry-test-docker/docker.sock',
  pidFile: '/run/ferry-test-docker/dockerd.pid',
  execRoot: '/run/ferry-test-docker/exec',
  config: '/run/ferry-test-docker/daemon.json',
  /** One empty file per test run (named by its pid) that uses the engine. */
  leases: '/run/ferry-test-docker/leases',
  dataRoot: '/var/lib/ferry-test-docker',
  log: '/var/log/ferry-test-dockerd.log',
  /** Taken while a run joins or leaves (outside `dir`, which goes when the engine stops). */
  lock: '/run/ferry-test-docker.lock',
});

export function testEngineArgs() {
  return [
    ...DOCKERD_ARGS,
    `--host=unix://${TEST_ENGINE.socket}`,
    `--pidfile=${TEST_ENGINE.pidFile}`,
    `--exec-root=${TEST_ENGINE.execRoot}`,
    `--data-root=${TEST_ENGINE.dataRoot}`,
    // Its own (empty) config: the machine's /etc/docker/daemon.json may name hosts or a data root.
    `--config-file=${TEST_ENGINE.config}`,
  ];
}

class SetupError extends Error {}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Where the engine should answer: a unix socket path, or a TCP host/port (then we never start one). */
export function engineAddress(env = process.env) {
  const host = env.DOCKER_HOST;
  if (!host) return { kind: 'unix', socketPath: DEFAULT_SOCKET, local: true, explicit: false };
  if (host.startsWith('unix://'))
    return { kind: 'unix', socketPath: host.slice('unix://'.length), local: true, explicit: true };
  if (host.startsWith('tcp://') || host.startsWith('http://')) {
    const url = new URL(host.replace(/^tcp:/, 'http:'));
    return { kind: 'tcp', host: url.hostname, port: Number(url.port || 2375), local: false, explicit: true };
  }
  throw new SetupError(
    `DOCKER_HOST='${host}' is not supported here (allowed: unix:///path or tcp://host:port).`,
  );
}

function describeAddress(address) {
  return address.kind === 'unix' ? `unix://${address.socketPath}` : `tcp://${address.host}:${address.port}`;
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

/** True while the process exists and is not a zombie. */
function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== 'EPERM') return false;
  }
  try {
    // "pid (comm) S ...": the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function readPid(file) {
  try {
    return Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  } catch {
    return Number.NaN;
  }
}

/** A process's argument vector, or [] when it is gone. */
export function argvOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return [];
  }
}

// ------------------------------------------------------------------------------------------ which dockerd

/** A socket path with its directory resolved (/var/run is usually a link to /run). */
function canonicalSocket(path) {
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return path;
  }
}

/**
 * The addresses a dockerd serves, from its arguments (-H/--host), else its config file's "hosts", else the
 * default socket. `fd://` (systemd's socket activation) is the default socket too.
 */
export function dockerdHosts(argv, readConfig = readJson) {
  const hosts = [];
  let configFile = '/etc/docker/daemon.json';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const inline = /^(?:--host=|-H=?)(.+)$/.exec(a);
    const config = /^--config-file=(.+)$/.exec(a);
    if (a === '-H' || a === '--host') hosts.push(argv[++i] ?? '');
    else if (inline) hosts.push(inline[1]);
    else if (a === '--config-file') configFile = argv[++i] ?? configFile;
    else if (config) configFile = config[1];
  }
  if (hosts.length === 0) {
    const fromConfig = readConfig(configFile)?.hosts;
    if (Array.isArray(fromConfig)) hosts.push(...fromConfig.filter((h) => typeof h === 'string'));
  }
  if (hosts.length === 0) hosts.push(`unix://${DEFAULT_SOCKET}`);
  return hosts.map((h) => (h.startsWith('fd://') ? `unix://${DEFAULT_SOCKET}` : h));
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Does a dockerd serving `hosts` serve `address`? */
export function serves(hosts, address, canonical = canonicalSocket) {
  if (address.kind !== 'unix') return false;
  const want = canonical(address.socketPath);
  return hosts.some((h) => h.startsWith('unix://') && canonical(h.slice('unix://'.length)) === want);
}

/** Every dockerd running on this machine, with the addresses it serves. */
function runningDockerds() {
  const found = [];
  let names = [];
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return found; // no /proc: nothing found
  }
  for (const name of names) {
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() !== 'dockerd') continue;
    } catch {
      continue; // the process went away
    }
    const pid = Number(name);
    if (!alive(pid)) continue;
    const argv = argvOf(pid).slice(1);
    found.push({ pid, argv, hosts: dockerdHosts(argv), ours: isTestEngine(argv) });
  }
  return found;
}

function isTestEngine(argv) {
  return argv.includes(`--data-root=${TEST_ENGINE.dataRoot}`);
}

/**
 * What to do for the engine at `address` (pure):
 *   use      it answers
 *   wait     a dockerd serves that socket but does not answer yet
 *   start    no dockerd runs at all: start the machine's engine on that socket
 *   private  dockerds run, none serves that socket: Ferry's own test engine (for a test run)
 *   fail     nothing Ferry may do (a TCP address, or a DOCKER_HOST set on purpose that nobody serves)
 * `dockerds`: [{ pid, hosts, ours }] as runningDockerds() gives.
 */
export function planEngine({ address, answers, dockerds, canonical = canonicalSocket }) {
  if (answers) return { action: 'use' };
  if (address.kind !== 'unix') return { action: 'fail', reason: 'no engine answers there' };
  const serving = dockerds.filter((d) => serves(d.hosts, address, canonical));
  if (serving.length > 0) return { action: 'wait', pid: serving[0].pid };
  if (dockerds.length === 0) return { action: 'start' };
  const foreign = dockerds.filter((d) => !d.ours);
  if (address.explicit) {
    return {
      action: 'fail',
      reason: 'DOCKER_HOST names a socket that no dockerd serves',
      foreign,
    };
  }
  return { action: 'private', foreign };
}

function describeDockerds(list) {
  return list.map((d) => `pid ${d.pid} serving ${d.hosts.join(', ')}`).join('; ');
}

// ------------------------------------------------------------------------------------------ packages

export function debianPackagesMissing() {
  const missing = [];
  if (!findDockerd()) missing.push('docker.io');
  if (!which('docker-registry') && !existsSync('/usr/bin/docker-registry')) missing.push('docker-registry');
  if (!which('htpasswd') && !existsSync('/usr/bin/htpasswd')) missing.push('apache2-utils');
  return missing;
}

/** Installs Debian packages with apt-get (as root), waiting for another program's apt or dpkg. */
export async function installDebianPackages(log, packages) {
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
  await aptInstall(log, packages);
}

async function ensurePackages(log) {
  const missing = debianPackagesMissing();
  if (missing.length > 0) await installDebianPackages(log, missing);
}

// ------------------------------------------------------------------------------------------ the machine's engine

/** Takes an O_EXCL lock file; returns false when another live process holds it. Stale locks are removed. */
function takeLock(file) {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (alive(readPid(file))) return false;
      try {
        unlinkSync(file);
      } catch {
        // someone else removed it first
      }
    }
  }
  return false;
}

function releaseLock(file) {
  try {
    if (readPid(file) === process.pid) unlinkSync(file);
  } catch {
    // already gone
  }
}

/** Runs fn holding the lock file, waiting (bounded) while another live process holds it. */
async function withLock(file, what, deadline, fn) {
  mkdirSync(dirname(file), { recursive: true });
  while (!takeLock(file)) {
    if (Date.now() > deadline) {
      throw new SetupError(`${file} is held by pid ${readPid(file)} (${what}); gave up waiting.`);
    }
    await sleep(200);
  }
  try {
    return await fn();
  } finally {
    releaseLock(file);
  }
}

/** Spawns dockerd in its own session (it outlives this process and the terminal); returns its pid. */
function spawnDockerd(args, logFile) {
  const dockerd = findDockerd();
  if (!dockerd) throw new SetupError('dockerd not found after installing docker.io.');
  mkdirSync(dirname(logFile), { recursive: true });
  const out = openSync(logFile, 'a');
  // PATH must reach containerd and runc.
  const child = spawn(dockerd, args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/usr/bin:/sbin:/bin` },
  });
  closeSync(out);
  child.unref();
  return { pid: child.pid, command: `${dockerd} ${args.join(' ')}` };
}

function startDockerd(log, address) {
  if (!isRoot()) {
    throw new SetupError(
      `no Docker engine answers on ${address.socketPath} and Ferry is not root: start one ('sudo dockerd &' or 'sudo systemctl start docker') or set DOCKER_HOST.`,
    );
  }
  const args = [...DOCKERD_ARGS];
  if (address.socketPath !== DEFAULT_SOCKET) args.push('--host', `unix://${address.socketPath}`);
  const { pid, command } = spawnDockerd(args, DOCKERD_LOG);
  log(`started ${command} (pid ${pid}, log: ${DOCKERD_LOG}); it keeps running as this machine's engine`);
  return pid;
}

function tailLog(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitUntilAnswering(address, deadline, watchPid) {
  while (Date.now() < deadline) {
    if (await ping(address)) return true;
    if (watchPid !== undefined && !alive(watchPid)) return false;
    await sleep(250);
  }
  return false;
}

/**
 * Ensures an engine answers where DOCKER_HOST (or the default socket) points. Resolves with
 * { started, version, where } or throws an Error whose message says what to do. `log` receives progress.
 */
export async function ensureDocker({ log = () => {}, timeoutMs = 60_000 } = {}) {
  const address = engineAddress();
  const where = describeAddress(address);
  if (await ping(address)) return { started: false, version: await version(address), where };
  if (address.local) await ensurePackages(log);
  const deadline = Date.now() + timeoutMs;
  const plan = planEngine({ address, answers: false, dockerds: runningDockerds() });
  switch (plan.action) {
    case 'wait': {
      log(`dockerd already running (pid ${plan.pid}) for ${where}; waiting for it to answer`);
      if (await waitUntilAnswering(address, deadline, plan.pid)) {
        return { started: false, version: await version(address), where };
      }
      throw new SetupError(
        `a dockerd serves ${where} (pid ${plan.pid}) but does not answer within ${timeoutMs / 1000} s; look at its log (${DOCKERD_LOG} when Ferry started it).`,
      );
    }
    case 'private':
      throw new SetupError(
        `no engine answers on ${where}, and the dockerd that runs (${describeDockerds(plan.foreign)}) is not this machine's default one, so Ferry leaves it alone. ` +
          `'node scripts/test.mjs' (and so 'npm test') starts Ferry's own test engine for the run; to use that dockerd instead, set DOCKER_HOST to the socket it serves.`,
      );
    case 'fail':
      throw new SetupError(
        `no Docker engine answers at DOCKER_HOST=${process.env.DOCKER_HOST} (${plan.reason}${plan.foreign?.length ? `; running: ${describeDockerds(plan.foreign)}` : ''}): start it there, or unset DOCKER_HOST.`,
      );
    default:
      break;
  }
  // start: no dockerd at all.
  if (!takeLock(LOCK_FILE)) {
    log(`another process is starting dockerd; waiting for it to answer on ${where}`);
    if (await waitUntilAnswering(address, deadline)) {
      return { started: false, version: await version(address), where };
    }
    throw new SetupError(
      `dockerd did not answer on ${where} within ${timeoutMs / 1000} s. Log:\n${tailLog(DOCKERD_LOG)}`,
    );
  }
  try {
    // Check again under the lock: someone may have finished starting it meanwhile.
    if (await ping(address)) return { started: false, version: await version(address), where };
    const appeared = alive(readPid(PID_FILE)) ? readPid(PID_FILE) : null;
    if (appeared !== null) log(`dockerd (pid ${appeared}) is starting; waiting for it to answer on ${where}`);
    const pid = appeared ?? startDockerd(log, address);
    if (await waitUntilAnswering(address, deadline, pid)) {
      return { started: appeared === null, pid, version: await version(address), where };
    }
    const state = alive(pid) ? `still not answering after ${timeoutMs / 1000} s` : 'exited';
    throw new SetupError(
      `dockerd (pid ${pid}) ${state}. Last lines of ${DOCKERD_LOG}:\n${tailLog(DOCKERD_LOG)}`,
    );
  } finally {
    releaseLock(LOCK_FILE);
  }
}

// ------------------------------------------------------------------------------------------ Ferry's test engine

/** The test engine's dockerd, when one runs (found by its data root in its arguments). */
function testEnginePid() {
  return runningDockerds().find((d) => d.ours)?.pid ?? null;
}

function liveLeases() {
  let names = [];
  try {
    names = readdirSync(TEST_ENGINE.leases);
  } catch {
    return [];
  }
  const live = [];
  for (const name of names) {
    const pid = Number(name);
    if (pid !== process.pid && alive(pid)) live.push(pid);
    else if (pid !== process.pid) rmSync(join(TEST_ENGINE.leases, name), { force: true }); // a run that died
  }
  return live;
}

/**
 * Mounts at or under one of `dirs`, as { point, type } (a stopped dockerd leaves at most the handle of its
 * default network namespace; never delete through any other).
 */
function mountsUnder(dirs) {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const found = [];
  for (const line of text.split('\n')) {
    const point = line.split(' ')[4];
    if (point === undefined || !dirs.some((d) => point === d || point.startsWith(`${d}/`))) continue;
    found.push({ point, type: line.split(' - ')[1]?.split(' ')[0] ?? '?' });
  }
  return found;
}

/**
 * Unmounts the network namespace handles (nsfs) dockerd bind-mounts under its exec root and leaves after
 * it stops; returns the mounts still there.
 */
function unmountNamespaceHandles(dirs) {
  for (const m of mountsUnder(dirs)) {
    if (m.type === 'nsfs' && m.point.startsWith(`${TEST_ENGINE.execRoot}/netns/`)) {
      spawnSync('umount', [m.point], { stdio: 'ignore' });
    }
  }
  return mountsUnder(dirs);
}

async function stopPid(pid, graceMs) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'gone';
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(200);
  if (!alive(pid)) return 'SIGTERM';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  while (alive(pid)) await sleep(100);
  return 'SIGKILL';
}

/**
 * Joins (starting it if needed) Ferry's test engine for one test run: a lease file for this process, and
 * the engine's dockerd started when none runs. `release()` gives the lease back; the last run to leave
 * stops the dockerd by PID and removes its directories.
 */
async function joinTestEngine(log, timeoutMs, foreign) {
  if (!isRoot()) {
    throw new SetupError(
      `no engine answers on ${DEFAULT_SOCKET} (running: ${describeDockerds(foreign)}), and starting Ferry's own test engine needs root. Set DOCKER_HOST to an engine that runs.`,
    );
  }
  const address = { kind: 'unix', socketPath: TEST_ENGINE.socket, local: true, explicit: true };
  const where = describeAddress(address);
  const deadline = Date.now() + timeoutMs;
  const lockDeadline = Date.now() + 5 * 60_000;
  let started = false;
  const pid = await withLock(
    TEST_ENGINE.lock,
    'a test run joining or leaving the test engine',
    lockDeadline,
    () => {
      mkdirSync(TEST_ENGINE.leases, { recursive: true, mode: 0o700 });
      writeFileSync(join(TEST_ENGINE.leases, String(process.pid)), '');
      const running = testEnginePid();
      if (running !== null) {
        log(`joining Ferry's test engine (dockerd pid ${running}, ${where}), which another test run started`);
        return running;
      }
      log(
        `no engine answers on unix://${DEFAULT_SOCKET}, and the dockerd that runs (${describeDockerds(foreign)}) is not Ferry's: ` +
          "leaving it alone and starting Ferry's own test engine for this run",
      );
      mkdirSync(TEST_ENGINE.execRoot, { recursive: true, mode: 0o700 });
      mkdirSync(TEST_ENGINE.dataRoot, { recursive: true, mode: 0o710 });
      writeFileSync(TEST_ENGINE.config, '{}\n');
      rmSync(TEST_ENGINE.socket, { force: true });
      const spawned = spawnDockerd(testEngineArgs(), TEST_ENGINE.log);
      started = true;
      log(`started ${spawned.command} (pid ${spawned.pid}, log: ${TEST_ENGINE.log})`);
      return spawned.pid;
    },
  );
  const release = async () => {
    await withLock(
      TEST_ENGINE.lock,
      'a test run joining or leaving the test engine',
      Date.now() + 5 * 60_000,
      async () => {
        rmSync(join(TEST_ENGINE.leases, String(process.pid)), { force: true });
        const others = liveLeases();
        if (others.length > 0) {
          log(
            `left Ferry's test engine (dockerd pid ${pid}) running for the test run(s) still using it: pid ${others.join(', ')}`,
          );
          return;
        }
        const how = alive(pid) ? await stopPid(pid, 60_000) : 'gone';
        const mounts = unmountNamespaceHandles([TEST_ENGINE.dataRoot, TEST_ENGINE.dir]);
        if (mounts.length === 0) {
          rmSync(TEST_ENGINE.dataRoot, { recursive: true, force: true });
          rmSync(TEST_ENGINE.dir, { recursive: true, force: true });
        }
        log(
          `${how === 'gone' ? 'found already stopped' : `stopped (${how})`} Ferry's test engine: dockerd pid ${pid}${started ? ', started for this run' : ''}; ` +
            (mounts.length === 0
              ? `removed ${TEST_ENGINE.dataRoot} and ${TEST_ENGINE.dir}`
              : `kept ${TEST_ENGINE.dataRoot} and ${TEST_ENGINE.dir}: still mounted there: ${mounts.map((m) => m.point).join(', ')}`),
        );
      },
    );
  };
  if (!(await waitUntilAnswering(address, deadline, pid))) {
    const state = alive(pid) ? `does not answer on ${where} within ${timeoutMs / 1000} s` : 'exited';
    const tail = tailLog(TEST_ENGINE.log);
    await release();
    throw new SetupError(
      `Ferry's test engine (dockerd pid ${pid}) ${state}. Last lines of ${TEST_ENGINE.log}:\n${tail}`,
    );
  }
  return {
    env: { DOCKER_HOST: `unix://${TEST_ENGINE.socket}` },
    pid,
    started,
    where,
    version: await version(address),
    release,
  };
}

/**
 * The engine for one test run. Usually the machine's (ensureDocker); when no engine answers on the
 * default socket but a dockerd that is not Ferry's runs elsewhere, Ferry's own test engine. Resolves with
 * { env, release, ... }: run the tests with `env` added (DOCKER_HOST when it is the test engine) and call
 * `release()` when they are done.
 */
export async function engineForTestRun({ log = () => {}, timeoutMs = 120_000 } = {}) {
  const address = engineAddress();
  const none = async () => {};
  if (await ping(address)) {
    return {
      env: {},
      started: false,
      where: describeAddress(address),
      version: await version(address),
      release: none,
    };
  }
  if (address.local) await ensurePackages(log);
  const plan = planEngine({ address, answers: false, dockerds: runningDockerds() });
  if (plan.action === 'private') return await joinTestEngine(log, timeoutMs, plan.foreign);
  const result = await ensureDocker({ log, timeoutMs });
  return { env: {}, ...result, release: none };
}

async function main() {
  const args = process.argv.slice(2);
  const quiet = args.includes('--quiet');
  const t = args.indexOf('--timeout');
  const timeoutMs = t >= 0 ? Number(args[t + 1]) * 1000 : 60_000;
  const log = (line) => console.error(`[ferry docker] ${line}`);
  try {
    if (args.includes('--install-only')) {
      await ensurePackages(log);
      return;
    }
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
