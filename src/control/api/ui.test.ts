/**
 * The dashboard's files at /ui/ (ui.ts): caching by kind of file, the strict policy on every answer, the
 * redirect, index.html for the page's own paths, 404 for a missing asset, and a clear answer when nothing is
 * built. Also GET /v1/whoami, which the page asks to know what to offer.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { openStore, type Store } from '../store/store.ts';
import { buildControlApi } from './app.ts';
import { recordingControl } from './testing.ts';
import { UI_CSP } from './ui.ts';

const INFO = { version: '9.9.9', runtime: 'process' as const, gatewayUrl: 'http://127.0.0.1:8080' };

describe('the dashboard at /ui/', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ui-'));
  const web = join(dir, 'web');
  let store: Store;
  let app: FastifyInstance;
  let bare: FastifyInstance;

  before(async () => {
    mkdirSync(join(web, 'assets'), { recursive: true });
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>Ferry</title>');
    writeFileSync(join(web, 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(join(web, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    store = openStore(join(dir, 'state.db'));
    app = buildControlApi({ store, control: recordingControl(store), info: INFO, ui: { dir: web } });
    bare = buildControlApi({
      store,
      control: recordingControl(store),
      info: INFO,
      ui: { dir: join(dir, 'missing') },
    });
    await app.ready();
    await bare.ready();
  });
  after(async () => {
    await app.close();
    await bare.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('/ui redirects to /ui/', async () => {
    const res = await app.inject({ url: '/ui' });
    assert.equal(res.statusCode, 301);
    assert.equal(res.headers.location, '/ui/');
  });

  test('index.html is revalidated, under the strict policy, for / and for any path of the page', async () => {
    for (const url of ['/ui/', '/ui/deployments/iris', '/ui/index.html']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.equal(res.headers['cache-control'], 'no-cache', url);
      assert.equal(res.headers['content-security-policy'], UI_CSP);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.match(res.body, /<title>Ferry<\/title>/);
    }
    assert.match(UI_CSP, /default-src 'self'/);
    assert.doesNotMatch(UI_CSP, /unsafe-inline|unsafe-eval/);
  });

  test('hashed assets are immutable for a year; a missing one is 404, never index.html', async () => {
    const res = await app.inject({ url: '/ui/assets/index-abc123.js' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /javascript/);
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(res.headers['content-security-policy'], UI_CSP);
    const missing = await app.inject({ url: '/ui/assets/index-gone.js' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'FERRY_ROUTE_NOT_FOUND');
    const up = await app.inject({ url: '/ui/assets/../../state.db' });
    assert.notEqual(up.statusCode, 200);
  });

  test('other files of the build are revalidated', async () => {
    const res = await app.inject({ url: '/ui/favicon.svg' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['cache-control'], 'no-cache');
  });

  test('no token is needed for the files; the API still needs one', async () => {
    assert.equal((await app.inject({ url: '/ui/' })).statusCode, 200);
    assert.equal((await app.inject({ url: '/v1/deployments' })).statusCode, 401);
  });

  test('nothing built: 404 saying how to build it', async () => {
    const res = await bare.inject({ url: '/ui/' });
    assert.equal(res.statusCode, 404);
    assert.match(res.json().error, /dashboard is not built/);
    assert.match(res.json().hint, /build-web\.mjs/);
  });

  test('GET /v1/whoami: name, role, tenant and access levels of the caller', async () => {
    const viewer = store.createToken('look', 'viewer');
    const admin = store.createToken('boss', 'admin');
    const who = async (token: string) =>
      (await app.inject({ url: '/v1/whoami', headers: { authorization: `Bearer ${token}` } })).json();
    assert.deepEqual(await who(viewer.token), {
      name: 'look',
      role: 'viewer',
      home: 'default',
      tenant: 'default',
      access: ['read'],
    });
    assert.deepEqual((await who(admin.token)).access, ['read', 'write', 'admin']);
  });
});
