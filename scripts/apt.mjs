// apt-get for Ferry's set-up scripts, on a machine other programs share: it waits for the apt and dpkg locks
// another program holds (an unattended upgrade, another session's apt-get) instead of failing, and says
// whom it waits for. Plain JavaScript: it runs before npm dependencies matter.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';

/** The apt and dpkg locks (POSIX locks taken with fcntl, as apt and dpkg take them). */
const APT_LOCKS = [
  '/var/lib/dpkg/lock-frontend',
  '/var/lib/dpkg/lock',
  '/var/lib/apt/lists/lock',
  '/var/cache/apt/archives/lock',
];
/** How long to wait for another program's apt-get or dpkg (an unattended upgrade can take minutes). */
const APT_LOCK_WAIT_MS = 20 * 60_000;

class AptError extends Error {}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function commandOf(pid) {
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '')
      .join(' ');
  } catch {
    // gone meanwhile
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text || '?';
}

/**
 * /proc/locks as records of who holds what: { pid, major, minor, inode } (pid -1 for an open-file-
 * description lock, whose owner the kernel does not say). Waiters ("->") hold nothing and are left out.
 */
export function parseProcLocks(text) {
  const held = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 6 || fields[1] === '->') continue;
    const [major, minor, inode] = fields[5].split(':');
    if (inode === undefined) continue;
    held.push({
      kind: fields[1],
      pid: Number(fields[4]),
      major: Number.parseInt(major, 16),
      minor: Number.parseInt(minor, 16),
      inode: Number(inode),
    });
  }
  return held;
}

/** Linux's dev_t, split as glibc's major()/minor() do. */
function deviceOf(path) {
  const { dev, ino } = statSync(path, { bigint: true });
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
    inode: Number(ino),
  };
}

/** Who holds the apt and dpkg locks now (other than this process): [{ path, pid, command }]. */
export function aptLockHolders(paths = APT_LOCKS, locksText = undefined) {
  let text = locksText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/locks', 'utf8');
    } catch {
      return [];
    }
  }
  const held = parseProcLocks(text);
  const holders = [];
  for (const path of paths) {
    let id;
    try {
      id = deviceOf(path);
    } catch {
      continue; // no such lock file: nobody holds it
    }
    for (const h of held) {
      if (h.inode !== id.inode || h.major !== id.major || h.minor !== id.minor) continue;
      if (h.pid === process.pid) continue;
      holders.push({
        path,
        pid: h.pid,
        command: h.pid > 0 ? commandOf(h.pid) : 'unknown (open file description lock)',
      });
    }
  }
  return holders;
}

function describeHolders(holders) {
  const byPid = new Map();
  for (const h of holders) {
    const entry = byPid.get(h.pid) ?? { command: h.command, paths: [] };
    entry.paths.push(h.path);
    byPid.set(h.pid, entry);
  }
  return [...byPid]
    .map(([pid, e]) => `${pid > 0 ? `pid ${pid} (${e.command})` : e.command} holds ${e.paths.join(', ')}`)
    .join('; ');
}

/** Returns once no other process holds an apt or dpkg lock; says whom it waits for, and when that changes. */
async function waitForAptLocks(log, deadline) {
  let said = '';
  let saidAt = 0;
  for (;;) {
    const holders = aptLockHolders();
    if (holders.length === 0) {
      if (said) log('the apt/dpkg locks are free now');
      return;
    }
    const who = describeHolders(holders);
    if (Date.now() > deadline) {
      throw new AptError(
        `the apt/dpkg locks are still held after ${APT_LOCK_WAIT_MS / 60_000} min: ${who}. Let it finish, then run again.`,
      );
    }
    if (who !== said || Date.now() - saidAt > 30_000) {
      log(`waiting for the apt/dpkg lock: ${who}`);
      said = who;
      saidAt = Date.now();
    }
    await sleep(500);
  }
}

/**
 * apt-get with the locks waited for. DPkg::Lock::Timeout makes apt-get wait for the dpkg locks itself;
 * it does not cover `apt-get update`'s lists lock, hence the wait before and the retry when apt-get lost
 * a race for a lock taken between the check and its start.
 */
export async function aptGet(log, args, deadline) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (;;) {
    await waitForAptLocks(log, deadline);
    const seconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    const full = ['-o', `DPkg::Lock::Timeout=${seconds}`, ...args];
    log(`apt-get ${full.join(' ')}`);
    const result = spawnSync('apt-get', full, {
      stdio: ['ignore', 'inherit', 'pipe'],
      env,
      encoding: 'utf8',
    });
    if (result.stderr) process.stderr.write(result.stderr);
    if (result.status === 0) return;
    const lockLost = /Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock/.test(
      result.stderr ?? '',
    );
    if (lockLost && Date.now() < deadline) {
      log('apt-get found a lock taken meanwhile; waiting again');
      continue;
    }
    throw new AptError(`'apt-get ${full.join(' ')}' failed (exit ${result.status ?? result.signal}).`);
  }
}

/** `apt-get update`, then `apt-get install` of the packages, waiting for the locks (up to 20 min in all). */
export async function aptInstall(log, packages) {
  const deadline = Date.now() + APT_LOCK_WAIT_MS;
  await aptGet(log, ['update', '-q'], deadline);
  await aptGet(log, ['install', '-y', '-q', '--no-install-recommends', ...packages], deadline);
}
