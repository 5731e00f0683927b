import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cleanupContainers, requireDocker, uniqueName } from '../../test/docker-env.ts';
import { HANG_MS } from '../../test/hang.ts';
import { socketPathOf } from '../core/replica.ts';
import {
  type ContainerEventOptions,
  createEngine,
  type Engine,
  loadIntoEngine,
} from '../image/engine/index.ts';
import { buildImage, hostBase } from '../image/index.ts';
import { CONTRACT_RUN_LABEL, runRuntimeContract } from './contract.ts';
import { DockerRuntime } from './docker-runtime.ts';
import type { RuntimeEvent } from './types.ts';

const IRIS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'iris');

// What `ferry build examples/iris --base ferry-base:node<ver>` makes, under a tag of this run only (other
// suites remove and reload iris:1 concurrently). Built once, for both suites below.
const tag = `${uniqueName('ferry-runtime-iris')}:1`;
let loaded: Promise<string> | undefined;
function irisImage(): Promise<string> {
  loaded ??= (async () => {
    const engine = requireDocker();
    const built = await buildImage({ dir: IRIS, base: await hostBase() });
    await loadIntoEngine(engine, built.image, tag);
    return tag;
  })();
  return loaded;
}

// The replicas' socket directories (as $FERRY_HOME/sockets on the platform).
const stateDir = mkdtempSync(join(tmpdir(), 'ferry-docker-runtime-'));
const socketDir = join(stateDir, 'sockets');

after(async () => {
  if (loaded !== undefined) await requireDocker().removeImage(tag, true);
  rmSync(stateDir, { recursive: true, force: true });
});

runRuntimeContract('docker', async ({ labels }) => {
  const engine = requireDocker();
  return {
    runtime: new DockerRuntime(engine, { socketDir }),
    replicaSource: await irisImage(),
    reopen: () => new DockerRuntime(createEngine(), { socketDir }),
    crash: async (replica) => {
      await engine.docker.getContainer(replica.id).kill();
    },
    exposedEnvironment: async (replica) => {
      const info = await engine.docker.getContainer(replica.id).inspect();
      return `${JSON.stringify(info)}\n${readFileSync(`/proc/${info.State.Pid}/environ`, 'utf8')}`;
    },
    // The hardening of `ferry run` (src/image/run.ts), read back from the engine.
    checkReplica: async (replica, spec) => {
      const info = await engine.docker.getContainer(replica.id).inspect();
      const user = info.Config.User;
      assert.ok(user !== '' && !/^(0|root)(:|$)/.test(user), `runs as a non-root user, not '${user}'`);
      const hc = info.HostConfig;
      assert.equal(hc.ReadonlyRootfs, true);
      assert.deepEqual(Object.keys(hc.Tmpfs ?? {}), ['/tmp']);
      assert.deepEqual(hc.CapDrop, ['ALL']);
      assert.deepEqual(hc.CapAdd ?? [], []);
      assert.deepEqual(hc.SecurityOpt, ['no-new-privileges']);
      assert.equal(hc.Privileged, false);
      assert.equal(hc.PidsLimit, 256);
      assert.equal(hc.Memory, spec.memoryBytes);
      assert.equal(hc.MemorySwap, spec.memoryBytes, 'no swap beyond the memory limit');
      assert.equal(hc.NanoCpus, (spec.cpus ?? 0) * 1e9);
      assert.equal(hc.NetworkMode, 'none', 'sealed: no network');
      // Only its own socket directory is shared with it, read-write; nothing else of the host.
      const socket = socketPathOf(replica.url)!;
      assert.deepEqual(hc.Binds, [`${dirname(socket)}:/run/ferry:rw`]);
      assert.equal(statSync(socketDir).mode & 0o777, 0o700, 'the socket root lets only Ferry through');
      assert.equal(statSync(dirname(socket)).mode & 0o777, 0o733);
      assert.ok(statSync(socket).isSocket());
      assert.equal(hc.RestartPolicy?.Name, 'no');
      assert.deepEqual(hc.LogConfig, {
        Type: 'json-file',
        Config: { 'max-size': String(10 * 1024 * 1024), 'max-file': '3' },
      });
      assert.ok(
        info.Config.Env.includes('FERRY_LISTEN_SOCKET=/run/ferry/ferry.sock'),
        info.Config.Env.join(' '),
      );
      assert.ok(!info.Config.Env.some((e) => e.startsWith('FERRY_HOST=')), info.Config.Env.join(' '));
      assert.equal(info.RestartCount, 0);
    },
    cleanup: async () => {
      await cleanupContainers(labels);
    },
  };
});

describe('DockerRuntime.watch across engine stream ends', { timeout: 4 * HANG_MS }, () => {
  const labels = { [CONTRACT_RUN_LABEL]: uniqueName('rt-watch') };
  after(async () => {
    await cleanupContainers(labels);
  });

  test('a subscription made late and ended after every event still reports each event once, in order', async () => {
    const engine = requireDocker();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let subscriptions = 0;
    // The real engine, except that its event stream starts only once the gate opens and ends after two
    // events (as when the engine restarts or a proxy drops the connection). A re-subscription replays
    // the last event seen (same millisecond), so one would not be enough to make progress.
    const flaky = new Proxy(engine, {
      get(target, prop) {
        if (prop === 'containerEvents') {
          return async function* (opts: ContainerEventOptions) {
            subscriptions++;
            await gate;
            let n = 0;
            for await (const e of target.containerEvents(opts)) {
              yield e;
              if (++n === 2) return;
            }
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Engine;
    const runtime = new DockerRuntime(flaky, { socketDir, watchRetryMaxMs: 200 });
    const events: RuntimeEvent[] = [];
    let notify: (() => void) | undefined;
    const w = runtime.watch(labels, (e) => {
      events.push(e);
      notify?.();
    });
    const waitFor = async (type: RuntimeEvent['type']) => {
      const deadline = Date.now() + HANG_MS;
      while (!events.some((e) => e.type === type)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no '${type}' event (got ${events.map((e) => e.type)})`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          notify = () => {
            clearTimeout(t);
            r();
          };
        });
      }
    };
    try {
      const r = await runtime.ensure({
        name: uniqueName('ferry-rt-watch'),
        labels,
        image: await irisImage(),
      });
      open(); // the subscription is made only now: the start is caught up (since = watch time)
      await waitFor('started');
      await engine.docker.getContainer(r.id).kill();
      await waitFor('exited');
      await runtime.remove(r.id, 1000);
      await waitFor('removed');
      assert.deepEqual(
        events.map((e) => [e.type, e.replica.id, e.replica.exitCode]),
        [
          ['started', r.id, undefined],
          ['exited', r.id, 137],
          ['removed', r.id, 137],
        ],
      );
      assert.ok(subscriptions >= 2, `re-subscribed after each end (${subscriptions} subscriptions)`);
    } finally {
      w.close();
    }
  });
});
