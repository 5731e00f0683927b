/**
 * Engine over the Docker Engine API (dockerode). DOCKER_HOST (unix:// or tcp://) and DOCKER_CERT_PATH /
 * DOCKER_TLS_VERIFY are honoured by dockerode's default constructor; otherwise /var/run/docker.sock.
 */
import { PassThrough, Readable } from 'node:stream';
import Docker from 'dockerode';
import { type ErrorCode, FerryError, isFerryError } from '../../core/errors.ts';
import type {
  BuildEvent,
  BuildOptions,
  ContainerEvent,
  ContainerEventOptions,
  ContainerLogLine,
  ContainerLogOptions,
  ContainerState,
  ContainerSummary,
  Engine,
  EngineInfo,
  ImageInfo,
  PullOptions,
  RunOptions,
  WaitReadyOptions,
} from './types.ts';

/** Socket and TCP errors that mean "no engine there", not "the engine said no". */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
]);

/**
 * Code for failures the engine reports (a load, run or build it refused). The catalogue has no
 * engine-specific code yet; FERRY_INTERNAL is the closest (see the report: FERRY_ENGINE_FAILED wished).
 */
const ENGINE_FAILED: ErrorCode = 'FERRY_INTERNAL';

const DEFAULT_TMPFS = { '/tmp': 'rw,nosuid,nodev,size=64m' };
/** What the engine keeps of a container's output: json-file, rotated, so a chatty replica cannot fill the disk. */
const DEFAULT_LOG_LIMIT = { maxBytes: 10 * 1024 * 1024, maxFiles: 3 };
const READY_PATH = '/v2/health/ready';

interface DockerodeError extends Error {
  code?: string;
  statusCode?: number;
  reason?: string;
  json?: { message?: string } | string | null;
}

function engineMessage(err: DockerodeError): string {
  const json = err.json;
  if (json && typeof json === 'object' && typeof json.message === 'string') return json.message;
  if (typeof json === 'string' && json.trim() !== '') return json.trim();
  return err.message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The non-empty, trimmed text lines of a stream (a last line without newline included). */
async function* textLines(stream: NodeJS.ReadableStream): AsyncGenerator<string> {
  let pending = '';
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line !== '') yield line;
      nl = pending.indexOf('\n');
    }
  }
  const rest = pending.trim();
  if (rest !== '') yield rest;
}

/** Splits Docker's JSON-lines progress streams into objects. */
async function* jsonLines(stream: NodeJS.ReadableStream): AsyncGenerator<Record<string, unknown>> {
  for await (const line of textLines(stream)) yield parseLine(line);
}

function parseLine(line: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object'
      ? (value as Record<string, unknown>)
      : { stream: line };
  } catch {
    return { stream: line };
  }
}

function streamError(message: Record<string, unknown>): string | undefined {
  const detail = message.errorDetail as { message?: string } | undefined;
  if (typeof detail?.message === 'string') return detail.message;
  return typeof message.error === 'string' ? message.error : undefined;
}

/** Docker multiplexes stdout/stderr of a non-TTY container in frames: [stream, 0, 0, 0, size BE32]. */
function demuxBuffer(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const size = buf.readUInt32BE(offset + 4);
    parts.push(buf.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return parts.length === 0 ? buf : Buffer.concat(parts);
}

/** An engine timestamp ("seconds.nanoseconds") for `since`. */
export function engineTime(ms: number): string {
  const whole = Math.floor(ms);
  const seconds = Math.floor(whole / 1000);
  const nanos = (whole - seconds * 1000) * 1_000_000 + Math.round((ms - whole) * 1_000_000);
  return `${seconds}.${String(Math.min(nanos, 999_999_999)).padStart(9, '0')}`;
}

/**
 * Lines of a multiplexed (non-TTY) log stream: frames [stream, 0, 0, 0, size BE32] + payload, split into
 * lines per stream (a line may span frames). Bytes are decoded per whole line, so UTF-8 is never cut.
 */
export async function* demuxLines(
  chunks: AsyncIterable<Buffer | string> | Iterable<Buffer>,
): AsyncGenerator<ContainerLogLine> {
  let pending: Buffer = Buffer.alloc(0);
  const partial: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
  const out: ContainerLogLine[] = [];
  const take = (stream: 'stdout' | 'stderr', payload: Buffer) => {
    let start = 0;
    let nl = payload.indexOf(10, start);
    while (nl >= 0) {
      const parts = partial[stream];
      const piece = payload.subarray(start, nl);
      const bytes = parts.length === 0 ? piece : Buffer.concat([...parts, piece]);
      partial[stream] = [];
      out.push({ stream, line: bytes.toString('utf8').replace(/\r$/, '') });
      start = nl + 1;
      nl = payload.indexOf(10, start);
    }
    if (start < payload.length) partial[stream].push(Buffer.from(payload.subarray(start)));
  };
  for await (const chunk of chunks) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    pending = pending.length === 0 ? buf : Buffer.concat([pending, buf]);
    let offset = 0;
    while (offset + 8 <= pending.length) {
      const size = pending.readUInt32BE(offset + 4);
      if (offset + 8 + size > pending.length) break;
      take(pending[offset] === 2 ? 'stderr' : 'stdout', pending.subarray(offset + 8, offset + 8 + size));
      offset += 8 + size;
    }
    pending = pending.subarray(offset);
    yield* out.splice(0);
  }
  for (const stream of ['stdout', 'stderr'] as const) {
    if (partial[stream].length > 0)
      out.push({ stream, line: Buffer.concat(partial[stream]).toString('utf8') });
  }
  yield* out;
}

function toBody(input: Readable | Uint8Array): Readable | Buffer {
  if (input instanceof Readable) return input;
  return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

function isRootUser(user: string | undefined): boolean {
  if (user === undefined || user.trim() === '') return true;
  const name = user.split(':')[0]!.trim();
  return name === '0' || name === 'root';
}

export class DockerEngine implements Engine {
  readonly docker: Docker;

  constructor(docker: Docker = new Docker()) {
    this.docker = docker;
  }

  /** Where the engine is, for messages ("unix:///var/run/docker.sock", "tcp://host:2375"). */
  get address(): string {
    const modem = this.docker.modem as { socketPath?: string; host?: string; port?: number | string };
    if (modem.socketPath) return `unix://${modem.socketPath}`;
    return `tcp://${modem.host ?? 'localhost'}:${modem.port ?? 2375}`;
  }

  /** Turns a dockerode failure into a FerryError naming the operation and its subject. */
  private fail(err: unknown, operation: string): FerryError {
    if (isFerryError(err)) return err;
    const e = (err instanceof Error ? err : new Error(String(err))) as DockerodeError;
    if (e.code !== undefined && UNREACHABLE.has(e.code)) {
      return new FerryError(
        'FERRY_CONNECTION_FAILED',
        `Cannot reach the Docker engine at ${this.address} to ${operation} (${e.code}).`,
        {
          hint: 'Start the engine (as root: `node scripts/ensure-docker.mjs`, or `dockerd &`), or set DOCKER_HOST to one that runs.',
          cause: err,
        },
      );
    }
    const message = engineMessage(e);
    if (e.statusCode === 404) {
      return new FerryError('FERRY_FILE_NOT_FOUND', `Cannot ${operation}: ${message}.`, {
        cause: err,
        details: { engine: this.address, status: 404 },
      });
    }
    return new FerryError(ENGINE_FAILED, `Docker engine failed to ${operation}: ${message}`, {
      cause: err,
      details: { engine: this.address, status: e.statusCode },
    });
  }

  async ping(): Promise<EngineInfo> {
    try {
      const v = await this.docker.version();
      return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
    } catch (err) {
      throw this.fail(err, 'ask its version');
    }
  }

  async loadImage(tar: Readable | Uint8Array): Promise<string[]> {
    const loaded: string[] = [];
    try {
      const stream = await this.docker.loadImage(toBody(tar) as NodeJS.ReadableStream, { quiet: true });
      for await (const message of jsonLines(stream)) {
        const error = streamError(message);
        if (error !== undefined)
          throw new FerryError(ENGINE_FAILED, `Docker engine could not load the image: ${error}`);
        const text = typeof message.stream === 'string' ? message.stream.trim() : '';
        const m = /^Loaded image(?: ID)?: (.+)$/.exec(text);
        if (m) loaded.push(m[1]!);
      }
    } catch (err) {
      throw this.fail(err, 'load an image tarball');
    }
    return loaded;
  }

  async inspectImage(ref: string): Promise<ImageInfo | null> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return {
        id: info.Id,
        size: info.Size,
        repoTags: info.RepoTags ?? [],
        config: info.Config as ImageInfo['config'],
      };
    } catch (err) {
      if ((err as DockerodeError).statusCode === 404) return null;
      throw this.fail(err, `inspect image '${ref}'`);
    }
  }

  async pullImage(ref: string, opts: PullOptions = {}): Promise<void> {
    const auth = opts.auth;
    const authconfig =
      auth === undefined
        ? undefined
        : 'token' in auth
          ? { registrytoken: auth.token }
          : { username: auth.username, password: auth.password, serveraddress: ref.split('/')[0] };
    const seen = new Map<string, string>();
    try {
      const stream = await this.docker.pull(ref, authconfig ? { authconfig } : {});
      for await (const message of jsonLines(stream)) {
        const error = streamError(message);
        if (error !== undefined)
          throw new FerryError(ENGINE_FAILED, `Docker engine could not pull ${ref}: ${error}`);
        const id = typeof message.id === 'string' ? message.id : '';
        const status = typeof message.status === 'string' ? message.status : '';
        const detail = message.progressDetail as { current?: number; total?: number } | undefined;
        const amount =
          detail?.current !== undefined && detail.total !== undefined
            ? ` ${(detail.current / 1e6).toFixed(1)} MB / ${(detail.total / 1e6).toFixed(1)} MB`
            : '';
        // One line per layer state, not per progress tick (a tick a few hundred kB apart is noise).
        if (status === '' || seen.get(id) === status) continue;
        seen.set(id, status);
        opts.onProgress?.(`${id ? `${id}: ` : ''}${status}${amount}`);
      }
    } catch (err) {
      if (err instanceof FerryError) throw err;
      throw this.fail(err, `pull ${ref}`);
    }
  }

  async removeImage(ref: string, force = false): Promise<boolean> {
    try {
      await this.docker.getImage(ref).remove({ force });
      return true;
    } catch (err) {
      if ((err as DockerodeError).statusCode === 404) return false;
      throw this.fail(err, `remove image '${ref}'`);
    }
  }

  async runContainer(opts: RunOptions): Promise<{ id: string }> {
    const what = opts.name ? `container '${opts.name}' from image '${opts.image}'` : `image '${opts.image}'`;
    const image = await this.inspectImage(opts.image);
    if (image === null) {
      throw new FerryError(
        'FERRY_FILE_NOT_FOUND',
        `Cannot run ${what}: the engine has no image '${opts.image}'.`,
        {
          hint: 'Build it first (`ferry build`) or load it (`docker load`).',
        },
      );
    }
    const user = opts.user ?? image.config.User;
    if (opts.user === undefined && isRootUser(user)) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `Refusing to run ${what} as root: the image sets no non-root USER (it has '${user ?? ''}').`,
        {
          hint: 'Build the image with a non-root user (ferry images run as 65532), or pass a user explicitly.',
        },
      );
    }
    const env = { ...opts.env };
    if (opts.hostPort !== undefined) {
      env.FERRY_HOST = '127.0.0.1';
      env.FERRY_PORT = String(opts.hostPort);
    }
    const memory = opts.memoryBytes;
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        name: opts.name,
        Image: opts.image,
        User: user,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Labels: opts.labels ?? {},
        Cmd: opts.cmd,
        Entrypoint: opts.entrypoint,
        HostConfig: {
          NetworkMode: typeof opts.network === 'string' ? opts.network : opts.network.bridge,
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          ReadonlyRootfs: true,
          Tmpfs: opts.tmpfs ?? DEFAULT_TMPFS,
          PidsLimit: opts.pidsLimit,
          NanoCpus: opts.cpus === undefined ? undefined : Math.round(opts.cpus * 1e9),
          Memory: memory,
          // No swap beyond the memory limit.
          MemorySwap: memory,
          Binds: [
            ...(opts.binds ?? []).map((b) => `${b.source}:${b.target}:ro`),
            ...(opts.writableBinds ?? []).map((b) => `${b.source}:${b.target}:rw`),
          ],
          // Crashed replicas are replaced by whoever runs them (the reconciler), not restarted in place.
          RestartPolicy: { Name: 'no' },
          LogConfig: {
            Type: 'json-file',
            Config: {
              'max-size': String((opts.logLimit ?? DEFAULT_LOG_LIMIT).maxBytes),
              'max-file': String((opts.logLimit ?? DEFAULT_LOG_LIMIT).maxFiles),
            },
          },
        },
      });
    } catch (err) {
      throw this.fail(err, `create ${what}`);
    }
    try {
      await container.start();
    } catch (err) {
      // Do not leave a created-but-dead container behind.
      await container.remove({ force: true }).catch(() => {});
      throw this.fail(err, `start ${what}`);
    }
    return { id: container.id };
  }

  async waitReady(baseUrl: string, timeoutMs: number, opts: WaitReadyOptions = {}): Promise<void> {
    const url = new URL(opts.path ?? READY_PATH, baseUrl).toString();
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (true) {
      if (opts.signal?.aborted) {
        throw new FerryError('FERRY_MODEL_NOT_READY', `Stopped waiting for ${url} to be ready (${last}).`);
      }
      try {
        const signal = opts.signal
          ? AbortSignal.any([opts.signal, AbortSignal.timeout(2000)])
          : AbortSignal.timeout(2000);
        const res = await fetch(url, { signal });
        await res.body?.cancel();
        if (res.status === 200) return;
        last = `HTTP ${res.status}`;
      } catch (err) {
        last = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      }
      if (opts.containerId !== undefined) {
        const state = await this.inspectContainer(opts.containerId);
        if (state === null || !state.running) {
          const tail = state === null ? '' : await this.logTail(opts.containerId, 30);
          const how =
            state === null
              ? 'is gone'
              : `exited with code ${state.exitCode}${state.oomKilled ? ' (killed: out of memory)' : ''}`;
          throw new FerryError(
            'FERRY_MODEL_LOAD_FAILED',
            `Container ${opts.containerId.slice(0, 12)} ${how} before ${url} was ready.${tail ? `\nLast log lines:\n${tail}` : ''}`,
            { details: { containerId: opts.containerId, exitCode: state?.exitCode, log: tail } },
          );
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new FerryError(
          'FERRY_MODEL_NOT_READY',
          `${url} was not ready within ${Math.round(timeoutMs / 1000)} s (last: ${last}).`,
          { hint: 'Look at the container logs; raise the timeout if the model is slow to load.' },
        );
      }
      await sleep(Math.min(250, left), opts.signal);
    }
  }

  /** The last lines of a container's output, as text ('' when there is none). */
  async logTail(id: string, lines: number): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.logs(id, { tail: lines })) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').trimEnd();
  }

  logs(id: string, opts: { follow?: boolean; tail?: number } = {}): Readable {
    const out = new PassThrough();
    const container = this.docker.getContainer(id);
    const common = {
      stdout: true,
      stderr: true,
      timestamps: false,
      tail: opts.tail ?? ('all' as unknown as number),
    };
    const onError = (err: unknown) =>
      out.destroy(this.fail(err, `read the logs of container ${id.slice(0, 12)}`));
    if (opts.follow) {
      container
        .logs({ ...common, follow: true })
        .then((stream) => {
          this.docker.modem.demuxStream(stream, out, out);
          stream.on('end', () => out.end());
          stream.on('error', onError);
          out.on('close', () => (stream as unknown as Readable).destroy?.());
        })
        .catch(onError);
    } else {
      container
        .logs({ ...common, follow: false })
        .then((buf) => out.end(demuxBuffer(buf)))
        .catch(onError);
    }
    return out;
  }

  async *logLines(id: string, opts: ContainerLogOptions = {}): AsyncGenerator<ContainerLogLine> {
    const { signal } = opts;
    if (signal?.aborted) return;
    const query: Record<string, unknown> = {
      stdout: true,
      stderr: true,
      timestamps: false,
      follow: opts.follow === true,
      tail: opts.tail ?? 'all',
    };
    if (opts.sinceMs !== undefined) query.since = engineTime(opts.sinceMs);
    if (signal) query.abortSignal = signal;
    const what = `read the logs of container ${id.slice(0, 12)}`;
    let body: NodeJS.ReadableStream | Buffer;
    try {
      body = (await this.docker
        .getContainer(id)
        .logs(query as unknown as Docker.ContainerLogsOptions & { follow: false })) as unknown as
        | NodeJS.ReadableStream
        | Buffer;
    } catch (err) {
      if (signal?.aborted) return;
      throw this.fail(err, what);
    }
    if (Buffer.isBuffer(body)) {
      yield* demuxLines([body]);
      return;
    }
    const stream = body as unknown as Readable;
    const onAbort = () => stream.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      yield* demuxLines(stream);
    } catch (err) {
      if (signal?.aborted) return;
      throw this.fail(err, what);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream.destroy();
    }
  }

  async *containerEvents(opts: ContainerEventOptions): AsyncGenerator<ContainerEvent> {
    const { signal } = opts;
    if (signal.aborted) return;
    const what = `watch containers labelled ${JSON.stringify(opts.labels)}`;
    let stream: Readable;
    try {
      stream = (await this.docker.getEvents({
        ...(opts.sinceMs !== undefined ? { since: engineTime(opts.sinceMs) as unknown as number } : {}),
        filters: {
          type: ['container'],
          event: ['start', 'die', 'destroy'],
          label: Object.entries(opts.labels).map(([k, v]) => `${k}=${v}`),
        },
        abortSignal: signal,
      } as Parameters<Docker['getEvents']>[0])) as unknown as Readable;
    } catch (err) {
      if (signal.aborted) return;
      throw this.fail(err, what);
    }
    const onAbort = () => stream.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const line of textLines(stream)) {
        const event = toContainerEvent(line);
        if (event !== undefined) yield event;
      }
    } catch (err) {
      if (signal.aborted) return;
      throw this.fail(err, what);
    } finally {
      signal.removeEventListener('abort', onAbort);
      stream.destroy();
    }
  }

  async inspectContainer(id: string): Promise<ContainerState | null> {
    try {
      const info = await this.docker.getContainer(id).inspect();
      return {
        running: info.State.Running,
        exitCode: info.State.ExitCode,
        status: info.State.Status,
        oomKilled: info.State.OOMKilled,
        restartCount: info.RestartCount ?? 0,
        labels: info.Config.Labels ?? {},
      };
    } catch (err) {
      if ((err as DockerodeError).statusCode === 404) return null;
      throw this.fail(err, `inspect container ${id.slice(0, 12)}`);
    }
  }

  async stop(id: string, timeoutS: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: timeoutS });
    } catch (err) {
      const status = (err as DockerodeError).statusCode;
      if (status === 304 || status === 404) return; // already stopped, or gone
      throw this.fail(err, `stop container ${id.slice(0, 12)}`);
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      const status = (err as DockerodeError).statusCode;
      // 404: gone; 409: removal already in progress.
      if (status === 404 || status === 409) return;
      throw this.fail(err, `remove container ${id.slice(0, 12)}`);
    }
  }

  async ensureNetwork(name: string, labels: Record<string, string>): Promise<void> {
    try {
      const found = await this.docker.listNetworks({ filters: { name: [name] } });
      if (found.some((n) => n.Name === name)) return;
      await this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Internal: false,
        Labels: labels,
        Options: {
          'com.docker.network.bridge.enable_icc': 'false',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
        },
      });
    } catch (err) {
      // 409: made meanwhile by another call.
      if ((err as DockerodeError).statusCode === 409) return;
      throw this.fail(err, `create network ${name}`);
    }
  }

  async removeNetwork(name: string): Promise<boolean> {
    try {
      await this.docker.getNetwork(name).remove();
      return true;
    } catch (err) {
      const status = (err as DockerodeError).statusCode;
      if (status === 404) return true;
      // 403 (older engines) / 409: containers are still attached.
      if (status === 403 || status === 409) return false;
      throw this.fail(err, `remove network ${name}`);
    }
  }

  async listByLabel(labels: Record<string, string>): Promise<ContainerSummary[]> {
    try {
      const list = await this.docker.listContainers({
        all: true,
        filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) },
      });
      return list.map((c) => ({
        id: c.Id,
        name: (c.Names[0] ?? '').replace(/^\//, ''),
        image: c.Image,
        state: c.State,
        labels: c.Labels ?? {},
      }));
    } catch (err) {
      throw this.fail(err, `list containers labelled ${JSON.stringify(labels)}`);
    }
  }

  async buildDockerfile(
    contextTar: Readable | Uint8Array,
    tag: string,
    opts: BuildOptions,
  ): Promise<{ id: string }> {
    const emit = (event: BuildEvent) => opts.onProgress?.(event);
    let step: { index: number; total: number; instruction: string } | undefined;
    let stepLog: string[] = [];
    let id: string | undefined;
    try {
      const stream = await this.docker.buildImage(toBody(contextTar) as NodeJS.ReadableStream, {
        t: tag,
        dockerfile: opts.dockerfile ?? 'Dockerfile',
        networkmode: opts.network,
        rm: true,
        forcerm: true,
      });
      for await (const message of jsonLines(stream)) {
        const error = streamError(message);
        if (error !== undefined) {
          const where = step ? `step ${step.index}/${step.total} (${step.instruction})` : 'the build';
          throw new FerryError(ENGINE_FAILED, `Dockerfile build of '${tag}' failed at ${where}: ${error}`, {
            details: { tag, step, log: stepLog },
            hint: stepLog.length > 0 ? `Output of that step:\n${stepLog.join('\n')}` : undefined,
          });
        }
        const aux = message.aux as { ID?: string } | undefined;
        if (typeof aux?.ID === 'string') id = aux.ID;
        if (typeof message.stream !== 'string') continue;
        for (const raw of message.stream.split('\n')) {
          const line = raw.trimEnd();
          if (line === '') continue;
          const m = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
          if (m) {
            step = { index: Number(m[1]), total: Number(m[2]), instruction: m[3]! };
            stepLog = [];
            emit({ type: 'step', ...step });
          } else {
            stepLog.push(line);
            emit({ type: 'log', line });
          }
          const built = /^Successfully built ([0-9a-f]+)$/.exec(line);
          if (built && id === undefined) id = built[1];
        }
      }
    } catch (err) {
      throw this.fail(err, `build '${tag}' from a Dockerfile`);
    }
    if (id === undefined) {
      const info = await this.inspectImage(tag);
      if (info === null)
        throw new FerryError(ENGINE_FAILED, `Dockerfile build of '${tag}' ended without an image.`);
      id = info.id;
    }
    return { id: id.startsWith('sha256:') ? id : `sha256:${id}` };
  }
}

/** One line of the engine's event stream as a ContainerEvent; undefined for anything else. */
function toContainerEvent(line: string): ContainerEvent | undefined {
  let raw: {
    Type?: string;
    Action?: string;
    status?: string;
    id?: string;
    Actor?: { ID?: string; Attributes?: Record<string, string> };
    time?: number;
  };
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  const action = raw.Action ?? raw.status;
  const id = raw.Actor?.ID ?? raw.id;
  if (raw.Type !== 'container' || typeof id !== 'string') return undefined;
  if (action !== 'start' && action !== 'die' && action !== 'destroy') return undefined;
  const { exitCode, ...labels } = raw.Actor?.Attributes ?? {};
  delete labels.name;
  delete labels.image;
  // timeNano does not fit a double: read its digits from the text.
  const nano = /"timeNano":\s*(\d+)/.exec(line)?.[1];
  const timeNano = nano !== undefined ? BigInt(nano) : BigInt(raw.time ?? 0) * 1_000_000_000n;
  return {
    id,
    action,
    labels,
    ...(action === 'die' && exitCode !== undefined && /^\d+$/.test(exitCode)
      ? { exitCode: Number(exitCode) }
      : {}),
    timeNano,
  };
}

/** The engine DOCKER_HOST (or the default socket) points at. */
export function createEngine(options?: Docker.DockerOptions): DockerEngine {
  return new DockerEngine(new Docker(options));
}
