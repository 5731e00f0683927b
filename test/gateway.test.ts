/**
 * The gateway in front of real `ferry serve examples/iris` replicas: OIP and v1 inference through
 * the path rewrite, and a replica killed mid-run (its traffic moves to the other one by retry).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createGateway, type Gateway, type RouteTable } from '../src/gateway/index.ts';
import { HANG_MS, post, ROOT, spawnServer } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const request = (name: string) => readFileSync(join(IRIS, 'requests', `${name}.json`), 'utf8');
const expected = (name: string) => JSON.parse(readFileSync(join(IRIS, 'responses', `${name}.json`), 'utf8'));

let replicas: { child: ChildProcess; url: string }[] = [];
let gw: Gateway;
let base: string;

function routes(ids: string[]): RouteTable {
  return {
    deployments: [
      {
        name: 'flowers',
        public: true,
        revisions: [
          {
            revision: 1,
            percent: 100,
            shadow: 0,
            servedName: 'iris',
            replicas: ids.map((id) => ({ id, url: replicas[Number(id.slice(1))]!.url, ready: true })),
          },
        ],
      },
    ],
  };
}

before(async () => {
  replicas = await Promise.all([spawnServer([IRIS]), spawnServer([IRIS])]);
  gw = createGateway();
  gw.setRoutes(routes(['r0', 'r1']));
  base = await gw.listen(0);
});

after(async () => {
  await gw?.close();
  for (const r of replicas) r.child.kill('SIGKILL');
});

function closeTo(actual: number[], want: number[], tolerance: number): void {
  assert.equal(actual.length, want.length);
  for (const [i, v] of actual.entries()) assert.ok(Math.abs(v - want[i]!) <= tolerance, `${v} vs ${want[i]}`);
}

test('OIP inference through the gateway matches the example responses', async () => {
  for (const name of ['setosa', 'versicolor', 'virginica', 'batch']) {
    const res = await post(`${base}/v2/models/flowers/infer`, request(name));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-ferry-revision'), '1');
    assert.match(res.headers.get('x-ferry-replica') ?? '', /^r[01]$/);
    const want = expected(name).outputs as { name: string; data: number[] }[];
    const got = (res.json.outputs as { name: string; data: number[] }[]) ?? [];
    assert.equal(res.json.model_name, 'iris');
    for (const w of want) closeTo(got.find((o) => o.name === w.name)!.data, w.data, 1e-4);
  }
  const meta = await fetch(`${base}/v2/models/flowers`);
  assert.equal(((await meta.json()) as { name: string }).name, 'iris');
  const ready = await fetch(`${base}/v2/models/flowers/ready`);
  assert.equal(ready.status, 200);
});

test('KServe v1 predict through the gateway', async () => {
  const res = await post(
    `${base}/v1/models/flowers:predict`,
    JSON.stringify({ instances: [[5.4, 3.7, 1.5, 0.2]] }),
  );
  assert.equal(res.status, 200, res.text);
  assert.ok(Array.isArray(res.json.predictions));
});

test('a killed replica: requests move to the other one by retry', async () => {
  const dead = replicas[0]!.child;
  const exited = new Promise((resolve) => dead.once('exit', resolve));
  dead.kill('SIGKILL');
  await exited;
  for (let i = 0; i < 10; i++) {
    const res = await post(`${base}/v2/models/flowers/infer`, request('setosa'));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-ferry-replica'), 'r1');
  }
  // Drain r1 the way the control plane does: out of the table, then wait until idle.
  gw.setRoutes(routes([]));
  assert.equal(await gw.waitIdle(['r0', 'r1'], HANG_MS), true);
  const none = await post(`${base}/v2/models/flowers/infer`, request('setosa'));
  assert.equal(none.status, 503);
  assert.equal(none.json.code, 'FERRY_NO_READY_REPLICA');
});
