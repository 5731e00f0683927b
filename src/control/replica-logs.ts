/**
 * A deployment's replica logs, for `ferry logs`: the last lines of its live replicas (from the runtime) and of
 * those already gone (the archive), and new lines of the live ones as they come. Reads only; which deployments
 * exist is the caller's question (the command service checks the name first).
 */
import type { RuntimeReader } from '../runtime/index.ts';
import { LABELS, platformLabels, readReplicaClaim } from './labels.ts';
import { type LogArchive, toStored } from './log-archive.ts';
import type { LogLine, LogQuery } from './views.ts';

const DEFAULT_TAIL = 200;

export interface ReplicaLogsOptions {
  runtime: RuntimeReader;
  archive: LogArchive;
  /** Only this platform's replicas are read (see labels.ts platformLabels). */
  platformId: string;
  now: () => number;
}

export class ReplicaLogs {
  private readonly runtime: RuntimeReader;
  private readonly archive: LogArchive;
  private readonly mine: Record<string, string>;
  private readonly now: () => number;

  constructor(opts: ReplicaLogsOptions) {
    this.runtime = opts.runtime;
    this.archive = opts.archive;
    this.mine = platformLabels(opts.platformId);
    this.now = opts.now;
  }

  /** The last `tail` lines per replica: of the live ones, and with `archived` of those already gone too. */
  async recent(name: string, query: LogQuery, opts: { archived: boolean }): Promise<LogLine[]> {
    const tail = query.tail ?? DEFAULT_TAIL;
    const live = (await this.runtime.list({ ...this.mine, [LABELS.deployment]: name })).filter(
      (s) => query.revision === undefined || readReplicaClaim(s.labels).revision === query.revision,
    );
    const liveNames = new Set(live.map((s) => s.name));
    const archived = opts.archived
      ? (await this.archive.read(name, { ...query, tail })).filter((l) => !liveNames.has(l.replica))
      : [];
    const now = this.now();
    const fromLive = await Promise.all(
      live.map(async (s) => {
        const revision = readReplicaClaim(s.labels).revision ?? 0;
        const lines = await this.runtime.logs(s.id, { tail }).catch(() => []);
        return lines.map((l) => ({ ...toStored(l, now), replica: s.name, revision }));
      }),
    );
    return [...archived, ...fromLive.flat()].sort((a, b) => a.at - b.at);
  }

  /**
   * The last `tail` lines of the live replicas (as `tail -f` starts; the lines of replicas that are gone are in
   * `recent` with `archived`), then new lines as they come, until the signal aborts.
   */
  async *follow(name: string, query: LogQuery, signal: AbortSignal): AsyncIterable<LogLine> {
    if ((query.tail ?? DEFAULT_TAIL) > 0)
      for (const line of await this.recent(name, query, { archived: false })) yield line;
    const queue: LogLine[] = [];
    let wake: (() => void) | null = null;
    const push = (l: LogLine) => {
      queue.push(l);
      wake?.();
    };
    const following = new Set<string>();
    const attach = async () => {
      const live = await this.runtime.list({ ...this.mine, [LABELS.deployment]: name }).catch(() => []);
      for (const s of live) {
        const revision = readReplicaClaim(s.labels).revision ?? 0;
        if (following.has(s.id) || (query.revision !== undefined && revision !== query.revision)) continue;
        if (s.state !== 'starting' && s.state !== 'ready') continue;
        following.add(s.id);
        void (async () => {
          try {
            for await (const l of this.runtime.followLogs(s.id, signal))
              push({ ...toStored(l, this.now()), replica: s.name, revision });
          } catch {
            // the replica went away; its lines are in the archive
          }
        })();
      }
    };
    await attach();
    const poll = setInterval(() => void attach(), 1000);
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = null;
        while (queue.length > 0 && !signal.aborted) yield queue.shift()!;
      }
    } finally {
      clearInterval(poll);
      signal.removeEventListener('abort', onAbort);
    }
  }
}
