/**
 * Token timing: do refused tokens take the same time, whether malformed, of an unknown id, or of a known id with
 * a wrong secret (the last compares a hash; the first two compare against a dummy hash so they cost the same)?
 * Printed after the BOLA table, same method.
 *
 * BOLA timing: does an answer take longer for another tenant's object than for one that exists nowhere? A real
 * platform (process runtime, no replica) on a temporary home; tenant A owns a deployment, a model and a secret;
 * tenant B's viewer asks for A's and for missing ones, taking turns (A's, missing, A's, ...), on one keep-alive
 * connection. Prints the medians and p90s per route and their ratio (1.00 = no difference to learn from).
 *   node --import tsx bench/bola-timing.ts [--requests 2000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ControlClient } from '../src/control/index.ts';
import { startPlatform } from '../src/platform/index.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' } } });
const requests = Number(values.requests);
const home = mkdtempSync(join(tmpdir(), 'ferry-bola-bench-'));
const platform = await startPlatform({ home, runtime: 'process', apiPort: 0, gatewayPort: 0 });
try {
  const root = new ControlClient({ url: platform.apiUrl, token: platform.adminToken! });
  await root.createTenant('tenant-a');
  await root.createTenant('tenant-b');
  const asA = new ControlClient({ url: platform.apiUrl, token: platform.adminToken!, tenant: 'tenant-a' });
  const asB = new ControlClient({ url: platform.apiUrl, token: platform.adminToken!, tenant: 'tenant-b' });
  const aAdmin = (await asA.createToken('admin', 'admin')).token;
  const bViewer = (await asB.createToken('viewer', 'viewer')).token;
  const a = new ControlClient({ url: platform.apiUrl, token: aAdmin });
  await a.createModel('model-of-a');
  await a.setSecret('secret-of-a', 'value');
  // A deployment needs a version; an image-only one is enough here (no replica runs).
  platform.store.addVersion('tenant-a/model-of-a', { version: '1', image: 'registry.invalid/m@sha256:aa' });
  await a.deploy({ name: 'dep-of-a', model: 'model-of-a', version: '1', replicas: 0 });

  const routes = [
    ['deployment', '/v1/deployments/dep-of-a', '/v1/deployments/zz-none'],
    ['traffic', '/v1/deployments/dep-of-a/traffic', '/v1/deployments/zz-none/traffic'],
    ['model', '/v1/models/model-of-a', '/v1/models/zz-none'],
  ] as const;
  const time = async (path: string): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${platform.apiUrl}${path}`, { headers: { authorization: `Bearer ${bViewer}` } });
    await res.arrayBuffer();
    if (res.status !== 404) throw new Error(`${path}: ${res.status}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const pct = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) * p)]!;
  console.log(`\nBOLA timing: tenant B's viewer, ${requests} requests each, taking turns (ms)`);
  console.log("route        A's p50  missing p50  ratio   A's p90  missing p90  ratio");
  for (const [name, owned, missing] of routes) {
    for (let i = 0; i < 200; i++) await time(i % 2 ? owned : missing); // warm-up
    const ta: number[] = [];
    const tm: number[] = [];
    for (let i = 0; i < requests; i++) {
      ta.push(await time(owned));
      tm.push(await time(missing));
    }
    const [a50, m50, a90, m90] = [pct(ta, 0.5), pct(tm, 0.5), pct(ta, 0.9), pct(tm, 0.9)];
    console.log(
      `${name.padEnd(12)} ${a50.toFixed(3).padStart(7)}  ${m50.toFixed(3).padStart(11)}  ${(a50 / m50).toFixed(2).padStart(5)}  ${a90.toFixed(3).padStart(8)}  ${m90.toFixed(3).padStart(11)}  ${(a90 / m90).toFixed(2).padStart(5)}`,
    );
  }

  const refused = async (token: string): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${platform.apiUrl}/v1/info`, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    if (res.status !== 401) throw new Error(`expected 401, got ${res.status}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const id = bViewer.slice('ferry_'.length, 'ferry_'.length + 16);
  const kinds = {
    malformed: 'not-a-ferry-token',
    'unknown id': `ferry_${'0'.repeat(16)}_${'x'.repeat(43)}`,
    'known id, wrong secret': `ferry_${id}_${'x'.repeat(43)}`,
  };
  const samples: Record<string, number[]> = {};
  for (const k of Object.keys(kinds)) samples[k] = [];
  for (let i = 0; i < 200; i++) for (const t of Object.values(kinds)) await refused(t); // warm-up
  for (let i = 0; i < requests; i++)
    for (const [k, t] of Object.entries(kinds)) samples[k]!.push(await refused(t));
  const base = pct(samples['known id, wrong secret']!, 0.5);
  console.log(
    `\nRefused tokens (401), ${requests} each, taking turns (ms); ratio to "known id, wrong secret"`,
  );
  for (const [k, xs] of Object.entries(samples))
    console.log(
      `${k.padEnd(24)} p50 ${pct(xs, 0.5).toFixed(3)}  p90 ${pct(xs, 0.9).toFixed(3)}  ratio ${(pct(xs, 0.5) / base).toFixed(2)}`,
    );
} finally {
  await platform.stop({ removeReplicas: true });
  rmSync(home, { recursive: true, force: true });
}
