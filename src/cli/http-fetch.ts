/**
 * The fetch the CLI gives its control-plane client: the same calls over node:http. Node's fetch (undici) costs a
 * short CLI process dearly: 30-40 ms to load, and ~0.1 s more before it may exit, while V8 optimizes undici's
 * WebAssembly HTTP parser (bench/cli-start.ts). One connection per request, closed after it: no pool to wait for.
 *
 * It answers with what ControlClient reads of a Response: ok, status, statusText, headers.get/has, text(), json(),
 * arrayBuffer() and body (a web ReadableStream, read as it comes). It does not follow redirects (the API sends
 * none). An https URL, or a body other than a string or bytes, goes to the real fetch.
 */
import { type IncomingMessage, request } from 'node:http';
import { Readable } from 'node:stream';

export const httpFetch: typeof fetch = (input, init = {}) => {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const body = init.body ?? undefined;
  if (
    url.protocol !== 'http:' ||
    !(body === undefined || typeof body === 'string' || body instanceof Uint8Array)
  )
    return fetch(input, init);
  const headers = headersOf(init.headers);
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  const signal = init.signal ?? undefined;
  return new Promise<Response>((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers, agent: false, signal }, (res) =>
      resolve(responseOf(res, url)),
    );
    // As fetch: a failed connection is a TypeError whose cause is the system error (ECONNREFUSED ...).
    req.on('error', (error) =>
      reject(signal?.aborted ? error : Object.assign(new TypeError('fetch failed'), { cause: error })),
    );
    req.end(body);
  });
};

function headersOf(given: RequestInit['headers']): Record<string, string> {
  const headers: Record<string, string> = {};
  if (given === undefined) return headers;
  const entries: Iterable<[string, string]> | [string, string][] = Array.isArray(given)
    ? (given as [string, string][])
    : typeof (given as Headers).entries === 'function'
      ? (given as Headers).entries()
      : Object.entries(given as Record<string, string>);
  for (const [name, value] of entries) headers[name.toLowerCase()] = value;
  return headers;
}

function responseOf(res: IncomingMessage, url: URL): Response {
  const status = res.statusCode ?? 0;
  let stream: ReadableStream<Uint8Array> | undefined;
  const bytes = async (): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const header = (name: string): string | null => {
    const value = res.headers[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  };
  const response = {
    ok: status >= 200 && status < 300,
    status,
    statusText: res.statusMessage ?? '',
    url: url.href,
    redirected: false,
    headers: { get: header, has: (name: string) => header(name) !== null },
    get body(): ReadableStream<Uint8Array> {
      stream ??= Readable.toWeb(res) as ReadableStream<Uint8Array>;
      return stream;
    },
    get bodyUsed(): boolean {
      return res.readableDidRead;
    },
    text: async () => (await bytes()).toString('utf8'),
    json: async () => JSON.parse((await bytes()).toString('utf8')) as unknown,
    arrayBuffer: async () => {
      const b = await bytes();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    },
  };
  return response as unknown as Response;
}
