/**
 * The swarm test harness (test/swarm/harness.ts), proven on a real 3-node Docker Swarm built on this machine:
 * three managers formed; an attachable overlay with a dnsrr service spread over the three nodes and a global
 * service with a host-mode published port (the shape Ferry's swarm runtime will use: replicas without published
 * ports, a gateway with one); `tasks.<service>` DNS from a container on the overlay; the published port reached
 * from the root namespace through proxy(), and across nodes through the overlay; a node's dockerd SIGKILLed
 * (Down, its task rescheduled, its address gone from DNS) and restarted (Ready again, nothing moves back); and
 * stop() leaving nothing behind. Then a second lab whose nodes pull: an image pushed to the lab's registry from
 * node 1 and a service pinned by its digest, pulled and run by all three nodes. The seconds each step took are
 * printed (t.diagnostic), not asserted.
 *
 * The first tests need nothing (the harness's pure parts); the swarm test needs root, iproute2 and docker.io, and
 * is skipped with the reason otherwise (swarmSkip).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Agent, fetch } from 'undici';
import { busyboxRootfs } from './busybox.mjs';
import {
  cgroupMountScript,
  checkPrefix,
  isLabNetns,
  LAB_NET,
  labLayout,
  leftovers,
  parseNodeList,
  parseTasks,
  type Swarm,
  shimSocket,
  startSwarm,
  swarmSkip,
  waitFor,
} from './harness.ts';

describe('the harness, its pure parts', () => {
  test('a lab layout names everything after the prefix, nodes numbered from 1', () => {
    const layout = labLayout('fsw', 3, 2);
    assert.deepEqual(
      layout.nodes.map((n) => [n.name, n.netns, n.address, n.manager, n.dockerHost]),
      [
        ['fsw-n1', 'fsw-n1', `${LAB_NET}.11`, true, 'unix:///run/ferry-swarm/fsw/n1/docker.sock'],
        ['fsw-n2', 'fsw-n2', `${LAB_NET}.12`, true, 'unix:///run/ferry-swarm/fsw/n2/docker.sock'],
        ['fsw-n3', 'fsw-n3', `${LAB_NET}.13`, false, 'unix:///run/ferry-swarm/fsw/n3/docker.sock'],
      ],
    );
    assert.equal(layout.bridgeNetns, 'fsw-br');
    assert.equal(layout.cgroup, 'ferry-swarm-fsw');
    assert.equal(layout.nodes[1]?.dataRoot, '/var/lib/ferry-swarm/fsw/n2');
  });

  test('bad prefixes and counts are refused with the rule', () => {
    for (const bad of ['', 'Fsw', '1sw', 'fsw-x', 'toolongprefix', 'a/b'])
      assert.throws(() => checkPrefix(bad), /1-8 characters of \[a-z0-9\], starting with a letter/);
    assert.throws(() => labLayout('fsw', 0), /nodes must be 1-9, got 0/);
    assert.throws(() => labLayout('fsw', 3, 4), /managers must be 1-3 \(the nodes\), got 4/);
  });

  test("only the prefix's own namespaces count as the lab's", () => {
    assert.ok(isLabNetns('fsw', 'fsw-br'));
    assert.ok(isLabNetns('fsw', 'fsw-n3'));
    assert.ok(!isLabNetns('fsw', 'fswt-n1'));
    assert.ok(!isLabNetns('fsw', 'fsw-n10'));
    assert.ok(!isLabNetns('fsw', 'other'));
  });

  test("a shim's socket is sha256(address/namespace/id) under /run/containerd/s (containerd 1.6)", () => {
    // Checked against a live shim of containerd 1.6.20 (docs/swarm.md, the test harness).
    assert.equal(
      shimSocket(
        '/tmp/fxt-lab/n2/exec/containerd/containerd.sock',
        'moby',
        '4c2a451b1d0d3fca74e1ff4acbac2970ae81b700c87a59cd134d87bef1ef67aa',
      ),
      '/run/containerd/s/f8c2bcab8d6692c432bfbd2fef17ffc37d6909fb3b19dd8ce1ea964171b16d43',
    );
  });

  test('the cgroup mounts are made again as the machine has them (v1 under a tmpfs, or v2 alone)', () => {
    assert.deepEqual(
      cgroupMountScript([
        { mountPoint: '/sys/fs/cgroup', fsType: 'tmpfs', superOptions: 'rw,mode=755' },
        { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', fsType: 'cgroup', superOptions: 'rw,cpu,cpuacct' },
        { mountPoint: '/sys/fs/cgroup/systemd', fsType: 'cgroup', superOptions: 'rw,name=systemd' },
        { mountPoint: '/sys/fs/cgroup/unified', fsType: 'cgroup2', superOptions: 'rw,nsdelegate' },
      ]),
      [
        "mount -t tmpfs -o mode=755 cgroup '/sys/fs/cgroup'",
        "mkdir -p '/sys/fs/cgroup/cpu,cpuacct'",
        "mount -t cgroup -o cpu,cpuacct cgroup '/sys/fs/cgroup/cpu,cpuacct'",
        "mkdir -p '/sys/fs/cgroup/systemd'",
        "mount -t cgroup -o none,name=systemd cgroup '/sys/fs/cgroup/systemd'",
        "mkdir -p '/sys/fs/cgroup/unified'",
        "mount -t cgroup2 cgroup2 '/sys/fs/cgroup/unified'",
      ],
    );
    assert.deepEqual(
      cgroupMountScript([{ mountPoint: '/sys/fs/cgroup', fsType: 'cgroup2', superOptions: 'rw' }]),
      ["mkdir -p '/sys/fs/cgroup'", "mount -t cgroup2 cgroup2 '/sys/fs/cgroup'"],
    );
  });

  test('docker node ls and service ps JSON lines are read', () => {
    const nodes = parseNodeList(
      '{"Availability":"Active","Hostname":"fsw-n1","ID":"abc","ManagerStatus":"Leader","Status":"Ready"}\n',
    );
    assert.deepEqual(nodes, [
      { id: 'abc', hostname: 'fsw-n1', status: 'Ready', availability: 'Active', managerStatus: 'Leader' },
    ]);
    const tasks = parseTasks(
      '{"CurrentState":"Running 2 seconds ago","DesiredState":"Running","Error":"","ID":"t1","Name":"web.1","Node":"fsw-n2"}\n',
    );
    assert.equal(tasks[0]?.node, 'fsw-n2');
    assert.equal(tasks[0]?.currentState, 'Running 2 seconds ago');
  });
});

// ---------------------------------------------------------------------------------------------------------

const PREFIX = 'fswt';
const IMAGE = 'ferry-swarm-test/busybox:1';
/** The image's entry: an index page saying who answers, then busybox httpd on 8080 (CGI in /www/cgi-bin). */
const SERVE = `#!/bin/sh
echo "$1 $NODE $(hostname)" > /www/index.html
exec httpd -f -p 8080 -h /www
`;
/**
 * The gateway's /cgi-bin/web: one request to a replica of web found by DNS, over the overlay. (Not `wget -T`: it
 * crashes busybox 1.35's wget. CRLF: busybox httpd passes the CGI's header lines as they are, and undici's
 * parser refuses bare LF.)
 */
const CGI_WEB = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
timeout 5 wget -q -O - http://tasks.web:8080/
`;

const seconds = (ms: number) => Math.round(ms / 100) / 10;

const work = mkdtempSync(join(tmpdir(), 'ferry-swarm-test-'));
after(() => rmSync(work, { recursive: true, force: true }));
let rootfs: Promise<string> | undefined;
/** The test image's root file system (busybox-static, the entry script and the CGI), built once. */
const testRootfs = () =>
  (rootfs ??= busyboxRootfs(join(work, 'rootfs.tar'), {
    serve: { content: SERVE, mode: 0o755 },
    'www/cgi-bin/web': { content: CGI_WEB, mode: 0o755 },
  }));

/** GET through a proxy() socket; the body, or throws. */
async function get(socketPath: string, path: string): Promise<string> {
  const dispatcher = new Agent({ connect: { socketPath } });
  try {
    const res = await fetch(`http://lab${path}`, { dispatcher, signal: AbortSignal.timeout(10_000) }).catch(
      (err: Error) => {
        throw new Error(`GET ${path} through ${socketPath}: ${err.message} (${String(err.cause ?? '')})`);
      },
    );
    const body = await res.text();
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${body}`);
    return body.trim();
  } finally {
    await dispatcher.close();
  }
}

describe('a 3-node Docker Swarm on this machine', { skip: swarmSkip }, () => {
  let swarm: Swarm | undefined;
  after(() => swarm?.stop());
  const lab = () => {
    assert.ok(swarm, 'the swarm did not start');
    return swarm;
  };
  const running = (tasks: Awaited<ReturnType<Swarm['tasks']>>) =>
    tasks.filter((t) => t.desiredState === 'Running' && t.currentState.startsWith('Running'));
  /** The addresses `tasks.web` resolves to, asked from a container on the overlay on node 1. */
  const resolveWeb = async (): Promise<string[]> => {
    const r = await lab().docker(1, ['run', '--rm', '--network', 'lab', IMAGE, 'nslookup', 'tasks.web'], {
      timeoutMs: 30_000,
    });
    // busybox nslookup: "Address: 10.232.1.3" per answer, after the server's "Address: 127.0.0.11:53".
    return [...r.stdout.matchAll(/^Address:\s+(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1] ?? '').sort();
  };
  let web2Address = '';

  test('three managers formed: 3 Ready, 1 Leader, 2 Reachable', async (t) => {
    swarm = await startSwarm({ prefix: PREFIX });
    t.diagnostic(`formed in ${swarm.formedInSeconds.toFixed(1)} s`);
    const nodes = await lab().nodeList(1);
    assert.deepEqual(nodes.map((n) => n.hostname).sort(), ['fswt-n1', 'fswt-n2', 'fswt-n3']);
    assert.equal(nodes.filter((n) => n.status === 'Ready').length, 3);
    assert.deepEqual(nodes.map((n) => n.managerStatus).sort(), ['Leader', 'Reachable', 'Reachable']);
    assert.equal(nodes.find((n) => n.managerStatus === 'Leader')?.hostname, 'fswt-n1');
  });

  test('a dnsrr service spreads over the 3 nodes; a host-mode published port answers', async (t) => {
    await lab().importImage(await testRootfs(), IMAGE, { changes: ['CMD ["/serve", "busybox"]'] });
    await lab().docker(1, ['network', 'create', '--driver', 'overlay', '--attachable', 'lab'], {
      check: true,
    });
    const common = [
      '--detach',
      '--init',
      '--network',
      'lab',
      '--endpoint-mode',
      'dnsrr',
      '--no-resolve-image',
    ];
    const began = Date.now();
    await lab().docker(
      1,
      [
        'service',
        'create',
        ...common,
        '--name',
        'web',
        '--replicas',
        '3',
        '--env',
        'NODE={{.Node.Hostname}}',
        '--stop-grace-period',
        '2s',
        IMAGE,
        '/serve',
        'web',
      ],
      { check: true },
    );
    await lab().docker(
      1,
      [
        'service',
        'create',
        ...common,
        '--name',
        'gw',
        '--mode',
        'global',
        '--publish',
        'mode=host,target=8080,published=8081',
        '--env',
        'NODE={{.Node.Hostname}}',
        IMAGE,
        '/serve',
        'gateway',
      ],
      { check: true },
    );
    let last: unknown;
    const spread = await waitFor(
      'web: 3 tasks running on 3 different nodes',
      async () => {
        const tasks = running(await lab().tasks('web'));
        last = tasks;
        const nodes = new Set(tasks.map((t) => t.node));
        return tasks.length === 3 && nodes.size === 3 && [...nodes].sort();
      },
      { timeoutMs: 60_000, detail: () => JSON.stringify(last) },
    );
    assert.deepEqual(spread, ['fswt-n1', 'fswt-n2', 'fswt-n3']);
    await waitFor(
      'gw: a task running on every node',
      async () => new Set(running(await lab().tasks('gw')).map((t) => t.node)).size === 3,
      { timeoutMs: 60_000 },
    );
    t.diagnostic(`services running ${seconds(Date.now() - began)} s after create`);

    // The published port, from this (the root) namespace through a forwarder in the lab, on every node.
    for (const node of lab().nodes) {
      const socket = await lab().proxy(node.address, 8081);
      const body = await waitFor(`gw answers on ${node.address}:8081`, () => get(socket, '/'), {
        timeoutMs: 30_000,
      });
      assert.match(body, new RegExp(`^gateway ${node.name} `));
    }
  });

  test('tasks.web resolves to the 3 replicas from a container on the overlay', async () => {
    const subnet = (
      await lab().docker(1, ['network', 'inspect', 'lab', '--format', '{{(index .IPAM.Config 0).Subnet}}'], {
        check: true,
      })
    ).stdout.trim();
    assert.match(subnet, /^10\.232\.\d+\.0\/24$/);
    const addresses = await resolveWeb();
    assert.equal(new Set(addresses).size, 3, `tasks.web: ${addresses.join(', ')}`);
    const prefix = subnet.replace(/\.0\/24$/, '.');
    for (const a of addresses) assert.ok(a.startsWith(prefix), `${a} is not in ${subnet}`);

    // Node 2's replica, for later: its address must leave DNS once node 2 is down.
    const ids = await lab().docker(2, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=web'], {
      check: true,
    });
    const id = ids.stdout.trim().split('\n')[0] ?? '';
    web2Address = (
      await lab().docker(
        2,
        ['inspect', '--format', '{{(index .NetworkSettings.Networks "lab").IPAddress}}', id],
        {
          check: true,
        },
      )
    ).stdout.trim();
    assert.ok(
      addresses.includes(web2Address),
      `node 2's replica ${web2Address} is not in ${addresses.join(', ')}`,
    );
  });

  test('the gateway on node 3 reaches replicas on the other nodes over the overlay', async () => {
    const socket = await lab().proxy(lab().node(3).address, 8081);
    const seen = new Set<string>();
    // DNS answers come in a shuffled order and wget takes the first: each replica's turn comes.
    await waitFor(
      'answers from web on all 3 nodes through gw on fswt-n3',
      async () => {
        const body = await get(socket, '/cgi-bin/web');
        assert.match(body, /^web fswt-n\d /);
        seen.add(body.split(' ')[1] ?? '');
        return seen.size === 3;
      },
      { timeoutMs: 60_000, everyMs: 50, detail: () => `seen ${[...seen].join(', ')}` },
    );
  });

  test("node 2's dockerd SIGKILLed: Down, its replica rescheduled and its address out of DNS", async (t) => {
    const began = Date.now();
    await lab().killNode(2);
    let nodes: unknown;
    await waitFor(
      'fswt-n2 Down as node 1 sees it',
      async () => {
        const list = await lab().nodeList(1);
        nodes = list;
        return list.find((n) => n.hostname === 'fswt-n2')?.status === 'Down';
      },
      { timeoutMs: 90_000, detail: () => JSON.stringify(nodes) },
    );
    const down = Date.now() - began;
    let tasks: unknown;
    await waitFor(
      'web: 3 tasks running again, none on fswt-n2',
      async () => {
        const list = running(await lab().tasks('web', 1));
        tasks = list;
        return list.length === 3 && list.every((t) => t.node !== 'fswt-n2');
      },
      { timeoutMs: 90_000, detail: () => JSON.stringify(tasks) },
    );
    const rescheduled = Date.now() - began;
    let addresses: string[] = [];
    await waitFor(
      `tasks.web: 3 addresses, without node 2's ${web2Address}`,
      async () => {
        addresses = await resolveWeb();
        return addresses.length === 3 && !addresses.includes(web2Address);
      },
      { timeoutMs: 90_000, everyMs: 500, detail: () => addresses.join(', ') },
    );
    const dns = Date.now() - began;
    t.diagnostic(
      `node 2's dockerd SIGKILLed: Down after ${seconds(down)} s, its replica rescheduled after ${seconds(rescheduled)} s, out of tasks.web DNS after ${seconds(dns)} s`,
    );
  });

  test('node 2 restarted: Ready and Reachable again; nothing moves back to it', async (t) => {
    const before = running(await lab().tasks('web', 1))
      .map((x) => x.id)
      .sort();
    const began = Date.now();
    await lab().restartNode(2);
    const answers = Date.now() - began;
    let nodes: unknown;
    await waitFor(
      'fswt-n2 Ready and Reachable as node 1 sees it',
      async () => {
        const list = await lab().nodeList(1);
        nodes = list;
        const n2 = list.find((n) => n.hostname === 'fswt-n2');
        return n2?.status === 'Ready' && n2.managerStatus === 'Reachable';
      },
      { timeoutMs: 90_000, detail: () => JSON.stringify(nodes) },
    );
    const ready = Date.now() - began;
    // Its old replica (still running: only its dockerd was killed) is shut down once it is back.
    await waitFor(
      "node 2's old web container removed",
      async () =>
        (
          await lab().docker(2, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=web'], {
            check: true,
          })
        ).stdout.trim() === '',
      { timeoutMs: 60_000 },
    );
    const now = running(await lab().tasks('web', 1))
      .map((x) => x.id)
      .sort();
    assert.deepEqual(now, before, 'the replicas moved when node 2 came back');
    t.diagnostic(
      `node 2 restarted: engine answers after ${seconds(answers)} s, Ready and Reachable after ${seconds(ready)} s`,
    );
  });

  test('stop() leaves nothing behind', async (t) => {
    const s = lab();
    const pids = s.nodes.map((n) => Number.parseInt(readFileSync(n.pidFile, 'utf8'), 10));
    assert.ok(pids.every((p) => p > 0));
    const began = Date.now();
    await s.stop();
    t.diagnostic(`stopped in ${seconds(Date.now() - began)} s`);
    assert.deepEqual(leftovers(PREFIX), []);
    for (const pid of pids) assert.ok(!existsSync(`/proc/${pid}`), `dockerd ${pid} is still there`);
    await s.stop(); // idempotent
  });
});

describe('images from a registry in the lab, services pinned by digest', { skip: swarmSkip }, () => {
  let swarm: Swarm | undefined;
  after(() => swarm?.stop());

  test('pushed once from node 1, pulled by every node (a swarm with offline: false)', async (t) => {
    swarm = await startSwarm({ prefix: 'fswr', offline: false });
    const registry = await swarm.registry();
    assert.equal(registry, `${LAB_NET}.1:5000`);
    const ref = `${registry}/ferry-swarm-test/busybox`;
    await swarm.docker(
      1,
      ['import', '--change', 'CMD ["/serve", "busybox"]', await testRootfs(), `${ref}:1`],
      {
        check: true,
      },
    );
    const push = await swarm.docker(1, ['push', `${ref}:1`], { check: true, timeoutMs: 60_000 });
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    assert.ok(digest, `no digest in: ${push.stdout}`);
    const began = Date.now();
    await swarm.docker(
      1,
      [
        'service',
        'create',
        '--detach',
        '--init',
        '--name',
        'pinned',
        '--replicas',
        '3',
        '--endpoint-mode',
        'dnsrr',
        `${ref}@${digest}`,
        '/serve',
        'pinned',
      ],
      { check: true },
    );
    let last: unknown;
    await waitFor(
      'pinned: 3 tasks running on 3 nodes',
      async () => {
        const tasks = await started(swarm).tasks('pinned');
        last = tasks;
        const up = tasks.filter((x) => x.desiredState === 'Running' && x.currentState.startsWith('Running'));
        return new Set(up.map((x) => x.node)).size === 3;
      },
      { timeoutMs: 90_000, detail: () => JSON.stringify(last) },
    );
    t.diagnostic(`3 nodes pulled and ran the pinned image ${seconds(Date.now() - began)} s after create`);
    for (const n of [2, 3]) {
      const digests = await swarm.docker(
        n,
        ['image', 'inspect', '--format', '{{json .RepoDigests}}', `${ref}@${digest}`],
        {
          check: true,
        },
      );
      assert.match(digests.stdout, new RegExp(`${ref}@${digest}`), `node ${n} did not pull it`);
    }
    await swarm.stop();
    assert.deepEqual(leftovers('fswr'), []);
  });
});

function started(swarm: Swarm | undefined): Swarm {
  assert.ok(swarm, 'the swarm did not start');
  return swarm;
}
