/**
 * The Swarm runtime's engine (src/runtime/swarm-engine.ts) and the services it is given (src/runtime/
 * swarm-service.ts) on a real 3-node swarm (test/swarm/harness.ts): the iris image built by Ferry, pushed to the
 * lab's registry and pinned by digest; a revision's service with a secret, on an internal overlay, 3 replicas
 * that become healthy on 3 nodes, hardened as the spec says (user, read-only root, no capabilities, the secret a
 * 0400 file of 65532), answering an inference by `tasks.<service>` from another container on the overlay; an
 * update with a stale version refused (FERRY_CONFLICT), with the current one applied; then everything removed.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Dockerode from 'dockerode';
import { DockerSwarmEngine } from '../../src/runtime/swarm-engine.ts';
import { revisionService } from '../../src/runtime/swarm-service.ts';
import { runCli } from '../helpers.ts';
import { type Swarm, startSwarm, swarmSkip, waitFor } from './harness.ts';

const LABELS = { 'app.kubernetes.io/managed-by': 'ferry', 'ferry.dev/test': 'swarm-engine' };
const IMAGE = 'ferry-swarm-test/iris:1';

describe('the Swarm engine on a 3-node swarm', { skip: swarmSkip }, () => {
  let swarm: Swarm | undefined;
  after(async () => {
    await swarm?.stop();
  });

  test('a revision as a service: healthy on 3 nodes, hardened, its secret a file, found by tasks.<service>; update and removal', async (t) => {
    const built = await runCli(['build', 'examples/iris', '-t', IMAGE]);
    assert.equal(built.code, 0, built.stderr);
    swarm = await startSwarm({ prefix: 'fswe', offline: false });
    const registry = await swarm.registry();
    await swarm.loadImage(IMAGE);
    const ref = `${registry}/ml/iris`;
    await swarm.docker(1, ['tag', IMAGE, `${ref}:1`], { check: true });
    const push = await swarm.docker(1, ['push', `${ref}:1`], { check: true, timeoutMs: 120_000 });
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    assert.ok(digest, push.stdout);

    const engine = new DockerSwarmEngine(
      new Dockerode({ socketPath: swarm.nodes[0]!.dockerHost.slice('unix://'.length) }),
    );
    assert.ok(await engine.swarmId());
    const nodes = await engine.nodes();
    assert.equal(nodes.length, 3);
    assert.equal(nodes.filter((n) => n.leader).length, 1);

    const network = await engine.ensureNetwork('ferry-t-iris', LABELS, true);
    assert.equal(
      await engine.ensureNetwork('ferry-t-iris', LABELS, true),
      network,
      'ensured twice: the same network',
    );
    const secretId = await engine.createSecret('ferry-t-iris-API_KEY-v1', 'k-123-not-shown', LABELS);
    const began = Date.now();
    const spec = revisionService({
      tenant: 't',
      deployment: 'iris',
      revision: 1,
      image: `${ref}@${digest}`,
      replicas: 3,
      env: {},
      secrets: [{ name: 'API_KEY', secretId, secretName: 'ferry-t-iris-API_KEY-v1' }],
      cpus: 0.5,
      memoryBytes: 256 * 1024 ** 2,
      gpus: 0,
      constraints: [],
      network,
      startupTimeoutMs: 60_000,
      shutdownTimeoutS: 5,
      labels: LABELS,
    });
    const id = await engine.createService(spec);
    const running = () =>
      engine
        .tasks(id)
        .then((tasks) => tasks.filter((x) => x.desiredState === 'running' && x.state === 'running'));
    let last: unknown;
    const up = await waitFor(
      'iris-r1: 3 tasks running on 3 nodes',
      async () => {
        const tasks = await running();
        last = await engine.tasks(id);
        return new Set(tasks.map((x) => x.nodeId)).size === 3 ? tasks : undefined;
      },
      { timeoutMs: 180_000, everyMs: 500, detail: () => JSON.stringify(last) },
    );
    t.diagnostic(`3 replicas running on 3 nodes ${((Date.now() - began) / 1000).toFixed(1)} s after create`);

    // A running task's container, as the spec made it.
    const task = up[0]!;
    const node = nodes.findIndex((n) => n.id === task.nodeId) + 1;
    const inspect = JSON.parse(
      (await swarm.docker(node, ['inspect', task.containerId!], { check: true })).stdout,
    )[0] as {
      Config: { User: string; Env: string[] };
      HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[] };
      State: { Health?: { Status: string } };
    };
    assert.equal(inspect.Config.User, '65532:65532');
    assert.equal(inspect.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(inspect.HostConfig.CapDrop, ['ALL']);
    assert.equal(inspect.State.Health?.Status, 'healthy');
    assert.ok(
      !JSON.stringify(inspect).includes('k-123-not-shown'),
      'no secret value in the container config',
    );
    const stat = await swarm.docker(
      node,
      [
        'exec',
        task.containerId!,
        'node',
        '-e',
        "const s=require('fs').statSync('/run/secrets/API_KEY');console.log((s.mode&0o777).toString(8),s.uid)",
      ],
      { check: true },
    );
    assert.equal(stat.stdout.trim(), '400 65532');
    // Its output, read through the manager from whichever node runs it: the last lines, and lines as they come.
    const remote = up.find((x) => x.nodeId !== nodes.find((n) => n.leader)?.id) ?? task;
    const lines: string[] = [];
    for await (const l of engine.taskLogs(remote.id, { tail: 50 })) lines.push(l.line);
    assert.ok(
      lines.some((l) => l.includes('Server listening')),
      `task logs: ${JSON.stringify(lines).slice(0, 800)}`,
    );
    const service = await swarm.docker(1, ['service', 'inspect', 'ferry-t-iris-r1'], { check: true });
    assert.ok(!service.stdout.includes('k-123-not-shown'), 'no secret value in docker service inspect');

    // From another container on the overlay (another node), by the service's DNS name: every replica's address.
    const probe = await swarm.docker(
      3,
      [
        'run',
        '--rm',
        '--network',
        'ferry-t-iris',
        '--user',
        '65532',
        '--entrypoint',
        'node',
        `${ref}@${digest}`,
        '-e',
        `const dns=require('dns').promises;(async()=>{const a=await dns.resolve4('tasks.ferry-t-iris-r1');const r=await fetch('http://ferry-t-iris-r1:8080/v2/models/iris/infer',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({inputs:[{name:'input',shape:[1,4],datatype:'FP32',data:[5.1,3.5,1.4,0.2]}]})});console.log(JSON.stringify({addresses:a.length,status:r.status,label:(await r.json()).outputs[0].data[0]}))})().catch(e=>{console.error(e);process.exit(1)})`,
      ],
      { check: true, timeoutMs: 120_000 },
    );
    assert.deepEqual(JSON.parse(probe.stdout.trim().split('\n').at(-1)!), {
      addresses: 3,
      status: 200,
      label: 0,
    });

    // Updates name the version they read: a stale one is refused, the current one applies.
    const [view] = await engine.services(LABELS);
    assert.ok(view);
    assert.equal(view.replicas, 3);
    const fewer = { ...view.spec, Mode: { Replicated: { Replicas: 2 } } };
    await engine.updateService(id, view.version, fewer);
    await assert.rejects(engine.updateService(id, view.version, fewer), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'FERRY_CONFLICT', e.message);
      return true;
    });
    await waitFor('iris-r1 at 2 replicas', async () => (await running()).length === 2, { timeoutMs: 60_000 });

    await engine.removeService(id);
    await waitFor('the service and its tasks gone', async () => (await engine.services(LABELS)).length === 0);
    await waitFor(
      'the network free to remove',
      async () => {
        try {
          await engine.removeNetwork(network);
          return true;
        } catch {
          return false; // tasks still detaching from it
        }
      },
      { timeoutMs: 60_000 },
    );
    await engine.removeSecret(secretId);
    assert.deepEqual(await engine.secrets(LABELS), []);
    // A swarm network's removal reaches the manager's list a moment later.
    await waitFor('the network gone from the list', async () => (await engine.networks(LABELS)).length === 0);
  });
});
