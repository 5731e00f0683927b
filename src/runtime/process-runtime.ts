/**
 * Runtime that runs each replica as a `ferry serve` child process on this machine, detached in its own
 * process group so it outlives the control plane. Every replica has a record in
 * `<stateDir>/replicas/<name>.json`; a new ProcessRuntime over the same stateDir (a control-plane restart)
 * adopts the still-running ones. A record's process counts as alive only while its pid exists and
 * /proc/<pid>/cmdline is still the recorded command line (pids are reused). Signals go to that pid only.
 * Output goes straight from the child to `<stateDir>/logs/<name>.log` (no pipe through us, so a restart of
 * the control plane does not break it); when it grows past maxLogBytes its last part is kept in
 * `<name>.log.1` and the file is truncated (checked on list() and logs()); `<name>.log.cut` says which bytes
 * of the old file `.log.1` holds, so that followLogs continues across a cut without losing or repeating lines.
 * watch(): children this instance spawned report their exit at once (the 'exit' event); replicas started or
 * adopted elsewhere are seen by polling the records (watchPollMs).
 *
 * Each replica listens on a unix socket, `<stateDir>/sockets/<name>/ferry.sock` (socket-dir.ts; mode 0600), not
 * on a TCP port: only Ferry's user (and root) can connect, so no other local program reaches a replica past
 * the gateway, and no port is picked and raced for. When Ferry runs as root, replicas run as an unprivileged
 * user (replicaUser, default uid/gid 65532, no supplementary groups): their socket directory is theirs, the
 * state directory is made traversable (0711) but records and logs stay root's (0700; a replica writes its log
 * through the descriptor it inherits), and ensure() refuses, naming the directory, when that user could not
 * read the model directory or the ferry CLI. Replicas share that one user: they are kept from Ferry's state,
 * not from each other (docs/security.md).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  watch as watchFile,
  writeFileSync,
} from 'node:fs';
import {
  chmod,
  chown,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../core/errors.ts';
import { SECRETS_DIR_ENV, unixUrl } from '../core/replica.ts';
import { singleFlight } from './single-flight.ts';
import { replicaSocketDir, SOCKET_FILE, writeSecretFiles } from './socket-dir.ts';
import {
  type ReplicaLogLine,
  type ReplicaSpec,
  type ReplicaState,
  type ReplicaStatus,
  type Runtime,
  type RuntimeEvent,
  type RuntimeWatch,
  SIGNAL_EXIT_BASE,
} from './types.ts';
import { REPLICA_NAME_RE, validateReplicaSpec } from './validate.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ProcessRuntimeOptions {
  /** Where replica records and logs live; the same directory after a restart adopts the replicas. */
  stateDir: string;
  /** The ferry CLI entry point (default <repo>/bin/ferry.js). */
  ferryBin?: string;
  /** Node binary (default the one running us). */
  nodePath?: string;
  /** A log file larger than this is cut (default 5 MB); its last maxLogBytes/5 are kept in `<name>.log.1`. */
  maxLogBytes?: number;
  /**
   * How often watch() reads the records for replicas it cannot hear exit (adopted, or started by another
   * instance), and followLogs() checks the replica still runs besides file notifications (default 1000 ms).
   */
  watchPollMs?: number;
  /**
   * Run replicas as this user and group (spawn's uid/gid; supplementary groups are dropped). Default: uid/gid
   * 65532 when Ferry runs as root, else null (replicas run as Ferry's own user). Only root can switch users.
   */
  replicaUser?: { uid: number; gid: number } | null;
}

/** The unprivileged user of replicas when Ferry runs as root: the `nonroot` uid of Ferry's images. */
export const REPLICA_UID = 65532;

/** What `<stateDir>/logs/<name>.log.cut` holds: the last cut kept bytes [from, to) of the old file in `.log.1`. */
interface LogCut {
  cuts: number;
  from: number;
  to: number;
}

/** Logs being cut right now, by path (across instances in this process): one cut at a time per file. */
const cutting = new Set<string>();

/** What `<stateDir>/replicas/<name>.json` holds. */
interface ReplicaRecord {
  id: string;
  pid: number;
  name: string;
  labels: Record<string, string>;
  /** The socket it listens on. */
  socket?: string;
  /** A replica recorded before sockets: it listens on 127.0.0.1:<port>. */
  port?: number;
  startedAt: number;
  /** The exact argv, compared with /proc/<pid>/cmdline. */
  argv: string[];
  /** Written by the instance that started the process when it sees it exit. */
  exitCode?: number;
}

export class ProcessRuntime implements Runtime {
  readonly kind = 'process' as const;
  readonly manages = 'replicas' as const;
  readonly stateDir: string;
  private readonly ferryBin: string;
  private readonly nodePath: string;
  private readonly maxLogBytes: number;
  /** Children this instance started, by replica id: their exit status comes from the handle. */
  private readonly children = new Map<string, { child: ChildProcess; exit?: number }>();
  private readonly watchPollMs: number;
  private readonly replicaUser: { uid: number; gid: number } | null;
  /** Open watch() subscriptions and followLogs() loops, told at once about what this instance sees. */
  private readonly watchers = new Set<RecordWatcher>();
  private readonly wakers = new Set<() => void>();

  constructor(opts: ProcessRuntimeOptions) {
    this.stateDir = resolve(opts.stateDir);
    this.ferryBin = opts.ferryBin ?? join(REPO_ROOT, 'bin', 'ferry.js');
    this.nodePath = opts.nodePath ?? process.execPath;
    this.maxLogBytes = opts.maxLogBytes ?? 5 * 1024 * 1024;
    this.watchPollMs = opts.watchPollMs ?? 1000;
    this.replicaUser =
      opts.replicaUser !== undefined
        ? opts.replicaUser
        : process.getuid?.() === 0
          ? { uid: REPLICA_UID, gid: REPLICA_UID }
          : null;
  }

  private get socketRoot(): string {
    return join(this.stateDir, 'sockets');
  }

  private recordPath(name: string): string {
    return join(this.stateDir, 'replicas', `${name}.json`);
  }

  logPath(name: string): string {
    return join(this.stateDir, 'logs', `${name}.log`);
  }

  /** Idempotent; two concurrent calls for one name start one replica. */
  readonly ensure = singleFlight(
    (spec: ReplicaSpec) => spec.name,
    (spec: ReplicaSpec) => this.ensureOnce(spec),
  );

  private async ensureOnce(spec: ReplicaSpec): Promise<ReplicaStatus> {
    validateReplicaSpec(spec);
    const modelDir = spec.modelDir;
    if (modelDir === undefined) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `Replica '${spec.name}': the process runtime needs modelDir (a directory with ferry.yaml).`,
      );
    }
    if (!existsSync(join(modelDir, 'ferry.yaml'))) {
      throw new FerryError(
        'FERRY_FILE_NOT_FOUND',
        `Replica '${spec.name}': no ferry.yaml in modelDir '${modelDir}'.`,
      );
    }
    const existing = await this.readRecord(spec.name);
    if (existing) {
      await this.settle(existing);
      const status = this.statusOf(existing);
      if (status.state === 'starting') return status;
      // A stopped replica of that name: replaced by a new process.
      await this.forget(existing, false);
    }
    const user = this.replicaUser;
    const socketDir = replicaSocketDir(this.socketRoot, spec.name);
    const socket = join(socketDir, SOCKET_FILE);
    await mkdir(join(this.stateDir, 'replicas'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.stateDir, 'logs'), { recursive: true, mode: 0o700 });
    await mkdir(this.socketRoot, { recursive: true, mode: 0o700 });
    if (user !== null) {
      // The replica's user must reach its socket directory (traverse only: nothing here is listable).
      await chmod(this.stateDir, 0o711);
      await chmod(this.socketRoot, 0o711);
      for (const [path, need] of [
        [resolve(modelDir), 'rx'],
        [this.ferryBin, 'r'],
        [REPO_ROOT, 'x'],
        [this.socketRoot, 'x'],
      ] as const) {
        const blocked = blockedFor(path, need, user);
        if (blocked !== null)
          throw new FerryError(
            'FERRY_BAD_REQUEST',
            `Replica '${spec.name}': its user (uid ${user.uid}) cannot ${need === 'x' ? 'reach' : 'read'} ${path}: ${blocked}.`,
            {
              hint: `Ferry runs as root, so replicas run as uid ${user.uid}. Give others search permission on that directory (chmod o+x), or use a state directory (FERRY_HOME) such as /var/lib/ferry rather than one under /root.`,
            },
          );
      }
    }
    await rm(socketDir, { recursive: true, force: true });
    await mkdir(socketDir, { mode: 0o700 });
    const secretsDir = await writeSecretFiles(socketDir, spec.secrets, user);
    if (user !== null) await chown(socketDir, user.uid, user.gid);
    const argv = [this.nodePath, this.ferryBin, 'serve', resolve(modelDir), '--socket', socket];
    const log = await open(this.logPath(spec.name), 'a');
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        detached: true,
        stdio: ['ignore', log.fd, log.fd],
        cwd: REPO_ROOT,
        env: {
          ...childEnv(spec, user === null ? undefined : socketDir),
          ...(secretsDir === undefined ? {} : { [SECRETS_DIR_ENV]: secretsDir }),
        },
        ...(user === null ? {} : { uid: user.uid, gid: user.gid }),
      });
    } finally {
      await log.close();
    }
    const pid = child.pid;
    if (pid === undefined) {
      const error = await new Promise<Error>((res) => child.once('error', res));
      throw new FerryError(
        'FERRY_INTERNAL',
        `Replica '${spec.name}': could not start ${argv[0]}: ${error.message}`,
      );
    }
    child.on('error', () => undefined);
    child.unref();
    const record: ReplicaRecord = {
      id: `${spec.name}@${pid}`,
      pid,
      name: spec.name,
      labels: { ...spec.labels },
      socket,
      startedAt: Date.now(),
      argv,
    };
    const entry: { child: ChildProcess; exit?: number } = { child };
    this.children.set(record.id, entry);
    child.once('exit', (code, signal) => {
      entry.exit = exitCodeOf(code, signal);
      // Later instances (after a restart) read it from the record. Synchronous, so that anyone who saw the
      // exit event also sees the record say so; best effort (the record may be gone: removed).
      try {
        const r = parseRecord(readFileSync(this.recordPath(record.name), 'utf8'));
        if (r?.id === record.id)
          writeRecordSync(this.recordPath(record.name), { ...r, exitCode: entry.exit });
      } catch {
        // removed meanwhile
      }
      this.emit('exited', { ...this.statusOf(record), ...exited(entry.exit) });
    });
    await this.writeRecord(record);
    const status = this.statusOf(record);
    this.emit('started', status);
    return status;
  }

  async list(labels: Record<string, string>): Promise<ReplicaStatus[]> {
    const records = await this.readAll();
    const out: ReplicaStatus[] = [];
    for (const r of records) {
      if (!Object.entries(labels).every(([k, v]) => r.labels[k] === v)) continue;
      await this.settle(r);
      out.push(this.statusOf(r));
      await this.boundLog(r.name).catch(() => undefined);
    }
    return out.sort((a, b) => a.startedAt - b.startedAt || a.name.localeCompare(b.name));
  }

  async logs(id: string, opts: { tail?: number } = {}): Promise<ReplicaLogLine[]> {
    const name = nameOf(id);
    if (name === undefined) return [];
    const record = await this.readRecord(name);
    if (record === undefined || record.id !== id) {
      throw new FerryError('FERRY_MODEL_NOT_FOUND', `No replica '${id}' in ${this.stateDir}.`);
    }
    await this.boundLog(name).catch(() => undefined);
    const path = this.logPath(name);
    const parts = await Promise.all([`${path}.1`, path].map((p) => readFile(p, 'utf8').catch(() => '')));
    const lines = parts.join('').split('\n');
    if (lines.at(-1) === '') lines.pop();
    const kept = opts.tail !== undefined ? lines.slice(Math.max(0, lines.length - opts.tail)) : lines;
    return kept.map((line) => ({ stream: 'stdout' as const, line }));
  }

  watch(labels: Record<string, string>, listener: (event: RuntimeEvent) => void): RuntimeWatch {
    const watcher = new RecordWatcher(labels, listener, Date.now(), this.watchPollMs, () => this.snapshot());
    this.watchers.add(watcher);
    watcher.start();
    return {
      close: () => {
        watcher.close();
        this.watchers.delete(watcher);
      },
    };
  }

  /**
   * Where "from now on" is, taken at the call (synchronously: a line written right after the call is
   * not missed, even though iteration starts later). Unknown replica: FERRY_MODEL_NOT_FOUND on iteration.
   */
  followLogs(id: string, signal: AbortSignal): AsyncIterable<ReplicaLogLine> {
    const name = nameOf(id);
    const record = name === undefined ? undefined : readRecordSync(this.recordPath(name));
    if (name === undefined || record === undefined || record.id !== id) {
      return failing(new FerryError('FERRY_MODEL_NOT_FOUND', `No replica '${id}' in ${this.stateDir}.`));
    }
    const path = this.logPath(name);
    const cut = readCutSync(`${path}.cut`);
    let from: number;
    try {
      from = statSync(path).size;
    } catch (err) {
      return failing(
        new FerryError('FERRY_MODEL_NOT_FOUND', `Replica '${id}' has no log file ${path}.`, { cause: err }),
      );
    }
    return this.follow(id, name, from, cut, signal);
  }

  private async *follow(
    id: string,
    name: string,
    from: number,
    cutAtStart: LogCut,
    signal: AbortSignal,
  ): AsyncGenerator<ReplicaLogLine> {
    if (signal.aborted) return;
    const path = this.logPath(name);
    // Our own descriptor: reads go on after a cut (same file) and after remove() deletes the file.
    const fh = await open(path, 'r').catch(() => undefined);
    if (fh === undefined) return; // removed before iteration began
    let pos = from;
    let cut = cutAtStart;
    let partial: Buffer[] = [];
    const out: ReplicaLogLine[] = [];
    const take = (bytes: Buffer) => {
      let start = 0;
      let nl = bytes.indexOf(10);
      while (nl >= 0) {
        const piece = bytes.subarray(start, nl);
        const line = partial.length === 0 ? piece : Buffer.concat([...partial, piece]);
        partial = [];
        out.push({ stream: 'stdout', line: line.toString('utf8') });
        start = nl + 1;
        nl = bytes.indexOf(10, start);
      }
      if (start < bytes.length) partial.push(Buffer.from(bytes.subarray(start)));
    };
    /** Reads what was written since the last call, across a cut (see boundLog). */
    const readMore = async () => {
      const c = await this.readCut(name);
      if (c.cuts !== cut.cuts) {
        // boundLog wrote the cut record before truncating: wait for the truncation (it wakes us).
        if ((await fh.stat()).size >= c.to) return;
        const kept = await readFile(`${path}.1`).catch(() => Buffer.alloc(0));
        if (c.cuts === cut.cuts + 1 && pos >= c.from) {
          // Bytes [pos, to) of the old file we had not read yet are in `.log.1`.
          if (pos < c.to) take(kept.subarray(pos - c.from, c.to - c.from));
        } else {
          // More than one cut, or we were further behind than what was kept: lines were lost.
          partial = [];
          take(kept);
        }
        pos = 0;
        cut = c;
      }
      const size = (await fh.stat()).size;
      // Truncated after we read the cut record: the next round sees the new record.
      if (size < pos) return;
      const buf = Buffer.allocUnsafe(64 * 1024);
      while (pos < size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        take(buf.subarray(0, bytesRead));
      }
    };
    let dirty = true;
    let resume: (() => void) | null = null;
    const wake = () => {
      dirty = true;
      const r = resume;
      resume = null;
      r?.();
    };
    const changes = (() => {
      try {
        return watchFile(path, wake).on('error', () => undefined);
      } catch {
        return undefined; // the file is gone already: the timer and the record tell
      }
    })();
    const timer = setInterval(wake, this.watchPollMs);
    signal.addEventListener('abort', wake);
    this.wakers.add(wake);
    try {
      while (!signal.aborted) {
        dirty = false;
        // Stopped is decided before reading: a process that is gone has written everything it will.
        const record = await this.readRecord(name);
        const stopped = record === undefined || record.id !== id || !this.isAlive(record);
        await readMore();
        yield* out.splice(0);
        if (signal.aborted) return;
        if (stopped) {
          if (partial.length > 0) yield { stream: 'stdout', line: Buffer.concat(partial).toString('utf8') };
          return;
        }
        if (!dirty) await new Promise<void>((r) => (resume = r));
      }
    } finally {
      this.wakers.delete(wake);
      signal.removeEventListener('abort', wake);
      clearInterval(timer);
      changes?.close();
      await fh.close();
    }
  }

  async remove(id: string, graceMs = 10_000): Promise<void> {
    const name = nameOf(id);
    if (name === undefined) return;
    const record = await this.readRecord(name);
    if (record === undefined || record.id !== id) return;
    if (this.isAlive(record)) {
      signal(record.pid, 'SIGTERM');
      if (!(await this.waitDead(record, graceMs))) {
        // Still the same process (checked in waitDead): kill it and whatever it started in its group.
        if (this.isAlive(record)) {
          signal(-record.pid, 'SIGKILL');
          signal(record.pid, 'SIGKILL');
        }
        await this.waitDead(record, 5000);
      }
    }
    // A child of ours: its exit event (and 'exited' to watchers) comes before 'removed'.
    await this.settle(record);
    await this.forget(record, true);
  }

  /** The pid of a replica this runtime knows (for tests and diagnostics); undefined when unknown. */
  async pidOf(id: string): Promise<number | undefined> {
    const name = nameOf(id);
    const record = name === undefined ? undefined : await this.readRecord(name);
    return record?.id === id ? record.pid : undefined;
  }

  private statusOf(r: ReplicaRecord): ReplicaStatus {
    const base = {
      id: r.id,
      name: r.name,
      labels: { ...r.labels },
      startedAt: r.startedAt,
      url: r.socket !== undefined ? unixUrl(r.socket) : `http://127.0.0.1:${r.port}`,
      restarts: 0,
    };
    // A child of ours is running until its exit event says otherwise: between its death and that event its
    // pid is a zombie that /proc no longer describes, and its exit code is not known yet.
    const own = this.children.get(r.id);
    if (own !== undefined)
      return own.exit !== undefined ? { ...base, ...exited(own.exit) } : { ...base, state: 'starting' };
    if (this.isAlive(r)) return { ...base, state: 'starting' };
    if (r.exitCode !== undefined) return { ...base, ...exited(r.exitCode) };
    return { ...base, state: 'exited' };
  }

  /**
   * A child of ours that is gone but whose exit event has not arrived yet: wait for it (briefly), so its
   * exit code is known rather than reported as unknown.
   */
  private async settle(r: ReplicaRecord): Promise<void> {
    const own = this.children.get(r.id);
    if (own === undefined || own.exit !== undefined || this.isAlive(r)) return;
    await new Promise<void>((res) => {
      const timer = setTimeout(res, 2000);
      own.child.once('exit', () => {
        clearTimeout(timer);
        res();
      });
    });
  }

  /** The recorded process still runs: the pid exists and its command line is the recorded one. */
  private isAlive(r: ReplicaRecord): boolean {
    const own = this.children.get(r.id);
    if (own?.exit !== undefined) return false;
    try {
      const cmdline = readFileSyncSafe(`/proc/${r.pid}/cmdline`);
      if (cmdline === undefined) return false;
      const args = cmdline.split('\0');
      if (args.at(-1) === '') args.pop();
      return args.length === r.argv.length && args.every((a, i) => a === r.argv[i]);
    } catch {
      return false;
    }
  }

  private async waitDead(r: ReplicaRecord, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.isAlive(r)) {
      if (Date.now() >= deadline) return false;
      await new Promise((res) => setTimeout(res, 50));
    }
    return true;
  }

  private async forget(r: ReplicaRecord, withLogs: boolean): Promise<void> {
    const last = this.statusOf(r);
    this.children.delete(r.id);
    await rm(this.recordPath(r.name), { force: true });
    // Its process is gone: so is what its socket directory held (only a directory of ours, under socketRoot).
    if (r.socket !== undefined && dirname(dirname(r.socket)) === this.socketRoot)
      await rm(dirname(r.socket), { recursive: true, force: true });
    if (withLogs) {
      const path = this.logPath(r.name);
      await rm(path, { force: true });
      await rm(`${path}.1`, { force: true });
      await rm(`${path}.cut`, { force: true });
    }
    this.emit('removed', last);
  }

  /** Tells this instance's watchers (and wakes its log followers) at once. */
  private emit(type: RuntimeEvent['type'], replica: ReplicaStatus): void {
    for (const w of this.watchers) w.offer(type, replica);
    for (const wake of this.wakers) wake();
  }

  /** Every record with its status, for watchers. */
  private async snapshot(): Promise<ReplicaStatus[]> {
    const out: ReplicaStatus[] = [];
    for (const r of await this.readAll()) out.push(this.statusOf(r));
    return out;
  }

  /**
   * Keeps a log under maxLogBytes: its last fifth goes to `<name>.log.1`, `<name>.log.cut` records which
   * bytes of the old file those are, then the file is emptied (in that order: followLogs relies on it).
   * Output written between the last size check and the truncation is lost (copy-truncate's window).
   */
  private async boundLog(name: string): Promise<void> {
    const path = this.logPath(name);
    if (cutting.has(path)) return;
    cutting.add(path);
    const fh = await open(path, 'r').catch((err: unknown) => {
      cutting.delete(path);
      throw err;
    });
    try {
      let size = (await fh.stat()).size;
      if (size <= this.maxLogBytes) return;
      const keep = Math.floor(this.maxLogBytes / 5);
      let text = Buffer.alloc(0);
      // Copy up to the current end; again if the child wrote meanwhile (a few times at most).
      for (let attempt = 0; attempt < 3; attempt++) {
        const buf = Buffer.alloc(keep);
        const { bytesRead } = await fh.read(buf, 0, keep, size - keep);
        text = buf.subarray(0, bytesRead);
        const nl = text.indexOf(10);
        if (nl >= 0 && nl < text.length - 1) text = text.subarray(nl + 1); // start at a line boundary
        const now = (await fh.stat()).size;
        if (now === size) break;
        size = now;
      }
      const previous = await this.readCut(name);
      // Written, then checked: output that came while `.log.1` and the record were written is copied too (the
      // record is rewritten with the same cut number; a follower waits for the truncation either way), so what
      // can be lost shrinks to what comes between the last size check and the truncation.
      for (let attempt = 0; attempt < 5; attempt++) {
        await writeFile(`${path}.1`, text);
        const cut: LogCut = { cuts: previous.cuts + 1, from: size - text.length, to: size };
        const tmp = `${path}.cut.${randomBytes(4).toString('hex')}.tmp`;
        await writeFile(tmp, JSON.stringify(cut));
        await rename(tmp, `${path}.cut`);
        const now = (await fh.stat()).size;
        if (now === size) break;
        const more = Buffer.alloc(now - size);
        const { bytesRead } = await fh.read(more, 0, more.length, size);
        text = Buffer.concat([text, more.subarray(0, bytesRead)]);
        size += bytesRead;
      }
      // The child appends (O_APPEND), so after truncation its writes continue at the new end.
      await truncate(path, 0);
    } finally {
      cutting.delete(path);
      await fh.close();
    }
  }

  private async readCut(name: string): Promise<LogCut> {
    return parseCut(await readFile(`${this.logPath(name)}.cut`, 'utf8').catch(() => ''));
  }

  private async readRecord(name: string): Promise<ReplicaRecord | undefined> {
    try {
      return parseRecord(await readFile(this.recordPath(name), 'utf8'));
    } catch {
      return undefined;
    }
  }

  private async readAll(): Promise<ReplicaRecord[]> {
    let files: string[];
    try {
      files = await readdir(join(this.stateDir, 'replicas'));
    } catch {
      return [];
    }
    const records = await Promise.all(
      files.filter((f) => f.endsWith('.json')).map((f) => this.readRecord(f.slice(0, -5))),
    );
    return records.filter((r): r is ReplicaRecord => r !== undefined);
  }

  private async writeRecord(r: ReplicaRecord): Promise<void> {
    const path = this.recordPath(r.name);
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(r, null, 2)}\n`);
    await rename(tmp, path);
  }
}

/**
 * One watch() subscription of the process runtime. Events come from two places: at once from the instance
 * (its children's exit, ensure, remove), and from polling the records (replicas started, exited or removed
 * by another instance, or adopted ones whose exit no one hears). Per replica, events only move forward
 * (started -> exited -> removed), so the two sources never report one thing twice or out of order.
 * Replicas already there when watching began are a baseline, reported only when they change afterwards
 * (one that started before and exited meanwhile, and is not a child of this instance, is not reported).
 */
class RecordWatcher {
  private readonly seen = new Map<string, { phase: number; status: ReplicaStatus; since: number }>();
  private polls = 0;
  private baseline = true;
  private readonly noCodeYet = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly labels: Record<string, string>,
    private readonly listener: (event: RuntimeEvent) => void,
    private readonly since: number,
    private readonly pollMs: number,
    private readonly snapshot: () => Promise<ReplicaStatus[]>,
  ) {}

  start(): void {
    void this.poll();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  offer(type: RuntimeEvent['type'], replica: ReplicaStatus): void {
    if (this.closed || !hasLabels(replica.labels, this.labels)) return;
    const phase = PHASE[type];
    const prev = this.seen.get(replica.id);
    if (prev !== undefined && prev.phase >= phase) return;
    this.seen.set(replica.id, { phase, status: replica, since: this.polls });
    try {
      this.listener({ type, replica });
    } catch {
      // a listener's failure is its own
    }
  }

  private async poll(): Promise<void> {
    const n = ++this.polls;
    try {
      const list = (await this.snapshot()).filter((r) => hasLabels(r.labels, this.labels));
      if (this.closed) return;
      const present = new Set(list.map((r) => r.id));
      for (const r of list) {
        const running = r.state === 'starting' || r.state === 'ready';
        if (this.baseline && r.startedAt < this.since && !this.seen.has(r.id)) {
          this.seen.set(r.id, { phase: running ? PHASE.started : PHASE.exited, status: r, since: n });
          continue;
        }
        this.offer('started', running ? r : { ...r, state: 'starting', exitCode: undefined });
        if (running) continue;
        // Dead without an exit code: its owner may be about to record it; wait one more poll for it.
        if (r.exitCode === undefined && !this.noCodeYet.has(r.id)) {
          this.noCodeYet.add(r.id);
          continue;
        }
        this.noCodeYet.delete(r.id);
        this.offer('exited', r);
      }
      // Known before this poll began and no record now: removed. Tombstones of removed ones are dropped
      // once a later poll no longer sees them.
      for (const [id, entry] of this.seen) {
        if (present.has(id) || entry.since >= n) continue;
        this.noCodeYet.delete(id);
        if (entry.phase < PHASE.removed) this.offer('removed', entry.status);
        else this.seen.delete(id);
      }
      this.baseline = false;
    } catch {
      // unreadable state directory: try again next time
    } finally {
      if (!this.closed) this.timer = setTimeout(() => void this.poll(), this.pollMs);
    }
  }
}

function parseCut(text: string): LogCut {
  try {
    const c = JSON.parse(text) as Partial<LogCut>;
    if (Number.isInteger(c.cuts) && Number.isInteger(c.from) && Number.isInteger(c.to)) return c as LogCut;
  } catch {
    // no cut yet
  }
  return { cuts: 0, from: 0, to: 0 };
}

function readCutSync(path: string): LogCut {
  return parseCut(readFileSyncSafe(path) ?? '');
}

function readRecordSync(path: string): ReplicaRecord | undefined {
  try {
    return parseRecord(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** An iterable whose iteration rejects with err (errors of followLogs surface where it is consumed). */
function failing(err: Error): AsyncIterable<never> {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
  };
}

const PHASE = { started: 1, exited: 2, removed: 3 } as const;

function hasLabels(have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v);
}

function writeRecordSync(path: string, r: ReplicaRecord): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(r, null, 2)}\n`);
  renameSync(tmp, path);
}

/**
 * The child's environment: no control-plane secrets, only what node needs plus the replica's env. A replica
 * running as another user gets its own directory as HOME (Ferry's is not its to read).
 */
function childEnv(spec: ReplicaSpec, home: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'FERRY_LOG_LEVEL']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  if (home !== undefined) env.HOME = home;
  return { ...env, ...spec.env };
}

/**
 * Why `user` could not reach (`x`) or read (`r`, `rx`) path, judged by mode bits along the way (owner, group,
 * others; ACLs and supplementary groups are not looked at), or null when it can.
 */
function blockedFor(path: string, need: 'r' | 'x' | 'rx', user: { uid: number; gid: number }): string | null {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return 'it does not exist';
  }
  const parts = real.split('/').filter(Boolean);
  let at = '/';
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) at = join(at, parts[i - 1]!);
    const last = i === parts.length;
    const st = statSync(at);
    const shift = st.uid === user.uid ? 6 : st.gid === user.gid ? 3 : 0;
    const bits = (st.mode >> shift) & 0o7;
    const wants = last ? need : 'x';
    if (wants.includes('x') && (st.isDirectory() || !last) && (bits & 0o1) === 0)
      return `${at} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}) does not let it through`;
    if (wants.includes('r') && (bits & 0o4) === 0)
      return `${at} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}) is not readable by it`;
  }
  return null;
}

function nameOf(id: string): string | undefined {
  const at = id.lastIndexOf('@');
  const name = at > 0 ? id.slice(0, at) : '';
  return REPLICA_NAME_RE.test(name) ? name : undefined;
}

function parseRecord(text: string): ReplicaRecord | undefined {
  const r = JSON.parse(text) as Partial<ReplicaRecord>;
  if (
    typeof r.id !== 'string' ||
    typeof r.name !== 'string' ||
    !Number.isInteger(r.pid) ||
    (r.pid ?? 0) <= 1 ||
    (typeof r.socket !== 'string' && !Number.isInteger(r.port)) ||
    !Array.isArray(r.argv) ||
    typeof r.labels !== 'object' ||
    r.labels === null
  ) {
    return undefined;
  }
  return r as ReplicaRecord;
}

function exitCodeOf(code: number | null, sig: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = sig === null ? undefined : (osConstants.signals as Record<string, number>)[sig];
  return SIGNAL_EXIT_BASE + (n ?? 0);
}

function exited(code: number): { state: ReplicaState; exitCode: number } {
  return { state: code === 0 ? 'exited' : 'failed', exitCode: code };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // ESRCH: already gone.
  }
}

function readFileSyncSafe(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
