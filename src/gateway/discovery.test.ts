/**
 * File + DNS discovery for real: a gateway on 127.0.0.1 whose route table comes from a file and whose replicas
 * come from DNS. The first tests inject the resolver (to make names appear and vanish at will); the last ones run
 * node:dns against a small DNS server on 127.0.0.1 (UDP, dns-packet) that answers SRV and A records as a
 * Kubernetes headless Service does. Waits are on conditions.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as packet from 'dns-packet';
import pino from 'pino';
import type { RouteTable } from '../core/route-table.ts';
import { DnsDiscovery, dnsResolver, fileSource, urlSource } from './discovery.ts';
import type { DiscoveryService, Endpoint } from './discovery-table.ts';
import { createGateway } from './server.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-discovery-'));
const cleanups: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A replica on 127.0.0.1 that answers with its name (once `gate` resolves, when given). */
async function replica(
  name: string,
  gate: Promise<unknown> = Promise.resolve(),
): Promise<{ port: number; server: Server; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits++;
      void gate.then(() => res.end(name));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { port: (server.address() as AddressInfo).port, server, hits: () => hits };
}

const routeFile = (service: DiscoveryService, percent = 100) =>
  JSON.stringify({
    deployments: [
      {
        name: 'iris',
        public: true,
        revisions: [{ revision: 1, percent, shadow: 0, servedName: 'iris', service }],
      },
    ],
  });

test('replicas appear and vanish by DNS under a steady load: no request fails, each new one gets traffic', async () => {
  const [a, b, c] = await Promise.all([replica('a'), replica('b'), replica('c')]);
  const file = join(dir, 'steady.json');
  writeFileSync(file, routeFile({ srv: '_http._tcp.iris-r1.ml.svc.cluster.local' }));
  let endpoints: Endpoint[] = [{ address: '127.0.0.1', port: a.port }];
  const gw = createGateway();
  const base = await gw.listen(0);
  cleanups.push(() => gw.close());
  let last: RouteTable | undefined;
  const discovery = new DnsDiscovery({
    source: fileSource(file),
    setRoutes: (t) => {
      gw.setRoutes(t);
      last = t;
    },
    resolve: async () => endpoints,
    resolveMs: 20,
  });
  await discovery.start();
  cleanups.push(() => discovery.stop());

  let stop = false;
  const failures: string[] = [];
  let sent = 0;
  const clients = Array.from({ length: 4 }, async () => {
    while (!stop) {
      sent++;
      const res = await fetch(`${base}/v2/models/iris/infer`, { method: 'POST', body: '{}' });
      const text = await res.text();
      if (res.status !== 200) failures.push(`${res.status} ${text}`);
    }
  });
  await until(() => a.hits() > 20, 'traffic on a');
  endpoints = [...endpoints, { address: '127.0.0.1', port: b.port }, { address: '127.0.0.1', port: c.port }];
  await until(() => b.hits() > 20 && c.hits() > 20, 'b and c found by DNS and given traffic');
  endpoints = endpoints.filter((e) => e.port !== a.port);
  const onA = (t: RouteTable) =>
    t.deployments[0]!.revisions[0]!.replicas.some((r) => r.url.endsWith(`:${a.port}`));
  await until(() => last !== undefined && !onA(last), 'a out of the table');
  // Requests already sent to a may still arrive there (one per client at most); none after them.
  const aAfter = a.hits();
  const others = () => b.hits() + c.hits();
  const othersThen = others();
  await until(() => others() > othersThen + 200, 'traffic goes on without a');
  assert.ok(
    a.hits() - aAfter <= 4,
    `a vanished from DNS and gets no new request (${a.hits() - aAfter} after)`,
  );
  stop = true;
  await Promise.all(clients);
  assert.deepEqual(failures, [], `of ${sent}`);
});

test('a changed route file applies; a bad one is logged and the last good table stays; a DNS failure keeps the last endpoints', async () => {
  const [a, b] = await Promise.all([replica('a'), replica('b')]);
  const file = join(dir, 'changes.json');
  writeFileSync(file, routeFile({ host: 'iris-r1', port: a.port }));
  const logged: string[] = [];
  const logger = {
    error: (_o: unknown, msg: string) => logged.push(msg),
    warn: (_o: unknown, msg: string) => logged.push(msg),
    info: () => undefined,
  } as unknown as import('pino').Logger;
  let dnsDown = false;
  const gw = createGateway();
  const base = await gw.listen(0);
  cleanups.push(() => gw.close());
  const discovery = new DnsDiscovery({
    source: fileSource(file),
    setRoutes: (t) => gw.setRoutes(t),
    resolve: async (s) => {
      if (dnsDown) throw Object.assign(new Error('queryA ETIMEOUT'), { code: 'ETIMEOUT' });
      return [{ address: '127.0.0.1', port: 'port' in s ? s.port : 0 }];
    },
    logger,
  });
  await discovery.start();
  const answer = async () =>
    (await fetch(`${base}/v2/models/iris/infer`, { method: 'POST', body: '{}' })).text();
  assert.equal(await answer(), 'a');

  writeFileSync(file, routeFile({ host: 'iris-r1', port: b.port }));
  await discovery.checkFile();
  assert.equal(await answer(), 'b', 'the changed file');

  writeFileSync(file, '{"deployments": [ { "name": "iris" ');
  await discovery.checkFile();
  assert.match(logged.join('\n'), /route file invalid: the last good table stays/);
  assert.equal(await answer(), 'b', 'the last good table');

  dnsDown = true;
  writeFileSync(
    file,
    routeFile({ host: 'iris-r1', port: b.port }, 100).replace('"iris-r1"', '"iris-r1.svc"'),
  );
  await discovery.checkFile();
  assert.match(logged.join('\n'), /service lookup failed: its last endpoints are kept/);
  dnsDown = false;
  await discovery.refresh();
  assert.equal(await answer(), 'b');
  discovery.stop();

  const missing = new DnsDiscovery({
    source: fileSource(join(dir, 'nope.json')),
    setRoutes: () => undefined,
    resolve: async () => [],
  });
  await assert.rejects(missing.start(), /route file .*nope\.json/);
  writeFileSync(join(dir, 'bad.json'), routeFile({ host: 'a', port: 70000 }));
  const bad = new DnsDiscovery({
    source: fileSource(join(dir, 'bad.json')),
    setRoutes: () => undefined,
    resolve: async () => [],
  });
  await assert.rejects(bad.start(), /revisions\[0\]\.service\.port: 70000 is not a port/);
});

/** A DNS server on 127.0.0.1 (UDP) answering from `zone`; a name not in it: NXDOMAIN; `failing`: SERVFAIL. */
async function dnsServer(zone: Map<string, packet.Answer[]>, failing: Set<string>): Promise<string> {
  const socket: Socket = createSocket('udp4');
  socket.on('message', (message, from) => {
    const query = packet.decode(message);
    const q = query.questions?.[0];
    const name = q?.name ?? '';
    const answers = (zone.get(name) ?? []).filter((a) => a.type === q?.type);
    const rcode = failing.has(name) ? 'SERVFAIL' : zone.has(name) ? 'NOERROR' : 'NXDOMAIN';
    const reply = packet.encode({
      id: query.id,
      type: 'response',
      flags: packet.AUTHORITATIVE_ANSWER | (packet.RECURSION_DESIRED & (query.flags ?? 0)) | rcodeFlag(rcode),
      questions: query.questions ?? [],
      answers,
    });
    socket.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => socket.close(() => r(undefined))));
  return `127.0.0.1:${socket.address().port}`;
}

function rcodeFlag(rcode: string): number {
  return { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 }[rcode] ?? 0;
}

test('node:dns against a real DNS server: SRV then A, as a headless Service answers; NXDOMAIN is none; SERVFAIL fails', async () => {
  const srv = '_http._tcp.iris-r1.ml.svc.cluster.local';
  const zone = new Map<string, packet.Answer[]>([
    [
      srv,
      [
        {
          type: 'SRV',
          name: srv,
          ttl: 5,
          data: { priority: 0, weight: 50, port: 9001, target: 'p1.iris-r1.ml.svc.cluster.local' },
        },
        {
          type: 'SRV',
          name: srv,
          ttl: 5,
          data: { priority: 0, weight: 50, port: 9002, target: 'p2.iris-r1.ml.svc.cluster.local' },
        },
      ],
    ],
    [
      'p1.iris-r1.ml.svc.cluster.local',
      [{ type: 'A', name: 'p1.iris-r1.ml.svc.cluster.local', ttl: 5, data: '127.0.0.1' }],
    ],
    [
      'p2.iris-r1.ml.svc.cluster.local',
      [{ type: 'A', name: 'p2.iris-r1.ml.svc.cluster.local', ttl: 5, data: '127.0.0.1' }],
    ],
    [
      'iris-r2.ml.svc.cluster.local',
      [{ type: 'A', name: 'iris-r2.ml.svc.cluster.local', ttl: 5, data: '127.0.0.1' }],
    ],
    ['empty.ml.svc.cluster.local', []],
  ]);
  const server = await dnsServer(zone, new Set(['broken.ml.svc.cluster.local']));
  const resolve = dnsResolver([server]);
  const byPort = (e: Endpoint[]) => [...e].sort((x, y) => x.port - y.port);
  assert.deepEqual(byPort(await resolve({ srv })), [
    { address: '127.0.0.1', port: 9001 },
    { address: '127.0.0.1', port: 9002 },
  ]);
  assert.deepEqual(await resolve({ host: 'iris-r2.ml.svc.cluster.local', port: 8080 }), [
    { address: '127.0.0.1', port: 8080 },
  ]);
  assert.deepEqual(
    await resolve({ host: 'gone.ml.svc.cluster.local', port: 8080 }),
    [],
    'NXDOMAIN: no replicas',
  );
  assert.deepEqual(await resolve({ host: 'empty.ml.svc.cluster.local', port: 8080 }), [], 'no records: none');
  await assert.rejects(
    resolve({ host: 'broken.ml.svc.cluster.local', port: 8080 }),
    (e: { code?: string }) => e.code === 'ESERVFAIL',
  );

  // End to end: the gateway finds both SRV replicas through that server. They answer once both have a request,
  // so the balancer (least outstanding) must have sent the second one to the other replica.
  let open = () => {};
  const gate = new Promise<void>((r) => (open = r));
  const [p1, p2] = await Promise.all([replica('p1', gate), replica('p2', gate)]);
  zone.set(srv, [
    {
      type: 'SRV',
      name: srv,
      ttl: 5,
      data: { priority: 0, weight: 50, port: p1.port, target: 'p1.iris-r1.ml.svc.cluster.local' },
    },
    {
      type: 'SRV',
      name: srv,
      ttl: 5,
      data: { priority: 0, weight: 50, port: p2.port, target: 'p2.iris-r1.ml.svc.cluster.local' },
    },
  ]);
  const file = join(dir, 'dns.json');
  writeFileSync(file, routeFile({ srv }));
  const gw = createGateway();
  const base = await gw.listen(0);
  cleanups.push(() => gw.close());
  const discovery = new DnsDiscovery({
    source: fileSource(file),
    setRoutes: (t) => gw.setRoutes(t),
    resolve,
  });
  await discovery.start();
  cleanups.push(() => discovery.stop());
  const pending = Array.from({ length: 4 }, async () => {
    const res = await fetch(`${base}/v2/models/iris/infer`, { method: 'POST', body: '{}' });
    return `${res.status} ${await res.text()}`;
  });
  await until(() => p1.hits() > 0 && p2.hits() > 0, 'a request on each replica found by DNS');
  open();
  const answers = await Promise.all(pending);
  assert.deepEqual([...new Set(answers)].sort(), ['200 p1', '200 p2']);
});

test('a request held for a deployment at zero makes the gateway look its service up at once, and goes out', async () => {
  const a = await replica('a');
  const file = join(dir, 'zero.json');
  writeFileSync(
    file,
    JSON.stringify({
      deployments: [
        {
          name: 'iris',
          public: true,
          activator: { maxHeld: 10, maxWaitMs: 60_000 },
          revisions: [
            {
              revision: 1,
              percent: 100,
              shadow: 0,
              servedName: 'iris',
              service: { host: 'iris-r1', port: a.port },
            },
          ],
        },
      ],
    }),
  );
  let replicas: Endpoint[] = [];
  let discovery: DnsDiscovery | undefined;
  const gw = createGateway({
    onHeld: () => {
      // KEDA starts a replica for the held request; DNS has it from now on.
      replicas = [{ address: '127.0.0.1', port: a.port }];
      discovery?.soon();
    },
  });
  const base = await gw.listen(0);
  cleanups.push(() => gw.close());
  // The next regular round is an hour away: only soon() can find the replica.
  discovery = new DnsDiscovery({
    source: fileSource(file),
    setRoutes: (t) => gw.setRoutes(t),
    resolve: async () => replicas,
    resolveMs: 3_600_000,
  });
  await discovery.start();
  cleanups.push(() => discovery!.stop());
  const res = await fetch(`${base}/v2/models/iris/infer`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'a');
});

test('a route file from a URL: asked with the token and the last ETag (304 keeps it), a change applies, a failure keeps the last good table', async () => {
  let body = routeFile({ host: '127.0.0.1', port: 1 });
  let failing = false;
  const seen = { ok: 0, notModified: 0, unauthorized: 0 };
  const server = createServer((req, res) => {
    if (req.headers.authorization !== 'Bearer s3cret') {
      seen.unauthorized++;
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"code":"FERRY_UNAUTHORIZED"}');
      return;
    }
    if (failing) {
      res.writeHead(503).end('restarting');
      return;
    }
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
    if (req.headers['if-none-match'] === etag) {
      seen.notModified++;
      res.writeHead(304).end();
      return;
    }
    seen.ok++;
    res.writeHead(200, { 'content-type': 'application/json', etag }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/gateway/routes`;

  const refused = new DnsDiscovery({
    source: urlSource(url, 'wrong'),
    setRoutes: () => undefined,
    resolve: async () => [],
  });
  await assert.rejects(refused.start(), /answered 401: \{"code":"FERRY_UNAUTHORIZED"\}/);

  const logged: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(line) });
  let last: RouteTable | undefined;
  const discovery = new DnsDiscovery({
    source: urlSource(url, 's3cret'),
    setRoutes: (t) => {
      last = t;
    },
    resolve: async (s) => [{ address: '127.0.0.1', port: 'port' in s ? s.port : 0 }],
    checkMs: 10,
    logger,
  });
  await discovery.start();
  cleanups.push(() => discovery.stop());
  const port = () => last?.deployments[0]?.revisions[0]?.replicas[0]?.url;
  assert.equal(port(), 'http://127.0.0.1:1');
  await until(() => seen.notModified >= 3, 'unchanged polls answered 304');
  body = routeFile({ host: '127.0.0.1', port: 2 });
  await until(() => port() === 'http://127.0.0.1:2', 'the changed table');
  failing = true;
  await until(
    () => logged.some((l) => l.includes('route file unreadable: the last good table stays')),
    'the failure logged',
  );
  assert.equal(port(), 'http://127.0.0.1:2', 'the last good table stays');
  failing = false;
  body = routeFile({ host: '127.0.0.1', port: 3 });
  await until(() => port() === 'http://127.0.0.1:3', 'back');
});
