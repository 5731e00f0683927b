/**
 * Ferry's gateway as a Swarm service on a real 3-node swarm (ferry-lab.ts on harness.ts), as src/runtime/
 * swarm-service.ts makes it: one task per node on a host-mode published port, the route file pulled from a URL
 * with its token (a Swarm secret), replicas found by `tasks.<service>` on an internal overlay. What it shows:
 * every node's gateway answers an inference routed to revision 1; the route file switched to revision 2 reaches
 * every gateway without restarting it (the seconds per node are printed; the gateways poll every second).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type FerryLab, startFerryLab } from './ferry-lab.ts';
import { swarmSkip, waitFor } from './harness.ts';

describe('the gateway as a Swarm service', { skip: swarmSkip }, () => {
  let lab: FerryLab | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-swarm-gateway-'));
  after(async () => {
    await lab?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('one task per node, routes pulled from a URL: a switch of revision reaches every gateway without a restart', async (t) => {
    const began = Date.now();
    lab = await startFerryLab('fswg', dir);
    const l = lab;
    const versionAt = async (socket: string) => {
      const r = await l.infer(socket);
      return r.ok ? r.version : undefined;
    };
    for (const [i, socket] of l.gateways.entries())
      await waitFor(
        `the gateway on node ${i + 1} serves iris r1`,
        async () => (await versionAt(socket)) === '1',
        {
          timeoutMs: 180_000,
          everyMs: 500,
        },
      );
    t.diagnostic(
      `every node's gateway served iris r1 ${((Date.now() - began) / 1000).toFixed(1)} s after the lab began`,
    );
    const gatewayTasks = async () =>
      (await l.engine.tasks((await l.engine.services({ 'ferry.dev/component': 'gateway' }))[0]!.id)).filter(
        (x) => x.state === 'running',
      );
    // A task Swarm is replacing (seen on a busy machine) is not 'running' for a moment: wait for the service to
    // settle, then hold it to one task per node.
    await waitFor('3 running gateway tasks', async () => (await gatewayTasks()).length === 3, {
      timeoutMs: 120_000,
    });
    const before = (await gatewayTasks()).map((x) => x.id).sort();
    assert.equal(before.length, 3, 'one gateway task per node');

    // The switch: the file changes; each gateway picks it up on its own, with no restart.
    l.route(2);
    const switchedAt = Date.now();
    const seconds = await Promise.all(
      l.gateways.map(async (socket, i) => {
        await waitFor(
          `the gateway on node ${i + 1} serves iris r2`,
          async () => (await versionAt(socket)) === '2',
          {
            timeoutMs: 30_000,
            everyMs: 50,
          },
        );
        return (Date.now() - switchedAt) / 1000;
      }),
    );
    t.diagnostic(
      `the switch to r2 reached the gateways after ${seconds.map((s) => s.toFixed(2)).join(' / ')} s`,
    );
    console.log(
      `[swarm gateway] route change to every gateway: ${seconds.map((s) => s.toFixed(2)).join(' / ')} s`,
    );
    assert.deepEqual((await gatewayTasks()).map((x) => x.id).sort(), before, 'no gateway task was restarted');
  });
});
