/**
 * The Swarm gateway's route file, both ends for real on 127.0.0.1: the control-plane API (real fastify, real
 * SQLite store) serving GET /v1/gateway/routes from a RouteFile, and the gateway's own route source (urlSource),
 * discovery and proxy reading it with a `gateway` token, as `ferry gateway --routes-url --token-file` does. DNS is
 * injected (a service's host resolves to 127.0.0.1 at its port); two replicas are plain HTTP servers answering
 * their name. Waits are on conditions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildControlApi } from '../src/control/api/app.ts';
import { recordingControl } from '../src/control/api/testing.ts';
import { RouteFile } from '../src/control/route-file.ts';
import { openStore } from '../src/control/store/store.ts';
import type { DiscoveryService, DiscoveryTable } from '../src/core/route-table.ts';
import { DnsDiscovery, urlSource } from '../src/gateway/discovery.ts';
import { createGateway } from '../src/gateway/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-gw-routes-'));
const store = openStore(join(dir, 'state.db'));
const INFO = { version: '9.9.9', runtime: 'process' as const, gatewayUrl: 'http://127.0.0.1:1' };
const file = new RouteFile();
const api = buildControlApi({ store, control: recordingControl(store), info: INFO, gatewayRoutes: file });
const statuses: number[] = [];
api.addHook('onResponse', (request, reply, done) => {
  if (request.url === '/v1/gateway/routes') statuses.push(reply.statusCode);
  done();
});
const cleanups: (() => unknown)[] = [];
let url: string;
let gatewayToken: string;
let platformAdmin: string;

async function replica(name: string): Promise<number> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(name));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return (server.address() as AddressInfo).port;
}

const table = (service: DiscoveryService): DiscoveryTable => ({
  deployments: [
    {
      name: 'iris',
      public: true,
      revisions: [{ revision: 1, percent: 100, shadow: 0, servedName: 'iris', service }],
    },
  ],
  callers: [],
});

before(async () => {
  const base = await api.listen({ port: 0, host: '127.0.0.1' });
  url = `${base}/v1/gateway/routes`;
  platformAdmin = store.createToken('ops', 'platform-admin').token;
  // Made as an operator would: by a platform admin, through the API.
  const res = await fetch(`${base}/v1/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${platformAdmin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'gateways', role: 'gateway' }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  gatewayToken = ((await res.json()) as { token: string }).token;
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await api.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test("urlSource reads the control plane's route file with a gateway token; an unchanged one costs a 304", async () => {
  const source = urlSource(url, gatewayToken);
  statuses.length = 0;
  assert.equal(await source.read(), '{"deployments":[],"callers":[]}');
  assert.equal(await source.read(), '{"deployments":[],"callers":[]}', 'the kept text on 304');
  assert.deepEqual(statuses, [200, 304]);
  file.set(table({ host: 'iris-r1', port: 1 }));
  assert.deepEqual(JSON.parse(await source.read()), table({ host: 'iris-r1', port: 1 }));
  assert.deepEqual(statuses, [200, 304, 200]);
});

test('a token of another role, or none, is refused; the gateway says with what', async () => {
  const viewer = store.createToken('look', 'viewer').token;
  await assert.rejects(
    urlSource(url, viewer).read(),
    /answered 403: .*may not read the gateways' route file/,
  );
  await assert.rejects(urlSource(url, undefined).read(), /answered 401: .*FERRY_UNAUTHORIZED/);
});

test('a gateway fed from the URL serves the table, and follows a change of it without a restart', async () => {
  const [r1, r2] = await Promise.all([replica('r1'), replica('r2')]);
  file.set(table({ host: 'iris-r1', port: r1 }));
  const gw = createGateway();
  const base = await gw.listen(0);
  cleanups.push(() => gw.close());
  const discovery = new DnsDiscovery({
    source: urlSource(url, gatewayToken),
    setRoutes: (t) => gw.setRoutes(t),
    resolve: async (s) => [{ address: '127.0.0.1', port: 'port' in s ? s.port : 0 }],
    checkMs: 60_000, // checkFile() is called below, when the test has changed the file
  });
  await discovery.start();
  cleanups.push(() => discovery.stop());
  const answer = async () =>
    (await fetch(`${base}/v2/models/iris/infer`, { method: 'POST', body: '{}' })).text();
  assert.equal(await answer(), 'r1');

  statuses.length = 0;
  await discovery.checkFile();
  assert.deepEqual(statuses, [304], 'unchanged: a 304, nothing set');
  file.set(table({ host: 'iris-r2', port: r2 }));
  await discovery.checkFile();
  assert.deepEqual(statuses, [304, 200]);
  assert.equal(await answer(), 'r2', 'the changed table');
});
