/**
 * A small HTTP/1.1 client for the gateway's hop to the replicas: keep-alive connection pools per
 * replica, one request per connection at a time, a hand-written response parser (status line,
 * headers, then a body framed by content-length, chunked encoding or connection close).
 *
 * Why not node:http's ClientRequest + Agent: profiling the proxy (bench/gateway.ts) showed the
 * client side (ClientRequest, OutgoingMessage, Agent bookkeeping, a second HTTPParser and
 * IncomingMessage stream per response) costing about as much CPU as the server side. The replicas
 * are Ferry model servers speaking plain HTTP/1.1, so this client only needs what they send.
 *
 * A replica is reached over TCP (host, port) or over a unix socket (host is then the socket's absolute
 * path); both get the same keep-alive pools.
 *
 * Bytes are never decoded: the request head is written as latin1 (header values and the URL come
 * from Node's parser as latin1), body chunks go to the socket as they are, and response body
 * chunks are slices of the socket's buffers (chunked framing removed; the gateway's own server
 * frames them again for the client).
 */
import { connect, type Socket } from 'node:net';

export interface UpstreamListener {
  /** Status line and headers are in (1xx interim responses are skipped). */
  head(status: number, rawHeaders: string[]): void;
  /** A body chunk; `last`: the body is complete with it (end() follows at once). */
  data(chunk: Buffer, last: boolean): void;
  end(): void;
  /** The exchange failed; `beforeHead`: no response byte had arrived. */
  error(err: UpstreamError): void;
}

export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly beforeHead: boolean,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

export interface UpstreamRequest {
  /** First line + headers + the blank line, latin1. */
  head: string;
  /** Frame the body with chunked encoding (the client sent it so; no content-length known). */
  chunked: boolean;
  /** HEAD: the response has headers only. */
  headOnly: boolean;
}

const MAX_HEAD_BYTES = 64 * 1024;
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = '0\r\n\r\n';
/** Idle connections older than this are not reused (unless the replica announced a timeout). */
const DEFAULT_IDLE_MS = 4000;
/**
 * A TCP connection not made within this is given up (ETIMEDOUT, before any response byte: retried on another
 * replica). A replica's host that died answers nothing, and the kernel would retry its SYN for minutes; a live
 * one connects in well under a millisecond on a cluster's network.
 */
const CONNECT_TIMEOUT_MS = 2000;

enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

/** One keep-alive connection to a replica; carries one exchange at a time. */
export class UpstreamConnection {
  readonly socket: Socket;
  readonly #pool: UpstreamPool;
  /** Used before: a failure before the response may be an idle close racing our reuse. */
  reused = false;
  idleSince = 0;
  idleLimitMs = DEFAULT_IDLE_MS;
  #listener: UpstreamListener | null = null;
  #pendingHead: string | null = null;
  #chunked = false;
  #headOnly = false;
  #requestEnded = false;
  #state = State.Done;
  #headBuf: Buffer | null = null;
  #remaining = 0;
  #sizeLine = '';
  #keepAlive = true;
  #sawHead = false;
  #dead = false;
  #onDrain: (() => void) | null = null;

  constructor(pool: UpstreamPool, host: string, port: number) {
    this.#pool = pool;
    const socket = isSocketPath(host) ? connect({ path: host }) : connect({ host, port, noDelay: true });
    this.socket = socket;
    if (!isSocketPath(host)) {
      socket.setTimeout(CONNECT_TIMEOUT_MS, () => {
        if (socket.connecting)
          this.#onClose('ETIMEDOUT', `no connection to ${host}:${port} within ${CONNECT_TIMEOUT_MS} ms`);
      });
      socket.once('connect', () => socket.setTimeout(0));
    }
    socket.on('data', (b: Buffer) => this.#onData(b));
    socket.on('error', (e: NodeJS.ErrnoException) => this.#onClose(e.code ?? 'ECONNRESET', e.message));
    socket.on('close', () => this.#onClose('ECONNRESET', 'connection closed'));
    socket.on('drain', () => {
      const d = this.#onDrain;
      this.#onDrain = null;
      d?.();
    });
  }

  get dead(): boolean {
    return this.#dead;
  }

  /** Starts an exchange; the head is sent with the first body chunk (one write) or at end(). */
  start(req: UpstreamRequest, listener: UpstreamListener): void {
    this.#listener = listener;
    this.#pendingHead = req.head;
    this.#chunked = req.chunked;
    this.#headOnly = req.headOnly;
    this.#requestEnded = false;
    this.#state = State.Head;
    this.#headBuf = null;
    this.#keepAlive = true;
    this.#sawHead = false;
    this.#onDrain = null;
  }

  /** Writes one body chunk; false = wait for the `drain` callback. */
  write(chunk: Buffer, onDrain: () => void): boolean {
    if (this.#dead || chunk.length === 0) return true;
    const socket = this.socket;
    let ok: boolean;
    socket.cork();
    if (this.#pendingHead !== null) {
      socket.write(this.#pendingHead, 'latin1');
      this.#pendingHead = null;
    }
    if (this.#chunked) {
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write(CRLF);
    } else ok = socket.write(chunk);
    socket.uncork();
    if (!ok) this.#onDrain = onDrain;
    return ok;
  }

  end(): void {
    if (this.#dead || this.#requestEnded) return;
    this.#requestEnded = true;
    let out = '';
    if (this.#pendingHead !== null) {
      out = this.#pendingHead;
      this.#pendingHead = null;
    }
    if (this.#chunked) out += LAST_CHUNK;
    if (out !== '') this.socket.write(out, 'latin1');
    if (this.#state === State.Done) this.#finish();
  }

  /** Drops the exchange and the connection (client gone, timeout). */
  abort(): void {
    this.#listener = null;
    this.#kill();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  #kill(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.socket.destroy();
  }

  #fail(code: string, message: string): void {
    const l = this.#listener;
    this.#listener = null;
    this.#kill();
    l?.error(new UpstreamError(message, code, !this.#sawHead));
  }

  #onClose(code: string, message: string): void {
    if (this.#state === State.UntilClose && this.#listener !== null) {
      // The body was delimited by the close: that is its end.
      const l = this.#listener;
      this.#listener = null;
      this.#state = State.Done;
      this.#dead = true;
      l.end();
      return;
    }
    if (this.#listener !== null) this.#fail(code, message);
    else this.#kill();
  }

  #onData(buf: Buffer): void {
    let at = 0;
    while (at < buf.length) {
      const l = this.#listener;
      if (l === null) {
        // Bytes nobody asked for (after an abort, or a protocol error): the connection is unusable.
        this.#kill();
        return;
      }
      switch (this.#state) {
        case State.Head: {
          let data = buf;
          let from = at;
          if (this.#headBuf !== null) {
            data = Buffer.concat([this.#headBuf, buf.subarray(at)]);
            from = 0;
          }
          const end = data.indexOf('\r\n\r\n', from, 'latin1');
          if (end === -1) {
            if (data.length - from > MAX_HEAD_BYTES) {
              this.#fail('HPE_HEADER_OVERFLOW', 'response headers over 64 KiB');
              return;
            }
            this.#headBuf = data.subarray(from);
            return;
          }
          this.#headBuf = null;
          const consumed = this.#parseHead(data.toString('latin1', from, end));
          if (consumed === false) return;
          // Continue with the bytes after the head, in the original buffer's coordinates.
          const afterHead = end + 4;
          if (data === buf) at = afterHead;
          else {
            buf = data;
            at = afterHead;
          }
          break;
        }
        case State.Length: {
          const n = Math.min(this.#remaining, buf.length - at);
          const slice = buf.subarray(at, at + n);
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = State.Done;
          l.data(slice, this.#state === State.Done);
          if (this.#state === State.Done) this.#complete();
          break;
        }
        case State.ChunkSize: {
          const nl = buf.indexOf(10, at);
          if (nl === -1) {
            this.#sizeLine += buf.toString('latin1', at);
            if (this.#sizeLine.length > 1024)
              this.#fail('HPE_INVALID_CHUNK_SIZE', 'chunk size line too long');
            return;
          }
          const line = this.#sizeLine + buf.toString('latin1', at, nl);
          this.#sizeLine = '';
          at = nl + 1;
          const semi = line.indexOf(';');
          const size = Number.parseInt((semi === -1 ? line : line.slice(0, semi)).trim(), 16);
          if (!Number.isFinite(size) || size < 0) {
            this.#fail('HPE_INVALID_CHUNK_SIZE', 'bad chunk size');
            return;
          }
          if (size === 0) this.#state = State.Trailers;
          else {
            this.#remaining = size;
            this.#state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, buf.length - at);
          const slice = buf.subarray(at, at + n);
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) {
            this.#state = State.ChunkDataEnd;
            this.#remaining = 2;
          }
          l.data(slice, false);
          break;
        }
        case State.ChunkDataEnd: {
          // the CRLF after a chunk's data (may be split across reads)
          const n = Math.min(this.#remaining, buf.length - at);
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const nl = buf.indexOf(10, at);
          if (nl === -1) {
            this.#sizeLine += buf.toString('latin1', at);
            return;
          }
          const line = (this.#sizeLine + buf.toString('latin1', at, nl)).trim();
          this.#sizeLine = '';
          at = nl + 1;
          if (line === '') {
            this.#state = State.Done;
            this.#complete();
          }
          break;
        }
        case State.UntilClose: {
          const slice = at === 0 ? buf : buf.subarray(at);
          at = buf.length;
          l.data(slice, false);
          break;
        }
        case State.Done:
          // More bytes than the response framed: never pipelined, so the connection is broken.
          this.#keepAlive = false;
          this.#kill();
          return;
      }
    }
  }

  /** Parses the status line and headers; sets the body state. False when the connection failed. */
  #parseHead(text: string): boolean {
    const lines = text.split('\r\n');
    const statusLine = lines[0]!;
    const status = statusLine.startsWith('HTTP/1.') ? Number(statusLine.slice(9, 12)) : Number.NaN;
    if (!Number.isInteger(status) || status < 100) {
      this.#fail('HPE_INVALID_STATUS', `bad status line '${statusLine.slice(0, 40)}'`);
      return false;
    }
    if (statusLine.startsWith('HTTP/1.0')) this.#keepAlive = false;
    if (status < 200 && status !== 101) return true; // interim (100 Continue, 103): wait for the real one
    const raw: string[] = [];
    let length = -1;
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) {
        this.#fail('HPE_INVALID_HEADER_TOKEN', 'bad response header line');
        return false;
      }
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      raw.push(name, value);
      switch (name.length) {
        case 10:
          if (name.toLowerCase() === 'connection') {
            const v = value.toLowerCase();
            if (v.includes('close')) this.#keepAlive = false;
            else if (v.includes('keep-alive')) this.#keepAlive = true;
          } else if (name.toLowerCase() === 'keep-alive') this.#idleHint(value);
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') {
            const n = Number(value);
            if (!Number.isSafeInteger(n) || n < 0 || (length !== -1 && length !== n)) {
              this.#fail('HPE_INVALID_CONTENT_LENGTH', `bad content-length '${value}'`);
              return false;
            }
            length = n;
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding' && value.toLowerCase().includes('chunked'))
            chunked = true;
          break;
      }
    }
    this.#sawHead = true;
    const l = this.#listener!;
    if (this.#headOnly || status === 204 || status === 304 || (length === 0 && !chunked)) {
      this.#state = State.Done;
      l.head(status, raw);
      if (this.#listener === l) this.#complete();
      return true;
    }
    if (chunked) {
      this.#state = State.ChunkSize;
      this.#sizeLine = '';
    } else if (length > 0) {
      this.#state = State.Length;
      this.#remaining = length;
    } else {
      this.#state = State.UntilClose;
      this.#keepAlive = false;
    }
    l.head(status, raw);
    return true;
  }

  #idleHint(value: string): void {
    const m = /timeout=(\d+)/i.exec(value);
    if (m) this.idleLimitMs = Math.max(0, (Number(m[1]) - 1) * 1000);
  }

  /** The response is complete: tell the listener, then pool or close the connection. */
  #complete(): void {
    const l = this.#listener;
    this.#listener = null;
    if (this.#requestEnded) this.#finish();
    l?.end();
  }

  #finish(): void {
    if (this.#listener !== null || this.#state !== State.Done) return;
    if (this.#keepAlive && !this.#dead && this.#requestEnded) this.#pool.release(this);
    else this.#kill();
  }
}

/** Idle keep-alive connections to one replica, newest first. */
export class UpstreamPool {
  readonly host: string;
  readonly port: number;
  readonly #idle: UpstreamConnection[] = [];
  readonly #maxIdle: number;
  #closed = false;

  constructor(host: string, port: number, maxIdle = 256) {
    this.host = host;
    this.port = port;
    this.#maxIdle = maxIdle;
  }

  /** A connection for one exchange: the newest idle one still fresh, else a new one. */
  acquire(now: number): UpstreamConnection {
    const idle = this.#idle;
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (c.dead) continue;
      if (now - c.idleSince >= c.idleLimitMs) {
        c.abort();
        continue;
      }
      c.reused = true;
      return c;
    }
    return new UpstreamConnection(this, this.host, this.port);
  }

  release(c: UpstreamConnection): void {
    if (this.#closed || this.#idle.length >= this.#maxIdle) {
      c.abort();
      return;
    }
    c.idleSince = Date.now();
    this.#idle.push(c);
  }

  /** Closes idle connections past their limit. */
  sweep(now: number): void {
    const keep: UpstreamConnection[] = [];
    for (const c of this.#idle) {
      if (c.dead) continue;
      if (now - c.idleSince >= c.idleLimitMs) c.abort();
      else keep.push(c);
    }
    this.#idle.length = 0;
    this.#idle.push(...keep);
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#idle) c.abort();
    this.#idle.length = 0;
  }
}

/** A host that is an absolute path: a unix socket. */
function isSocketPath(host: string): boolean {
  return host.charCodeAt(0) === 47; // '/'
}

/**
 * Pools by key (the caller's `host:port` Host header) or, for a socket, by its path; swept every few seconds
 * so idle connections do not pile up.
 */
export class UpstreamClient {
  readonly #pools = new Map<string, UpstreamPool>();
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.#timer = setInterval(() => {
      const now = Date.now();
      for (const pool of this.#pools.values()) pool.sweep(now);
    }, 2000);
    this.#timer.unref();
  }

  /** host: a hostname or address, or a unix socket's absolute path (port is then ignored). */
  connection(host: string, port: number, key: string): UpstreamConnection {
    const k = isSocketPath(host) ? host : key;
    let pool = this.#pools.get(k);
    if (pool === undefined) {
      pool = new UpstreamPool(host, port);
      this.#pools.set(k, pool);
    }
    return pool.acquire(Date.now());
  }

  close(): void {
    clearInterval(this.#timer);
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
  }
}
