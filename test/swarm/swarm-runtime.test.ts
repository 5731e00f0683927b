/**
 * The Swarm runtime (src/runtime/swarm-runtime.ts) passes the RevisionRuntime contract (src/runtime/revision-contract.ts)
 * on a real 3-node swarm (harness.ts): iris built by Ferry, pushed to the lab's registry, pinned by digest.
 */
import assert from 'node:assert/strict';
import Dockerode from 'dockerode';
import { runRevisionContract } from '../../src/runtime/revision-contract.ts';
import { DockerSwarmEngine } from '../../src/runtime/swarm-engine.ts';
import { SwarmRuntime } from '../../src/runtime/swarm-runtime.ts';
import { runCli } from '../helpers.ts';
import { pushToLab } from './ferry-lab.ts';
import { type Swarm, startSwarm, swarmSkip } from './harness.ts';

const LABELS = { 'ferry.dev/managed-by': 'ferry', 'ferry.dev/platform': 'contract' };
const IMAGE = 'ferry-swarm-contract/iris:1';

runRevisionContract(
  'swarm (3 nodes)',
  async () => {
    const built = await runCli(['build', 'examples/iris', '-t', IMAGE]);
    assert.equal(built.code, 0, built.stderr);
    let swarm: Swarm | undefined;
    try {
      swarm = await startSwarm({ prefix: 'fswc', offline: false });
      const s = swarm;
      const image = await pushToLab(s, IMAGE);
      const engineOf = () =>
        new DockerSwarmEngine(new Dockerode({ socketPath: s.nodes[0]!.dockerHost.slice('unix://'.length) }));
      const engine = engineOf();
      const runtimeOf = () => new SwarmRuntime(engineOf(), { platformLabels: LABELS, watchEveryMs: 500 });
      const nodeOf = async (replica: { node?: string | undefined }) => {
        const index = s.nodes.findIndex((n) => n.name === replica.node) + 1;
        assert.ok(index > 0, `a lab node named ${replica.node}`);
        return index;
      };
      return {
        runtime: runtimeOf(),
        image,
        labels: LABELS,
        machines: s.nodes.length,
        reopen: runtimeOf,
        async exposed(name) {
          const service = await s.docker(1, ['service', 'inspect', name], { check: true });
          const hostnames = new Map((await engine.nodes()).map((n) => [n.id, n.hostname]));
          const service1 = (await engine.services(LABELS)).find((x) => x.name === name)!;
          const containers: string[] = [];
          for (const t of await engine.tasks(service1.id))
            if (t.containerId && t.state === 'running') {
              const node = await nodeOf({ node: hostnames.get(t.nodeId ?? '') });
              containers.push((await s.docker(node, ['inspect', t.containerId], { check: true })).stdout);
            }
          assert.ok(containers.length > 0, 'running containers inspected');
          return `${service.stdout}\n${containers.join('\n')}`;
        },
        async secretFile(replica, variable) {
          const node = await nodeOf(replica);
          const task = await engine.task(replica.id);
          const out = await s.docker(
            node,
            [
              'exec',
              task!.containerId!,
              'node',
              '-e',
              `process.stdout.write(require('fs').readFileSync('/run/secrets/${variable}','utf8'))`,
            ],
            { check: true },
          );
          return out.stdout;
        },
        async specVersion(name) {
          return (await engine.services(LABELS)).find((x) => x.name === name)!.version;
        },
        async secrets() {
          return (await engine.secrets(LABELS)).map((x) => x.name);
        },
        cleanup: async () => {
          await swarm?.stop();
        },
      };
    } catch (error) {
      await swarm?.stop();
      throw error;
    }
  },
  swarmSkip,
);
