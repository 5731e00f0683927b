/**
 * Replica logs that outlive their replica: before the controller removes a replica (crashed, scaled down,
 * rolled out, deleted), it copies the replica's log lines here, to
 * `<dir>/<deployment>/r<revision>/<replica-name>.log`. Live replicas' logs are read from the runtime (which
 * keeps them across a control-plane restart: log files for processes, the engine for containers).
 *
 * Bounded: each file keeps its last `maxFileBytes`; each revision keeps its newest `filesPerRevision` files;
 * each deployment keeps its newest `revisionsPerDeployment` revision folders.
 */
import { appendFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import type { ReplicaLogLine } from '../runtime/index.ts';
import type { LogLine } from './views.ts';

export interface LogArchiveOptions {
  maxFileBytes?: number;
  filesPerRevision?: number;
  revisionsPerDeployment?: number;
}

/** One stored line: the JSON of a LogLine minus deployment-level fields. */
interface StoredLine {
  at: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

export class LogArchive {
  private readonly maxFileBytes: number;
  private readonly filesPerRevision: number;
  private readonly revisionsPerDeployment: number;

  constructor(
    readonly dir: string,
    opts: LogArchiveOptions = {},
  ) {
    this.maxFileBytes = opts.maxFileBytes ?? 1024 * 1024;
    this.filesPerRevision = opts.filesPerRevision ?? 20;
    this.revisionsPerDeployment = opts.revisionsPerDeployment ?? 20;
  }

  /** Appends a replica's lines (oldest first) and applies the bounds. */
  async archive(
    replica: { name: string; deployment: string; revision: number },
    lines: Array<{ at: number; stream: 'stdout' | 'stderr'; line: string }>,
  ): Promise<void> {
    if (lines.length === 0) return;
    const revDir = join(this.dir, safe(replica.deployment), `r${replica.revision}`);
    await mkdir(revDir, { recursive: true });
    const file = join(revDir, `${safe(replica.name)}.log`);
    const text = lines
      .map((l) => `${JSON.stringify({ at: l.at, stream: l.stream, line: l.line })}\n`)
      .join('');
    await appendFile(file, text);
    const size = (await stat(file)).size;
    if (size > this.maxFileBytes) {
      const buf = await readFile(file);
      const cut = buf.indexOf(0x0a, buf.length - this.maxFileBytes);
      await writeFile(file, buf.subarray(cut + 1));
    }
    await this.prune(revDir, this.filesPerRevision);
    await this.prune(join(this.dir, safe(replica.deployment)), this.revisionsPerDeployment);
  }

  /** Archived lines of a deployment (optionally one revision), the last `tail` per replica, oldest first. */
  async read(deployment: string, query: { revision?: number; tail?: number } = {}): Promise<LogLine[]> {
    const depDir = join(this.dir, safe(deployment));
    const revisions = (await list(depDir))
      .map((n) => Number(n.slice(1)))
      .filter((n) => Number.isInteger(n) && (query.revision === undefined || n === query.revision));
    const out: LogLine[] = [];
    for (const revision of revisions) {
      const revDir = join(depDir, `r${revision}`);
      for (const file of await list(revDir)) {
        if (!file.endsWith('.log')) continue;
        const replica = file.slice(0, -'.log'.length);
        const rows = (await readFile(join(revDir, file), 'utf8')).split('\n').filter((l) => l !== '');
        const kept = query.tail === undefined ? rows : rows.slice(-query.tail);
        for (const row of kept) {
          const parsed = parse(row);
          if (parsed) out.push({ ...parsed, replica, revision });
        }
      }
    }
    return out.sort((a, b) => a.at - b.at);
  }

  /** Keeps the newest `keep` entries of a folder (by modification time). */
  private async prune(dir: string, keep: number): Promise<void> {
    const names = await list(dir);
    if (names.length <= keep) return;
    const dated = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(dir, n))).mtimeMs })));
    dated.sort((a, b) => b.t - a.t);
    for (const { n } of dated.slice(keep)) await rm(join(dir, n), { recursive: true, force: true });
  }
}

function parse(row: string): StoredLine | undefined {
  try {
    const v = JSON.parse(row) as StoredLine;
    return typeof v.line === 'string' && typeof v.at === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** Deployment and replica names are already restricted; this keeps a path inside the archive regardless. */
function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** When a model server wrote a JSON log line (pino `time`), else `fallback`. */
export function lineTime(line: string, fallback: number): number {
  if (!line.startsWith('{')) return fallback;
  const m = /"time":(\d{10,16})/.exec(line);
  return m ? Number(m[1]) : fallback;
}

/**
 * A runtime log line (a string, or `{stream, line}`) as stored, with its time. Terminal control sequences (colours
 * a library wrote, cursor moves) are removed: a replica's output reaches an operator's terminal (`ferry logs`) and
 * the dashboard, where they would be noise at best and would move the terminal's cursor at worst.
 */
export function toStored(l: ReplicaLogLine, now: number): StoredLine {
  const line = stripVTControlCharacters(l.line);
  return { at: lineTime(line, now), stream: l.stream, line };
}
