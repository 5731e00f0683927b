/**
 * Load samples and the activator (issue 11) over real HTTP on 127.0.0.1, with stand-in replicas (node:http
 * servers started here). The gateway's clock is injected where the samples' numbers matter; waits are on
 * conditions (a request held, an answer arrived), never fixed sleeps.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { freePort } from '../core/free-port.ts';
import type { RouteDeployment, RouteTable } from '../core/route-table.ts';
import { seededRandom } from './random.ts';
import { createGateway, type Gateway, type GatewayOptions } from './server.ts';

interface Seen {
  url: string;
  body: string;
}

interface StandIn {
  id: string;
  url: string;
  seen: Seen[];
  server: Server;
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A replica that records what arrives (in arrival order of the request heads) and answers with `handler`. */
async function standIn(
  id: string,
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_q, res, body) =>
    res.end(`ok:${body}`),
): Promise<StandIn> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const entry: Seen = { url: req.url!, body: '' };
    seen.push(entry);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      entry.body = body;
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const s: StandIn = {
    id,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    server,
  };
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return s;
}

function deployment(
  replicas: { id: string; url: string; ready: boolean }[],
  extra: Partial<RouteDeployment> = {},
): RouteDeployment {
  return {
    name: 'd',
    public: true,
    activator: { maxHeld: 10, maxWaitMs: 60_000 },
    revisions: [{ revision: 1, percent: 100, shadow: 0, servedName: 'm', replicas }],
    ...extra,
  };
}

function tableOf(...deployments: RouteDeployment[]): RouteTable {
  return { deployments };
}

async function gateway(
  routes: RouteTable,
  options: GatewayOptions = {},
): Promise<{ gw: Gateway; base: string }> {
  const gw = createGateway({ random: seededRandom(7), ...options });
  gw.setRoutes(routes);
  const base = await gw.listen(0);
  cleanups.push(() => gw.close());
  return { gw, base };
}

async function call(url: string, body = '{}', headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', body, headers });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Waits (event-loop turns, no fixed sleep) until `cond` holds; fails after 5 s so a bug cannot hang the run. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function held(gw: Gateway, dep = 'd'): number {
  return gw.heldSamples().find((s) => s.deployment === dep)?.held ?? 0;
}

async function metricValue(gw: Gateway, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await gw.metrics.getMetricsAsJSON()).find((x) => x.name === name);
  if (!m) return 0;
  let sum = 0;
  for (const v of m.values as { value: number; labels: Record<string, string | number> }[])
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  return sum;
}

// ---------------------------------------------------------------------------------------------
// load samples

test('load samples: average concurrency and arrivals per period on an injected clock; periods reset', async () => {
  let t = 1_000;
  const answers: ServerResponse[] = [];
  const r = await standIn('r', (_req, res) => answers.push(res));
  const { gw, base } = await gateway(
    tableOf(deployment([{ id: 'r', url: r.url, ready: true }], { activator: undefined })),
    { now: () => t },
  );
  const a = call(`${base}/v2/models/d/infer`, 'a');
  await until(() => answers.length === 1, 'A at the replica');
  t = 3_000;
  const b = call(`${base}/v2/models/d/infer`, 'b');
  await until(() => answers.length === 2, 'B at the replica');
  t = 5_000;
  answers[0]!.end('A');
  assert.equal((await a).text, 'A');
  await until(() => gw.outstanding('r') === 1, 'A finished');
  t = 7_000;
  answers[1]!.end('B');
  assert.equal((await b).text, 'B');
  await until(() => gw.outstanding('r') === 0, 'B finished');
  // A in flight 1000..5000, B 3000..7000: 8000 ms·requests over 10 000 ms.
  const [s] = gw.loadSamples(11_000);
  assert.deepEqual(s, {
    deployment: 'd',
    revision: 1,
    at: 11_000,
    periodMs: 10_000,
    concurrency: 0.8,
    arrivals: 2,
  });
  // The next period starts where this one ended and saw nothing.
  t = 12_000;
  assert.deepEqual(gw.loadSamples(), [
    { deployment: 'd', revision: 1, at: 12_000, periodMs: 1_000, concurrency: 0, arrivals: 0 },
  ]);
});

test('load samples: failures, timeouts, client aborts and retries all come back to 0 in flight', async () => {
  let t = 0;
  const dead = `http://127.0.0.1:${await freePort()}`;
  let silentArrivals = 0;
  const silent = await standIn('silent', () => silentArrivals++);
  const live = await standIn('live');
  const table = tableOf(
    // One revision whose replicas refuse connections: 502 after the attempts.
    {
      name: 'broken',
      public: true,
      revisions: [
        {
          revision: 1,
          percent: 100,
          shadow: 0,
          servedName: 'm',
          replicas: [{ id: 'x', url: dead, ready: true }],
        },
      ],
    },
    // Never answers: the request timeout (50 ms) or the client going away ends it.
    {
      name: 'slow',
      public: true,
      revisions: [
        {
          revision: 2,
          percent: 100,
          shadow: 0,
          servedName: 'm',
          replicas: [{ id: 's', url: silent.url, ready: true }],
        },
      ],
    },
    // A dead replica first, then a live one: the retry is the same request.
    {
      name: 'retry',
      public: true,
      revisions: [
        {
          revision: 3,
          percent: 100,
          shadow: 0,
          servedName: 'm',
          replicas: [
            { id: 'y', url: `http://127.0.0.1:${await freePort()}`, ready: true },
            { id: 'l', url: live.url, ready: true },
          ],
        },
      ],
    },
    // No ready replica and no activator: 503 at once, an arrival but never in flight.
    {
      name: 'cold',
      public: true,
      revisions: [
        {
          revision: 4,
          percent: 100,
          shadow: 0,
          servedName: 'm',
          replicas: [{ id: 'c', url: live.url, ready: false }],
        },
      ],
    },
  );
  const { gw, base } = await gateway(table, { now: () => t, requestTimeoutMs: 50 });
  assert.equal((await call(`${base}/v2/models/broken/infer`)).status, 502);
  assert.equal((await call(`${base}/v2/models/slow/infer`)).status, 504);
  for (let i = 0; i < 4; i++) assert.equal((await call(`${base}/v2/models/retry/infer`, `${i}`)).status, 200);
  assert.equal((await call(`${base}/v2/models/cold/infer`)).status, 503);
  // A client that goes away while the replica works on it.
  const client = request(`${base}/v2/models/slow/infer`, { method: 'POST' });
  client.on('error', () => {});
  client.end('{}');
  await until(() => silentArrivals === 2, 'the second request at the silent replica');
  t = 100;
  client.destroy();
  await until(() => gw.outstanding('s') === 0, 'the abandoned request released');
  const first = new Map(gw.loadSamples(1_000).map((s) => [s.deployment, s]));
  assert.equal(first.get('broken')!.arrivals, 1);
  assert.equal(first.get('slow')!.arrivals, 2);
  assert.equal(first.get('retry')!.arrivals, 4, 'retries are not counted again');
  assert.equal(first.get('cold')!.arrivals, 1);
  assert.equal(first.get('cold')!.concurrency, 0);
  // The aborted request was in flight from 0 to 100 on the injected clock (the others took no injected time).
  assert.equal(first.get('slow')!.concurrency, 100 / 1_000);
  // Nothing leaked: a later period is at 0 everywhere.
  for (const s of gw.loadSamples(2_000)) {
    assert.equal(s.concurrency, 0, s.deployment);
    assert.equal(s.arrivals, 0, s.deployment);
  }
});

test('load samples: shadow copies are not load of the shadow revision', async () => {
  const live = await standIn('live');
  const shadow = await standIn('shadow');
  const { gw, base } = await gateway(
    tableOf({
      name: 'd',
      public: true,
      revisions: [
        {
          revision: 1,
          percent: 100,
          shadow: 0,
          servedName: 'm',
          replicas: [{ id: 'l', url: live.url, ready: true }],
        },
        {
          revision: 2,
          percent: 0,
          shadow: 100,
          servedName: 'm',
          replicas: [{ id: 's', url: shadow.url, ready: true }],
        },
      ],
    }),
  );
  for (let i = 0; i < 3; i++) assert.equal((await call(`${base}/v2/models/d/infer`)).status, 200);
  await until(() => shadow.seen.length === 3 && gw.outstanding('s') === 0, 'the shadow copies answered');
  const byRevision = new Map(gw.loadSamples().map((s) => [s.revision, s.arrivals]));
  assert.deepEqual([byRevision.get(1), byRevision.get(2)], [3, 0]);
});

test('load samples: a revision that left the table is reported while its requests finish, then forgotten', async () => {
  let t = 0;
  const answers: ServerResponse[] = [];
  const r = await standIn('r', (_req, res) => answers.push(res));
  const other = await standIn('o');
  const { gw, base } = await gateway(tableOf(deployment([{ id: 'r', url: r.url, ready: true }])), {
    now: () => t,
  });
  const pending = call(`${base}/v2/models/d/infer`);
  await until(() => answers.length === 1, 'at the replica');
  gw.setRoutes(
    tableOf({
      name: 'd',
      public: true,
      revisions: [
        {
          revision: 2,
          percent: 100,
          shadow: 0,
          servedName: 'm',
          replicas: [{ id: 'o', url: other.url, ready: true }],
        },
      ],
    }),
  );
  const one = gw.loadSamples(1_000);
  assert.deepEqual(
    one.map((s) => [s.revision, s.concurrency, s.arrivals]),
    [
      [1, 1, 1],
      [2, 0, 0],
    ],
  );
  t = 1_500;
  answers[0]!.end('late');
  await pending;
  await until(() => gw.outstanding('r') === 0, 'finished');
  const two = gw.loadSamples(2_000);
  assert.deepEqual(
    two.map((s) => [s.revision, s.concurrency]),
    [
      [1, 0.5],
      [2, 0],
    ],
  );
  assert.deepEqual(
    gw.loadSamples(3_000).map((s) => s.revision),
    [2],
  );
});

// ---------------------------------------------------------------------------------------------
// activator

test('held requests: onHeld at once, counted as load, released in order with their bodies on a ready table', async () => {
  let t = 0;
  const r = await standIn('r');
  const calls: string[] = [];
  const cold = tableOf(deployment([{ id: 'r', url: r.url, ready: false }]));
  const { gw, base } = await gateway(cold, { now: () => t, onHeld: (d) => calls.push(d) });
  const big = Buffer.alloc(300_000, 'x').toString();
  const bodies = ['{"n":1}', big, '{"n":3}'];
  const answers: Promise<Awaited<ReturnType<typeof call>>>[] = [];
  for (const [i, body] of bodies.entries()) {
    answers.push(call(`${base}/v2/models/d/infer`, body));
    await until(() => held(gw) === i + 1, `request ${i + 1} held`);
    assert.equal(calls.length, i + 1, 'onHeld was called when the request was held');
  }
  assert.deepEqual(calls, ['d', 'd', 'd']);
  assert.equal(await metricValue(gw, 'ferry_gateway_activator_held', { deployment: 'd' }), 3);
  // A table that changes nothing ready keeps them held.
  gw.setRoutes(cold);
  assert.equal(held(gw), 3);
  assert.equal(r.seen.length, 0);
  t = 1_000;
  const [s] = gw.loadSamples();
  assert.deepEqual([s!.concurrency, s!.arrivals], [3, 3], 'held requests are demand');
  gw.setRoutes(tableOf(deployment([{ id: 'r', url: r.url, ready: true }])));
  const results = await Promise.all(answers);
  for (const [i, res] of results.entries()) {
    assert.equal(res.status, 200);
    assert.equal(res.text, `ok:${bodies[i]}`);
    assert.equal(res.headers.get('x-ferry-replica'), 'r');
  }
  assert.deepEqual(
    r.seen.map((x) => x.body.slice(0, 10)),
    bodies.map((b) => b.slice(0, 10)),
    'released in the order they were held',
  );
  assert.equal(held(gw), 0);
  assert.equal(await metricValue(gw, 'ferry_gateway_activator_released_total', { deployment: 'd' }), 3);
  await until(() => gw.outstanding('r') === 0, 'all finished');
  t = 2_000;
  assert.equal(gw.loadSamples()[0]!.concurrency, 0);
});

test('a full queue answers 503 FERRY_NO_READY_REPLICA with Retry-After at once; close() answers the held ones', async () => {
  const r = await standIn('r');
  const gw = createGateway({
    routes: tableOf(
      deployment([{ id: 'r', url: r.url, ready: false }], { activator: { maxHeld: 2, maxWaitMs: 60_000 } }),
    ),
  });
  const base = await gw.listen(0);
  const first = call(`${base}/v2/models/d/infer`);
  const second = call(`${base}/v2/models/d/infer`);
  await until(() => held(gw) === 2, 'two held');
  const full = await call(`${base}/v2/models/d/infer`);
  assert.equal(full.status, 503);
  assert.equal(full.json?.code, 'FERRY_NO_READY_REPLICA');
  assert.equal(full.headers.get('retry-after'), '1');
  assert.match(String(full.json?.error), /2 request\(s\) already wait/);
  assert.equal(await metricValue(gw, 'ferry_gateway_activator_rejected_total', { reason: 'full' }), 1);
  assert.equal(held(gw), 2);
  const closed = gw.close();
  for (const res of await Promise.all([first, second])) {
    assert.equal(res.status, 503);
    assert.equal(res.json?.code, 'FERRY_NO_READY_REPLICA');
    assert.equal(res.headers.get('retry-after'), '1');
  }
  await closed;
  assert.equal(r.seen.length, 0);
  assert.equal(gw.loadSamples()[0]!.arrivals, 3);
});

test('a request held past maxWaitMs gets 503 with Retry-After and never reaches a replica', async () => {
  const r = await standIn('r');
  const { gw, base } = await gateway(
    tableOf(
      deployment([{ id: 'r', url: r.url, ready: false }], { activator: { maxHeld: 5, maxWaitMs: 30 } }),
    ),
  );
  const [one, two] = await Promise.all([
    call(`${base}/v2/models/d/infer`),
    call(`${base}/v2/models/d/infer`),
  ]);
  for (const res of [one!, two!]) {
    assert.equal(res.status, 503);
    assert.equal(res.json?.code, 'FERRY_NO_READY_REPLICA');
    assert.equal(res.headers.get('retry-after'), '1');
    assert.match(String(res.json?.error), /no ready replica within 30 ms/);
  }
  assert.equal(await metricValue(gw, 'ferry_gateway_activator_rejected_total', { reason: 'timeout' }), 2);
  assert.equal(held(gw), 0);
  gw.setRoutes(tableOf(deployment([{ id: 'r', url: r.url, ready: true }])));
  assert.equal((await call(`${base}/v2/models/d/infer`)).status, 200);
  assert.equal(r.seen.length, 1, 'only the request after the table');
});

test('a client that goes away while held is dropped and never sent', async () => {
  let t = 0;
  const r = await standIn('r');
  const { gw, base } = await gateway(tableOf(deployment([{ id: 'r', url: r.url, ready: false }])), {
    now: () => t,
  });
  const client = request(`${base}/v2/models/d/infer`, { method: 'POST' });
  client.on('error', () => {});
  client.write('{"partial":');
  await until(() => held(gw) === 1, 'held');
  t = 500;
  client.destroy();
  await until(() => held(gw) === 0, 'dropped');
  gw.setRoutes(tableOf(deployment([{ id: 'r', url: r.url, ready: true }])));
  assert.equal((await call(`${base}/v2/models/d/infer`, 'after')).status, 200);
  assert.deepEqual(
    r.seen.map((s) => s.body),
    ['after'],
  );
  assert.equal(await metricValue(gw, 'ferry_gateway_activator_released_total', {}), 0);
  assert.equal(await metricValue(gw, 'ferry_gateway_requests_total', { code: '499' }), 1);
  t = 1_000;
  await until(() => gw.outstanding('r') === 0, 'finished');
  const [s] = gw.loadSamples();
  assert.equal(s!.arrivals, 2);
  assert.equal(s!.concurrency, 500 / 1_000, 'in flight while held, not after the client left');
});

test('a private deployment: no token -> 401, never held; a valid token is held', async () => {
  const r = await standIn('r');
  const token = 'secret-token';
  const calls: string[] = [];
  const routes: RouteTable = {
    deployments: [deployment([{ id: 'r', url: r.url, ready: false }], { public: false, tenant: 'acme' })],
    callers: [{ id: 'tok1', hash: createHash('sha256').update(token).digest('hex'), tenant: 'acme' }],
  };
  const { gw, base } = await gateway(routes, { onHeld: (d) => calls.push(d) });
  const denied = await call(`${base}/t/acme/v2/models/d/infer`);
  assert.equal(denied.status, 401);
  assert.equal(held(gw, 'acme/d'), 0);
  assert.deepEqual(calls, []);
  const pending = call(`${base}/t/acme/v2/models/d/infer`, '{}', { authorization: `Bearer ${token}` });
  await until(() => held(gw, 'acme/d') === 1, 'held');
  assert.deepEqual(calls, ['acme/d']);
  gw.setRoutes({
    ...routes,
    deployments: [deployment([{ id: 'r', url: r.url, ready: true }], { public: false, tenant: 'acme' })],
  });
  const res = await pending;
  assert.equal(res.status, 200);
  assert.equal(r.seen[0]!.url, '/v2/models/m/infer');
});

test('held requests of a deployment that leaves the table get 404; without activator nothing is held', async () => {
  const r = await standIn('r');
  const calls: string[] = [];
  const { gw, base } = await gateway(tableOf(deployment([{ id: 'r', url: r.url, ready: false }])), {
    onHeld: (d) => calls.push(d),
  });
  const pending = call(`${base}/v2/models/d/infer`);
  await until(() => held(gw) === 1, 'held');
  gw.setRoutes(tableOf());
  const res = await pending;
  assert.equal(res.status, 404);
  assert.equal(res.json?.code, 'FERRY_MODEL_NOT_FOUND');
  assert.equal(await metricValue(gw, 'ferry_gateway_activator_rejected_total', { reason: 'removed' }), 1);
  gw.setRoutes(tableOf(deployment([{ id: 'r', url: r.url, ready: false }], { activator: undefined })));
  const now = await call(`${base}/v2/models/d/infer`);
  assert.equal(now.status, 503);
  assert.equal(calls.length, 1);
  assert.deepEqual(gw.heldSamples(), []);
});

test('a held request whose body is still coming when released is sent whole; a body too large cannot wait', async () => {
  const r = await standIn('r');
  const { gw, base } = await gateway(tableOf(deployment([{ id: 'r', url: r.url, ready: false }])), {
    maxRetryBodyBytes: 1_000,
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const client = request(`${base}/v2/models/d/infer`, { method: 'POST' });
    client.on('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    client.on('error', reject);
    client.write('{"first":');
    void until(() => held(gw) === 1, 'held').then(() => {
      gw.setRoutes(tableOf(deployment([{ id: 'r', url: r.url, ready: true }])));
      client.end('"second"}');
    });
  });
  assert.deepEqual(await answer, { status: 200, body: 'ok:{"first":"second"}' });
  gw.setRoutes(tableOf(deployment([{ id: 'r', url: r.url, ready: false }])));
  const big = await call(`${base}/v2/models/d/infer`, 'x'.repeat(5_000));
  assert.equal(big.status, 503);
  assert.equal(big.json?.code, 'FERRY_NO_READY_REPLICA');
  assert.match(String(big.json?.error), /body over 1000 bytes cannot wait/);
  assert.equal(
    await metricValue(gw, 'ferry_gateway_activator_rejected_total', { reason: 'body_too_large' }),
    1,
  );
  assert.equal(held(gw), 0);
  assert.equal(r.seen.length, 1);
});

test('a held request whose revision leaves the split is drawn again; a pinned one whose revision left gets 404', async () => {
  let t = 0;
  const old = await standIn('old');
  const next = await standIn('next');
  const revision = (n: number, percent: number, s: StandIn, ready: boolean) => ({
    revision: n,
    percent,
    shadow: 0,
    servedName: `m${n}`,
    replicas: [{ id: s.id, url: s.url, ready }],
  });
  const { gw, base } = await gateway(
    tableOf(deployment([], { revisions: [revision(1, 100, old, false), revision(2, 0, next, false)] })),
    { now: () => t },
  );
  const drawn = call(`${base}/v2/models/d/infer`, 'drawn');
  await until(() => held(gw) === 1, 'held');
  const pinned = call(`${base}/v2/models/d/infer`, 'pinned', { 'x-ferry-revision': '1' });
  await until(() => held(gw) === 2, 'both held');
  // A rollout at zero: revision 2 takes the traffic (still starting), revision 1 is gone.
  gw.setRoutes(tableOf(deployment([], { revisions: [revision(2, 100, next, false)] })));
  const gone = await pinned;
  assert.equal(gone.status, 404);
  assert.equal(gone.json?.code, 'FERRY_NOT_FOUND');
  assert.equal(held(gw), 1);
  t = 1_000;
  const loads = new Map(gw.loadSamples().map((s) => [s.revision, s]));
  assert.equal(loads.get(2)!.concurrency, 1, 'the held request now waits for revision 2');
  gw.setRoutes(tableOf(deployment([], { revisions: [revision(2, 100, next, true)] })));
  const res = await drawn;
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-ferry-revision'), '2');
  assert.deepEqual(
    next.seen.map((s) => [s.url, s.body]),
    [['/v2/models/m2/infer', 'drawn']],
  );
  assert.equal(old.seen.length, 0);
});

test('setRoutes checks the activator bounds', () => {
  const gw = createGateway();
  assert.throws(
    () => gw.setRoutes(tableOf(deployment([], { activator: { maxHeld: 0, maxWaitMs: -1 } }))),
    /activator\.maxHeld: 0 is not a whole number.*activator\.maxWaitMs: -1 is not a time in ms/,
  );
});

test('burst capacity: with replicas starting, a request that finds every ready replica full waits for room or a new replica, in order', async () => {
  // A replica that answers only when told: what it carries stays in flight until then.
  const pending: ServerResponse[] = [];
  const a = await standIn('a', (_q, res) => pending.push(res));
  const b = await standIn('b');
  const capacity = { maxHeld: 10, maxWaitMs: 60_000, replicaCapacity: 2 };
  const one = (starting: number, replicas: { id: string; url: string; ready: boolean }[]) =>
    tableOf({
      ...deployment(replicas, { activator: capacity }),
      revisions: [{ revision: 1, percent: 100, shadow: 0, servedName: 'm', replicas, starting }],
    });
  const { gw, base } = await gateway(one(1, [{ id: 'a', url: a.url, ready: true }]));
  const answers = [1, 2, 3, 4].map((n) => call(`${base}/v2/models/d/infer`, `{"n":${n}}`));
  await until(() => a.seen.length === 2 && held(gw) === 2, 'two on a (its capacity), two held');
  // Room on a: the oldest held request goes there, the other still waits.
  pending.shift()!.end('ok:a');
  await until(() => a.seen.length === 3, 'the oldest held request sent to a once it had room');
  assert.equal(held(gw), 1);
  assert.equal(a.seen[2]!.body, '{"n":3}');
  // The started replica is ready: the last one goes to it (the least loaded).
  gw.setRoutes(
    one(0, [
      { id: 'a', url: a.url, ready: true },
      { id: 'b', url: b.url, ready: true },
    ]),
  );
  await until(() => b.seen.length === 1, 'the last held request sent to the new replica');
  assert.equal(b.seen[0]!.body, '{"n":4}');
  assert.equal(held(gw), 0);
  for (const res of pending.splice(0)) res.end('ok:a');
  const statuses = (await Promise.all(answers)).map((r) => r.status);
  assert.deepEqual(statuses, [200, 200, 200, 200]);
});

test('burst capacity: with nothing starting, or no replicaCapacity, requests go to full replicas as before', async () => {
  const pending: ServerResponse[] = [];
  const a = await standIn('a', (_q, res) => pending.push(res));
  const replicas = [{ id: 'a', url: a.url, ready: true }];
  const table = (activator: RouteDeployment['activator'], starting: number) =>
    tableOf({
      ...deployment(replicas, { activator }),
      revisions: [{ revision: 1, percent: 100, shadow: 0, servedName: 'm', replicas, starting }],
    });
  const { gw, base } = await gateway(table({ maxHeld: 10, maxWaitMs: 60_000, replicaCapacity: 1 }, 0));
  const first = [1, 2, 3].map((n) => call(`${base}/v2/models/d/infer`, `{"n":${n}}`));
  await until(() => a.seen.length === 3, 'all three on a: no capacity is coming');
  assert.equal(held(gw), 0);
  gw.setRoutes(table({ maxHeld: 10, maxWaitMs: 60_000 }, 2));
  const second = [4, 5].map((n) => call(`${base}/v2/models/d/infer`, `{"n":${n}}`));
  await until(() => a.seen.length === 5, 'both on a: no replicaCapacity set');
  assert.equal(held(gw), 0);
  for (const res of pending.splice(0)) res.end('ok');
  await Promise.all([...first, ...second]);
});

test('burst capacity: a request held for room past maxWaitMs gets 503 with Retry-After naming the wait', async () => {
  let t = 0;
  const pending: ServerResponse[] = [];
  const a = await standIn('a', (_q, res) => pending.push(res));
  const replicas = [{ id: 'a', url: a.url, ready: true }];
  const { gw, base } = await gateway(
    tableOf({
      ...deployment(replicas, { activator: { maxHeld: 10, maxWaitMs: 50, replicaCapacity: 1 } }),
      revisions: [{ revision: 1, percent: 100, shadow: 0, servedName: 'm', replicas, starting: 1 }],
    }),
    { now: () => t },
  );
  const busy = call(`${base}/v2/models/d/infer`, '{"n":1}');
  await until(() => a.seen.length === 1, 'the first on a');
  const waiting = call(`${base}/v2/models/d/infer`, '{"n":2}');
  await until(() => held(gw) === 1, 'the second held for room');
  t = 100;
  const res = await waiting;
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '1');
  assert.equal(res.json?.code, 'FERRY_NO_READY_REPLICA');
  assert.match(String(res.json?.error), /no room on a replica within 50 ms/);
  assert.equal(a.seen.length, 1, 'never sent');
  pending.shift()!.end('ok');
  assert.equal((await busy).status, 200);
});

test("replica limit: a request that finds the pick at its revision's replicaLimit waits for room instead of being shed", async () => {
  const pending: ServerResponse[] = [];
  const a = await standIn('a', (_q, res) => pending.push(res));
  const replicas = [{ id: 'a', url: a.url, ready: true }];
  const { gw, base } = await gateway(
    tableOf({
      // Nothing starting, no replicaCapacity: only the limit keeps them.
      ...deployment(replicas, { activator: { maxHeld: 2, maxWaitMs: 60_000 } }),
      revisions: [{ revision: 1, percent: 100, shadow: 0, servedName: 'm', replicas, replicaLimit: 2 }],
    }),
  );
  const answers = [1, 2, 3, 4].map((n) => call(`${base}/v2/models/d/infer`, `{"n":${n}}`));
  await until(() => a.seen.length === 2 && held(gw) === 2, 'two on a (its limit), two held');
  const over = await call(`${base}/v2/models/d/infer`, '{"n":5}');
  assert.equal(over.status, 503, 'past maxHeld');
  assert.match(String(over.json?.error), /no room on a ready replica and 2 request\(s\) already wait for it/);
  pending.shift()!.end('ok');
  await until(() => a.seen.length === 3, 'the oldest held request sent once a had room');
  assert.equal(a.seen[2]!.body, '{"n":3}');
  assert.equal(held(gw), 1);
  for (const res of pending.splice(0)) res.end('ok');
  await until(() => a.seen.length === 4, 'the last one sent');
  for (const res of pending.splice(0)) res.end('ok');
  assert.deepEqual(
    (await Promise.all(answers)).map((r) => r.status),
    [200, 200, 200, 200],
  );
});

test('requests held at zero go out at replicaCapacity while the limit is not known, then up to the limit', async () => {
  const pending: ServerResponse[] = [];
  const a = await standIn('a', (_q, res) => pending.push(res));
  const activator = { maxHeld: 10, maxWaitMs: 60_000, replicaCapacity: 1 };
  const table = (ready: boolean, replicaLimit?: number) => {
    const replicas = [{ id: 'a', url: a.url, ready }];
    return tableOf({
      ...deployment(replicas, { activator }),
      revisions: [
        {
          revision: 1,
          percent: 100,
          shadow: 0,
          servedName: 'm',
          replicas,
          ...(replicaLimit === undefined ? {} : { replicaLimit }),
        },
      ],
    });
  };
  const { gw, base } = await gateway(table(false));
  const answers = [1, 2, 3, 4].map((n) => call(`${base}/v2/models/d/infer`, `{"n":${n}}`));
  await until(() => held(gw) === 4, 'all four held at zero');
  gw.setRoutes(table(true));
  await until(() => a.seen.length === 1, 'one out: replicaCapacity stands in for the unknown limit');
  assert.equal(held(gw), 3);
  gw.setRoutes(table(true, 3));
  await until(() => a.seen.length === 3, 'up to the limit once the table says it');
  assert.equal(held(gw), 1);
  assert.deepEqual(
    a.seen.map((r) => r.body),
    ['{"n":1}', '{"n":2}', '{"n":3}'],
    'in order',
  );
  while (a.seen.length < 4 || pending.length > 0) {
    pending.shift()?.end('ok');
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(
    (await Promise.all(answers)).map((r) => r.status),
    [200, 200, 200, 200],
  );
});

test('setRoutes checks starting, replicaCapacity and replicaLimit', () => {
  const gw = createGateway({});
  const bad = tableOf({
    ...deployment([], { activator: { maxHeld: 1, maxWaitMs: 10, replicaCapacity: 0 } }),
    revisions: [
      { revision: 1, percent: 100, shadow: 0, servedName: 'm', replicas: [], starting: -1, replicaLimit: 0 },
    ],
  });
  assert.throws(
    () => gw.setRoutes(bad),
    (e: Error) =>
      /activator\.replicaCapacity: 0 is not a whole number/.test(e.message) &&
      /revisions\[0\]\.starting: -1 is not a whole number/.test(e.message) &&
      /revisions\[0\]\.replicaLimit: 0 is not a whole number/.test(e.message),
  );
});

test('a revision that cannot start a replica: held requests get 503 naming why at once, new ones too, never held', async () => {
  const r = await standIn('r');
  const cold = deployment([{ id: 'r', url: r.url, ready: false }]);
  const { gw, base } = await gateway(tableOf(cold));
  const waiting = call(`${base}/v2/models/d/infer`, '{"n":1}');
  await until(() => held(gw) === 1, 'held while the replica starts');
  const failing = {
    ...cold,
    revisions: [{ ...cold.revisions[0]!, unavailable: 'the model fails to load (ModelLoadFailed)' }],
  };
  gw.setRoutes(tableOf(failing));
  for (const res of [await waiting, await call(`${base}/v2/models/d/infer`, '{"n":2}')]) {
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(res.json?.code, 'FERRY_NO_READY_REPLICA');
    assert.match(
      String(res.json?.error),
      /revision 1 of deployment 'd' has no ready replica and cannot start one: the model fails to load \(ModelLoadFailed\)/,
    );
  }
  assert.equal(held(gw), 0);
  assert.equal(r.seen.length, 0);
  assert.equal(
    await metricValue(gw, 'ferry_gateway_activator_rejected_total', {
      deployment: 'd',
      reason: 'unavailable',
    }),
    1,
  );
  // Once a replica is ready, `unavailable` no longer matters.
  gw.setRoutes(
    tableOf({
      ...failing,
      revisions: [{ ...failing.revisions[0]!, replicas: [{ id: 'r', url: r.url, ready: true }] }],
    }),
  );
  assert.equal((await call(`${base}/v2/models/d/infer`, '{"n":3}')).status, 200);
});
