/**
 * Failures under a steady load on a real 3-node swarm (ferry-lab.ts): 4 clients call iris through node 1's gateway
 * without pause while a replica's container is killed, then node 2 dies as a whole machine would (its dockerd,
 * shims and containers SIGKILLed), then comes back. What it shows, with the figures printed (failed requests,
 * seconds from each event to the last failure, seconds to recover): a killed replica is replaced and fails at
 * most the requests in flight; after a node's death the failures stop and Swarm runs the replicas elsewhere; the
 * node's return fails nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type FerryLab, type Outcome, printReport, startFerryLab } from './ferry-lab.ts';
import { swarmSkip, waitFor } from './harness.ts';

const CLIENTS = 4;

describe('failures under load on the swarm', { skip: swarmSkip }, () => {
  let lab: FerryLab | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-swarm-failures-'));
  after(async () => {
    await lab?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a replica killed, a node lost and back: failures only around each event, replaced, then all succeed', async (t) => {
    lab = await startFerryLab('fswf', dir, 3);
    const l = lab;
    const gateway = l.gateways[0]!;
    await waitFor('the gateway on node 1 serves iris', async () => (await l.infer(gateway)).ok, {
      timeoutMs: 180_000,
      everyMs: 500,
    });
    const r1 = (await l.engine.services({ 'ferry.dev/revision': '1' }))[0]!;
    // Running and meant to run: a dead node's tasks stay `running` in the manager's view, with desired `shutdown`.
    const running = async () =>
      (await l.engine.tasks(r1.id)).filter((x) => x.state === 'running' && x.desiredState === 'running');
    await waitFor('3 replicas of r1 running', async () => (await running()).length === 3, {
      timeoutMs: 120_000,
    });
    const nodes = await l.engine.nodes();
    const nodeOf = (id: string | null) => nodes.findIndex((n) => n.id === id) + 1;

    // The load: each client sends its next request when the last one is answered (at most 1,000,000 in all).
    const outcomes: Outcome[] = [];
    let loading = true;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (loading && outcomes.length < 1_000_000) {
        const sent = Date.now();
        const r = await l.infer(gateway, 10_000);
        outcomes.push({ sent, at: Date.now(), ok: r.ok, ...(r.ok ? {} : { why: r.why }) });
      }
    });
    const okSince = (since: number) => outcomes.filter((o) => o.at > since && o.ok).length;
    const failuresBetween = (from: number, to: number) =>
      outcomes.filter((o) => !o.ok && o.at >= from && o.at <= to);
    const report: string[] = [];
    const seconds = (ms: number) => (ms / 1000).toFixed(1);
    try {
      await waitFor('a steady load', () => okSince(0) >= 200, { timeoutMs: 60_000 });

      // 1. A replica's container killed (on node 3): replaced by Swarm; only requests in flight on it may fail.
      const victim = (await running()).find((x) => nodeOf(x.nodeId) === 3) ?? (await running())[0]!;
      const killedAt = Date.now();
      await l.swarm.docker(nodeOf(victim.nodeId), ['kill', victim.containerId!], { check: true });
      const replaced = await waitFor(
        'the killed replica replaced',
        async () => {
          const now = await running();
          return now.length === 3 && !now.some((x) => x.id === victim.id) ? Date.now() : undefined;
        },
        { timeoutMs: 120_000 },
      );
      await waitFor('load after the replacement', () => okSince(replaced) >= 200, { timeoutMs: 60_000 });
      const afterKill = failuresBetween(killedAt, Date.now());
      report.push(
        `replica killed: ${afterKill.length} failed, replaced in ${((replaced - killedAt) / 1000).toFixed(1)} s`,
      );
      assert.ok(afterKill.length <= CLIENTS, `more failed than were in flight: ${JSON.stringify(afterKill)}`);

      // 2. Node 2 lost as a machine: its replica and its gateway go; the others take over.
      const lostAt = Date.now();
      await l.swarm.killNode(2, { machine: true });
      const rescheduled = await waitFor(
        'r1 back to 3 running replicas, none on node 2',
        async () => {
          const now = await running();
          return now.length === 3 && now.every((x) => nodeOf(x.nodeId) !== 2) ? Date.now() : undefined;
        },
        { timeoutMs: 180_000, everyMs: 500 },
      );
      await waitFor('load after the rescheduling', () => okSince(rescheduled) >= 300, { timeoutMs: 120_000 });
      const afterLoss = failuresBetween(lostAt, Date.now());
      const inFlight = afterLoss.filter((o) => o.sent < lostAt).length;
      const lastSent = afterLoss.reduce((m, o) => Math.max(m, o.sent), lostAt);
      report.push(
        afterLoss.length === 0
          ? `node 2 lost: 0 failed; replicas rescheduled in ${seconds(rescheduled - lostAt)} s`
          : `node 2 lost: ${afterLoss.length} failed (${inFlight} of them in flight when it died); the last failed request was sent ${seconds(lastSent - lostAt)} s after; 100% of requests sent from then on succeeded; replicas rescheduled in ${seconds(rescheduled - lostAt)} s`,
      );
      const tail = outcomes.slice(-300);
      assert.ok(
        tail.every((o) => o.ok),
        `failures continue: ${JSON.stringify(tail.filter((o) => !o.ok).slice(0, 5))}`,
      );

      // 3. Node 2 back: nothing fails while it rejoins.
      const backAt = Date.now();
      await l.swarm.restartNode(2);
      await waitFor(
        'node 2 Ready again',
        async () => (await l.engine.nodes()).find((n) => n.hostname.endsWith('n2'))?.state === 'ready',
        { timeoutMs: 120_000 },
      );
      await waitFor('load after the rejoin', () => okSince(Date.now()) >= 0 && okSince(backAt) >= 300, {
        timeoutMs: 120_000,
      });
      const afterBack = failuresBetween(backAt, Date.now());
      report.push(`node 2 back: ${afterBack.length} failed`);
      assert.deepEqual(afterBack, [], 'the node rejoining changes nothing for clients');
    } finally {
      loading = false;
      await Promise.all(clients);
      printReport(t, 'swarm failures', report, outcomes);
    }
  });
});
