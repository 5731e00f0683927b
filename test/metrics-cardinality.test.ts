/**
 * Cardinality of the metrics (docs/metrics.md, Cardinality): a misbehaving client cannot grow the label sets.
 * A real model server (examples/iris) and a real gateway (in front of a stand-in replica that answers whatever
 * status it is told, and of a real iris server) get a few hundred requests with distinct unknown paths, model and
 * deployment names, versions, pinned revisions, methods, headers and statuses. The series /metrics shows are
 * counted after a first round and after a second, ten times bigger, round of new distinct values: the count does
 * not move, and no label value holds anything the client chose.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePromText } from '../src/control/metrics-history/prom-text.ts';
import { statusLabels } from '../src/core/status-label.ts';
import { createGateway, type Gateway } from '../src/gateway/index.ts';
import { ROOT, serve, type TestServer } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const MARK = `zq${randomBytes(3).toString('hex')}`;

/** One request, any method and raw path; resolves with the status (or 0 when the connection broke). */
function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<number> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** The ferry_ series of a /metrics text, as `name{labels}` strings, and every label value in them. */
async function series(base: string): Promise<{ keys: Set<string>; values: string[] }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const keys = new Set<string>();
  const values: string[] = [];
  for (const s of parsePromText(text)) {
    if (!s.name.startsWith('ferry_')) continue;
    keys.add(`${s.name}${JSON.stringify(s.labels)}`);
    values.push(...Object.values(s.labels));
  }
  return { keys, values };
}

/** Requests with distinct bad values i in [from, to), a few at a time. */
async function flood(from: number, to: number, one: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = from; i < to; i += 10)
    await Promise.all(Array.from({ length: Math.min(10, to - i) }, (_, k) => one(i + k)));
}

describe('metric cardinality under a misbehaving client', () => {
  let server: TestServer;
  let gateway: Gateway;
  let gatewayUrl: string;
  const standIn = createServer((req, res) => {
    // Answers the status the client asks for (x-status), as a broken replica or a proxy in between might.
    const status = Number(req.headers['x-status'] ?? 200);
    req.resume();
    res.writeHead(status >= 200 && status <= 999 ? status : 200, { 'content-type': 'text/plain' });
    res.end('x');
  });

  before(async () => {
    server = await serve([IRIS]);
    await new Promise<void>((r) => standIn.listen(0, '127.0.0.1', () => r()));
    const standInUrl = `http://127.0.0.1:${(standIn.address() as AddressInfo).port}`;
    gateway = createGateway();
    gateway.setRoutes({
      deployments: [
        {
          name: 'iris',
          public: true,
          revisions: [
            {
              revision: 1,
              percent: 100,
              shadow: 0,
              servedName: 'iris',
              replicas: [{ id: 'iris-1', url: server.url, ready: true }],
            },
          ],
        },
        {
          name: 'odd',
          public: true,
          revisions: [
            {
              revision: 1,
              percent: 100,
              shadow: 0,
              servedName: 'odd',
              replicas: [{ id: 'odd-1', url: standInUrl, ready: true }],
            },
          ],
        },
      ],
    });
    gatewayUrl = await gateway.listen(0, '127.0.0.1');
  });

  after(async () => {
    await gateway?.close();
    await server?.close();
    standIn.closeAllConnections();
    await new Promise<void>((r) => standIn.close(() => r()));
  });

  test('the model server: unknown paths, models, versions, methods and headers add no series', async () => {
    const bad = (i: number) => {
      const name = `${MARK}${i}`;
      const json = { 'content-type': 'application/json', 'x-request-id': name };
      return Promise.all([
        send(server.url, 'GET', `/${name}/x?${name}=1`, { 'x-request-id': name }),
        send(server.url, 'POST', `/v2/models/${name}/infer`, json, '{}'),
        send(server.url, 'POST', `/v2/models/iris/versions/${name}/infer`, json, '{}'),
        send(server.url, 'POST', `/v2/models/iris/infer`, { 'content-type': `application/${name}` }, '{}'),
        send(server.url, 'GET', `/v2/models/${name}/ready`),
        send(server.url, 'GET', `/v2/models/${name}/versions/${name}`),
        send(server.url, 'POST', `/v1/models/${name}:predict`, json, '{}'),
        send(server.url, 'POST', `/v1/models/${name}`, json, '{}'),
        send(server.url, i % 2 ? 'PROPFIND' : 'DELETE', `/v2/${name}`),
        send(server.url, 'GET', `/v2/models/%E0%A4%A${i}/ready`),
        send(server.url, 'POST', `/v2/models/iris/infer`, json, `{"inputs": [${name}`),
      ]);
    };
    await series(server.url); // the scrape counts itself (route /metrics) from the first on
    await flood(0, 30, bad);
    const first = await series(server.url);
    await flood(30, 330, bad);
    const second = await series(server.url);
    assert.deepEqual(
      [...second.keys].sort(),
      [...first.keys].sort(),
      'no new series after 300 more bad values',
    );
    assert.ok(!second.values.some((v) => v.includes(MARK)), 'no label holds a value the client chose');
    const routes = new Set(
      [...second.keys]
        .filter((k) => k.startsWith('ferry_http_requests_total'))
        .map((k) => JSON.parse(k.slice(25)).route),
    );
    assert.ok(routes.has('unmatched'), `unknown paths count as route "unmatched": ${[...routes].join(', ')}`);
  });

  test('the gateway: unknown deployments, pinned revisions, hosts, tenants and paths add no series', async () => {
    const bad = (i: number) => {
      const name = `${MARK}${i}`;
      return Promise.all([
        send(gatewayUrl, 'POST', `/v2/models/${name}/infer`, { 'x-request-id': name }, '{}'),
        send(gatewayUrl, 'POST', `/t/${name}/v2/models/iris/infer`, {}, '{}'),
        send(gatewayUrl, 'POST', `/v2/models/iris/infer`, { 'x-ferry-revision': name }, '{}'),
        send(gatewayUrl, 'GET', `/${name}`, { host: `${name}.example.com` }),
        send(gatewayUrl, 'POST', `/v1/models/${name}:predict`, {}, '{}'),
        send(gatewayUrl, i % 2 ? 'PROPFIND' : 'DELETE', `/v2/models/${name}/infer`),
      ]);
    };
    await series(gatewayUrl);
    await flood(0, 30, bad);
    const first = await series(gatewayUrl);
    await flood(30, 330, bad);
    const second = await series(gatewayUrl);
    assert.deepEqual(
      [...second.keys].sort(),
      [...first.keys].sort(),
      'no new series after 300 more bad values',
    );
    assert.ok(!second.values.some((v) => v.includes(MARK)), 'no label holds a value the client chose');
    assert.ok(second.values.includes(''), 'unknown deployments count as deployment=""');
  });

  test('the gateway: a replica answering every status from 200 to 999 makes at most one code label per registered status and class', async () => {
    await flood(200, 1000, (status) =>
      send(gatewayUrl, 'POST', '/v2/models/odd/infer', { 'x-status': String(status) }, '{}'),
    );
    const { keys } = await series(gatewayUrl);
    const codes = [...keys]
      .filter((k) => k.startsWith('ferry_gateway_requests_total{"deployment":"odd"'))
      .map((k) => JSON.parse(k.slice('ferry_gateway_requests_total'.length)).code as string);
    const known = new Set(statusLabels());
    for (const code of codes) assert.ok(known.has(code), `code label ${code} is one statusLabel gives`);
    assert.ok(codes.length <= known.size, `${codes.length} code labels`);
    for (const folded of ['2xx', '4xx', '5xx', 'other'])
      assert.ok(codes.includes(folded), `${folded} in ${codes}`);
    assert.ok(codes.includes('418') && codes.includes('503'), 'registered codes stay themselves');
  });
});
