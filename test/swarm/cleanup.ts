/**
 * Finding and removing everything a swarm lab made (test/swarm/harness.ts), whatever state it is in: after
 * stop(), from an exit handler, or at the next start after a crashed run. Synchronous, so it can run in a
 * process 'exit' handler. The lock file says whether the run that owns a prefix is still alive.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  DATA_ROOT,
  DEFAULT_PREFIX,
  isLabNetns,
  type LabLayout,
  labLayout,
  MAX_NODES,
  RUN_ROOT,
  shimSocket,
} from './lab.ts';
import {
  alive,
  argvOf,
  cgroupHierarchies,
  killPid,
  mountsOf,
  PATH_ENV,
  readPid,
  sleep,
  sleepSync,
  startTime,
} from './proc.ts';

export interface LabProcess {
  pid: number;
  why: string;
}

export function labNetnsNames(prefix: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', env: { ...process.env, PATH: PATH_ENV } });
  return (r.stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => isLabNetns(prefix, n));
}

export function cgroupDirs(layout: LabLayout): string[] {
  const dirs: string[] = [];
  const walk = (dir: string) => {
    dirs.push(dir);
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) walk(join(dir, e));
  };
  for (const h of cgroupHierarchies()) {
    const top = join(h, layout.cgroup);
    if (existsSync(top)) walk(top);
  }
  return dirs;
}

/** Every live process the lab owns, with why it counts as the lab's. */
export function labProcesses(layout: LabLayout): LabProcess[] {
  const found = new Map<number, string>();
  const add = (pid: number, why: string) => {
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || found.has(pid) || !alive(pid)) return;
    found.set(pid, why);
  };
  for (const ns of labNetnsNames(layout.prefix)) {
    const r = spawnSync('ip', ['netns', 'pids', ns], {
      encoding: 'utf8',
      env: { ...process.env, PATH: PATH_ENV },
    });
    for (const p of (r.stdout ?? '').split('\n')) if (p.trim() !== '') add(Number(p), `in netns ${ns}`);
  }
  for (const dir of cgroupDirs(layout)) {
    let text = '';
    try {
      text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
    } catch {
      continue;
    }
    for (const p of text.split('\n')) if (p.trim() !== '') add(Number(p), `in cgroup ${dir}`);
  }
  // A dockerd whose namespace is gone already (it should not be, but its pid file says where it is).
  for (const k of Array.from({ length: MAX_NODES }, (_, i) => i + 1)) {
    const dir = join(layout.runDir, `n${k}`);
    const pid = readPid(join(dir, 'dockerd.pid'));
    if (alive(pid) && argvOf(pid).includes(`--exec-root=${join(dir, 'exec')}`)) add(pid, `dockerd of n${k}`);
  }
  return [...found].map(([pid, why]) => ({ pid, why }));
}

/** The sockets of the lab's containerd shims (left behind when a shim is SIGKILLed). */
export function shimSockets(layout: LabLayout, processes: LabProcess[]): string[] {
  const sockets = new Set<string>();
  for (const { pid } of processes) {
    const argv = argvOf(pid);
    if (!(argv[0] ?? '').includes('containerd-shim')) continue;
    const opt = (name: string) => argv[argv.indexOf(name) + 1];
    const address = opt('-address');
    const namespace = opt('-namespace');
    const id = opt('-id');
    if (address?.startsWith(`${layout.runDir}/`) && namespace && id)
      sockets.add(shimSocket(address, namespace, id));
  }
  // Shims that died earlier: containerd's task directories name them.
  for (let k = 1; k <= MAX_NODES; k++) {
    const containerd = join(layout.runDir, `n${k}`, 'exec', 'containerd');
    const tasks = join(containerd, 'daemon', 'io.containerd.runtime.v2.task');
    if (!existsSync(tasks)) continue;
    for (const ns of readdirSync(tasks)) {
      for (const id of readdirSync(join(tasks, ns)))
        sockets.add(shimSocket(join(containerd, 'containerd.sock'), ns, id));
    }
  }
  return [...sockets];
}

/** Mounts below the lab's directories, in any mount namespace still alive: "<ns>: <mount point>". */
export function labMounts(layout: LabLayout): string[] {
  const seen = new Set<string>();
  const found: string[] = [];
  const under = (p: string) =>
    p === layout.runDir ||
    p === layout.dataDir ||
    p.startsWith(`${layout.runDir}/`) ||
    p.startsWith(`${layout.dataDir}/`);
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return found;
  }
  for (const pid of ['self', ...pids]) {
    let ns = '';
    try {
      ns = statSync(`/proc/${pid}/ns/mnt`).ino.toString();
    } catch {
      continue;
    }
    if (seen.has(ns)) continue;
    seen.add(ns);
    for (const m of mountsOf(pid === 'self' ? 'self' : Number(pid)))
      if (under(m.mountPoint)) found.push(`mount namespace ${ns} (pid ${pid}): ${m.mountPoint}`);
  }
  return found;
}

/** The clean-up's lines in one: processes by name and pid, failures in full, the rest counted by kind. */
export function summarize(done: string[]): string {
  const killed: string[] = [];
  const failed: string[] = [];
  const counts = new Map<string, number>();
  for (const d of done) {
    const k = /^killed (\d+) \(([^,]+),/.exec(d);
    if (k) killed.push(`${k[2]} ${k[1]}`);
    else if (d.startsWith('could not')) failed.push(d);
    else {
      const kind = /^(removed shim socket|removed cgroup|deleted netns|unmounted|removed)/.exec(d)?.[1] ?? d;
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
  }
  const parts = [...counts].map(([kind, n]) => `${kind === 'removed' ? 'removed directory' : kind} x${n}`);
  if (killed.length > 0) parts.unshift(`killed ${killed.length} processes (${killed.join(', ')})`);
  return [...parts, ...failed].join('; ');
}

/** What is left of a lab (nothing, after stop()): one line per thing. */
export function leftovers(prefix: string = DEFAULT_PREFIX): string[] {
  const layout = labLayout(prefix, 1);
  const found: string[] = [];
  for (const ns of labNetnsNames(prefix)) found.push(`network namespace ${ns}`);
  for (const p of labProcesses(layout)) found.push(`process ${p.pid} (${argvOf(p.pid).join(' ')}) ${p.why}`);
  for (const dir of cgroupDirs(layout)) found.push(`cgroup ${dir}`);
  found.push(...labMounts(layout));
  for (const dir of [layout.runDir, layout.dataDir]) if (existsSync(dir)) found.push(`directory ${dir}`);
  for (const s of shimSockets(layout, [])) if (existsSync(s)) found.push(`shim socket ${s}`);
  if (existsSync(layout.lockFile)) found.push(`lock file ${layout.lockFile}`);
  return found;
}

/**
 * Removes everything of the prefix's lab, whatever state it is in (synchronous, so it also runs in an exit
 * handler): SIGKILLs its processes by pid, then removes the shim sockets, cgroups, namespaces, mounts and
 * directories. Returns what it found. Not the lock file: its holder releases it.
 */
export function sweepLab(prefix: string, log: (line: string) => void = () => {}): string[] {
  const layout = labLayout(prefix, 1);
  const done: string[] = [];
  const sockets = new Set<string>();
  for (let round = 0; round < 5; round++) {
    const processes = labProcesses(layout);
    if (processes.length === 0) break;
    for (const s of shimSockets(layout, processes)) sockets.add(s);
    for (const p of processes) {
      done.push(`killed ${p.pid} (${(argvOf(p.pid)[0] ?? '?').split('/').pop()}, ${p.why})`);
      killPid(p.pid, 'SIGKILL');
    }
    const deadline = Date.now() + 10_000;
    while (processes.some((p) => alive(p.pid)) && Date.now() < deadline) sleepSync(50);
  }
  for (const s of shimSockets(layout, [])) sockets.add(s);
  for (const s of sockets) {
    if (existsSync(s)) {
      rmSync(s, { force: true });
      done.push(`removed shim socket ${s}`);
    }
  }
  // Deepest first; a cgroup whose last process just died can be busy for a moment.
  for (const dir of cgroupDirs(layout).reverse()) {
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        rmdirSync(dir);
        done.push(`removed cgroup ${dir}`);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (Date.now() > deadline) {
          done.push(`could not remove cgroup ${dir}: ${code}`);
          break;
        }
        sleepSync(50);
      }
    }
  }
  for (const ns of labNetnsNames(prefix)) {
    const r = spawnSync('ip', ['netns', 'del', ns], {
      encoding: 'utf8',
      env: { ...process.env, PATH: PATH_ENV },
    });
    done.push(r.status === 0 ? `deleted netns ${ns}` : `could not delete netns ${ns}: ${r.stderr.trim()}`);
  }
  // Mounts live in the nodes' own mount namespaces, which ended with their processes; one left in this
  // namespace (there should be none) is detached before the directories go.
  for (const m of mountsOf('self').reverse()) {
    if (m.mountPoint.startsWith(`${layout.runDir}/`) || m.mountPoint.startsWith(`${layout.dataDir}/`)) {
      spawnSync('umount', ['-l', m.mountPoint]);
      done.push(`unmounted ${m.mountPoint}`);
    }
  }
  for (const dir of [layout.runDir, layout.dataDir]) {
    if (existsSync(dir)) {
      rmSync(dir, { recursive: true, force: true });
      done.push(`removed ${dir}`);
    }
  }
  for (const dir of [DATA_ROOT]) {
    try {
      rmdirSync(dir); // only when no other lab uses it
    } catch {
      // not empty, or gone
    }
  }
  if (done.length > 0) log(`clean-up of '${prefix}': ${summarize(done)}`);
  return done;
}

/** Takes the prefix's lock file (waiting, bounded, while a live process holds it). */
export async function takeLock(
  layout: LabLayout,
  waitMs: number,
  log: (line: string) => void,
): Promise<void> {
  mkdirSync(RUN_ROOT, { recursive: true });
  const me = `${process.pid} ${startTime(process.pid)}`;
  const deadline = Date.now() + waitMs;
  let said = 0;
  for (;;) {
    try {
      const fd = openSync(layout.lockFile, 'wx');
      writeFileSync(fd, me);
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = '';
    try {
      holder = readFileSync(layout.lockFile, 'utf8').trim();
    } catch {
      continue; // released meanwhile
    }
    const [pidText = '', started = ''] = holder.split(' ');
    const pid = Number(pidText);
    if (holder === me) throw new Error(`swarm '${layout.prefix}' is already running in this process`);
    if (!alive(pid) || startTime(pid) !== started) {
      log(`swarm '${layout.prefix}': the run that held it (pid ${pid}) is gone; cleaning up after it`);
      rmSync(layout.lockFile, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `swarm prefix '${layout.prefix}' is in use by pid ${pid} (${argvOf(pid).join(' ').slice(0, 200)}); gave up waiting after ${Math.round(waitMs / 1000)} s (use another prefix)`,
      );
    }
    if (Date.now() - said > 30_000) {
      log(`swarm '${layout.prefix}' is in use by pid ${pid}; waiting for it`);
      said = Date.now();
    }
    await sleep(500);
  }
}

export function releaseLock(layout: LabLayout): void {
  try {
    if (readFileSync(layout.lockFile, 'utf8').trim().split(' ')[0] === String(process.pid))
      unlinkSync(layout.lockFile);
  } catch {
    // gone already
  }
  try {
    rmdirSync(RUN_ROOT); // only when no other lab uses it
  } catch {
    // not empty
  }
}
