/**
 * The one contract every Runtime implementation passes (design.md: one contract suite per port), against
 * a real model server for examples/iris. Each implementation's *.test.ts is a single call to
 * runRuntimeContract with a factory for its runtime. Not exported from index.ts (it imports node:test).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isFerryError } from '../core/errors.ts';
import { freePort } from '../core/free-port.ts';
import { readiness, withReadiness } from './readiness.ts';
import type { ReplicaSpec, ReplicaStatus, Runtime } from './types.ts';

export { freePort };

const IRIS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'iris');

export interface RuntimeFixture {
  runtime: Runtime;
  /** examples/iris as this runtime runs it: its model directory (process) or an image reference (docker). */
  replicaSource: string;
  /** A new runtime instance over the same state (process: same stateDir; docker: a new engine client). */
  reopen(): Runtime | Promise<Runtime>;
  /** Kills the replica's server outright (SIGKILL to its pid / docker kill), as a crash would. */
  crash(replica: ReplicaStatus): Promise<void>;
  /** Removes whatever the fixture made (state directories, images, leftover replicas with these labels). */
  cleanup(): Promise<void>;
}

export interface RuntimeContractContext {
  /** Labels every replica of this run carries (for clean-up by label). */
  labels: Record<string, string>;
}

export const CONTRACT_RUN_LABEL = 'dev.ferry.test';

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function portOpen(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v2/health/live`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

export function runRuntimeContract(
  name: string,
  makeRuntime: (ctx: RuntimeContractContext) => Promise<RuntimeFixture>,
  opts: { readyTimeoutMs?: number } = {},
): void {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  describe(`Runtime contract: ${name}`, { timeout: 120_000 }, () => {
    const run = `rt-${process.pid}-${randomBytes(4).toString('hex')}`;
    const labels = { [CONTRACT_RUN_LABEL]: run };
    let fx: RuntimeFixture;
    let runtime: Runtime;
    const opened: Runtime[] = [];

    async function spec(suffix: string, extra: Record<string, string> = {}): Promise<ReplicaSpec> {
      const source =
        runtime.kind === 'process' ? { modelDir: fx.replicaSource } : { image: fx.replicaSource };
      return {
        name: `ferry-${run}-${suffix}`,
        labels: { ...labels, 'ferry.dev/replica-index': suffix, ...extra },
        port: await freePort(),
        env: { FERRY_LOG_LEVEL: 'info' },
        cpus: 1,
        memoryBytes: 512 * 1024 * 1024,
        ...source,
      };
    }

    before(async () => {
      fx = await makeRuntime({ labels });
      runtime = fx.runtime;
      opened.push(runtime);
    });

    after(async () => {
      for (const rt of opened) {
        for (const r of await rt.list(labels).catch(() => []))
          await rt.remove(r.id, 1000).catch(() => undefined);
      }
      await fx?.cleanup();
    });

    let first: ReplicaStatus;
    let firstSpec: ReplicaSpec;

    test('ensure starts a replica without waiting for it; it becomes ready and answers an iris inference', async () => {
      firstSpec = await spec('0');
      first = await runtime.ensure(firstSpec);
      assert.equal(first.name, firstSpec.name);
      assert.deepEqual(first.labels, firstSpec.labels);
      assert.equal(first.url, `http://127.0.0.1:${firstSpec.port}`);
      assert.ok(first.state === 'starting' || first.state === 'ready', first.state);
      assert.ok(Math.abs(first.startedAt - Date.now()) < 60_000);
      await until('readiness', readyTimeoutMs, async () => ((await readiness(first.url)) ? true : undefined));
      const res = await fetch(`${first.url}/v2/models/iris/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: readFileSync(join(IRIS, 'requests', 'setosa.json')),
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
      assert.deepEqual(body.outputs.find((o) => o.name === 'label')?.data, [0]);
      const [listed] = await withReadiness(await runtime.list(labels));
      assert.equal(listed?.state, 'ready');
    });

    test('ensure is idempotent: the same name gives the same replica', async () => {
      const again = await runtime.ensure(firstSpec);
      assert.equal(again.id, first.id);
      const [a, b] = await Promise.all([runtime.ensure(firstSpec), runtime.ensure(firstSpec)]);
      assert.equal(a.id, first.id);
      assert.equal(b.id, first.id);
      assert.equal((await runtime.list(labels)).length, 1);
    });

    test('list finds replicas by all the given labels and nothing else', async () => {
      const listed = await runtime.list(labels);
      assert.deepEqual(
        listed.map((r) => [r.id, r.name, r.state, r.url]),
        [[first.id, first.name, 'starting', first.url]],
      );
      assert.deepEqual(listed[0]?.labels, firstSpec.labels);
      assert.equal((await runtime.list({ ...labels, 'ferry.dev/replica-index': '0' })).length, 1);
      assert.deepEqual(await runtime.list({ ...labels, 'ferry.dev/replica-index': '1' }), []);
      assert.deepEqual(await runtime.list({ [CONTRACT_RUN_LABEL]: `${run}-other` }), []);
    });

    test('logs returns the server output as lines, tail bounds them', async () => {
      const lines = await runtime.logs(first.id);
      assert.ok(lines.length >= 2, lines.join('\n'));
      assert.ok(
        lines.some((l) => l.includes('iris')),
        lines.join('\n'),
      );
      assert.ok(lines.every((l) => !l.includes('\n')));
      const tail = await runtime.logs(first.id, { tail: 1 });
      assert.deepEqual(tail, lines.slice(-1));
    });

    test('ensure refuses a bad name or a missing model source with FERRY_BAD_REQUEST', async () => {
      const good = await spec('9');
      for (const bad of [
        { ...good, name: '../escape' },
        { ...good, modelDir: undefined, image: undefined },
        { ...good, port: 0 },
      ]) {
        await assert.rejects(
          runtime.ensure(bad),
          (err: unknown) => isFerryError(err) && err.code === 'FERRY_BAD_REQUEST',
        );
      }
      assert.equal((await runtime.list(labels)).length, 1);
    });

    test('a new runtime instance adopts the running replica and can remove it', async () => {
      const adopter = await fx.reopen();
      opened.push(adopter);
      const listed = await adopter.list(labels);
      assert.deepEqual(
        listed.map((r) => [r.id, r.name, r.state, r.url, r.startedAt]),
        [[first.id, first.name, 'starting', first.url, first.startedAt]],
      );
      assert.equal(
        (await adopter.ensure(firstSpec)).id,
        first.id,
        'ensure adopts instead of starting another',
      );
      assert.ok((await adopter.logs(first.id)).length > 0);
      await adopter.remove(first.id, 10_000);
      assert.equal(await portOpen(first.url), false, 'the port is closed after remove');
      assert.deepEqual(await adopter.list(labels), []);
      assert.deepEqual(await runtime.list(labels), []);
      await adopter.remove(first.id); // idempotent
      await runtime.remove(`no-such-replica-${run}`); // unknown: no-op
    });

    test('a replica that crashes is listed as failed with its exit code; remove clears it', async () => {
      const s = await spec('1');
      const replica = await runtime.ensure(s);
      await until('readiness', readyTimeoutMs, async () =>
        (await readiness(replica.url)) ? true : undefined,
      );
      await fx.crash(replica);
      const dead = await until('the crash to show', 10_000, async () => {
        const [r] = await runtime.list(labels);
        return r && r.state !== 'starting' ? r : undefined;
      });
      assert.equal(dead.id, replica.id);
      assert.equal(dead.state, 'failed');
      assert.equal(dead.exitCode, 137);
      const [seenByOther] = await (await fx.reopen()).list(labels);
      assert.equal(seenByOther?.state, 'failed');
      // ensure of a dead replica's name replaces it.
      const replaced = await runtime.ensure(s);
      assert.notEqual(replaced.id, replica.id);
      assert.equal(replaced.state, 'starting');
      await runtime.remove(replaced.id, 2000);
      assert.deepEqual(await runtime.list(labels), []);
    });
  });
}
