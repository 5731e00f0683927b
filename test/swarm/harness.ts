/**
 * A real multi-node Docker Swarm on one machine, for tests (docs/swarm.md, "The test harness").
 *
 * Each node is a network namespace `<prefix>-n<k>` with one veth (eth0, 10.231.0.<10+k>/24) whose peer sits on a
 * bridge in a namespace of its own, `<prefix>-br` (10.231.0.1/24). No namespace has a default route: nothing the
 * lab runs can reach anything outside it. Each node runs its own dockerd (`ip netns exec` + `unshare --uts`, so
 * `docker node ls` shows `<prefix>-n<k>` as the hostname), with its own data root, exec root, pid file, socket,
 * config file and cgroup parent; `ip netns exec` gives the daemon a fresh /sys without the cgroup mounts, so its
 * start script mounts them again (the same layout as the machine's) before dockerd starts. Images: by default
 * tasks never pull (DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1): images are copied into every node (loadImage,
 * importImage) and services are created with `--no-resolve-image`. With `offline: false`, nodes pull, from
 * the lab's own registry (registry(): Debian's docker-registry on the bridge's 10.231.0.1:5000), so services
 * can be pinned by digest.
 *
 * Everything the harness makes is named by the prefix, so it can all be found again and removed: by stop(),
 * by the process's exit and signal handlers, and by the next startSwarm() with the same prefix after a crashed
 * run (a lock file says whether the run that made it is still alive). Processes are found by PID only: the
 * dockerd pid files, the processes inside the lab's network namespaces (`ip netns pids`: dockerd, containerd,
 * shims, docker-proxy, forwarders) and those in the lab's cgroups (the containers); then killed by PID.
 * The machine's own dockerd, its socket and data, and the root namespace's network are never touched.
 *
 * Tests in the root namespace reach a lab address through proxy(): a forwarder inside the bridge namespace
 * listening on a unix socket (a file, so reachable from any namespace).
 *
 * The parts: lab.ts (names, addresses, paths, parsers: pure), proc.ts (processes by pid, bounded waits, mounts),
 * cleanup.ts (finding and removing a lab, the lock), forwarder.mjs (proxy()), busybox.mjs (a tiny test image).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ping } from '../../scripts/ensure-docker.mjs';
import { labNetnsNames, releaseLock, sweepLab, takeLock } from './cleanup.ts';
import {
  cgroupMountScript,
  checkPrefix,
  DEFAULT_PREFIX,
  isLabNetns,
  LAB_NET,
  type LabLayout,
  labLayout,
  type NodeInfo,
  OVERLAY_POOL,
  parseNodeList,
  parseTasks,
  type SwarmNode,
  type TaskInfo,
} from './lab.ts';
import {
  alive,
  argvOf,
  cgroupHierarchies,
  cgroupMounts,
  killPid,
  PATH_ENV,
  type RunOptions,
  type RunResult,
  readPid,
  reaped,
  run,
  sleep,
  tail,
  waitFor,
  which,
} from './proc.ts';

export { leftovers, sweepLab } from './cleanup.ts';
export * from './lab.ts';
export { type RunOptions, type RunResult, run, waitFor } from './proc.ts';

const FORWARDER = join(dirname(fileURLToPath(import.meta.url)), 'forwarder.mjs');

export interface SwarmOptions {
  /** How many nodes (1-9); 3 by default. */
  nodes?: number;
  /** How many of them are managers (the first ones); all by default. */
  managers?: number;
  /** Names everything the lab makes: 1-8 of [a-z0-9], starting with a letter; 'fsw' by default. */
  prefix?: string;
  /** Progress lines; stderr by default. */
  log?: (line: string) => void;
  /** Bound for each dockerd to answer; 60 s by default. */
  daemonTimeoutMs?: number;
  /** How long to wait for another live process that holds the same prefix; 10 min by default. */
  lockWaitMs?: number;
  /**
   * true (default): tasks use the node's own images and never pull (DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1;
   * loadImage/importImage, services with --no-resolve-image). false: nodes pull, which in the lab can only
   * be from registry().
   */
  offline?: boolean;
  /**
   * true: each dockerd manages its node namespace's netfilter tables (--iptables), so containers reach the lab's
   * addresses through docker_gwbridge (masqueraded): what a service needs to call something outside its overlays
   * (the gateway its control plane). The tables are the namespace's own, never the machine's. Default false.
   */
  egress?: boolean;
}

export type NodeRef = number | SwarmNode;

export interface Swarm {
  prefix: string;
  nodes: SwarmNode[];
  /** The namespace with the bridge; the forwarders of proxy() run there. */
  bridge: { netns: string; address: string };
  /** Seconds from the first namespace to every node Ready in the swarm. */
  formedInSeconds: number;
  node(ref: NodeRef): SwarmNode;
  /** The docker CLI against a node's engine. */
  docker(ref: NodeRef, args: string[], options?: RunOptions): Promise<RunResult>;
  /** A command inside one of the lab's namespaces (a node's or the bridge's). */
  exec(netns: string, argv: string[], options?: RunOptions): Promise<RunResult>;
  /** Copies an image from an engine outside the lab (DOCKER_HOST's, else the machine's) into every node. */
  loadImage(ref: string, options?: { from?: string }): Promise<void>;
  /** `docker import` of a root file system tarball on node 1, then copied to the others (same image ID). */
  importImage(rootfsTar: string, ref: string, options?: { changes?: string[] }): Promise<void>;
  /** A unix socket path that forwards each connection to address:port inside the lab. */
  proxy(address: string, port: number): Promise<string>;
  /**
   * Starts (once) Debian's docker-registry in the bridge namespace and returns its address, `10.231.0.1:5000`
   * (plain HTTP; every node lists it in insecure-registries). Push with a node's engine (`docker(1, ['push',
   * ...])`); nodes pull from it only in a swarm started with `offline: false`.
   */
  registry(): Promise<string>;
  /** `docker node ls` as seen by a manager. */
  nodeList(via?: NodeRef): Promise<NodeInfo[]>;
  /** `docker service ps` as seen by a manager. */
  tasks(service: string, via?: NodeRef): Promise<TaskInfo[]>;
  /** Is the node's dockerd running (not killed)? */
  running(ref: NodeRef): boolean;
  /**
   * SIGKILLs the node's dockerd (its containerd dies with it; shims and containers keep running, as after a
   * daemon crash). With `machine: true` every process of the node goes too (shims, docker-proxy, containers),
   * as when the machine itself dies. Returns once they are gone.
   */
  killNode(ref: NodeRef, options?: { machine?: boolean }): Promise<void>;
  /** Starts a killed node's dockerd again (same data: it rejoins the swarm); returns once its engine answers. */
  restartNode(ref: NodeRef): Promise<void>;
  /** Removes everything the lab made. Idempotent; also run on exit and on SIGINT/SIGTERM/SIGHUP. */
  stop(): Promise<void>;
}

// ------------------------------------------------------------------------------------------ can it run here

/** Why a swarm cannot be built on this machine, or false when it can (for `test(..., { skip })`). */
export function swarmSkipReason(): string | false {
  if (process.platform !== 'linux') return `the swarm lab needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'the swarm lab needs root (network namespaces, mounts, dockerd)';
  for (const [command, from] of [
    ['ip', 'iproute2'],
    ['unshare', 'util-linux'],
    ['dockerd', 'docker.io'],
    ['docker', 'docker.io'],
    ['containerd', 'containerd'],
  ] as const) {
    if (!which(command)) return `the swarm lab needs '${command}' (Debian package ${from}), not found`;
  }
  if (cgroupMounts().length === 0) return 'the swarm lab needs cgroups mounted under /sys/fs/cgroup';
  return false;
}

export const swarmSkip: string | false = swarmSkipReason();

/** The environment of docker CLI calls against a lab node: nothing may redirect them elsewhere. */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: PATH_ENV, DOCKER_CLI_HINTS: 'false' };
  for (const k of ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) delete env[k];
  return env;
}

function ipSync(args: string[], what: string): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', env: { ...process.env, PATH: PATH_ENV } });
  if (r.status !== 0) throw new Error(`${what}: 'ip ${args.join(' ')}' failed: ${(r.stderr ?? '').trim()}`);
  return r.stdout ?? '';
}

// ------------------------------------------------------------------------------------------ exit handlers

const active = new Map<string, { sweep: () => void; stop: () => Promise<void> }>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onExit(): void {
  for (const { sweep } of active.values()) sweep();
}

function onSignal(signal: NodeJS.Signals): void {
  const bound = new Promise((r) => setTimeout(r, 30_000).unref());
  void Promise.race([Promise.allSettled([...active.values()].map((a) => a.stop())), bound]).finally(() => {
    onExit();
    process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGHUP' ? 1 : 15));
  });
}

function register(prefix: string, entry: { sweep: () => void; stop: () => Promise<void> }): void {
  if (active.size === 0) {
    process.on('exit', onExit);
    for (const s of SIGNALS) process.on(s, onSignal);
  }
  active.set(prefix, entry);
}

function unregister(prefix: string): void {
  active.delete(prefix);
  if (active.size === 0) {
    process.off('exit', onExit);
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}

// ------------------------------------------------------------------------------------------ start

function daemonArgs(node: SwarmNode, layout: LabLayout, egress: boolean): string[] {
  return [
    `--config-file=${join(node.dir, 'daemon.json')}`,
    `--data-root=${node.dataRoot}`,
    `--exec-root=${node.execRoot}`,
    `--pidfile=${node.pidFile}`,
    `--host=${node.dockerHost}`,
    `--cgroup-parent=/${layout.cgroup}/n${node.number}`,
    // The namespaces' own netfilter tables: off unless containers must reach out (egress); docker-proxy is all
    // host-mode ports need.
    `--iptables=${egress}`,
    '--ip6tables=false',
  ];
}

/**
 * Starts a node's dockerd: `ip netns exec` (the node's network, a fresh /sys, a private mount namespace where
 * the containers' mounts stay), `unshare --uts` (its own hostname), the cgroup mounts, then dockerd.
 */
function spawnDockerd(node: SwarmNode, layout: LabLayout, offline: boolean, egress: boolean): ChildProcess {
  const script = ['set -e', 'hostname "$0"', ...cgroupMountScript(cgroupMounts()), 'exec "$@"'].join('\n');
  const out = openSync(node.logFile, 'a');
  const env: NodeJS.ProcessEnv = { PATH: PATH_ENV, HOME: process.env.HOME ?? '/root' };
  // Task starts use the node's images and never try a registry (moby's own test daemons set it). Without it,
  // each task start tries to pull first (here only a registry in the lab can answer).
  if (offline) env.DOCKER_SERVICE_PREFER_OFFLINE_IMAGE = '1';
  const dockerd = which('dockerd') ?? '/usr/sbin/dockerd';
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      node.netns,
      'unshare',
      '--uts',
      'sh',
      '-c',
      script,
      node.name,
      dockerd,
      ...daemonArgs(node, layout, egress),
    ],
    { detached: true, stdio: ['ignore', out, out], env },
  );
  closeSync(out);
  child.on('error', () => {}); // reported by the wait below (the process exits)
  child.unref();
  return child;
}

async function waitForDaemon(node: SwarmNode, child: ChildProcess, timeoutMs: number): Promise<void> {
  let exited: string | null = null;
  child.once('exit', (code, signal) => {
    exited = `exited (${code ?? signal})`;
  });
  const socket = node.dockerHost.slice('unix://'.length);
  const started = Date.now();
  for (;;) {
    if (await ping({ kind: 'unix', socketPath: socket, local: true, explicit: true })) return;
    if (exited !== null || (child.exitCode !== null && child.exitCode !== undefined))
      throw new Error(
        `node ${node.name}: dockerd ${exited ?? `exited (${child.exitCode})`} before answering on ${node.dockerHost}: ${tail(node.logFile)}`,
      );
    if (Date.now() - started > timeoutMs)
      throw new Error(
        `node ${node.name}: dockerd did not answer on ${node.dockerHost} within ${Math.round(timeoutMs / 1000)} s: ${tail(node.logFile)}`,
      );
    await sleep(100);
  }
}

function makeNamespaces(layout: LabLayout): void {
  const br = layout.bridgeNetns;
  const step = (args: string[], what: string) => ipSync(args, what);
  step(['netns', 'add', br], `bridge namespace ${br}`);
  step(['-n', br, 'link', 'set', 'lo', 'up'], `bridge namespace ${br}`);
  step(['-n', br, 'link', 'add', 'br0', 'type', 'bridge'], `bridge in ${br}`);
  step(['-n', br, 'addr', 'add', `${layout.bridgeAddress}/24`, 'dev', 'br0'], `bridge in ${br}`);
  step(['-n', br, 'link', 'set', 'br0', 'up'], `bridge in ${br}`);
  for (const node of layout.nodes) {
    const ns = node.netns;
    const what = `node ${node.name}: its network`;
    step(['netns', 'add', ns], what);
    step(['-n', ns, 'link', 'set', 'lo', 'up'], what);
    // The pair is made inside the node's namespace and its peer moved to the bridge's: never in the root one.
    step(
      ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${node.number}`, 'netns', br],
      what,
    );
    step(['-n', br, 'link', 'set', `v${node.number}`, 'master', 'br0', 'up'], what);
    step(['-n', ns, 'addr', 'add', `${node.address}/24`, 'dev', 'eth0'], what);
    step(['-n', ns, 'link', 'set', 'eth0', 'up'], what);
  }
}

/** Builds the lab and its swarm; see the module comment. Throws (after cleaning up) naming the step that failed. */
export async function startSwarm(options: SwarmOptions = {}): Promise<Swarm> {
  const skip = swarmSkipReason();
  if (skip) throw new Error(skip);
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const count = options.nodes ?? 3;
  const layout = labLayout(prefix, count, options.managers ?? count);
  const log = options.log ?? ((line: string) => process.stderr.write(`[swarm ${prefix}] ${line}\n`));
  const daemonTimeoutMs = options.daemonTimeoutMs ?? 60_000;
  const offline = options.offline ?? true;
  const egress = options.egress ?? false;

  await takeLock(layout, options.lockWaitMs ?? 600_000, log);
  const began = Date.now();
  /** Forwarders and the registry: stopped first. */
  const helpers = new Set<number>();
  let stopping: Promise<void> | undefined;
  const dockerdPid = (node: SwarmNode): number => {
    const pid = readPid(node.pidFile);
    return alive(pid) && argvOf(pid).includes(`--exec-root=${node.execRoot}`) ? pid : Number.NaN;
  };

  const sweep = () => {
    sweepLab(prefix, log);
    releaseLock(layout);
    unregister(prefix);
  };

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      for (const pid of helpers) killPid(pid, 'SIGTERM');
      // Gracefully first (bounded): leave the swarm, then SIGTERM each dockerd, which stops its containers.
      const live = layout.nodes.filter((n) => alive(dockerdPid(n)));
      await Promise.allSettled(
        live.map((n) =>
          run('docker', ['-H', n.dockerHost, 'swarm', 'leave', '--force'], {
            env: cliEnv(),
            timeoutMs: 15_000,
          }),
        ),
      );
      const pids = live.map(dockerdPid).filter((p) => alive(p));
      for (const pid of pids) killPid(pid, 'SIGTERM');
      const deadline = Date.now() + 20_000;
      while (pids.some(alive) && Date.now() < deadline) await sleep(100);
      for (const pid of pids.filter(alive)) {
        log(`dockerd ${pid} did not stop within 20 s of SIGTERM; SIGKILL`);
        killPid(pid, 'SIGKILL');
      }
      // Then whatever is left (shims, containers, docker-proxy, forwarders), and everything else.
      sweep();
      // The dockerds are this process's children: let it reap them, so that no /proc entry is left either.
      await Promise.allSettled(pids.map((pid) => reaped(pid, `dockerd ${pid}`)));
    })();
    return stopping;
  }

  register(prefix, { sweep, stop });
  try {
    const found = sweepLab(prefix, log);
    if (found.length > 0) log(`removed the leftovers of an earlier run with prefix '${prefix}'`);

    for (const node of layout.nodes) {
      mkdirSync(node.dir, { recursive: true });
      mkdirSync(node.dataRoot, { recursive: true });
      writeFileSync(
        join(node.dir, 'daemon.json'),
        // Its own config, so /etc/docker/daemon.json (hosts, data root, ...) plays no part; a short shutdown;
        // a registry in the lab, should a test start one, on the bridge's address (plain HTTP).
        `${JSON.stringify(
          {
            'shutdown-timeout': 5,
            'log-level': 'info',
            'insecure-registries': [`${layout.bridgeAddress}:5000`],
          },
          null,
          2,
        )}\n`,
      );
    }
    makeNamespaces(layout);

    await Promise.all(
      layout.nodes.map(async (node) => {
        await waitForDaemon(node, spawnDockerd(node, layout, offline, egress), daemonTimeoutMs);
      }),
    );

    const docker = (node: SwarmNode, args: string[], o: RunOptions = {}) =>
      run('docker', ['-H', node.dockerHost, ...args], { ...o, env: cliEnv() });
    const [first, ...others] = layout.nodes as [SwarmNode, ...SwarmNode[]];
    await docker(
      first,
      [
        'swarm',
        'init',
        '--advertise-addr',
        first.address,
        '--listen-addr',
        `${first.address}:2377`,
        '--default-addr-pool',
        OVERLAY_POOL,
      ],
      { check: true },
    ).catch((err: Error) => {
      throw new Error(`node ${first.name}: swarm init failed: ${err.message}`);
    });
    const token = async (role: string) =>
      (await docker(first, ['swarm', 'join-token', '-q', role], { check: true })).stdout.trim();
    const tokens = { manager: await token('manager'), worker: await token('worker') };
    // One at a time: each new manager joins the raft group before the next.
    for (const node of others) {
      await docker(
        node,
        [
          'swarm',
          'join',
          '--token',
          node.manager ? tokens.manager : tokens.worker,
          '--advertise-addr',
          node.address,
          '--listen-addr',
          `${node.address}:2377`,
          `${first.address}:2377`,
        ],
        { check: true, timeoutMs: 90_000 },
      ).catch((err: Error) => {
        throw new Error(`node ${node.name}: swarm join failed: ${err.message}`);
      });
    }

    const swarm = makeSwarm(layout, {
      docker,
      log,
      helpers,
      dockerdPid,
      stop,
      daemonTimeoutMs,
      offline,
      egress,
    });
    let last: NodeInfo[] = [];
    await waitFor(
      `all ${count} nodes Ready (${layout.nodes.filter((n) => n.manager).length} managers) in the swarm`,
      async () => {
        last = await swarm.nodeList(first);
        const ready = last.filter((n) => n.status === 'Ready').length;
        const managers = last.filter((n) => n.managerStatus === 'Leader' || n.managerStatus === 'Reachable');
        return ready === count && managers.length === layout.nodes.filter((n) => n.manager).length;
      },
      { timeoutMs: 60_000, detail: () => JSON.stringify(last) },
    );
    swarm.formedInSeconds = (Date.now() - began) / 1000;
    log(`swarm of ${count} nodes formed in ${swarm.formedInSeconds.toFixed(1)} s`);
    return swarm;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Debian's docker-registry in the bridge namespace, on the bridge's address; resolves once it answers. */
async function startRegistry(layout: LabLayout, helpers: Set<number>): Promise<string> {
  const binary = which('docker-registry');
  if (!binary) throw new Error('registry: docker-registry not found (Debian package docker-registry)');
  const address = `${layout.bridgeAddress}:5000`;
  const dir = join(layout.dataDir, 'registry');
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${address}\n`,
  );
  const logFile = join(layout.runDir, 'registry.log');
  const out = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', layout.bridgeNetns, binary, 'serve', join(dir, 'config.yml')], {
    stdio: ['ignore', out, out],
    env: { ...process.env, PATH: PATH_ENV },
    detached: true,
  });
  closeSync(out);
  child.on('error', () => {});
  child.unref();
  if (child.pid !== undefined) helpers.add(child.pid);
  let exited = '';
  child.once('exit', (code, signal) => {
    exited = `exited (${code ?? signal})`;
  });
  const probe = `fetch('http://${address}/v2/').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))`;
  await waitFor(
    `registry answers on ${address}`,
    async () => {
      if (exited) throw new Error(`docker-registry ${exited}: ${tail(logFile, 5)}`);
      const r = await run('ip', ['netns', 'exec', layout.bridgeNetns, process.execPath, '-e', probe], {
        env: { ...process.env, PATH: PATH_ENV },
        timeoutMs: 10_000,
      });
      return r.code === 0;
    },
    { timeoutMs: 30_000, detail: () => tail(logFile, 5) },
  );
  return address;
}

interface Internals {
  docker: (node: SwarmNode, args: string[], o?: RunOptions) => Promise<RunResult>;
  log: (line: string) => void;
  helpers: Set<number>;
  offline: boolean;
  egress: boolean;
  dockerdPid: (node: SwarmNode) => number;
  stop: () => Promise<void>;
  daemonTimeoutMs: number;
}

function makeSwarm(layout: LabLayout, internals: Internals): Swarm {
  const { docker, helpers, dockerdPid } = internals;
  const killed = new Set<number>();
  let registry: Promise<string> | undefined;

  const node = (ref: NodeRef): SwarmNode => {
    const k = typeof ref === 'number' ? ref : ref.number;
    const found = layout.nodes[k - 1];
    if (!found || !Number.isInteger(k))
      throw new Error(`no swarm node ${String(k)}: nodes are numbered 1-${layout.nodes.length}`);
    return found;
  };
  const running = (ref: NodeRef) => !killed.has(node(ref).number) && alive(dockerdPid(node(ref)));
  const liveNode = (ref: NodeRef): SwarmNode => {
    const n = node(ref);
    if (!running(n)) throw new Error(`swarm node ${n.name} is not running (killed, or stopped)`);
    return n;
  };
  const defaultManager = (): SwarmNode => {
    const m = layout.nodes.find((n) => n.manager && running(n));
    if (!m) throw new Error('no swarm manager is running');
    return m;
  };

  const swarm: Swarm = {
    prefix: layout.prefix,
    nodes: layout.nodes,
    bridge: { netns: layout.bridgeNetns, address: layout.bridgeAddress },
    formedInSeconds: 0,
    node,
    running,

    docker: (ref, args, options) => docker(node(ref), args, options),

    exec(netns, argv, options = {}) {
      if (!isLabNetns(layout.prefix, netns) || !labNetnsNames(layout.prefix).includes(netns))
        return Promise.reject(new Error(`'${netns}' is not one of this lab's network namespaces`));
      if (argv.length === 0) return Promise.reject(new Error('exec needs a command'));
      return run('ip', ['netns', 'exec', netns, ...argv], {
        ...options,
        env: { ...process.env, PATH: PATH_ENV },
      });
    },

    async loadImage(ref, options = {}) {
      const tar = join(layout.dataDir, `image-${randomBytes(4).toString('hex')}.tar`);
      try {
        const env = { ...process.env, PATH: PATH_ENV };
        const from = options.from ? ['-H', options.from] : [];
        await run('docker', [...from, 'save', '-o', tar, ref], {
          env,
          check: true,
          timeoutMs: 300_000,
        }).catch((err: Error) => {
          throw new Error(
            `loadImage ${ref}: docker save from ${options.from ?? 'the machine engine'}: ${err.message}`,
          );
        });
        await Promise.all(
          layout.nodes.map((n) =>
            docker(liveNode(n), ['load', '-q', '-i', tar], { check: true, timeoutMs: 300_000 }).catch(
              (err: Error) => {
                throw new Error(`loadImage ${ref}: node ${n.name}: ${err.message}`);
              },
            ),
          ),
        );
      } finally {
        rmSync(tar, { force: true });
      }
    },

    async importImage(rootfsTar, ref, options = {}) {
      const first = liveNode(1);
      const changes = (options.changes ?? []).flatMap((c) => ['--change', c]);
      await docker(first, ['import', ...changes, rootfsTar, ref], { check: true, timeoutMs: 120_000 }).catch(
        (err: Error) => {
          throw new Error(`importImage ${ref}: node ${first.name}: ${err.message}`);
        },
      );
      const others = layout.nodes.slice(1);
      if (others.length === 0) return;
      const tar = join(layout.dataDir, `image-${randomBytes(4).toString('hex')}.tar`);
      try {
        await docker(first, ['save', '-o', tar, ref], { check: true, timeoutMs: 120_000 });
        await Promise.all(
          others.map((n) =>
            docker(liveNode(n), ['load', '-q', '-i', tar], { check: true, timeoutMs: 120_000 }).catch(
              (err: Error) => {
                throw new Error(`importImage ${ref}: node ${n.name}: ${err.message}`);
              },
            ),
          ),
        );
      } finally {
        rmSync(tar, { force: true });
      }
    },

    async proxy(address, port) {
      if (!new RegExp(`^${LAB_NET.replace(/\./g, '\\.')}\\.\\d{1,3}$`).test(address))
        throw new Error(`proxy: ${address} is not an address of the lab network (${LAB_NET}.x)`);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`proxy: bad port ${port}`);
      const socket = join(layout.runDir, `proxy-${address}-${port}-${randomBytes(3).toString('hex')}.sock`);
      const logFile = join(layout.runDir, 'forwarders.log');
      const err = openSync(logFile, 'a');
      const child = spawn(
        'ip',
        ['netns', 'exec', layout.bridgeNetns, process.execPath, FORWARDER, socket, address, String(port)],
        { stdio: ['ignore', 'pipe', err], env: { ...process.env, PATH: PATH_ENV }, detached: true },
      );
      closeSync(err);
      if (child.pid !== undefined) helpers.add(child.pid);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (child.pid !== undefined) killPid(child.pid, 'SIGKILL');
          reject(
            new Error(
              `proxy ${address}:${port}: the forwarder did not start within 15 s: ${tail(logFile, 5)}`,
            ),
          );
        }, 15_000);
        let out = '';
        child.stdout?.setEncoding('utf8').on('data', (c: string) => {
          out += c;
          if (out.includes('ready\n')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(
            new Error(
              `proxy ${address}:${port}: the forwarder exited (${code ?? signal}): ${tail(logFile, 5)}`,
            ),
          );
        });
        child.once('error', (e) => {
          clearTimeout(timer);
          reject(new Error(`proxy ${address}:${port}: ${e.message}`));
        });
      });
      child.removeAllListeners('exit');
      child.stdout?.destroy();
      child.unref();
      return socket;
    },

    registry() {
      registry ??= startRegistry(layout, helpers).catch((err) => {
        registry = undefined;
        throw err;
      });
      return registry;
    },

    async nodeList(via) {
      const m = via === undefined ? defaultManager() : liveNode(via);
      const r = await docker(m, ['node', 'ls', '--format', '{{json .}}'], { check: true, timeoutMs: 20_000 });
      return parseNodeList(r.stdout);
    },

    async tasks(service, via) {
      const m = via === undefined ? defaultManager() : liveNode(via);
      const r = await docker(m, ['service', 'ps', '--no-trunc', '--format', '{{json .}}', service], {
        check: true,
        timeoutMs: 20_000,
      });
      return parseTasks(r.stdout);
    },

    async killNode(ref, options = {}) {
      const n = liveNode(ref);
      const pid = dockerdPid(n);
      const containerd = readPid(join(n.execRoot, 'containerd', 'containerd.pid'));
      // Read before the kill: a zombie's command line is empty.
      const containerdOurs = argvOf(containerd).join(' ').includes(n.execRoot);
      killed.add(n.number);
      killPid(pid, 'SIGKILL');
      await waitFor(`node ${n.name}: dockerd ${pid} gone after SIGKILL`, () => !alive(pid), {
        timeoutMs: 10_000,
        everyMs: 50,
      });
      // Its containerd has a parent-death signal. Wait until it is reaped, not just dead: a restarted dockerd
      // takes the zombie named by containerd.pid for a live containerd and waits for it in vain.
      if (containerdOurs) await reaped(containerd, `node ${n.name}: containerd`);
      if (options.machine) {
        const ns = spawnSync('ip', ['netns', 'pids', n.netns], {
          encoding: 'utf8',
          env: { ...process.env, PATH: PATH_ENV },
        });
        const pids = (ns.stdout ?? '')
          .split('\n')
          .filter((p) => p.trim() !== '')
          .map(Number);
        const nodeCgroups = cgroupHierarchies().map((h) => join(h, layout.cgroup, `n${n.number}`));
        for (const dir of nodeCgroups) {
          if (!existsSync(dir)) continue;
          for (const sub of readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory())) {
            try {
              for (const p of readFileSync(join(dir, sub.name, 'cgroup.procs'), 'utf8').split('\n'))
                if (p.trim() !== '') pids.push(Number(p));
            } catch {
              // gone
            }
          }
        }
        const mine = [...new Set(pids)].filter((p) => p > 1 && p !== process.pid && alive(p));
        for (const p of mine) killPid(p, 'SIGKILL');
        await waitFor(`node ${n.name}: its processes gone after SIGKILL`, () => !mine.some(alive), {
          timeoutMs: 10_000,
          everyMs: 50,
        });
      }
    },

    async restartNode(ref) {
      const n = node(ref);
      if (alive(dockerdPid(n))) throw new Error(`restartNode: ${n.name}'s dockerd is still running`);
      // containerd.pid of a dead containerd: wait until it is reaped; if the pid is another process's by now,
      // drop the file (dockerd would take that process for its containerd).
      const pidFile = join(n.execRoot, 'containerd', 'containerd.pid');
      const old = readPid(pidFile);
      if (existsSync(`/proc/${old}`) && !alive(old)) await reaped(old, `node ${n.name}: the old containerd`);
      if (existsSync(pidFile) && !argvOf(old).join(' ').includes(n.execRoot))
        rmSync(pidFile, { force: true });
      await waitForDaemon(
        n,
        spawnDockerd(n, layout, internals.offline, internals.egress),
        internals.daemonTimeoutMs,
      );
      killed.delete(n.number);
    },

    stop: () => internals.stop(),
  };
  return swarm;
}
