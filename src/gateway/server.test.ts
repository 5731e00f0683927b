/**
 * The gateway over real HTTP on 127.0.0.1: stand-in replicas are small node:http servers started
 * here (the gateway's job is HTTP; test/gateway.test.ts runs it in front of real `ferry serve`).
 * Synchronisation is by events and promises; clocks are injected where time matters (ejection).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import pino from 'pino';
import { freePort } from '../core/free-port.ts';
import { seededRandom } from './random.ts';
import type { RouteRevision, RouteTable } from './routes.ts';
import { createGateway, type Gateway, type GatewayOptions } from './server.ts';

// ---------------------------------------------------------------------------------------------
// helpers

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

interface StandIn {
  id: string;
  url: string;
  seen: Seen[];
  server: Server;
  /** Resolves with the next request's arrival (headers only; before its body is read). */
  nextArrival(): Promise<IncomingMessage>;
  close(): Promise<void>;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Default: echo what arrived as JSON. */
const echo: Handler = (req, res, body) => {
  const text = JSON.stringify({ url: req.url, bytes: body.length });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(text);
};

async function standIn(
  id: string,
  handler: Handler = echo,
  opts: { readBody?: boolean } = {},
): Promise<StandIn> {
  const seen: Seen[] = [];
  let arrivals: ((r: IncomingMessage) => void)[] = [];
  const server = createServer((req, res) => {
    const waiting = arrivals;
    arrivals = [];
    for (const w of waiting) w(req);
    if (opts.readBody === false) {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.alloc(0) });
      handler(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const s: StandIn = {
    id,
    url: `http://127.0.0.1:${port}`,
    seen,
    server,
    nextArrival: () => new Promise((r) => arrivals.push(r)),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  cleanups.push(() => s.close());
  return s;
}

/** A replica URL where nothing listens (connection refused). */
async function deadReplica(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

function rev(
  revision: number,
  percent: number,
  replicas: { id: string; url: string; ready?: boolean }[],
  extra: Partial<RouteRevision> = {},
): RouteRevision {
  return {
    revision,
    percent,
    shadow: 0,
    servedName: `model-r${revision}`,
    replicas: replicas.map((r) => ({ id: r.id, url: r.url, ready: r.ready ?? true })),
    ...extra,
  };
}

function table(name: string, ...revisions: RouteRevision[]): RouteTable {
  return { deployments: [{ name, public: true, revisions }] };
}

async function gateway(
  routes: RouteTable,
  options: GatewayOptions = {},
): Promise<{ gw: Gateway; base: string }> {
  const gw = createGateway({ random: seededRandom(42), ...options });
  gw.setRoutes(routes);
  const base = await gw.listen(0);
  cleanups.push(() => gw.close());
  return { gw, base };
}

async function call(
  url: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
) {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    body: init.body,
    headers: init.headers,
  });
  const body = Buffer.from(await res.arrayBuffer());
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, body, json };
}

async function metricValue(gw: Gateway, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await gw.metrics.getMetricsAsJSON()).find((x) => x.name === name);
  if (!m) return 0;
  let sum = 0;
  for (const v of m.values as { value: number; labels: Record<string, string | number> }[]) {
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// routing

test('OIP and KServe v1 paths route by deployment and are rewritten to the served model name', async () => {
  const r = await standIn('r1');
  const { base } = await gateway(table('flowers', rev(3, 100, [r], { servedName: 'iris' })));
  const cases: [string, string, string][] = [
    ['POST', '/v2/models/flowers/infer', '/v2/models/iris/infer'],
    ['POST', '/v2/models/flowers/versions/7/infer?trace=1', '/v2/models/iris/versions/7/infer?trace=1'],
    ['GET', '/v2/models/flowers', '/v2/models/iris'],
    ['GET', '/v2/models/flowers/ready', '/v2/models/iris/ready'],
    ['GET', '/v2/models/flowers/versions/7', '/v2/models/iris/versions/7'],
    ['GET', '/v2/models/flowers/versions/7/ready', '/v2/models/iris/versions/7/ready'],
    ['POST', '/v1/models/flowers:predict', '/v1/models/iris:predict'],
    ['GET', '/v1/models/flowers?x=y', '/v1/models/iris?x=y'],
  ];
  for (const [method, path, upstream] of cases) {
    const res = await call(`${base}${path}`, { method, body: method === 'POST' ? '{"a":1}' : undefined });
    assert.equal(res.status, 200, path);
    assert.deepEqual(res.json, { url: upstream, bytes: method === 'POST' ? 7 : 0 }, path);
    assert.equal(res.headers.get('x-ferry-revision'), '3');
    assert.equal(res.headers.get('x-ferry-replica'), 'r1');
  }
  assert.equal(r.seen.length, cases.length);
  assert.equal(r.seen[0]!.headers.host, new URL(r.url).host);
});

test('x-request-id is passed on, or generated and passed on; response headers come back', async () => {
  const r = await standIn('r1', (req, res) => {
    res.writeHead(201, { 'x-custom': 'yes', 'content-type': 'text/plain' });
    res.end(`id=${req.headers['x-request-id']}`);
  });
  const { base } = await gateway(table('d', rev(1, 100, [r])));
  const given = await call(`${base}/v2/models/d/infer`, {
    body: 'x',
    headers: { 'x-request-id': 'abc-123' },
  });
  assert.equal(given.status, 201);
  assert.equal(given.body.toString(), 'id=abc-123');
  assert.equal(given.headers.get('x-request-id'), 'abc-123');
  assert.equal(given.headers.get('x-custom'), 'yes');
  const generated = await call(`${base}/v2/models/d/infer`, { body: 'x' });
  const id = generated.headers.get('x-request-id');
  assert.match(id ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(generated.body.toString(), `id=${id}`);
});

test('hop-by-hop headers are not forwarded, in either direction', async () => {
  const r = await standIn('r1', (_req, res) => {
    res.writeHead(200, { connection: 'keep-alive, x-hop-down', 'x-hop-down': 'secret', 'x-end': 'ok' });
    res.end('done');
  });
  const { base } = await gateway(table('d', rev(1, 100, [r])));
  const answer = await new Promise<{ headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = request(`${base}/v2/models/d/infer`, {
      method: 'POST',
      headers: {
        connection: 'keep-alive, x-hop-up',
        'x-hop-up': 'drop me',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'x-end-to-end': 'keep me',
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end('hello');
  });
  const up = r.seen[0]!.headers;
  assert.equal(up['x-hop-up'], undefined);
  assert.equal(up.te, undefined);
  assert.equal(up['keep-alive'], undefined);
  assert.equal(up['x-end-to-end'], 'keep me');
  assert.equal(answer.body, 'done');
  assert.equal(answer.headers['x-hop-down'], undefined);
  assert.equal(answer.headers['x-end'], 'ok');
});

test('the gateway answers health, server metadata and /metrics itself', async () => {
  const { base } = await gateway({ deployments: [] });
  assert.deepEqual((await call(`${base}/v2/health/live`)).json, { live: true });
  const ready = await call(`${base}/v2/health/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.json, { ready: true });
  const meta = await call(`${base}/v2`);
  assert.equal(meta.json?.name, 'ferry-gateway');
  assert.equal(typeof meta.json?.version, 'string');
  const metrics = await call(`${base}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body.toString(), /# TYPE ferry_gateway_requests_total counter/);
});

test('unknown deployments, paths and pinned revisions get 404s with codes that say which', async () => {
  const r = await standIn('r1');
  const { base } = await gateway(
    table(
      'd',
      rev(1, 60, [r]),
      rev(
        2,
        40,
        [r].map((x) => ({ ...x, id: 'r2' })),
      ),
    ),
  );
  const model = await call(`${base}/v2/models/nope/infer`, { body: '{}' });
  assert.equal(model.status, 404);
  assert.equal(model.json?.code, 'FERRY_MODEL_NOT_FOUND');
  assert.match(String(model.json?.error), /no deployment 'nope'/);
  assert.match(String(model.json?.hint), /Public deployments here: d \(private ones are not listed\)/);
  for (const path of [
    '/v3/models/d',
    '/v2/models/d/explain',
    '/v2/models/d/versions//infer',
    '/v1/models/d:explain',
    '/',
    '/v2/models/',
  ]) {
    const res = await call(`${base}${path}`);
    assert.equal(res.status, 404, path);
    assert.equal(res.json?.code, 'FERRY_ROUTE_NOT_FOUND', path);
  }
  const pin = await call(`${base}/v2/models/d/infer`, { body: '{}', headers: { 'x-ferry-revision': '9' } });
  assert.equal(pin.status, 404);
  assert.equal(pin.json?.code, 'FERRY_NOT_FOUND');
  assert.match(String(pin.json?.error), /no revision '9'/);
  assert.match(String(pin.json?.hint), /1, 2/);
  assert.equal(r.seen.length, 0, 'nothing reached a replica');
});

test('no ready replica -> 503 FERRY_NO_READY_REPLICA with Retry-After: 1', async () => {
  const r = await standIn('r1');
  const { gw, base } = await gateway(table('d', rev(1, 100, [{ ...r, ready: false }])));
  const res = await call(`${base}/v2/models/d/infer`, { body: '{}' });
  assert.equal(res.status, 503);
  assert.equal(res.json?.code, 'FERRY_NO_READY_REPLICA');
  assert.equal(res.headers.get('retry-after'), '1');
  assert.equal(res.headers.get('x-ferry-revision'), '1');
  // Nothing serves when every revision is at 0 percent.
  gw.setRoutes(table('d', rev(1, 0, [r])));
  const none = await call(`${base}/v2/models/d/infer`, { body: '{}' });
  assert.equal(none.status, 503);
  assert.equal(none.json?.code, 'FERRY_NO_READY_REPLICA');
  assert.match(String(none.json?.hint), /0 percent/);
  // ... but the revision can still be pinned.
  const pinned = await call(`${base}/v2/models/d/infer`, {
    body: '{}',
    headers: { 'x-ferry-revision': '1' },
  });
  assert.equal(pinned.status, 200);
  assert.equal(r.seen.length, 1);
});

test('before its first route table a gateway answers 503 + Retry-After (it does not know yet), then 404', async () => {
  const gw = createGateway({ random: seededRandom(42) });
  const base = await gw.listen(0);
  cleanups.push(() => gw.close());
  const early = await call(`${base}/v2/models/d/infer`, { body: '{}' });
  assert.equal(early.status, 503);
  assert.equal(early.headers.get('retry-after'), '1');
  assert.equal(early.json?.code, 'FERRY_NO_READY_REPLICA');
  assert.match(String(early.json?.error), /no route table yet/);
  assert.equal(await metricValue(gw, 'ferry_gateway_requests_total', { deployment: '', code: '503' }), 1);
  gw.setRoutes({ deployments: [] });
  const known = await call(`${base}/v2/models/d/infer`, { body: '{}' });
  assert.equal(known.status, 404);
  assert.equal(known.json?.code, 'FERRY_MODEL_NOT_FOUND');
});

test('setRoutes rejects an unusable table, naming the field', () => {
  const gw = createGateway();
  assert.throws(
    () =>
      gw.setRoutes({
        deployments: [{ name: 'd', revisions: [rev(1, 50, [{ id: 'a', url: 'ftp://x' }])] }],
      }),
    (e: Error & { code?: string }) =>
      e.code === 'FERRY_BAD_REQUEST' &&
      /deployments\[0\]\.revisions\[0\]\.replicas\[0\]\.url/.test(e.message) &&
      /sum to 50/.test(e.message),
  );
});

// ---------------------------------------------------------------------------------------------
// traffic

test('weighted split over 10,000 real requests is within 1 percentage point (70/30)', async () => {
  const a = await standIn('a', (_req, res) => res.end('a'));
  const b = await standIn('b', (_req, res) => res.end('b'));
  const { base } = await gateway(table('d', rev(1, 70, [a]), rev(2, 30, [b])));
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  cleanups.push(() => agent.destroy());
  const counts: Record<string, number> = { '1': 0, '2': 0 };
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(`${base}/v2/models/d/infer`, { method: 'POST', agent });
      req.on('response', (res) => {
        const r = String(res.headers['x-ferry-revision']);
        counts[r] = (counts[r] ?? 0) + 1;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end('{}');
    });
  const N = 10_000;
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < N) {
        next++;
        await one();
      }
    }),
  );
  assert.equal(counts['1']! + counts['2']!, N);
  assert.ok(Math.abs((counts['1']! / N) * 100 - 70) <= 1, `revision 1 got ${counts['1']} of ${N}`);
  assert.equal(a.seen.length, counts['1']);
  assert.equal(b.seen.length, counts['2']);
});

test('x-ferry-revision pins a revision, including one at 0 percent', async () => {
  const a = await standIn('a');
  const b = await standIn('b');
  const { base } = await gateway(table('d', rev(1, 100, [a]), rev(2, 0, [b])));
  for (let i = 0; i < 20; i++) {
    const res = await call(`${base}/v2/models/d/infer`, { body: '{}', headers: { 'x-ferry-revision': '2' } });
    assert.equal(res.headers.get('x-ferry-revision'), '2');
    assert.deepEqual(res.json, { url: '/v2/models/model-r2/infer', bytes: 2 });
  }
  assert.equal(a.seen.length, 0);
  assert.equal(b.seen.length, 20);
});

test('shadow revisions get copies; their errors and slowness never reach the client', async () => {
  const live = await standIn('live', (_req, res) => res.end('live answer'));
  let releaseSlow: () => void = () => {};
  const slowReleased = new Promise<void>((r) => (releaseSlow = r));
  let shadowCalls = 0;
  const shadow = await standIn('shadow', (_req, res) => {
    shadowCalls++;
    if (shadowCalls === 1) {
      // The first copy hangs until the test lets it go, then fails.
      void slowReleased.then(() => {
        res.writeHead(500);
        res.end('shadow broke');
      });
    } else {
      res.writeHead(500);
      res.end('shadow broke');
    }
  });
  const logged: Array<{ level: number; outcome?: string; revision?: string; msg?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  const { gw, base } = await gateway(
    table('d', rev(1, 100, [live]), rev(2, 0, [shadow], { shadow: 100, servedName: 'candidate' })),
    { logger },
  );
  const firstCopy = shadow.nextArrival();
  const res = await call(`${base}/v2/models/d/infer?q=1`, { body: '{"x":[1,2]}' });
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'live answer');
  assert.equal(res.headers.get('x-ferry-revision'), '1');
  await firstCopy; // the copy arrived, and hangs; the client already has its answer
  assert.equal(gw.outstanding('shadow'), 1);
  releaseSlow();
  assert.equal(await gw.waitIdle(['shadow'], 10_000), true);
  const second = await call(`${base}/v2/models/d/infer?q=1`, { body: '{"x":[1,2]}' });
  assert.equal(second.status, 200);
  assert.equal(await gw.waitIdle(['shadow'], 10_000), true);
  assert.equal(shadow.seen.length, 2);
  assert.equal(shadow.seen[0]!.url, '/v2/models/candidate/infer?q=1');
  assert.equal(shadow.seen[0]!.body.toString(), '{"x":[1,2]}');
  assert.equal(shadow.seen[0]!.headers['x-ferry-shadow'], '1');
  assert.equal(shadow.seen[0]!.headers['x-request-id'], live.seen[0]!.headers['x-request-id']);
  assert.equal(
    await metricValue(gw, 'ferry_gateway_shadow_requests_total', { revision: '2', outcome: 'error_status' }),
    2,
  );
  // Their answers are recorded in the log too, at warn for a non-2xx one.
  const shadowLines = logged.filter((l) => l.msg === 'gateway: shadow request');
  assert.equal(shadowLines.length, 2);
  for (const l of shadowLines) assert.deepEqual([l.level, l.outcome, l.revision], [40, 'error_status', '2']);
  // A shadow revision whose replica is gone: still no effect on the client.
  const dead = await deadReplica();
  gw.setRoutes(table('d', rev(1, 100, [live]), rev(2, 0, [{ id: 'gone', url: dead }], { shadow: 100 })));
  const third = await call(`${base}/v2/models/d/infer`, { body: '{}' });
  assert.equal(third.status, 200);
  assert.equal(await gw.waitIdle(['gone'], 10_000), true);
  assert.equal(await metricValue(gw, 'ferry_gateway_shadow_requests_total', { outcome: 'failed' }), 1);
});

// ---------------------------------------------------------------------------------------------
// retries, ejection, timeouts

test('connection refused is retried on another replica; a failed replica is never tried twice', async () => {
  const live = await standIn('b-live');
  const dead = await deadReplica();
  // least-outstanding breaks ties by id: the dead replica is picked first.
  const { gw, base } = await gateway(table('d', rev(1, 100, [{ id: 'a-dead', url: dead }, live])));
  const res = await call(`${base}/v2/models/d/infer`, { body: '{"n":1}' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-ferry-replica'), 'b-live');
  assert.equal(live.seen[0]!.body.toString(), '{"n":1}');
  assert.equal(await metricValue(gw, 'ferry_gateway_retries_total', { deployment: 'd' }), 1);
  assert.equal(await metricValue(gw, 'ferry_gateway_upstream_failures_total', { reason: 'connect' }), 1);

  // Two dead replicas, three attempts allowed: each is tried once, then 502.
  const dead2 = await deadReplica();
  gw.setRoutes(
    table(
      'd',
      rev(1, 100, [
        { id: 'a-dead', url: dead },
        { id: 'c-dead', url: dead2 },
      ]),
    ),
  );
  const failed = await call(`${base}/v2/models/d/infer`, { body: '{}' });
  assert.equal(failed.status, 502);
  assert.equal(failed.json?.code, 'FERRY_UPSTREAM_FAILED');
  assert.match(String(failed.json?.error), /no other ready replica/);
  assert.equal(await metricValue(gw, 'ferry_gateway_upstream_failures_total', { reason: 'connect' }), 3);
  assert.equal(await metricValue(gw, 'ferry_gateway_retries_total', { deployment: 'd' }), 2);
});

test('an exhausted retry budget turns a connection failure into 502', async () => {
  const live = await standIn('b-live');
  const { gw, base } = await gateway(
    table('d', rev(1, 100, [{ id: 'a-dead', url: await deadReplica() }, live])),
    { retryBudget: { ratio: 0, minRetriesPerSecond: 0, windowMs: 10_000, bucketMs: 1000 } },
  );
  const res = await call(`${base}/v2/models/d/infer`, { body: '{}' });
  assert.equal(res.status, 502);
  assert.equal(res.json?.code, 'FERRY_UPSTREAM_FAILED');
  assert.match(String(res.json?.error), /retry budget of deployment 'd' is spent/);
  assert.equal(live.seen.length, 0);
  assert.equal(await metricValue(gw, 'ferry_gateway_retries_total', {}), 0);
});

test('a draining replica (503 with x-ferry-draining: 1) is retried on another one; the header decides, not the body', async () => {
  const draining = await standIn('a-draining', (_req, res) => {
    res.writeHead(503, {
      'content-type': 'application/json',
      connection: 'close',
      'retry-after': '1',
      'x-ferry-draining': '1',
    });
    res.end('{"error":"the server is shutting down","code":"FERRY_SHUTTING_DOWN"}');
  });
  const busy = await standIn('b-busy', (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":"queue full","code":"FERRY_QUEUE_FULL"}');
  });
  const { gw, base } = await gateway(table('d', rev(1, 100, [draining, busy])));
  const res = await call(`${base}/v2/models/d/infer`, { body: '{"k":2}' });
  // The draining replica was skipped; the other one's own 503 (a real answer) is passed on.
  assert.equal(res.status, 503);
  assert.equal(res.json?.code, 'FERRY_QUEUE_FULL');
  assert.equal(res.headers.get('x-ferry-replica'), 'b-busy');
  assert.equal(busy.seen[0]!.body.toString(), '{"k":2}');
  assert.equal(
    await metricValue(gw, 'ferry_gateway_upstream_failures_total', { reason: 'shutting_down' }),
    1,
  );
  assert.equal(await metricValue(gw, 'ferry_gateway_retries_total', {}), 1);

  // A 503 that only mentions FERRY_SHUTTING_DOWN in its body (a model's own text, say) is an answer.
  const talker = await standIn('c-talker', (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":"upstream said FERRY_SHUTTING_DOWN","code":"FERRY_QUEUE_FULL"}');
  });
  const second = await gateway(table('e', rev(1, 100, [talker])));
  const passed = await call(`${second.base}/v2/models/e/infer`, { body: '{}' });
  assert.equal(passed.status, 503);
  assert.equal(passed.headers.get('x-ferry-replica'), 'c-talker');
  assert.equal(talker.seen.length, 1, 'not retried');
});

test('a replica that keeps failing is ejected, then probed once the ejection ends', async () => {
  let now = 1_000_000;
  const bad = await standIn('a-bad', (req) => req.socket.destroy());
  const good = await standIn('b-good');
  const { gw, base } = await gateway(table('d', rev(1, 100, [bad, good])), {
    now: () => now,
    ejection: { consecutiveFailures: 2, baseEjectionMs: 1000, maxEjectionMs: 60_000, maxEjectedPercent: 50 },
    retryBudget: { ratio: 1, minRetriesPerSecond: 100, windowMs: 10_000, bucketMs: 1000 },
  });
  const send = async () => {
    const res = await call(`${base}/v2/models/d/infer`, { body: '{}' });
    assert.equal(res.status, 200, 'every client request succeeds through the retry');
    assert.equal(res.headers.get('x-ferry-replica'), 'b-good');
  };
  await send();
  await send();
  assert.equal(bad.seen.length, 2);
  assert.equal(await metricValue(gw, 'ferry_gateway_ejections_total', {}), 1);
  await send();
  await send();
  assert.equal(bad.seen.length, 2, 'ejected: no traffic');
  assert.equal(await metricValue(gw, 'ferry_gateway_retries_total', {}), 2, 'no retries while ejected');
  now += 1000; // the ejection ends
  await send();
  assert.equal(bad.seen.length, 3, 'probed once');
  assert.equal(
    await metricValue(gw, 'ferry_gateway_ejections_total', {}),
    2,
    'the failed probe ejects again',
  );
  now += 1500; // still ejected: the second ejection lasts 2 s
  await send();
  assert.equal(bad.seen.length, 3);
});

test('a request that outlives the timeout gets 504 FERRY_DEADLINE_EXCEEDED and frees the replica', async () => {
  const upstreamClosed = deferred<void>();
  const hang = await standIn('hang', (req) => {
    req.socket.on('close', () => upstreamClosed.resolve());
  });
  const { gw, base } = await gateway(table('d', rev(1, 100, [hang])), { requestTimeoutMs: 200 });
  const res = await call(`${base}/v2/models/d/infer`, { body: '{}' });
  assert.equal(res.status, 504);
  assert.equal(res.json?.code, 'FERRY_DEADLINE_EXCEEDED');
  assert.equal(gw.outstanding('hang'), 0);
  await upstreamClosed.promise; // the gateway aborted its request to the replica
  assert.equal(await metricValue(gw, 'ferry_gateway_upstream_failures_total', { reason: 'timeout' }), 1);
});

test('a connection that breaks after the response started cuts the client connection', async () => {
  const r = await standIn('r', (_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setImmediate(() => res.socket?.destroy());
  });
  const { gw, base } = await gateway(table('d', rev(1, 100, [r])));
  await assert.rejects(call(`${base}/v2/models/d/infer`, { body: '{}' }));
  assert.equal(await gw.waitIdle(['r'], 10_000), true);
  assert.equal(
    await metricValue(gw, 'ferry_gateway_upstream_failures_total', { reason: 'response_aborted' }),
    1,
  );
});

// ---------------------------------------------------------------------------------------------
// bodies, aborts, draining

test('a binary body of a few MB arrives byte-identical, and the response streams back byte-identical', async () => {
  const upBody = randomBytes(5 * 1024 * 1024 + 3);
  const downBody = randomBytes(7 * 1024 * 1024 + 5);
  const r = await standIn('r', (req, res, body) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'x-received-sha256': createHash('sha256').update(body).digest('hex'),
      'x-received-type': String(req.headers['content-type']),
    });
    // Stream the answer in pieces, no content-length (chunked on both hops).
    let at = 0;
    const step = () => {
      while (at < downBody.length) {
        const piece = downBody.subarray(at, at + 65_536);
        at += piece.length;
        if (!res.write(piece)) return res.once('drain', step);
      }
      res.end();
    };
    step();
  });
  const { base } = await gateway(table('d', rev(1, 100, [r])), { maxRetryBodyBytes: 1024 });
  const res = await call(`${base}/v2/models/d/infer`, {
    body: upBody,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-received-sha256'), createHash('sha256').update(upBody).digest('hex'));
  assert.equal(res.headers.get('x-received-type'), 'application/octet-stream');
  assert.equal(res.body.length, downBody.length);
  assert.ok(res.body.equals(downBody));
  assert.equal(r.seen[0]!.headers['inference-header-content-length'], '0');
});

test('a chunked request body (no content-length) is passed on chunked, and survives a retry', async () => {
  const r = await standIn('b-live', (req, res, body) => {
    res.end(JSON.stringify({ te: req.headers['transfer-encoding'] ?? null, body: body.toString() }));
  });
  const { base } = await gateway(table('d', rev(1, 100, [{ id: 'a-dead', url: await deadReplica() }, r])));
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request(`${base}/v2/models/d/infer`, { method: 'POST' });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.write('{"part":1,');
    setImmediate(() => req.end('"part2":2}'));
  });
  assert.deepEqual(JSON.parse(answer), { te: 'chunked', body: '{"part":1,"part2":2}' });
});

test('a client that goes away frees the outstanding slot and aborts the upstream request', async () => {
  const r = await standIn('r', () => {}, { readBody: false });
  const { gw, base } = await gateway(table('d', rev(1, 100, [r])));
  const arrived = r.nextArrival();
  const client = request(`${base}/v2/models/d/infer`, { method: 'POST' });
  client.on('error', () => {});
  client.write('{"partial":');
  const upstream = await arrived;
  assert.equal(gw.outstanding('r'), 1);
  const upstreamClosed = new Promise((resolve) => upstream.socket.once('close', resolve));
  client.destroy();
  await upstreamClosed;
  assert.equal(gw.outstanding('r'), 0);
  // The gauge is back to 0 and the request is counted as 499.
  assert.equal(await metricValue(gw, 'ferry_gateway_outstanding', { revision: '1' }), 0);
  assert.equal(await metricValue(gw, 'ferry_gateway_requests_total', { code: '499' }), 1);
});

test('waitIdle resolves once in-flight requests of a removed replica finish; setRoutes keeps counts', async () => {
  const held = deferred<ServerResponse>();
  const r = await standIn('r', (_req, res) => held.resolve(res));
  const other = await standIn('other');
  const { gw, base } = await gateway(table('d', rev(1, 100, [r])));
  const pending = call(`${base}/v2/models/d/infer`, { body: '{}' });
  const upstream = await held.promise;
  // A table change that keeps the replica keeps its count.
  gw.setRoutes(table('d', rev(1, 100, [r, other])));
  assert.equal(gw.outstanding('r'), 1);
  // Drain: remove it, then wait.
  gw.setRoutes(table('d', rev(1, 100, [other])));
  assert.equal(gw.outstanding('r'), 1);
  let idle: boolean | undefined;
  const waiting = gw.waitIdle(['r', 'other'], 30_000).then((v) => (idle = v));
  assert.equal(await gw.waitIdle(['r'], 1), false, 'a short wait times out');
  assert.equal(
    (await call(`${base}/v2/models/d/infer`, { body: '{}' })).headers.get('x-ferry-replica'),
    'other',
  );
  assert.equal(idle, undefined, 'still in flight');
  upstream.end('late');
  assert.equal(await waiting, true);
  assert.equal((await pending).body.toString(), 'late');
  assert.equal(gw.outstanding('r'), 0);
});

test('close() lets an in-flight request finish and then stops', async () => {
  const held = deferred<ServerResponse>();
  const r = await standIn('r', (_req, res) => held.resolve(res));
  const gw = createGateway();
  gw.setRoutes(table('d', rev(1, 100, [r])));
  const base = await gw.listen(0);
  const pending = call(`${base}/v2/models/d/infer`, { body: '{}' });
  const res = await held.promise;
  const closed = gw.close();
  res.end('finished');
  const answer = await pending;
  assert.equal(answer.status, 200);
  assert.equal(answer.body.toString(), 'finished');
  assert.equal(answer.headers.get('connection'), 'close');
  await closed;
  await assert.rejects(fetch(`${base}/v2/health/live`));
});

test('power-of-two balancing spreads load over the ready replicas', async () => {
  const reps = await Promise.all(['a', 'b', 'c'].map((id) => standIn(id)));
  const { base } = await gateway(
    table('d', rev(1, 100, [...reps, { id: 'down', url: await deadReplica(), ready: false }])),
    { balancer: 'power-of-two' },
  );
  for (let i = 0; i < 60; i++)
    assert.equal((await call(`${base}/v2/models/d/infer`, { body: '{}' })).status, 200);
  for (const r of reps) assert.ok(r.seen.length > 0, `${r.id} got traffic`);
  assert.equal(
    reps.reduce((n, r) => n + r.seen.length, 0),
    60,
  );
});

// ---------------------------------------------------------------------------------------------
// tenants, private deployments, rate limits

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const TOKENS = {
  acme: 'fy_acme_invoker_0123456789',
  globex: 'fy_globex_invoker_9876543210',
  acmeKey: 'fy_acme_iris_key_abcdef',
  limited: 'fy_acme_limited_token',
};

function dep(name: string, tenant: string | undefined, isPublic: boolean | undefined, r: RouteRevision) {
  return {
    name,
    ...(tenant === undefined ? {} : { tenant }),
    ...(isPublic === undefined ? {} : { public: isPublic }),
    revisions: [r],
  };
}

/** node:http (fetch may not set Host, nor send a header twice). */
function rawCall(
  url: string,
  headers: Record<string, string | string[]> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; json: Record<string, unknown> | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST' });
    for (const [k, v] of Object.entries(headers)) req.setHeader(k, v);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode!, headers: res.headers, json });
      });
    });
    req.on('error', reject);
    req.end('{}');
  });
}

async function tenantSetup(options: GatewayOptions = {}) {
  const plain = await standIn('plain');
  const acme = await standIn('acme');
  const acmeOther = await standIn('acme-other');
  const globex = await standIn('globex');
  const routes: RouteTable = {
    deployments: [
      dep('iris', undefined, true, rev(1, 100, [plain])),
      dep('iris', 'acme', undefined, rev(1, 100, [acme])),
      dep('other', 'acme', false, rev(1, 100, [acmeOther])),
      dep('iris', 'globex', false, rev(1, 100, [globex])),
      dep('open', 'globex', true, rev(2, 100, [{ id: 'globex-open', url: globex.url }])),
    ],
    callers: [
      { id: 'tok-acme', hash: sha256hex(TOKENS.acme), tenant: 'acme' },
      { id: 'tok-globex', hash: sha256hex(TOKENS.globex), tenant: 'globex' },
      { id: 'key-acme-iris', hash: sha256hex(TOKENS.acmeKey), tenant: 'acme', deployment: 'iris' },
    ],
  };
  const { gw, base } = await gateway(routes, options);
  return { gw, base, routes, plain, acme, acmeOther, globex };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

test('a private deployment needs a bearer token of its tenant: 401 without or with a bad one, 200 with it', async () => {
  const { gw, base, acme } = await tenantSetup();
  const url = `${base}/t/acme/v2/models/iris/infer`;
  const none = await call(url, { body: '{}' });
  assert.equal(none.status, 401);
  assert.equal(none.json?.code, 'FERRY_UNAUTHORIZED');
  assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="ferry"');
  assert.match(String(none.json?.error), /deployment 'iris' is private/);
  for (const authorization of [
    `Bearer ${TOKENS.acme}x`,
    `Basic ${Buffer.from(`u:${TOKENS.acme}`).toString('base64')}`,
    'Bearer',
    `Bearer ${TOKENS.acme} extra`,
    TOKENS.acme,
    '',
  ]) {
    const bad = await call(url, { body: '{}', headers: { authorization } });
    assert.equal(bad.status, 401, authorization);
    assert.equal(bad.json?.code, 'FERRY_UNAUTHORIZED');
    assert.equal(bad.headers.get('www-authenticate'), 'Bearer realm="ferry", error="invalid_token"');
  }
  // The token counts in the Authorization header only: never from the URL.
  for (const q of [`access_token=${TOKENS.acme}`, `token=${TOKENS.acme}`])
    assert.equal((await call(`${url}?${q}`, { body: '{}' })).status, 401, q);
  // Twice (even the right token twice): refused, as a proxy might pick either.
  const twice = await rawCall(url, { authorization: [`Bearer ${TOKENS.acme}`, `Bearer ${TOKENS.acme}`] });
  assert.equal(twice.status, 401);
  assert.equal(acme.seen.length, 0, 'nothing reached the replica');

  for (const scheme of ['Bearer', 'bearer', 'BEARER'])
    assert.equal(
      (await call(url, { body: '{}', headers: { authorization: `${scheme} ${TOKENS.acme}` } })).status,
      200,
      scheme,
    );
  assert.equal(acme.seen.length, 3);
  for (const s of acme.seen)
    assert.equal(s.headers.authorization, undefined, 'the token never goes upstream');
  assert.equal(await metricValue(gw, 'ferry_gateway_denied_total', { deployment: 'acme/iris' }), 10);
  assert.equal(
    await metricValue(gw, 'ferry_gateway_denied_total', { deployment: 'acme/iris', reason: 'unauthorized' }),
    10,
  );
  assert.equal(
    await metricValue(gw, 'ferry_gateway_requests_total', { deployment: 'acme/iris', code: '401' }),
    10,
  );
  const text = (await call(`${base}/metrics`)).body.toString();
  for (const t of Object.values(TOKENS)) {
    assert.ok(!text.includes(t), 'no token in /metrics');
    assert.ok(!text.includes(sha256hex(t)), 'no token hash in /metrics');
  }
});

test('public deployments take anyone; Authorization is stripped there too and no token is read', async () => {
  const { base, plain, globex } = await tenantSetup();
  const open = await call(`${base}/v2/models/iris/infer`, { body: '{}' });
  assert.equal(open.status, 200);
  assert.equal(open.headers.get('x-ferry-replica'), 'plain');
  const junk = await call(`${base}/v2/models/iris/infer`, { body: '{}', headers: bearer('not-a-token') });
  assert.equal(junk.status, 200, 'a public deployment does not judge tokens');
  assert.equal(plain.seen[1]!.headers.authorization, undefined);
  const tenantPublic = await call(`${base}/t/globex/v2/models/open/infer`, { body: '{}' });
  assert.equal(tenantPublic.status, 200);
  assert.equal(tenantPublic.headers.get('x-ferry-replica'), 'globex-open');
  assert.equal(globex.seen[0]!.url, '/v2/models/model-r2/infer');
});

test('same name in two tenants: each token reaches its own tenant, 403 on the other; keys stay on their deployment', async () => {
  const { gw, base, acme, acmeOther, globex, plain } = await tenantSetup();
  const acmeIris = `${base}/t/acme/v2/models/iris/infer`;
  const globexIris = `${base}/t/globex/v2/models/iris/infer`;
  assert.equal((await call(acmeIris, { body: '{}', headers: bearer(TOKENS.acme) })).status, 200);
  assert.equal((await call(globexIris, { body: '{}', headers: bearer(TOKENS.globex) })).status, 200);
  assert.equal(acme.seen.length, 1);
  assert.equal(globex.seen.length, 1);
  assert.equal(acme.seen[0]!.url, '/v2/models/model-r1/infer', 'OIP path inside the prefix, rewritten');

  const cross = await call(globexIris, { body: '{}', headers: bearer(TOKENS.acme) });
  assert.equal(cross.status, 403);
  assert.equal(cross.json?.code, 'FERRY_FORBIDDEN');
  assert.match(String(cross.json?.error), /token 'tok-acme' may not call deployment 'iris'/);
  assert.equal((await call(acmeIris, { body: '{}', headers: bearer(TOKENS.globex) })).status, 403);
  // A per-deployment key: its deployment only.
  assert.equal((await call(acmeIris, { body: '{}', headers: bearer(TOKENS.acmeKey) })).status, 200);
  const otherDep = await call(`${base}/t/acme/v1/models/other:predict`, {
    body: '{}',
    headers: bearer(TOKENS.acmeKey),
  });
  assert.equal(otherDep.status, 403);
  assert.equal((await call(globexIris, { body: '{}', headers: bearer(TOKENS.acmeKey) })).status, 403);
  // The tenant's invoker token: every deployment of the tenant.
  assert.equal(
    (await call(`${base}/t/acme/v1/models/other:predict`, { body: '{}', headers: bearer(TOKENS.acme) }))
      .status,
    200,
  );
  assert.equal(acmeOther.seen.length, 1);
  // The default tenant's public iris is neither of them.
  assert.equal(
    (await call(`${base}/v2/models/iris/infer`, { body: '{}' })).headers.get('x-ferry-replica'),
    'plain',
  );
  assert.equal(
    (await call(`${base}/t/default/v2/models/iris/infer`, { body: '{}' })).headers.get('x-ferry-replica'),
    'plain',
  );
  assert.equal(plain.seen.length, 2);
  assert.equal(acme.seen.length, 2);
  assert.equal(globex.seen.length, 1);
  assert.equal(
    await metricValue(gw, 'ferry_gateway_denied_total', { deployment: 'globex/iris', reason: 'forbidden' }),
    2,
  );
  assert.equal(
    await metricValue(gw, 'ferry_gateway_denied_total', { deployment: 'acme/other', reason: 'forbidden' }),
    1,
  );
});

test('%2F and other tricks never reach another tenant; unknown names are 404 and the hint names no private one', async () => {
  const { base, acme, globex, plain } = await tenantSetup();
  for (const path of [
    '/v2/models/acme%2Firis/infer',
    '/v2/models/acme%2firis/infer',
    '/v1/models/acme%2Firis:predict',
    '/t/acme%2Fglobex/v2/models/iris/infer',
    '/t/globex/v2/models/..%2Facme%2Firis/infer',
    '/t/acme/t/globex/v2/models/iris/infer',
    '/t/acme/v2/models/iris/../../../t/globex/v2/models/iris/infer',
  ]) {
    const res = await call(`${base}${path}`, { body: '{}', headers: bearer(TOKENS.acme) });
    assert.equal(res.status, 404, path);
    assert.equal(res.json?.code, 'FERRY_ROUTE_NOT_FOUND', path);
  }
  const unknown = await call(`${base}/t/acme/v2/models/nope/infer`, {
    body: '{}',
    headers: bearer(TOKENS.acme),
  });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json?.code, 'FERRY_MODEL_NOT_FOUND');
  assert.match(String(unknown.json?.error), /no deployment 'nope' in tenant 'acme'/);
  assert.doesNotMatch(String(unknown.json?.hint), /iris|other/, 'private names are not listed');
  const globexHint = String((await call(`${base}/t/globex/v2/models/nope/infer`, { body: '{}' })).json?.hint);
  assert.match(globexHint, /Public deployments here: open /);
  assert.doesNotMatch(globexHint, /iris/);
  const defaultHint = String((await call(`${base}/v2/models/nope/infer`, { body: '{}' })).json?.hint);
  assert.match(defaultHint, /Public deployments here: iris /);
  assert.doesNotMatch(defaultHint, /open|other/, "another tenant's names are not listed");
  // An unknown tenant looks like any unknown name.
  assert.equal((await call(`${base}/t/initech/v2/models/iris/infer`, { body: '{}' })).status, 404);
  assert.equal(acme.seen.length + globex.seen.length + plain.seen.length, 0);
});

test('under /t/{tenant}/ the gateway answers health and server metadata for every tenant; /metrics is not there', async () => {
  const { base } = await tenantSetup();
  for (const t of ['acme', 'initech']) {
    assert.deepEqual((await call(`${base}/t/${t}/v2/health/live`)).json, { live: true });
    assert.deepEqual((await call(`${base}/t/${t}/v2/health/ready`)).json, { ready: true });
    assert.equal((await call(`${base}/t/${t}/v2`)).json?.name, 'ferry-gateway');
    assert.equal((await call(`${base}/t/${t}/metrics`)).status, 404);
  }
});

test('tenantHostSuffix: the Host names the tenant for unprefixed paths; a prefix must agree with it', async () => {
  const { base, acme, plain } = await tenantSetup({ tenantHostSuffix: '.Models.Example.Test' });
  const host = (h: string) => ({ host: h, ...bearer(TOKENS.acme) });
  const byHost = await rawCall(`${base}/v2/models/iris/infer`, host('acme.models.example.test:8080'));
  assert.equal(byHost.status, 200);
  assert.equal(byHost.headers['x-ferry-replica'], 'acme');
  assert.equal(acme.seen[0]!.headers.host, new URL(acme.url).host, 'the replica gets its own Host');
  assert.equal(
    (await rawCall(`${base}/t/acme/v2/models/iris/infer`, host('acme.models.example.test'))).status,
    200,
  );
  const disagree = await rawCall(`${base}/t/globex/v2/models/iris/infer`, host('acme.models.example.test'));
  assert.equal(disagree.status, 404);
  assert.equal(disagree.json?.code, 'FERRY_ROUTE_NOT_FOUND');
  assert.equal((await rawCall(`${base}/v2/models/iris/infer`, host('a.b.models.example.test'))).status, 404);
  // Another Host (an IP, localhost): the default tenant, and prefixes as usual.
  const ip = await rawCall(`${base}/v2/models/iris/infer`, { host: '127.0.0.1' });
  assert.equal(ip.headers['x-ferry-replica'], 'plain');
  assert.equal((await rawCall(`${base}/t/acme/v2/models/iris/infer`, host('localhost'))).status, 200);
  assert.equal(plain.seen.length, 1);
  assert.equal(acme.seen.length, 3);
  assert.throws(
    () => createGateway({ tenantHostSuffix: 'models.example.test' }),
    (e: Error & { code?: string }) => e.code === 'FERRY_BAD_REQUEST' && /leading dot/.test(e.message),
  );
});

test('rate limits: 429 with Retry-After past the burst, recovery with time, buckets kept across route tables', async () => {
  let now = 5_000_000;
  const r = await standIn('r');
  const table1: RouteTable = {
    deployments: [
      dep('d', 'acme', false, rev(1, 100, [r])),
      dep('pub', 'acme', true, rev(2, 100, [{ id: 'r-pub', url: r.url }])),
    ],
    callers: [
      {
        id: 'tok-limited',
        hash: sha256hex(TOKENS.limited),
        tenant: 'acme',
        rateLimit: { perSecond: 0.5, burst: 2 },
      },
      { id: 'tok-free', hash: sha256hex(TOKENS.acme), tenant: 'acme' },
    ],
  };
  const { gw, base } = await gateway(table1, { now: () => now });
  const url = `${base}/t/acme/v2/models/d/infer`;
  const send = (token: string, u = url) => call(u, { body: '{}', headers: bearer(token) });
  assert.equal((await send(TOKENS.limited)).status, 200);
  assert.equal((await send(TOKENS.limited)).status, 200);
  const limited = await send(TOKENS.limited);
  assert.equal(limited.status, 429);
  assert.equal(limited.json?.code, 'FERRY_RATE_LIMITED');
  assert.equal(limited.headers.get('retry-after'), '2', 'one token every 2 s at 0.5/s');
  assert.match(String(limited.json?.error), /token 'tok-limited' is over its rate limit/);
  // Another token of the tenant has no limit; a public deployment limits nobody.
  for (let i = 0; i < 5; i++) assert.equal((await send(TOKENS.acme)).status, 200);
  for (let i = 0; i < 3; i++)
    assert.equal((await send(TOKENS.limited, `${base}/t/acme/v2/models/pub/infer`)).status, 200);
  // A new route table (a replica change, the same callers) does not refill the bucket.
  gw.setRoutes(structuredClone(table1));
  assert.equal((await send(TOKENS.limited)).status, 429);
  now += 1000;
  const later = await send(TOKENS.limited);
  assert.equal(later.status, 429);
  assert.equal(later.headers.get('retry-after'), '1');
  now += 1000;
  assert.equal((await send(TOKENS.limited)).status, 200, 'a token came back after 2 s');
  assert.equal((await send(TOKENS.limited)).status, 429);
  assert.equal(
    await metricValue(gw, 'ferry_gateway_denied_total', { deployment: 'acme/d', reason: 'rate_limited' }),
    4,
  );
  assert.equal(
    await metricValue(gw, 'ferry_gateway_requests_total', { deployment: 'acme/d', code: '429' }),
    4,
  );
  // A refused request consumed nothing upstream.
  assert.equal(r.seen.length, 2 + 5 + 3 + 1);
});

test('setRoutes: a name once per tenant (twice across tenants is fine); callers are checked', () => {
  const gw = createGateway();
  const r = rev(1, 100, [{ id: 'a', url: 'http://127.0.0.1:1' }]);
  const r2 = rev(1, 100, [{ id: 'b', url: 'http://127.0.0.1:1' }]);
  gw.setRoutes({ deployments: [dep('iris', undefined, true, r), dep('iris', 'acme', false, r2)] });
  const problems = (table: RouteTable): string => {
    try {
      gw.setRoutes(table);
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.match(
    problems({ deployments: [dep('iris', 'acme', true, r), dep('iris', 'acme', false, r2)] }),
    /deployments\[1\]\.name: 'iris' appears twice in tenant 'acme'/,
  );
  assert.match(
    problems({ deployments: [dep('iris', undefined, true, r), dep('iris', 'default', false, r2)] }),
    /appears twice in tenant 'default'/,
  );
  assert.match(problems({ deployments: [dep('iris', 'a/b', true, r)] }), /deployments\[0\]\.tenant/);
  assert.match(
    problems({ deployments: [{ ...dep('iris', 'a', true, r), public: 'yes' as unknown as boolean }] }),
    /deployments\[0\]\.public/,
  );
  const good = { id: 't1', hash: sha256hex('x'), tenant: 'acme' };
  assert.equal(problems({ deployments: [], callers: [good] }), '');
  const message = problems({
    deployments: [],
    callers: [
      good,
      { ...good },
      { id: 't3', hash: sha256hex('y').toUpperCase(), tenant: 'acme' },
      { id: 't4', hash: 'abc', tenant: '' },
      {
        id: 't5',
        hash: sha256hex('z'),
        tenant: 'acme',
        deployment: 'a/b',
        rateLimit: { perSecond: 0, burst: 0.5 },
      },
    ],
  });
  for (const want of [
    /callers\[1\]\.id: 't1' appears twice/,
    /callers\[1\]\.hash: the same hash as an earlier caller/,
    /callers\[2\]\.hash: must be a sha256 in 64 lowercase hex digits/,
    /callers\[3\]\.hash/,
    /callers\[3\]\.tenant/,
    /callers\[4\]\.deployment/,
    /callers\[4\]\.rateLimit: perSecond must be a number above 0, got 0/,
    /callers\[4\]\.rateLimit: burst must be a number of at least 1, got 0.5/,
  ])
    assert.match(message, want);
  assert.ok(!message.includes(sha256hex('x')), 'a hash is never quoted');
});
