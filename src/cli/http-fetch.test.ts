/**
 * httpFetch against a real node:http server, with Node's own fetch as the oracle: for what ControlClient reads
 * (status, ok, headers, text, json, a streamed body, connection errors, abort) both give the same answers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../core/free-port.ts';
import { httpFetch } from './http-fetch.ts';

describe('httpFetch', () => {
  let server: Server;
  let base: string;
  const sockets = new Set<Socket>();
  let streamClosed: Promise<void> = Promise.resolve();

  before(async () => {
    server = createServer(async (req, res) => {
      if (req.url === '/echo') {
        let body = '';
        for await (const chunk of req) body += chunk;
        res.setHeader('content-type', 'application/json');
        res.setHeader('x-many', ['a', 'b']);
        res.end(JSON.stringify({ method: req.method, body, headers: req.headers }));
      } else if (req.url === '/missing') {
        res.statusCode = 404;
        res.end('{"error":"no such thing","code":"FERRY_NOT_FOUND"}');
      } else if (req.url === '/stream') {
        streamClosed = once(res, 'close').then(() => undefined);
        res.write('line 1\n');
        setTimeout(() => res.write('line 2\n'), 20);
      } else if (req.url === '/slow') {
        setTimeout(() => res.end('late'), 5000).unref();
      }
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const request = {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer t0k', accept: 'application/json' },
    body: JSON.stringify({ name: 'ünïcode' }),
  };

  test('status, headers, text and json as fetch gives them', async () => {
    const [mine, theirs] = [await httpFetch(`${base}/echo`, request), await fetch(`${base}/echo`, request)];
    assert.equal(mine.status, theirs.status);
    assert.equal(mine.ok, true);
    assert.equal(mine.headers.get('Content-Type'), theirs.headers.get('content-type'));
    assert.equal(mine.headers.get('x-many'), theirs.headers.get('x-many'));
    assert.equal(mine.headers.get('x-none'), null);
    const [a, b] = [
      (await mine.json()) as Record<string, unknown>,
      (await theirs.json()) as Record<string, unknown>,
    ];
    assert.equal(a.method, 'POST');
    assert.equal(a.body, b.body);
    const [ha, hb] = [a.headers as Record<string, string>, b.headers as Record<string, string>];
    for (const name of ['content-type', 'authorization', 'accept', 'content-length'])
      assert.equal(ha[name], hb[name], name);
  });

  test('a 404: not ok, its status and body', async () => {
    const [mine, theirs] = [await httpFetch(`${base}/missing`), await fetch(`${base}/missing`)];
    assert.equal(mine.ok, false);
    assert.equal(mine.status, 404);
    assert.equal(await mine.text(), await theirs.text());
  });

  test('the body streams as it comes; cancelling the reader closes the connection', async () => {
    const reader = (await httpFetch(`${base}/stream`)).body?.getReader();
    assert.ok(reader);
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('line 2')) {
      const chunk = await reader.read();
      assert.equal(chunk.done, false);
      text += decoder.decode(chunk.value);
    }
    assert.equal(text, 'line 1\nline 2\n');
    await reader.cancel();
    await streamClosed;
  });

  test('no connection stays open after an answer (nothing keeps the process alive)', async () => {
    // It asks for the connection to be closed after the answer (fetch keeps it in a pool for seconds) ...
    const echoed = (await (await httpFetch(`${base}/echo`)).json()) as { headers: Record<string, string> };
    assert.equal(echoed.headers.connection, 'close');
    // ... and it is closed. fetch's connections of the tests above may still idle in its pool: only watch ours.
    const earlier = new Set(sockets);
    await (await httpFetch(`${base}/echo`)).text();
    const ours = () => [...sockets].filter((s) => !earlier.has(s));
    const deadline = Date.now() + 10_000;
    while (ours().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(ours().length, 0);
  });

  test('nothing listening: a TypeError whose cause is ECONNREFUSED, as fetch', async () => {
    const url = `http://127.0.0.1:${await freePort()}/`;
    const [mine, theirs] = await Promise.all([
      httpFetch(url).then(
        () => undefined,
        (e: unknown) => e,
      ),
      fetch(url).then(
        () => undefined,
        (e: unknown) => e,
      ),
    ]);
    for (const error of [mine, theirs]) {
      assert.ok(error instanceof TypeError, String(error));
      assert.equal((error as { cause?: { code?: string } }).cause?.code, 'ECONNREFUSED');
    }
  });

  test('an aborted signal rejects with an AbortError', async () => {
    const stop = new AbortController();
    const pending = httpFetch(`${base}/slow`, { signal: stop.signal });
    setTimeout(() => stop.abort(), 20);
    await assert.rejects(pending, { name: 'AbortError' });
  });
});
