import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type DiscoveryTable,
  parseDiscoveryFile,
  resolvedTable,
  serviceKey,
  servicesOf,
} from './discovery-table.ts';

const file = (revisions: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ deployments: [{ name: 'iris', public: true, revisions, ...extra }] });
const rev = (n: number, percent: number, service: unknown) => ({
  revision: n,
  percent,
  shadow: 0,
  servedName: 'iris',
  service,
});

test('a route file: revisions name a service (host and port, or SRV); the rest as any route table', () => {
  const parsed = parseDiscoveryFile(
    file([
      rev(3, 90, { host: 'iris-r3.ml.svc.cluster.local', port: 8080 }),
      rev(4, 10, { srv: '_http._tcp.iris-r4.ml.svc.cluster.local' }),
    ]),
    'routes.json',
  );
  assert.ok('table' in parsed, JSON.stringify(parsed));
  assert.deepEqual(
    [...servicesOf(parsed.table).keys()],
    ['iris-r3.ml.svc.cluster.local:8080', 'srv:_http._tcp.iris-r4.ml.svc.cluster.local'],
  );
});

test('a bad route file: every problem, each naming the file and where', () => {
  const bad = parseDiscoveryFile(
    file([
      rev(1, 50, { host: 'no spaces allowed', port: 0 }),
      { ...rev(2, 40, { srv: 'x' }), replicas: [] },
      rev(3, 10, { host: 'a', port: 1, srv: 'b' }),
      rev(4, 0, null),
    ]),
    'routes.json',
  );
  assert.ok('problems' in bad);
  const text = bad.problems.join('\n');
  for (const expected of [
    /^routes\.json: deployments\[0\]\.revisions\[0\]\.service\.host: "no spaces allowed" is not a DNS name/m,
    /^routes\.json: deployments\[0\]\.revisions\[0\]\.service\.port: 0 is not a port/m,
    /^routes\.json: deployments\[0\]\.revisions\[1\]\.replicas: a route file names a service instead/m,
    /^routes\.json: deployments\[0\]\.revisions\[2\]\.service: has host,port,srv; expected host and port, or srv alone/m,
    /^routes\.json: deployments\[0\]\.revisions\[3\]\.service: must be/m,
  ])
    assert.match(text, expected);
  // The route table's own checks, once the services are right.
  const split = parseDiscoveryFile(
    file([rev(1, 50, { host: 'a', port: 1 }), rev(2, 30, { host: 'b', port: 1 })]),
    'r.json',
  );
  assert.ok('problems' in split);
  assert.match(split.problems.join('\n'), /^r\.json: .*sum/m);
  assert.deepEqual(parseDiscoveryFile('{', 'r.json'), {
    problems: [
      `r.json: not JSON (${(() => {
        try {
          JSON.parse('{');
        } catch (e) {
          return (e as Error).message;
        }
      })()})`,
    ],
  });
  assert.deepEqual(parseDiscoveryFile('[]', 'r.json'), {
    problems: ['r.json: must be an object with a deployments list'],
  });
});

test('the resolved table: a replica per endpoint, stable ids and order, IPv6 in brackets, none when unknown', () => {
  const table: DiscoveryTable = {
    deployments: [
      {
        name: 'iris',
        public: true,
        revisions: [
          {
            revision: 3,
            percent: 100,
            shadow: 0,
            servedName: 'iris',
            service: { host: 'iris-r3', port: 8080 },
          },
          { revision: 4, percent: 0, shadow: 0, servedName: 'iris', service: { srv: '_http._tcp.iris-r4' } },
        ],
      },
    ],
    callers: [],
  };
  const key = serviceKey({ host: 'iris-r3', port: 8080 });
  const routes = resolvedTable(
    table,
    new Map([
      [
        key,
        [
          { address: '10.0.0.9', port: 8080 },
          { address: 'fd00::1', port: 8080 },
          { address: '10.0.0.10', port: 8080 },
        ],
      ],
    ]),
  );
  assert.deepEqual(routes.deployments[0]!.revisions[0]!.replicas, [
    { id: 'iris-r3:8080/10.0.0.10:8080', url: 'http://10.0.0.10:8080', ready: true },
    { id: 'iris-r3:8080/10.0.0.9:8080', url: 'http://10.0.0.9:8080', ready: true },
    { id: 'iris-r3:8080/fd00::1:8080', url: 'http://[fd00::1]:8080', ready: true },
  ]);
  assert.deepEqual(routes.deployments[0]!.revisions[1]!.replicas, [], 'not resolved: no replicas');
  assert.equal('service' in routes.deployments[0]!.revisions[0]!, false);
  assert.deepEqual(routes.callers, []);
});

test('an idle revision (scaled to zero): not looked up, no replicas even with endpoints known, idle not passed on', () => {
  const parsed = parseDiscoveryFile(
    file(
      [
        { ...rev(1, 100, { host: 'tasks.ferry-default-iris-r1', port: 8080 }), idle: true },
        rev(2, 0, { host: 'tasks.ferry-default-iris-r2', port: 8080 }),
      ],
      { activator: { maxHeld: 10, maxWaitMs: 1000 } },
    ),
    'routes',
  );
  assert.ok('table' in parsed, JSON.stringify(parsed));
  assert.deepEqual([...servicesOf(parsed.table).keys()], ['tasks.ferry-default-iris-r2:8080']);
  const stale = new Map([['tasks.ferry-default-iris-r1:8080', [{ address: '10.0.0.9', port: 8080 }]]]);
  const [r1] = resolvedTable(parsed.table, stale).deployments[0]!.revisions;
  assert.deepEqual(r1!.replicas, [], 'the last addresses of an idle revision are not used');
  assert.ok(!('idle' in r1!), 'a route table has no idle field');
  const bad = parseDiscoveryFile(file([{ ...rev(1, 100, { host: 'a', port: 1 }), idle: 'yes' }]), 'routes');
  assert.deepEqual('problems' in bad ? bad.problems : [], [
    'routes: deployments[0].revisions[0].idle: "yes" is not true or false',
  ]);
});
