// CPU time of a process tree from /proc (Linux). Plain JavaScript so that the load worker
// (load-worker.mjs, which runs without a TypeScript loader) can use it too; types in cpu.d.mts.
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. 100 on every mainstream Linux build. */
export const CLK_TCK = 100;

function readStat(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] = state (field 3), rest[1] = ppid (4), rest[11] = utime (14), rest[12] = stime (15).
  return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) };
}

/** utime + stime of one process (all its threads), in ms; null if it does not exist. */
export function processCpuMs(pid) {
  try {
    return (readStat(pid).ticks * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/**
 * utime + stime (ms) of the given processes and all their live descendants. Threads are included
 * in a process's own stat. Returns null when none of the roots exists (or /proc is unavailable).
 */
export function treeCpuMs(rootPids) {
  if (!rootPids || rootPids.length === 0) return null;
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  const parent = new Map();
  const ticks = new Map();
  for (const entry of entries) {
    const c = entry.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    try {
      const s = readStat(entry);
      parent.set(Number(entry), s.ppid);
      ticks.set(Number(entry), s.ticks);
    } catch {
      // exited meanwhile
    }
  }
  let total = 0;
  let found = false;
  for (const [pid, t] of ticks) {
    let p = pid;
    for (let depth = 0; depth < 64 && p > 1; depth++) {
      if (rootPids.includes(p)) {
        total += t;
        found = true;
        break;
      }
      p = parent.get(p) ?? 0;
    }
  }
  return found ? (total * 1000) / CLK_TCK : null;
}
