import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isFerryError } from '../../core/errors.ts';
import { pinImage } from '../provision.ts';
import { guardedFetch } from './guarded-fetch.ts';

// Only loopback is ever contacted: the forbidden targets are 0.0.0.0 (unspecified: refused before connecting;
// were the guard broken, the connection would still stay on this machine).
let server: Server;
let base: string;
let port: number;
let hits = 0;

before(async () => {
  server = createServer((req, res) => {
    hits++;
    if (req.url === '/to-unspecified') {
      res.writeHead(302, { location: `http://0.0.0.0:${port}/secret` });
      return res.end();
    }
    if (req.url === '/to-ok') {
      res.writeHead(302, { location: '/ok' });
      return res.end();
    }
    res.end(req.url === '/secret' ? 'must never be read through a redirect' : 'ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});
after(() => server.close());

const forbidden = (err: unknown) => isFerryError(err) && err.code === 'FERRY_FORBIDDEN';

describe('guardedFetch (SSRF guard)', () => {
  test('ordinary addresses work, redirects included', async () => {
    const res = await guardedFetch(`${base}/to-ok`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok');
  });

  test('a forbidden address is refused before any connection, written literally or reached by a redirect', async () => {
    const before = hits;
    await assert.rejects(guardedFetch(`http://0.0.0.0:${port}/secret`), forbidden);
    await assert.rejects(guardedFetch(`http://[::ffff:0.0.0.0]:${port}/secret`), forbidden);
    assert.equal(hits, before, 'nothing connected');
    await assert.rejects(guardedFetch(`${base}/to-unspecified`), forbidden);
    assert.equal(hits, before + 1, 'only the redirecting request reached the server');
  });

  test('pinImage refuses a registry outside the allow-list before contacting it', async () => {
    const before = hits;
    await assert.rejects(
      pinImage(`127.0.0.1:${port}/team/model:1`, undefined, ['registry.example.com']),
      (err) => {
        assert.ok(forbidden(err));
        assert.match((err as Error).message, /not one this platform pulls from/);
        return true;
      },
    );
    assert.equal(hits, before);
  });
});
