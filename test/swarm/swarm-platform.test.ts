/**
 * `ferry up --runtime swarm` on a real 3-manager swarm (harness.ts), used as a user would: the control plane runs on
 * the "manager machine" (the lab's bridge namespace, where the registry is too) and the CLI next to it; the model is
 * deployed from its directory, built and pushed by Ferry, pinned by digest; the gateways are a Swarm service on every
 * node. Under a steady load through the gateways (a pool the clients take in turn, as a load balancer's), with every
 * figure printed:
 *
 *   deploy, scale up (ferry logs -f shows the new replica start), canary at 10% (measured over 10,000 requests,
 *   within 1%), promote, undo, scale down                                                            0 failed
 *   the control plane stopped (replicas kept) and started again: adopts, no service made twice          0 failed
 *   a replica's container killed: replaced                                      at most the requests in flight
 *   a node lost as a machine (out of the pool first): replicas rescheduled       100% from 5 s after
 *   the node back                                                                                       0 failed
 *   the leader manager's engine lost (SIGKILL) and back: serving unaffected                             0 failed
 *   describe names each replica's node; ferry logs reads them; ferry down: every service, network and secret
 *   Ferry made is gone, nothing else
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FERRY_BIN, ROOT } from '../helpers.ts';
import { type InferOutcome, irisClient, type Outcome, printReport } from './ferry-lab.ts';
import { type Swarm, startSwarm, swarmSkip, waitFor } from './harness.ts';
import { PATH_ENV } from './proc.ts';

const API_PORT = 7070;
const GATEWAY_PORT = 8080;
const CLIENTS = 4;

describe('ferry up --runtime swarm', { skip: swarmSkip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-swarm-platform-'));
  let swarm: Swarm | undefined;
  let plane: ChildProcess | undefined;
  const client = irisClient();
  after(async () => {
    if (plane?.exitCode === null) {
      const gone = new Promise((r) => plane!.once('exit', r));
      plane.kill('SIGTERM');
      await gone;
    }
    await client.close();
    await swarm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('deploy, scale, canary, promote, undo, restart, a replica and a node lost, the leader lost, down: no request failed but those in flight', async (t) => {
    const home = join(dir, 'home');
    const versions = ['1', '2'].map((v) => {
      const model = join(dir, `iris-${v}`);
      cpSync(join(ROOT, 'examples/iris'), model, { recursive: true });
      const yaml = join(model, 'ferry.yaml');
      writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('version: "1"', `version: "${v}"`));
      return model;
    });
    swarm = await startSwarm({ prefix: 'fswp', offline: false, egress: true });
    const s = swarm;
    const registry = await s.registry();
    const address = s.bridge.address;
    const report: string[] = [];
    const seconds = (ms: number) => (ms / 1000).toFixed(1);

    /** The CLI on the manager machine. */
    const ferry = async (args: string[], timeoutMs = 300_000) => {
      const r = await s.exec(
        s.bridge.netns,
        ['env', `FERRY_HOME=${home}`, process.execPath, FERRY_BIN, ...args],
        {
          timeoutMs,
        },
      );
      assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    const describeJson = async () =>
      JSON.parse(await ferry(['describe', 'iris', '-o', 'json'])) as {
        replicaStatus: Array<{ id: string; revision: number; state: string; node?: string; name: string }>;
        traffic: Array<{ revision: number; percent: number }>;
        rollout: { state?: { percent?: number; phase?: string } } | null;
      };
    /** Ferry's services as `<id> <name> <spec version>`: a service made twice or updated shows here. */
    const ferryServices = async () => {
      const ids = (
        await s.docker(1, ['service', 'ls', '--filter', 'label=ferry.dev/managed-by=ferry', '-q'], {
          check: true,
        })
      ).stdout
        .trim()
        .split('\n')
        .filter((l) => l !== '');
      if (ids.length === 0) return [];
      const out = await s.docker(
        1,
        ['service', 'inspect', '--format', '{{.ID}} {{.Spec.Name}} {{.Version.Index}}', ...ids],
        { check: true },
      );
      return out.stdout
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .sort();
    };

    /** Starts the control plane; resolves once it says it is up. */
    const startPlane = async () => {
      const started = Date.now();
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          s.bridge.netns,
          process.execPath,
          FERRY_BIN,
          'up',
          '--foreground',
          '--runtime',
          'swarm',
          '--home',
          home,
          '--host',
          address,
          '--api-port',
          String(API_PORT),
          '--gateway-port',
          String(GATEWAY_PORT),
          '--docker-host',
          s.nodes[0]!.dockerHost,
          '--registry',
          registry,
          '--insecure-registry',
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, PATH: PATH_ENV, FERRY_LOG_LEVEL: 'warn' },
        },
      );
      let output = '';
      child.stdout!.on('data', (d: Buffer) => {
        output += d.toString();
      });
      child.stderr!.on('data', (d: Buffer) => {
        output += d.toString();
      });
      await waitFor('the control plane up', () => output.includes('Ferry is up') || child.exitCode !== null, {
        timeoutMs: 300_000,
      });
      assert.equal(child.exitCode, null, `ferry up exited: ${output}`);
      plane = child;
      return { child, seconds: (Date.now() - started) / 1000, output: () => output };
    };
    const stopPlane = async (signal: NodeJS.Signals) => {
      const child = plane!;
      const gone = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill(signal);
      const code = await gone;
      plane = undefined;
      return code;
    };

    // 1. Up: the gateway service on every node, pulling its routes from this control plane.
    const up = await startPlane();
    report.push(
      `ferry up --runtime swarm: up in ${seconds(up.seconds * 1000)} s (gateway image built and pushed)`,
    );
    const gateways = await Promise.all(s.nodes.map((n) => s.proxy(n.address, GATEWAY_PORT)));

    // 2. Deploy v1 from its directory: built here, pushed to the registry, pinned by digest.
    const deployAt = Date.now();
    await ferry(['deploy', versions[0]!, '--public', '--replicas', '2', '--cpus', '0.5', '--memory', '256m']);
    const served = (g: string, version: string) => async () => {
      const r = await client.infer(g);
      return r.ok && r.version === version;
    };
    for (const g of gateways)
      await waitFor(`every gateway serves iris v1 (${g})`, served(g, '1'), {
        timeoutMs: 300_000,
        everyMs: 500,
      });
    report.push(
      `deploy v1 (build, push, pull, 2 replicas ready, every gateway routing): ${seconds(Date.now() - deployAt)} s`,
    );
    for (const line of (await ferry(['events', '--deployment', 'iris'])).trim().split('\n'))
      report.push(`  ${line.replace(/\s+/g, ' ').trim().slice(0, 160)}`);
    const spec = JSON.parse(
      (
        await s.docker(1, ['service', 'inspect', 'ferry-default-iris-r1', '--format', '{{json .Spec}}'], {
          check: true,
        })
      ).stdout,
    ) as { TaskTemplate: { ContainerSpec: { Image: string; User: string; ReadOnly: boolean } } };
    assert.match(
      spec.TaskTemplate.ContainerSpec.Image,
      new RegExp(`^${registry}/ferry/iris@sha256:[0-9a-f]{64}$`),
    );
    assert.equal(spec.TaskTemplate.ContainerSpec.User, '65532:65532');
    assert.equal(spec.TaskTemplate.ContainerSpec.ReadOnly, true);

    // The load: each client sends its next request when the last one is answered, through nodes 2 and 3.
    const outcomes: Outcome[] = [];
    let loading = true;
    // The gateways the clients call, in turn (a load balancer's pool): nodes 2 and 3; a node about to be lost
    // leaves the pool first, as a load balancer's health check would take it out.
    let pool = [gateways[1]!, gateways[2]!];
    let turn = 0;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (loading && outcomes.length < 2_000_000) {
        const g = pool[turn++ % pool.length]!;
        const sent = Date.now();
        const r: InferOutcome = await client.infer(g, 10_000);
        outcomes.push({
          sent,
          at: Date.now(),
          ...(r.ok ? { ok: true, version: r.version } : { ok: false, why: r.why }),
        });
      }
    });
    const since = (from: number) => outcomes.filter((o) => o.sent >= from);
    const failedSince = (from: number) => since(from).filter((o) => !o.ok);
    /** A step under the load: what it says, and no failed request (or only those `allowed` says may fail). */
    const phase = async (
      name: string,
      work: () => Promise<string | undefined>,
      allowed: (failed: Outcome[], from: number) => void = (failed) =>
        assert.deepEqual(failed.slice(0, 5), [], `${name}: requests failed`),
    ) => {
      const from = Date.now();
      const note = await work();
      const failed = failedSince(from);
      report.push(
        `${name}: ${since(from).length} requests, ${failed.length} failed${note ? `; ${note}` : ''}`,
      );
      allowed(failed, from);
    };
    const gatewayOf = (node: number) => gateways[node - 1]!;
    const nodeNumber = (hostname: string | undefined) => s.nodes.findIndex((n) => n.name === hostname) + 1;
    try {
      await waitFor('a steady load', () => outcomes.filter((o) => o.ok).length >= 200, { timeoutMs: 60_000 });

      await phase('scale 2 -> 3', async () => {
        // `ferry logs -f` follows every replica wherever it runs, the one about to start included.
        const follow = spawn(
          'ip',
          [
            'netns',
            'exec',
            s.bridge.netns,
            'env',
            `FERRY_HOME=${home}`,
            process.execPath,
            FERRY_BIN,
            'logs',
            'iris',
            '-f',
            '--tail',
            '0',
          ],
          { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PATH: PATH_ENV } },
        );
        let followed = '';
        follow.stdout!.on('data', (d: Buffer) => {
          followed += d.toString();
        });
        try {
          await ferry(['scale', 'iris', '3']);
          const at = Date.now();
          await waitFor(
            '3 ready replicas of r1',
            async () => (await describeJson()).replicaStatus.filter((r) => r.state === 'ready').length === 3,
            { timeoutMs: 120_000, everyMs: 500 },
          );
          const view = await describeJson();
          const nodes = new Set(view.replicaStatus.map((r) => r.node));
          const third = view.replicaStatus.find((r) => r.name.endsWith('.3'))!;
          await waitFor(
            `ferry logs -f shows ${third.name} starting`,
            () => followed.split('\n').some((l) => l.includes(third.name) && l.includes('Server listening')),
            { timeoutMs: 60_000, detail: () => followed.slice(-1000) },
          );
          return `3 ready in ${seconds(Date.now() - at)} s on ${nodes.size} node(s); ferry logs -f showed the new one (on ${third.node}) start`;
        } finally {
          const gone = new Promise((r) => follow.once('exit', r));
          follow.kill('SIGTERM');
          await gone;
        }
      });

      await phase('canary v2 at 10%', async () => {
        await ferry(['deploy', versions[1]!, '--canary', '10,100', '--cpus', '0.5', '--memory', '256m']);
        await waitFor(
          'the rollout at 10%',
          async () => (await describeJson()).traffic.some((x) => x.revision === 2 && x.percent === 10),
          { timeoutMs: 300_000, everyMs: 500 },
        );
        // The gateways have the split once v2 answers through both.
        for (const g of [gateways[1]!, gateways[2]!])
          await waitFor(`v2 answers through ${g}`, served(g, '2'), { timeoutMs: 30_000, everyMs: 50 });
        const from = outcomes.length;
        await waitFor('10,000 requests at 10%', () => outcomes.length - from >= 10_000, {
          timeoutMs: 600_000,
          everyMs: 500,
        });
        const window = outcomes.slice(from, from + 10_000);
        const v2 = window.filter((o) => o.version === '2').length;
        const share = (100 * v2) / window.length;
        assert.ok(Math.abs(share - 10) <= 1, `v2 took ${share.toFixed(2)}% of 10,000 requests, not 10% ± 1`);
        return `v2 took ${share.toFixed(2)}% of 10,000 requests (asked: 10%)`;
      });

      await phase('promote to 100%', async () => {
        await ferry(['rollout', 'promote', 'iris']);
        const at = Date.now();
        await waitFor(
          'only v2 answers',
          () => {
            const last = since(at).slice(-200);
            return last.length === 200 && last.every((o) => o.version === '2');
          },
          { timeoutMs: 120_000, everyMs: 250 },
        );
        await waitFor(
          'the r1 service removed',
          async () => !(await ferryServices()).some((l) => l.split(' ')[1]!.endsWith('-r1')),
          {
            timeoutMs: 120_000,
          },
        );
        return `all v2, r1 removed ${seconds(Date.now() - at)} s after`;
      });

      await phase('undo to v1', async () => {
        await ferry(['rollout', 'undo', 'iris']);
        const at = Date.now();
        await waitFor(
          'only v1 answers',
          () => {
            const last = since(at).slice(-200);
            return last.length === 200 && last.every((o) => o.version === '1');
          },
          { timeoutMs: 300_000, everyMs: 250 },
        );
        const v1At = Date.now();
        // Undo is a new revision (r3) with v1's spec; the one it replaced goes once the gateways have let go of it.
        await waitFor(
          'the r2 service removed',
          async () => !(await ferryServices()).some((l) => l.split(' ')[1]!.endsWith('-r2')),
          { timeoutMs: 120_000 },
        );
        return `all v1 ${seconds(v1At - at)} s after, r2 removed ${seconds(Date.now() - at)} s after`;
      });

      await phase('scale 3 -> 2', async () => {
        await ferry(['scale', 'iris', '2']);
        await waitFor('2 replicas', async () => (await describeJson()).replicaStatus.length === 2, {
          timeoutMs: 120_000,
          everyMs: 500,
        });
        await waitFor('load after the scale-down', () => since(Date.now() - 5000).length >= 100, {
          timeoutMs: 60_000,
        });
        return undefined;
      });

      await phase('control plane restarted', async () => {
        const before = await ferryServices();
        const code = await stopPlane('SIGUSR2');
        assert.equal(code, 0);
        assert.deepEqual(await ferryServices(), before, 'the services outlive the control plane');
        const again = await startPlane();
        // A few passes: nothing is made twice, nothing removed.
        const events = await waitFor('the adoption event', async () => {
          const out = await ferry(['events']);
          return out.includes('ReplicasAdopted') ? out : undefined;
        });
        // Passes after the adoption: the deployment Ready again as observed by this control plane.
        await waitFor(
          'Ready after the restart',
          async () => (await ferry(['describe', 'iris', '-o', 'json'])).includes('"AllReplicasReady"'),
          { timeoutMs: 60_000 },
        );
        assert.deepEqual(await ferryServices(), before, 'no service made twice, updated or removed');
        const adopted = /Found (\d+) running replica/.exec(events)?.[1];
        return `back in ${seconds(again.seconds * 1000)} s, adopted ${adopted} replica(s), services unchanged (${before.length})`;
      });

      await phase(
        'a replica container killed',
        async () => {
          const victim = (await describeJson()).replicaStatus.find((r) => r.state === 'ready')!;
          const node = nodeNumber(victim.node);
          const ps = await s.docker(
            node,
            ['ps', '-q', '--filter', `label=com.docker.swarm.task.id=${victim.id}`],
            {
              check: true,
            },
          );
          const container = ps.stdout.trim();
          assert.ok(container, `the container of ${victim.name} on node ${node}`);
          const killedAt = Date.now();
          await s.docker(node, ['kill', container], { check: true });
          await waitFor(
            'the killed replica replaced',
            async () => {
              const now = (await describeJson()).replicaStatus.filter((r) => r.state === 'ready');
              return now.length === 2 && !now.some((r) => r.id === victim.id);
            },
            { timeoutMs: 120_000, everyMs: 500 },
          );
          return `${victim.name} on node ${node} killed; replaced in ${seconds(Date.now() - killedAt)} s`;
        },
        (failed) =>
          assert.ok(failed.length <= CLIENTS, `more failed than were in flight: ${JSON.stringify(failed)}`),
      );

      let lost = 0;
      let lostAt = 0;
      await phase(
        'a node lost (as a machine)',
        async () => {
          // A node other than the control plane's manager (node 1) that runs a replica.
          const replicas = (await describeJson()).replicaStatus;
          lost = replicas.map((r) => nodeNumber(r.node)).find((n) => n !== 1) ?? 3;
          pool = gateways.filter((_, i) => i + 1 !== lost);
          lostAt = Date.now();
          await s.killNode(lost, { machine: true });
          const rescheduled = await waitFor(
            'the replicas rescheduled off the lost node',
            async () => {
              const now = (await describeJson()).replicaStatus.filter((r) => r.state === 'ready');
              return now.length === 2 && now.every((r) => nodeNumber(r.node) !== lost)
                ? Date.now()
                : undefined;
            },
            { timeoutMs: 180_000, everyMs: 500 },
          );
          await waitFor(
            'load after the rescheduling',
            () => since(rescheduled).filter((o) => o.ok).length >= 300,
            {
              timeoutMs: 120_000,
            },
          );
          const failed = failedSince(lostAt);
          const last = failed.reduce((m, o) => Math.max(m, o.sent), lostAt);
          const failures =
            failed.length === 0
              ? 'none failed'
              : `${failed.filter((o) => o.sent < lostAt).length} of the failed were in flight, the last failed one was sent ${seconds(last - lostAt)} s after`;
          // Requests caught on a connection to the dead machine wait for the gateway to give it up (tcp_retries2)
          // and go to another replica: the slowest answer around the loss shows it.
          const around = outcomes.filter((o) => o.ok && o.sent >= lostAt - 1000 && o.sent <= lostAt + 5000);
          const slowest = around.reduce((m, o) => Math.max(m, o.at - o.sent), 0);
          return `node ${lost} lost; ${failures}; the slowest answer around it took ${seconds(slowest)} s; replicas rescheduled in ${seconds(rescheduled - lostAt)} s`;
        },
        (failed) => {
          const late = failed.filter((o) => o.sent >= lostAt + 5000);
          assert.deepEqual(late, [], '100% success from 5 s after the node was lost');
        },
      );

      await phase('the node back', async () => {
        const backAt = Date.now();
        await s.restartNode(lost);
        await waitFor(
          'the node Ready again',
          async () =>
            (await s.nodeList(1)).find((n) => n.hostname === s.nodes[lost - 1]!.name)?.status === 'Ready',
          { timeoutMs: 120_000 },
        );
        await waitFor(`its gateway serves again`, served(gatewayOf(lost), '1'), {
          timeoutMs: 120_000,
          everyMs: 500,
        });
        pool = [gateways[1]!, gateways[2]!];
        await waitFor(
          'load after the rejoin',
          () => since(Date.now() - 3000).filter((o) => o.ok).length >= 100,
          {
            timeoutMs: 60_000,
          },
        );
        return `node ${lost} Ready and serving ${seconds(Date.now() - backAt)} s after its restart`;
      });

      await phase('leader manager lost and back', async () => {
        const leader = (await s.nodeList(2)).find((n) => n.managerStatus === 'Leader');
        assert.ok(leader, 'a leader');
        const index = nodeNumber(leader.hostname);
        assert.ok(index > 0, `the leader ${leader.hostname} is one of the lab's nodes`);
        // Clients call the other nodes' gateways (the leader's engine is what is lost, not its clients' path).
        pool = gateways.filter((_, i) => i + 1 !== index);
        const leaderLostAt = Date.now();
        await s.killNode(index);
        const via = index === 2 ? 3 : 2;
        const elected = await waitFor(
          'a new leader',
          async () => {
            const l = (await s.nodeList(via)).find((n) => n.managerStatus === 'Leader');
            return l && l.hostname !== leader.hostname ? l.hostname : undefined;
          },
          { timeoutMs: 120_000, everyMs: 500 },
        );
        const electedIn = Date.now() - leaderLostAt;
        await waitFor(
          'load without the leader',
          () => since(leaderLostAt).filter((o) => o.ok).length >= 300,
          {
            timeoutMs: 120_000,
          },
        );
        await s.restartNode(index);
        await waitFor(
          'the old leader Ready again',
          async () => (await s.nodeList(via)).find((n) => n.hostname === leader.hostname)?.status === 'Ready',
          { timeoutMs: 120_000 },
        );
        await waitFor(`its gateway serves again`, served(gatewayOf(index), '1'), {
          timeoutMs: 120_000,
          everyMs: 500,
        });
        pool = [gateways[1]!, gateways[2]!];
        return `node ${index} (leader) killed; ${elected} elected in ${seconds(electedIn)} s`;
      });
    } finally {
      loading = false;
      await Promise.all(clients);
      printReport(t, 'swarm platform', report, outcomes);
    }

    // Each replica's node in describe, and its logs through the control plane (read from the node it runs on).
    // After the old leader's engine came back, its tasks are replaced: wait until the view has settled.
    let logs = '';
    await waitFor(
      'describe and logs show every replica',
      async () => {
        const view = await describeJson();
        const table = await ferry(['describe', 'iris']);
        logs = await ferry(['logs', 'iris', '--tail', '5']);
        return (
          view.replicaStatus.length === 2 &&
          view.replicaStatus.every(
            (r) =>
              r.state === 'ready' && r.node !== undefined && table.includes(r.node) && logs.includes(r.name),
          )
        );
      },
      { timeoutMs: 120_000, everyMs: 1000, detail: () => logs.slice(-1500) },
    );

    // Autoscaling across machines: the gateways post their load to the control plane. Idle: to zero (the service
    // stays, at 0 tasks); the first request is held by the gateway and answered once a replica is up; a burst
    // scales out.
    await ferry([
      'autoscale',
      'iris',
      '--min',
      '0',
      '--max',
      '3',
      '--target',
      '1',
      '--stable-window',
      '6s',
      '--panic-window',
      '2s',
      '--zero-grace',
      '1s',
    ]);
    const idleAt = Date.now();
    await waitFor('scaled to zero', async () => (await describeJson()).replicaStatus.length === 0, {
      timeoutMs: 180_000,
      everyMs: 500,
    });
    const toZero = Date.now() - idleAt;
    // And its last tasks gone (they serve a few seconds after their SIGTERM): the next request finds nothing up.
    await waitFor(
      'no task of r3 running',
      async () => {
        const states = await s.docker(
          1,
          ['service', 'ps', 'ferry-default-iris-r3', '--format', '{{.CurrentState}}'],
          {
            check: true,
          },
        );
        return !states.stdout.split('\n').some((l) => l.startsWith('Running'));
      },
      { timeoutMs: 120_000, everyMs: 500 },
    );
    assert.ok(
      (await ferryServices()).some((l) => l.split(' ')[1]!.endsWith('-r3')),
      'the revision service stays, at zero tasks',
    );
    const coldAt = Date.now();
    const first = await client.infer(gateways[1]!, 60_000);
    assert.ok(first.ok, `the request at zero: ${JSON.stringify(first)}`);
    const coldStart = Date.now() - coldAt;
    const burst: Outcome[] = [];
    let bursting = true;
    const burstClients = Array.from({ length: 6 }, async (_, i) => {
      while (bursting && burst.length < 1_000_000) {
        const sent = Date.now();
        const r = await client.infer(gateways[1 + (i % 2)]!, 30_000);
        burst.push({ sent, at: Date.now(), ...(r.ok ? { ok: true } : { ok: false, why: r.why }) });
      }
    });
    const burstAt = Date.now();
    try {
      await waitFor(
        'scaled out under the burst',
        async () => (await describeJson()).replicaStatus.filter((r) => r.state === 'ready').length >= 2,
        { timeoutMs: 120_000, everyMs: 500 },
      );
    } finally {
      bursting = false;
      await Promise.all(burstClients);
    }
    const scaledOut = Date.now() - burstAt;
    const burstFailed = burst.filter((o) => !o.ok);
    const autoscaled = `autoscaling: idle to zero in ${seconds(toZero)} s; a request at zero answered in ${seconds(coldStart)} s (held by the gateway during the cold start); a burst of 6 clients scaled out to 2+ ready in ${seconds(scaledOut)} s, ${burst.length} requests, ${burstFailed.length} failed`;
    t.diagnostic(autoscaled);
    console.log(`[swarm platform] ${autoscaled}`);
    assert.deepEqual(burstFailed.slice(0, 5), [], 'no request of the burst failed');

    // Down: everything Ferry made is gone, nothing else.
    await s.docker(1, ['network', 'create', '-d', 'overlay', 'not-ferrys'], { check: true });
    assert.equal(await stopPlane('SIGTERM'), 0);
    assert.deepEqual(await ferryServices(), []);
    for (const kind of ['network', 'secret']) {
      const left = await s.docker(1, [kind, 'ls', '--filter', 'label=ferry.dev/managed-by=ferry', '-q'], {
        check: true,
      });
      assert.equal(left.stdout.trim(), '', `${kind}s left`);
    }
    const networks = await s.docker(1, ['network', 'ls', '--format', '{{.Name}}'], { check: true });
    assert.ok(networks.stdout.includes('not-ferrys'), 'what Ferry did not make stays');
  });
});
