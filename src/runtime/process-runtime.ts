/**
 * Runtime that runs each replica as a `ferry serve` child process on this machine, detached in its own
 * process group so it outlives the control plane. Every replica has a record in
 * `<stateDir>/replicas/<name>.json`; a new ProcessRuntime over the same stateDir (a control-plane restart)
 * adopts the still-running ones. A record's process counts as alive only while its pid exists and
 * /proc/<pid>/cmdline is still the recorded command line (pids are reused). Signals go to that pid only.
 * Output goes straight from the child to `<stateDir>/logs/<name>.log` (no pipe through us, so a restart of
 * the control plane does not break it); when it grows past maxLogBytes its last part is kept in
 * `<name>.log.1` and the file is truncated (checked on list() and logs()).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../core/errors.ts';
import { singleFlight } from './single-flight.ts';
import {
  type ReplicaSpec,
  type ReplicaState,
  type ReplicaStatus,
  type Runtime,
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
}

/** What `<stateDir>/replicas/<name>.json` holds. */
interface ReplicaRecord {
  id: string;
  pid: number;
  name: string;
  labels: Record<string, string>;
  port: number;
  startedAt: number;
  /** The exact argv, compared with /proc/<pid>/cmdline. */
  argv: string[];
  /** Written by the instance that started the process when it sees it exit. */
  exitCode?: number;
}

export class ProcessRuntime implements Runtime {
  readonly kind = 'process' as const;
  readonly stateDir: string;
  private readonly ferryBin: string;
  private readonly nodePath: string;
  private readonly maxLogBytes: number;
  /** Children this instance started, by replica id: their exit status comes from the handle. */
  private readonly children = new Map<string, { child: ChildProcess; exit?: number }>();

  constructor(opts: ProcessRuntimeOptions) {
    this.stateDir = resolve(opts.stateDir);
    this.ferryBin = opts.ferryBin ?? join(REPO_ROOT, 'bin', 'ferry.js');
    this.nodePath = opts.nodePath ?? process.execPath;
    this.maxLogBytes = opts.maxLogBytes ?? 5 * 1024 * 1024;
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
    await mkdir(join(this.stateDir, 'replicas'), { recursive: true });
    await mkdir(join(this.stateDir, 'logs'), { recursive: true });
    const argv = [
      this.nodePath,
      this.ferryBin,
      'serve',
      resolve(modelDir),
      '--host',
      '127.0.0.1',
      '--port',
      String(spec.port),
    ];
    const log = await open(this.logPath(spec.name), 'a');
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        detached: true,
        stdio: ['ignore', log.fd, log.fd],
        cwd: REPO_ROOT,
        env: childEnv(spec),
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
      port: spec.port,
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
    });
    await this.writeRecord(record);
    return this.statusOf(record);
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

  async logs(id: string, opts: { tail?: number } = {}): Promise<string[]> {
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
    return opts.tail !== undefined ? lines.slice(Math.max(0, lines.length - opts.tail)) : lines;
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
      url: `http://127.0.0.1:${r.port}`,
    };
    const own = this.children.get(r.id);
    if (own?.exit !== undefined) return { ...base, ...exited(own.exit) };
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
    this.children.delete(r.id);
    await rm(this.recordPath(r.name), { force: true });
    if (withLogs) {
      const path = this.logPath(r.name);
      await rm(path, { force: true });
      await rm(`${path}.1`, { force: true });
    }
  }

  /** Keeps a log under maxLogBytes: its last fifth goes to `<name>.log.1`, then the file is emptied. */
  private async boundLog(name: string): Promise<void> {
    const path = this.logPath(name);
    const size = (await stat(path)).size;
    if (size <= this.maxLogBytes) return;
    const keep = Math.floor(this.maxLogBytes / 5);
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(keep);
      const { bytesRead } = await fh.read(buf, 0, keep, size - keep);
      let text = buf.subarray(0, bytesRead);
      const nl = text.indexOf(10);
      if (nl >= 0 && nl < text.length - 1) text = text.subarray(nl + 1); // start at a line boundary
      await writeFile(`${path}.1`, text);
    } finally {
      await fh.close();
    }
    // The child appends (O_APPEND), so after truncation its writes continue at the new end.
    await truncate(path, 0);
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

function writeRecordSync(path: string, r: ReplicaRecord): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(r, null, 2)}\n`);
  renameSync(tmp, path);
}

/** The child's environment: no control-plane secrets, only what node needs plus the replica's env. */
function childEnv(spec: ReplicaSpec): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'FERRY_HOME', 'FERRY_LOG_LEVEL']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return { ...env, ...spec.env, FERRY_HOST: '127.0.0.1', FERRY_PORT: String(spec.port) };
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
    !Number.isInteger(r.port) ||
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
