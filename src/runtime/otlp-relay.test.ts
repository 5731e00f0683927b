/**
 * The OTLP relay (otlp-relay.ts): what it forwards (POST /v1/traces, OTLP bodies, to the one target, with the
 * target's headers added, the upstream's status and body back) and what it refuses without reaching the upstream
 * (another path or method, another content type or encoding, a body too big, too many at once), and how it fails
 * (upstream down: 502, redirect: 502, no answer: 504), staying up after each.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OtlpRelay, type OtlpRelayTarget } from './otlp-relay.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** An upstream that records what reaches it and answers with `reply` (or holds the answer when it says so). */
async function upstream(reply: (req: Seen, res: ServerResponse) => void) {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      seen.push(s);
      reply(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
  return {
    url,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** One request to the relay's socket: status, headers, body. */
function send(
  socketPath: string,
  opts: { method?: string; path?: string; headers?: Record<string, string | number>; body?: Buffer | string },
): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/v1/traces',
        headers: { 'content-type': 'application/json', ...opts.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('OTLP relay', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-otlp-relay-'));
  let up: Awaited<ReturnType<typeof upstream>>;
  let relay: OtlpRelay;
  const socket = join(dir, 'otlp.sock');
  const target = (over: Partial<OtlpRelayTarget> = {}): OtlpRelayTarget => ({
    url: up.url,
    headers: { authorization: 'Bearer platform-secret' },
    maxBodyBytes: 1024,
    ...over,
  });

  before(async () => {
    up = await upstream((_s, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":1}'),
    );
    relay = await OtlpRelay.listen(socket, target());
  });
  after(async () => {
    await relay.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the socket is 0666 (who connects is decided by the directories)', () => {
    const st = lstatSync(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o666);
  });

  test('forwards POST /v1/traces to the target with its headers, the content type kept, the answer back', async () => {
    const before = up.seen.length;
    const answer = await send(socket, {
      body: '{"resourceSpans":[]}',
      headers: { authorization: 'Bearer replica-made-up', 'x-other': 'dropped', 'content-encoding': 'gzip' },
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, '{"ok":1}');
    assert.equal(answer.headers['content-type'], 'application/json');
    const got = up.seen.slice(before);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.method, 'POST');
    assert.equal(got[0]!.url, '/v1/traces');
    assert.equal(got[0]!.body.toString(), '{"resourceSpans":[]}');
    assert.equal(got[0]!.headers['content-type'], 'application/json');
    assert.equal(got[0]!.headers['content-encoding'], 'gzip');
    // The platform's credentials, never the replica's headers.
    assert.equal(got[0]!.headers.authorization, 'Bearer platform-secret');
    assert.equal(got[0]!.headers['x-other'], undefined);
    const proto = await send(socket, { body: 'x', headers: { 'content-type': 'application/x-protobuf' } });
    assert.equal(proto.status, 200);
    assert.equal(up.seen.at(-1)!.headers['content-type'], 'application/x-protobuf');
  });

  test('refuses another path, method, content type, encoding or a body too big; the upstream sees none', async () => {
    const before = up.seen.length;
    assert.equal((await send(socket, { path: '/v1/metrics', body: '{}' })).status, 404);
    assert.equal((await send(socket, { path: '/v1/traces?x=http://elsewhere', body: '{}' })).status, 404);
    assert.equal((await send(socket, { path: 'http://evil.example/v1/traces', body: '{}' })).status, 404);
    const get = await send(socket, { method: 'GET' });
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
    assert.equal((await send(socket, { method: 'PUT', body: '{}' })).status, 405);
    assert.equal((await send(socket, { body: '{}', headers: { 'content-type': 'text/plain' } })).status, 415);
    assert.equal((await send(socket, { body: '{}', headers: { 'content-encoding': 'br' } })).status, 415);
    // Too big by its length, and too big as it streams (no length given: chunked).
    assert.equal((await send(socket, { body: Buffer.alloc(1025, 0x20) })).status, 413);
    const chunked = await send(socket, {
      body: Buffer.alloc(4 * 1024, 0x20),
      headers: { 'transfer-encoding': 'chunked' },
    });
    assert.equal(chunked.status, 413);
    assert.equal(up.seen.length, before);
    // Still relaying.
    assert.equal((await send(socket, { body: '{}' })).status, 200);
  });

  test('the upstream down: 502 to the replica, and the relay stays up', async () => {
    const down = await upstream(() => {});
    const url = down.url;
    await down.close();
    const path = join(dir, 'down.sock');
    const r = await OtlpRelay.listen(path, target({ url }));
    try {
      const answer = await send(path, { body: '{}' });
      assert.equal(answer.status, 502);
      assert.equal((await send(path, { body: '{}' })).status, 502);
      assert.equal((await send(path, { path: '/nope', body: '{}' })).status, 404);
    } finally {
      await r.close();
    }
  });

  test('a redirect is not followed (502); an upstream that does not answer in time: 504', async () => {
    const elsewhere = await upstream((_s, res) => res.writeHead(200).end());
    const redirecting = await upstream((_s, res) => res.writeHead(307, { location: elsewhere.url }).end());
    const silent = await upstream(() => {});
    const r1 = await OtlpRelay.listen(join(dir, 'redirect.sock'), target({ url: redirecting.url }));
    const r2 = await OtlpRelay.listen(join(dir, 'silent.sock'), target({ url: silent.url, timeoutMs: 200 }));
    try {
      assert.equal((await send(r1.path, { body: '{}' })).status, 502);
      assert.equal(elsewhere.seen.length, 0);
      assert.equal((await send(r2.path, { body: '{}' })).status, 504);
    } finally {
      await r1.close();
      await r2.close();
      await Promise.all([elsewhere.close(), redirecting.close(), silent.close()]);
    }
  });

  test('at most maxConcurrent forwards at a time: the next one gets 429 (retryable) until one ends', async () => {
    const held: ServerResponse[] = [];
    let arrived: () => void = () => {};
    const holding = await upstream((_s, res) => {
      held.push(res);
      arrived();
    });
    const r = await OtlpRelay.listen(join(dir, 'busy.sock'), target({ url: holding.url, maxConcurrent: 1 }));
    try {
      const reached = new Promise<void>((res) => {
        arrived = res;
      });
      const first = send(r.path, { body: '{}' });
      await reached;
      const second = await send(r.path, { body: '{}' });
      assert.equal(second.status, 429);
      assert.equal(second.headers['retry-after'], '1');
      held[0]!.writeHead(503, { 'retry-after': '2' }).end();
      const firstAnswer = await first;
      assert.equal(firstAnswer.status, 503, 'the upstream status is the replica status');
      assert.equal(firstAnswer.headers['retry-after'], '2');
      const again = send(r.path, { body: '{}' });
      await until(() => held.length === 2);
      held[1]!.writeHead(200).end();
      assert.equal((await again).status, 200);
    } finally {
      await r.close();
      await holding.close();
    }
  });

  test('close() stops it: the socket file is gone, a forward in flight is cut', async () => {
    const holding = await upstream(() => {});
    const r = await OtlpRelay.listen(join(dir, 'closing.sock'), target({ url: holding.url }));
    const inFlight = send(r.path, { body: '{}' }).then(
      (a) => a.status,
      () => 'cut',
    );
    await until(() => holding.seen.length === 1);
    await r.close();
    const outcome = await inFlight;
    assert.ok(outcome === 'cut' || outcome === 502, `cut or 502, got ${outcome}`);
    assert.throws(() => lstatSync(r.path), /ENOENT/);
    await holding.close();
  });

  test('an https endpoint: trusted by the roots it is given (OTEL_EXPORTER_OTLP_CERTIFICATE), else 502', async () => {
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(made.status, 0, `openssl: ${made.stderr}`);
    const cert = readFileSync(join(dir, 'cert.pem'));
    const seen: string[] = [];
    const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
      seen.push(String(req.headers.authorization));
      req.resume();
      req.on('end', () => res.writeHead(200).end('{}'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
    const trusting = await OtlpRelay.listen(join(dir, 'tls.sock'), target({ url, tls: { ca: cert } }));
    const untrusting = await OtlpRelay.listen(join(dir, 'notls.sock'), target({ url }));
    try {
      assert.equal((await send(trusting.path, { body: '{}' })).status, 200);
      assert.deepEqual(seen, ['Bearer platform-secret']);
      assert.equal((await send(untrusting.path, { body: '{}' })).status, 502);
      assert.equal(seen.length, 1);
    } finally {
      await trusting.close();
      await untrusting.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('a target that is not an http(s) URL is refused', async () => {
    await assert.rejects(
      OtlpRelay.listen(join(dir, 'bad.sock'), target({ url: 'file:///etc/passwd' })),
      /not an http/,
    );
  });
});

/** Waits for a condition driven by I/O (no fixed sleep: checks at every turn of the event loop). */
async function until(probe: () => boolean): Promise<void> {
  while (!probe()) await new Promise((r) => setImmediate(r));
}
