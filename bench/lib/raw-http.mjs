// A minimal HTTP/1.1 client over one keep-alive net.Socket: a request is a precomputed Buffer written with one
// write, answers are parsed just enough to know where each ends (status line, Content-Length or chunked).
// One request in flight at a time. It does as little work per request as a client can, so what it measures
// is the server (and the machine), not the client: S6's health probe (probe-client.mjs) and the hot-path
// syscall guard (test/hot-path-budget.test.ts) use it. Plain JavaScript: it runs in a bare child process.
import { connect } from 'node:net';

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** The bytes of a request, built once: `METHOD path HTTP/1.1`, Host, the given headers, Content-Length. */
export function buildRequest({ method = 'GET', host, path, headers = {}, body }) {
  const payload = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(body);
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (payload) head += `content-length: ${payload.length}\r\n`;
  head += '\r\n';
  return payload ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : Buffer.from(head, 'latin1');
}

/**
 * Where the first complete response in buf ends, and its status; null when more bytes are needed.
 * Throws on a response it cannot frame (no Content-Length and not chunked).
 */
export function frameResponse(buf) {
  const headEnd = buf.indexOf(CRLFCRLF);
  if (headEnd < 0) return null;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  const bodyStart = headEnd + 4;
  const lower = head.toLowerCase();
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
  if (cl) {
    const end = bodyStart + Number(cl[1]);
    return buf.length >= end ? { status, end, bodyStart } : null;
  }
  if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) {
    let at = bodyStart;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at, 'latin1');
      if (lineEnd < 0) return null;
      const size = Number.parseInt(buf.toString('latin1', at, lineEnd), 16);
      if (!Number.isFinite(size))
        throw new Error(`raw-http: bad chunk size in response: ${head.split('\r\n')[0]}`);
      at = lineEnd + 2 + size + 2;
      if (buf.length < at) return null;
      if (size === 0) return { status, end: at, bodyStart };
    }
  }
  if (status === 204 || status === 304 || (status >= 100 && status < 200))
    return { status, end: bodyStart, bodyStart };
  throw new Error(`raw-http: response without Content-Length or chunked encoding: ${head.split('\r\n')[0]}`);
}

/** One keep-alive connection; `request(bytes)` resolves with { status, body } when the whole answer is in. */
export class RawHttpConnection {
  /** @param {import('node:net').Socket} socket */
  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.pending = null;
    this.closed = null;
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('raw-http: the server closed the connection')));
  }

  /** Connect to host:port (127.0.0.1 only: benchmarks and tests talk to this machine). */
  static connect(host, port) {
    if (host !== '127.0.0.1') throw new Error(`raw-http: only 127.0.0.1 is allowed, got ${host}`);
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawHttpConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  onData(chunk) {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.pending) {
      this.fail(new Error(`raw-http: ${this.buf.length} bytes arrived with no request in flight`));
      return;
    }
    let framed;
    try {
      framed = frameResponse(this.buf);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (!framed) return;
    const body = this.buf.subarray(framed.bodyStart, framed.end);
    const rest = this.buf.subarray(framed.end);
    this.buf = rest.length > 0 ? rest : Buffer.alloc(0);
    const { resolve } = this.pending;
    this.pending = null;
    resolve({ status: framed.status, body });
  }

  fail(error) {
    if (!this.closed) this.closed = error;
    const p = this.pending;
    this.pending = null;
    p?.reject(error);
  }

  /** This end's port: with the server's port, it names the connection (e.g. in strace's -yy output). */
  get localPort() {
    return this.socket.localPort;
  }

  /** Send the request bytes (one write) and wait for the whole response. */
  request(bytes) {
    if (this.closed) return Promise.reject(this.closed);
    if (this.pending) return Promise.reject(new Error('raw-http: one request at a time'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(bytes);
    });
  }

  close() {
    this.closed ??= new Error('raw-http: closed');
    this.socket.destroy();
  }
}
