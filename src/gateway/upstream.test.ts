/**
 * The gateway's upstream HTTP/1.1 client against raw TCP servers that write responses the way a
 * replica might: split at every byte, chunked, interim 100 responses, close-delimited bodies.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UpstreamClient, type UpstreamError } from './upstream.ts';

const servers: Server[] = [];
const client = new UpstreamClient();
after(() => {
  client.close();
  for (const s of servers) s.close();
});

/** A TCP server that answers every request head with `answer` (written by `write`). */
async function rawServer(answer: (socket: Socket, request: string) => void): Promise<number> {
  const server = createServer((socket) => {
    let text = '';
    socket.on('data', (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = text.slice(0, end + 4);
      text = text.slice(end + 4);
      answer(socket, head);
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as { port: number }).port;
}

/** Writes `text` one byte per event-loop turn, so the client sees it in many reads. */
function trickle(socket: Socket, text: string, then?: () => void): void {
  let i = 0;
  const step = () => {
    if (i >= text.length) return then?.();
    socket.write(text[i++]!, 'latin1');
    setImmediate(step);
  };
  step();
}

function exchange(port: number | string, head = 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', headOnly = false) {
  return new Promise<{ status: number; headers: string[]; body: string; reused: boolean }>(
    (resolve, reject) => {
      // A string: a unix socket's path (the pool key the gateway passes for those is always 'localhost').
      const conn =
        typeof port === 'string'
          ? client.connection(port, 0, 'localhost')
          : client.connection('127.0.0.1', port, `127.0.0.1:${port}`);
      let status = 0;
      let headers: string[] = [];
      let body = '';
      conn.start(
        { head, chunked: false, headOnly },
        {
          head: (s, h) => {
            status = s;
            headers = h;
          },
          data: (c) => {
            body += c.toString('latin1');
          },
          end: () => resolve({ status, headers, body, reused: conn.reused }),
          error: (e: UpstreamError) => reject(e),
        },
      );
      conn.end();
    },
  );
}

test('a content-length response split at every byte, then the connection is reused', async () => {
  const port = await rawServer((socket) =>
    trickle(socket, 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world'),
  );
  const first = await exchange(port);
  assert.deepEqual(first, {
    status: 200,
    headers: ['Content-Length', '11', 'X-A', 'b'],
    body: 'hello world',
    reused: false,
  });
  const second = await exchange(port);
  assert.equal(second.body, 'hello world');
  assert.equal(second.reused, true);
});

test('chunked bodies (sizes, extensions and trailers split across reads) and a 100 Continue first', async () => {
  const port = await rawServer((socket) =>
    trickle(
      socket,
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n',
    ),
  );
  const r = await exchange(port);
  assert.equal(r.status, 201);
  assert.equal(r.body, 'hello 0123456789');
  assert.equal((await exchange(port)).reused, true);
});

test('a body delimited by the connection closing, and HEAD answers without a body', async () => {
  const port = await rawServer((socket) =>
    socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it'),
  );
  assert.equal((await exchange(port)).body, 'all of it');
  const headPort = await rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n'));
  const head = await exchange(headPort, 'HEAD / HTTP/1.1\r\nhost: x\r\n\r\n', true);
  assert.equal(head.body, '');
  assert.equal(head.status, 200);
});

test('failures say whether any response byte had arrived', async () => {
  const before = await rawServer((socket) => socket.destroy());
  await assert.rejects(exchange(before), (e: UpstreamError) => e.beforeHead === true);
  const during = await rawServer((socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
    setImmediate(() => socket.destroy());
  });
  await assert.rejects(exchange(during), (e: UpstreamError) => e.beforeHead === false);
  const garbage = await rawServer((socket) => socket.write('SPDY/3 what\r\n\r\n'));
  await assert.rejects(exchange(garbage), (e: UpstreamError) => e.code === 'HPE_INVALID_STATUS');
});

test('a replica on a unix socket: the same client, one pool per socket path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-upstream-'));
  try {
    const paths = [join(dir, 'a.sock'), join(dir, 'b.sock')];
    for (const [i, path] of paths.entries()) {
      const server = createServer((socket) => {
        socket.on('data', (d) => {
          if (d.includes('\r\n\r\n')) socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${i}`);
        });
        socket.on('error', () => {});
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(path, () => r()));
    }
    const a = await exchange(paths[0]!);
    assert.deepEqual([a.status, a.body, a.reused], [200, '0', false]);
    // Same Host key, another socket: its own pool and connection.
    const b = await exchange(paths[1]!);
    assert.deepEqual([b.body, b.reused], ['1', false]);
    const again = await exchange(paths[0]!);
    assert.deepEqual([again.body, again.reused], ['0', true]);
    await assert.rejects(
      exchange(join(dir, 'none.sock')),
      (e: UpstreamError) => e.beforeHead && e.code === 'ENOENT',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
