/**
 * The swarm lab's names, addresses and paths, and the parsers of docker's output (pure: no file system, no
 * processes). test/swarm/harness.ts builds the lab; test/swarm/cleanup.ts finds and removes it.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Where the lab's sockets, exec roots, pid files, logs and lock files live (tmpfs). */
export const RUN_ROOT = '/run/ferry-swarm';
/** Where the nodes' data roots live (overlay2 needs a real file system). */
export const DATA_ROOT = '/var/lib/ferry-swarm';
/** The lab network: the bridge has .1, node k has .(10+k). */
export const LAB_NET = '10.231.0';
/** Overlay networks' subnets come from here (apart from the lab network). */
export const OVERLAY_POOL = '10.232.0.0/16';
export const SHIM_SOCKETS = '/run/containerd/s';
export const DEFAULT_PREFIX = 'fsw';
export const MAX_NODES = 9;

export interface SwarmNode {
  /** 1-based, as in its name. */
  number: number;
  /** `<prefix>-n<k>`: its network namespace and its hostname (so its name in `docker node ls`). */
  name: string;
  netns: string;
  /** Its address on the lab network (exists only inside the lab's namespaces). */
  address: string;
  /** `unix:///run/ferry-swarm/<prefix>/n<k>/docker.sock`. */
  dockerHost: string;
  manager: boolean;
  dir: string;
  dataRoot: string;
  execRoot: string;
  pidFile: string;
  logFile: string;
}

export interface NodeInfo {
  id: string;
  hostname: string;
  /** Ready, Down, Unknown, Disconnected. */
  status: string;
  availability: string;
  /** Leader, Reachable, Unreachable, or '' for a worker. */
  managerStatus: string;
}

export interface TaskInfo {
  id: string;
  name: string;
  /** Hostname of the node, i.e. `<prefix>-n<k>`. */
  node: string;
  desiredState: string;
  /** e.g. "Running 3 seconds ago". */
  currentState: string;
  error: string;
}

export function checkPrefix(prefix: string): string {
  if (!/^[a-z][a-z0-9]{0,7}$/.test(prefix)) {
    throw new Error(
      `swarm prefix '${prefix}' is not allowed: 1-8 characters of [a-z0-9], starting with a letter (it names namespaces, interfaces, cgroups and directories)`,
    );
  }
  return prefix;
}

export interface LabLayout {
  prefix: string;
  runDir: string;
  dataDir: string;
  lockFile: string;
  /** Below every cgroup hierarchy's root: `ferry-swarm-<prefix>`. */
  cgroup: string;
  bridgeNetns: string;
  bridgeAddress: string;
  nodes: SwarmNode[];
}

/** Names, addresses and paths of a lab (pure: nothing is created). */
export function labLayout(prefix: string, count: number, managers = count): LabLayout {
  checkPrefix(prefix);
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES)
    throw new Error(`swarm nodes must be 1-${MAX_NODES}, got ${count}`);
  if (!Number.isInteger(managers) || managers < 1 || managers > count)
    throw new Error(`swarm managers must be 1-${count} (the nodes), got ${managers}`);
  const runDir = join(RUN_ROOT, prefix);
  const dataDir = join(DATA_ROOT, prefix);
  const nodes: SwarmNode[] = [];
  for (let k = 1; k <= count; k++) {
    const dir = join(runDir, `n${k}`);
    nodes.push({
      number: k,
      name: `${prefix}-n${k}`,
      netns: `${prefix}-n${k}`,
      address: `${LAB_NET}.${10 + k}`,
      dockerHost: `unix://${join(dir, 'docker.sock')}`,
      manager: k <= managers,
      dir,
      dataRoot: join(dataDir, `n${k}`),
      execRoot: join(dir, 'exec'),
      pidFile: join(dir, 'dockerd.pid'),
      logFile: join(dir, 'dockerd.log'),
    });
  }
  return {
    prefix,
    runDir,
    dataDir,
    lockFile: join(RUN_ROOT, `${prefix}.lock`),
    cgroup: `ferry-swarm-${prefix}`,
    bridgeNetns: `${prefix}-br`,
    bridgeAddress: `${LAB_NET}.1`,
    nodes,
  };
}

/** Is the name one of the prefix's namespaces? */
export function isLabNetns(prefix: string, name: string): boolean {
  return name === `${prefix}-br` || new RegExp(`^${prefix}-n[1-9]$`).test(name);
}

/** The socket a containerd runc v2 shim listens on (containerd 1.6: sha256 of address/namespace/id). */
export function shimSocket(containerdAddress: string, namespace: string, id: string): string {
  const hash = createHash('sha256')
    .update(join(containerdAddress, namespace, id))
    .digest('hex');
  return join(SHIM_SOCKETS, hash);
}

/** `docker node ls --format '{{json .}}'` lines. */
export function parseNodeList(text: string): NodeInfo[] {
  return jsonLines(text).map((o) => ({
    id: String(o.ID ?? ''),
    hostname: String(o.Hostname ?? ''),
    status: String(o.Status ?? ''),
    availability: String(o.Availability ?? ''),
    managerStatus: String(o.ManagerStatus ?? ''),
  }));
}

/** `docker service ps --no-trunc --format '{{json .}}'` lines. */
export function parseTasks(text: string): TaskInfo[] {
  return jsonLines(text).map((o) => ({
    id: String(o.ID ?? ''),
    name: String(o.Name ?? ''),
    node: String(o.Node ?? ''),
    desiredState: String(o.DesiredState ?? ''),
    currentState: String(o.CurrentState ?? ''),
    error: String(o.Error ?? ''),
  }));
}

export function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface Mount {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

/**
 * Shell lines that mount, inside the fresh /sys that `ip netns exec` gives, the same cgroup layout as the
 * machine's: a tmpfs with each v1 hierarchy (and a v2 one) below it, or the v2 hierarchy alone.
 */
export function cgroupMountScript(mounts: Mount[]): string[] {
  const lines: string[] = [];
  for (const m of mounts) {
    const q = shellQuote(m.mountPoint);
    if (m.fsType === 'tmpfs') lines.push(`mount -t tmpfs -o mode=755 cgroup ${q}`);
    else if (m.fsType === 'cgroup2') lines.push(`mkdir -p ${q}`, `mount -t cgroup2 cgroup2 ${q}`);
    else if (m.fsType === 'cgroup') {
      const opts = m.superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro');
      if (opts.every((o) => o.startsWith('name='))) opts.unshift('none');
      lines.push(`mkdir -p ${q}`, `mount -t cgroup -o ${opts.join(',')} cgroup ${q}`);
    }
  }
  return lines;
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
