/**
 * The contract every RevisionRuntime passes (runtime/types.ts), part of the one runtime contract (contract.ts: the
 * reading side every runtime shares, then what is its shape's own), against a real model server for examples/iris.
 * An implementation's test is one call to runRevisionContract with a fixture. What it holds a runtime to, besides
 * the reading side:
 *
 *   ensureRevision     creates the unit; its replicas become ready; asked again with the same spec it changes nothing;
 *                      a new replica count converges; the reading side (list, revisions) agrees, each replica says
 *                      its node (several machines) and carries Ferry's labels
 *   secrets            the replica gets the value as a file; no value in what the engine shows of the unit
 *   logs               a replica's output; followLogs from a replica that is not up yet yields its first lines
 *   watch              a replica started, then removed, is reported
 *   failure            a revision whose server exits at start shows failed replicas with their exit code
 *   a second instance  over the same engine lists the same units (a control plane restarted adopts them)
 *   removeRevision     the unit and its secrets go; removeAll: everything with the labels goes
 *
 * Not exported from index.ts (it imports node:test).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testReadingSide } from './contract.ts';
import type { ReplicaStatus, RevisionRuntime, RevisionSpec, RuntimeEvent } from './types.ts';

export interface RevisionRuntimeFixture {
  runtime: RevisionRuntime;
  /** examples/iris as an image every machine of the runtime pulls (pinned). */
  image: string;
  /** Labels every unit of this run carries (managed-by and platform, as the controller gives them). */
  labels: Record<string, string>;
  /** How many machines replicas may run on (a replica names its node when more than one). */
  machines: number;
  /** A new runtime over the same engine (as a restarted control plane makes). */
  reopen(): RevisionRuntime;
  /** Everything the engine shows of the unit and its replicas' configuration (swarm: service and container inspect). */
  exposed(name: string): Promise<string>;
  /** The content of the file the replica's server reads the secret from. */
  secretFile(replica: ReplicaStatus, variable: string): Promise<string>;
  /** The engine's version of the unit's spec: unchanged when nothing was asked of it. */
  specVersion(name: string): Promise<number>;
  /** Secrets (names) the engine still has with these labels. */
  secrets(): Promise<string[]>;
  cleanup(): Promise<void>;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} ${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function runRevisionContract(
  name: string,
  make: () => Promise<RevisionRuntimeFixture>,
  skip?: string | false,
) {
  describe(`RevisionRuntime contract: ${name}`, { skip: skip ?? false }, () => {
    let fx: RevisionRuntimeFixture | undefined;
    before(async () => {
      fx = await make();
    });
    after(async () => {
      await fx?.cleanup();
    });
    const specOf = (
      f: RevisionRuntimeFixture,
      revision: number,
      replicas: number,
      extra: Partial<RevisionSpec> = {},
    ): RevisionSpec => ({
      tenant: 'c',
      deployment: 'iris',
      revision,
      labels: {
        ...f.labels,
        'ferry.dev/deployment': 'c/iris',
        'ferry.dev/revision': String(revision),
        'ferry.dev/spec-hash': `h${revision}`,
      },
      image: f.image,
      replicas,
      env: {},
      secrets: {},
      secretVersions: {},
      egress: false,
      cpus: 0.25,
      memoryBytes: 256 * 1024 ** 2,
      gpus: 0,
      startupTimeoutMs: 60_000,
      ...extra,
    });

    testReadingSide(() => {
      const f = fx!;
      let next = 100;
      return {
        runtime: f.runtime,
        labels: f.labels,
        async start(extra) {
          const revision = next++;
          await f.runtime.ensureRevision(
            specOf(f, revision, 1, { labels: { ...specOf(f, revision, 1).labels, ...extra } }),
          );
          const name = f.runtime.nameOf('c', 'iris', revision);
          return until(
            "the revision's replica listed",
            120_000,
            async () => (await f.runtime.revisions(f.labels)).find((u) => u.name === name)?.running[0],
          );
        },
        ready: async (r) =>
          (await f.runtime.list(f.labels)).some((x) => x.id === r.id && x.state === 'ready'),
        stop: (r) => f.runtime.removeRevision(r.name.slice(0, r.name.lastIndexOf('.'))),
        reopen: () => f.reopen(),
        readyTimeoutMs: 180_000,
      };
    });

    test('units: ensure, converge, read, secrets, logs, watch, failure, adopt, remove', async (t) => {
      const f = fx!;
      const rt = f.runtime;
      const spec = (revision: number, replicas: number, extra: Partial<RevisionSpec> = {}) =>
        specOf(f, revision, replicas, extra);

      const events: RuntimeEvent[] = [];
      const watch = rt.watch(f.labels, (e) => events.push(e));
      try {
        const r1 = rt.nameOf('c', 'iris', 1);
        const withSecret = spec(1, 2, {
          secrets: { API_KEY: 'contract-secret-value-9' },
          secretVersions: { API_KEY: 1 },
        });
        await rt.ensureRevision(withSecret);
        const ready = (n: number) => async () => {
          const unit = (await rt.revisions(f.labels)).find((u) => u.name === r1);
          const live = unit?.running.filter((r) => r.state === 'ready') ?? [];
          return live.length === n ? live : undefined;
        };
        const two = await until('2 ready replicas', 180_000, ready(2));
        for (const r of two) {
          assert.equal(r.labels['ferry.dev/deployment'], 'c/iris');
          assert.equal(r.labels['ferry.dev/revision'], '1');
          if (f.machines > 1) assert.ok(r.node, `replica ${r.name} names its node`);
        }
        const listed = await rt.list({ ...f.labels, 'ferry.dev/revision': '1' });
        assert.deepEqual(
          listed
            .filter((r) => r.state === 'ready')
            .map((r) => r.id)
            .sort(),
          two.map((r) => r.id).sort(),
          'list and revisions agree',
        );

        // The same spec again: nothing changes.
        const version = await f.specVersion(r1);
        await rt.ensureRevision(withSecret);
        assert.equal(await f.specVersion(r1), version, 'ensured twice with the same spec: not updated');

        // Secrets: a file for the server, nowhere in the engine's view.
        assert.equal((await f.secretFile(two[0]!, 'API_KEY')).trim(), 'contract-secret-value-9');
        assert.ok(!(await f.exposed(r1)).includes('contract-secret-value-9'), 'no secret value in the unit');

        // Logs: what a replica printed.
        const lines = await rt.logs(two[0]!.id);
        assert.ok(
          lines.some((l) => l.line.includes('Server listening')),
          JSON.stringify(lines).slice(0, 500),
        );

        // Converge 2 -> 3; the new replica's first lines followed from before it is up.
        await rt.ensureRevision({ ...withSecret, replicas: 3 });
        const fresh = await until('a third replica listed', 60_000, async () => {
          const unit = (await rt.revisions(f.labels)).find((u) => u.name === r1);
          return unit?.running.find((r) => !two.some((x) => x.id === r.id));
        });
        const abort = new AbortController();
        const followed: string[] = [];
        const following = (async () => {
          for await (const l of rt.followLogs(fresh.id, abort.signal)) {
            followed.push(l.line);
            if (l.line.includes('Server listening')) abort.abort();
          }
        })();
        await until('3 ready replicas', 180_000, ready(3));
        await until('the new replica followed to its listening line', 60_000, async () =>
          followed.some((l) => l.includes('Server listening')),
        );
        abort.abort();
        await following;
        await until('the watch saw the new replica start', 30_000, async () =>
          events.some((e) => e.type === 'started' && e.replica.id === fresh.id),
        );

        // A revision whose server exits at start: failed replicas, with their exit code.
        const r2 = rt.nameOf('c', 'iris', 2);
        await rt.ensureRevision(spec(2, 1, { env: { FERRY_SERVING_OVERRIDES: '{not json' } }));
        const failed = await until('a failed replica of the broken revision', 180_000, async () => {
          const unit = (await rt.revisions(f.labels)).find((u) => u.name === r2);
          return unit?.failed.find((r) => r.exitCode !== undefined && r.exitCode !== 0);
        });
        t.diagnostic(`broken revision: replica ${failed.name} failed with exit code ${failed.exitCode}`);

        // A second instance over the same engine: the same units (adoption).
        const again = f.reopen();
        const names = async (r: RevisionRuntime) => (await r.revisions(f.labels)).map((u) => u.name).sort();
        assert.deepEqual(await names(again), await names(rt));

        // Removal: the unit and its secrets go; the watch reports its replicas removed.
        await rt.removeRevision(r1);
        await until('r1 gone', 120_000, async () => !(await names(rt)).includes(r1));
        await until(
          'r1 secrets gone',
          120_000,
          async () => !(await f.secrets()).some((s) => s.startsWith(r1)),
        );
        await until('the watch saw r1 replicas removed', 60_000, async () =>
          two.every((r) => events.some((e) => e.type === 'removed' && e.replica.id === r.id)),
        );
        await rt.removeAll(f.labels);
        assert.deepEqual(await names(rt), []);
        assert.deepEqual(await f.secrets(), []);
      } finally {
        watch.close();
      }
    });
  });
}
