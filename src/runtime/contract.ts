/**
 * The one contract every Runtime implementation passes (design.md: one contract suite per port), against a real
 * model server for examples/iris. The port has two shapes (types.ts) and one reading side:
 *
 *   testReadingSide       every runtime, whatever keeps its replicas: list by labels, ready, logs, watch, adoption
 *   runRuntimeContract    a runtime whose replicas the controller keeps (process, docker): the reading side, and
 *                         ensure / remove, secrets, crashes, follows, in detail
 *   runRevisionContract   a runtime that keeps them itself (swarm; revision-contract.ts): the reading side, and
 *                         ensureRevision / removeRevision / revisions / removeAll
 *
 * Each implementation's *.test.ts is a single call with a factory for its runtime. Not exported from index.ts (it
 * imports node:test).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isFerryError } from '../core/errors.ts';
import { freePort } from '../core/free-port.ts';
import { socketPathOf } from '../core/replica.ts';
import { readiness, replicaGet, withReadiness } from './readiness.ts';
import type {
  ReplicaLogLine,
  ReplicaSpec,
  ReplicaStatus,
  Runtime,
  RuntimeEvent,
  RuntimeReader,
} from './types.ts';

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
  /**
   * Runtime-specific checks of a running replica (docker: the hardened settings, read back from the engine;
   * both: who may connect to its socket).
   */
  checkReplica?(replica: ReplicaStatus, spec: ReplicaSpec): Promise<void>;
  /**
   * Everything the outside can read of the replica's environment: its server process's initial environment
   * (`/proc/<pid>/environ`) and, docker, the container's configuration as `docker inspect` shows it.
   */
  exposedEnvironment(replica: ReplicaStatus): Promise<string>;
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

/** Rejects with a message naming what did not happen when `promise` takes longer than ms. */
function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Events a watch delivered, and a bounded wait for one that matches. */
class EventLog {
  readonly events: RuntimeEvent[] = [];
  private waiters: Array<() => void> = [];
  readonly listener = (e: RuntimeEvent) => {
    this.events.push(e);
    for (const w of this.waiters.splice(0)) w();
  };
  async waitFor(what: string, ms: number, match: (e: RuntimeEvent) => boolean): Promise<RuntimeEvent> {
    const deadline = Date.now() + ms;
    while (true) {
      const found = this.events.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.events.map((e) => `${e.type} ${e.replica.name}`).join(', ') || 'none';
        throw new Error(`timed out after ${ms} ms waiting for ${what} (events so far: ${seen})`);
      }
      await within(what, left, new Promise<void>((r) => this.waiters.push(r))).catch(() => undefined);
    }
  }
}

/** The next lines of a log follow until one matches (bounded). */
export async function lineMatching(
  it: AsyncIterator<ReplicaLogLine>,
  what: string,
  ms: number,
  match: (l: ReplicaLogLine) => boolean,
): Promise<ReplicaLogLine> {
  const seen: string[] = [];
  const deadline = Date.now() + ms;
  while (true) {
    const next = await within(
      `${what} (lines so far: ${seen.join(' | ') || 'none'})`,
      Math.max(1, deadline - Date.now()),
      it.next(),
    );
    if (next.done) throw new Error(`the log follow ended before ${what}; lines: ${seen.join(' | ')}`);
    if (match(next.value)) return next.value;
    seen.push(next.value.line);
  }
}

/** Consumes a log follow to its end (bounded); returns the lines it still gave. */
async function drain(it: AsyncIterator<ReplicaLogLine>, what: string, ms: number): Promise<ReplicaLogLine[]> {
  const rest: ReplicaLogLine[] = [];
  await within(
    what,
    ms,
    (async () => {
      for (let n = await it.next(); !n.done; n = await it.next()) rest.push(n.value);
    })(),
  );
  return rest;
}

async function portOpen(url: string): Promise<boolean> {
  try {
    await replicaGet(url, '/v2/health/live', 1000);
    return true;
  } catch {
    return false;
  }
}

/** POST of a JSON body to a replica's url (`unix:<path>` or http): status and parsed body (or text). */
export function postReplica(
  url: string,
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const socketPath = socketPathOf(url);
  const target =
    socketPath !== null ? { socketPath } : { host: new URL(url).hostname, port: Number(new URL(url).port) };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...target,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * How a runtime's shape brings one iris replica into being and takes it away: all the reading side's test needs.
 */
export interface ReadingSide {
  runtime: RuntimeReader;
  /** Labels of this run: everything started carries them. */
  labels: Record<string, string>;
  /** Starts one replica carrying these labels too (replica runtimes: ensure; revision runtimes: a revision of 1). */
  start(extra: Record<string, string>): Promise<ReplicaStatus>;
  /** Whether it answers ready now (replica runtimes: its readiness probe; revision runtimes: as listed). */
  ready(replica: ReplicaStatus): Promise<boolean>;
  /** Takes away what start made. */
  stop(replica: ReplicaStatus): Promise<void>;
  /** A new runtime instance over the same state (a control plane restarted). */
  reopen(): RuntimeReader | Promise<RuntimeReader>;
  readyTimeoutMs: number;
}

/** Registers the reading side's test, the same for every runtime (call inside the runtime's describe). */
export function testReadingSide(side: () => ReadingSide): void {
  test('the reading side: listed by all its labels only, ready, its output in logs, watched from start to removal, found by a new instance', async () => {
    const s = side();
    const rt = s.runtime;
    const tag = { 'dev.ferry.reading': `r${randomBytes(3).toString('hex')}` };
    const mine = { ...s.labels, ...tag };
    const events = new EventLog();
    const w = rt.watch(mine, events.listener);
    try {
      const r = await s.start(tag);
      assert.equal(r.labels['dev.ferry.reading'], tag['dev.ferry.reading']);
      await events.waitFor('a started event', 60_000, (e) => e.type === 'started' && e.replica.id === r.id);
      const listed = await rt.list(mine);
      assert.deepEqual(
        listed.map((x) => x.id),
        [r.id],
      );
      assert.deepEqual(await rt.list({ ...s.labels, 'dev.ferry.reading': 'another' }), []);
      await until('the replica ready', s.readyTimeoutMs, async () => ((await s.ready(r)) ? true : undefined));
      const lines = await until('its output in logs', 30_000, async () => {
        const got = await rt.logs(r.id).catch(() => []);
        return got.some((l) => l.line.includes('iris')) ? got : undefined;
      });
      assert.ok(lines.every((l) => l.stream === 'stdout' || l.stream === 'stderr'));
      const again = await s.reopen();
      assert.ok(
        (await again.list(mine)).some((x) => x.id === r.id),
        'a new instance finds the running replica',
      );
      await s.stop(r);
      await events.waitFor('a removed event', 120_000, (e) => e.type === 'removed' && e.replica.id === r.id);
      await until('no longer listed', 60_000, async () =>
        (await rt.list(mine)).length === 0 ? true : undefined,
      );
    } finally {
      w.close();
    }
  });
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

    testReadingSide(() => ({
      runtime,
      labels,
      start: async (extra) => runtime.ensure(await spec('reading', extra)),
      ready: (r) => readiness(r.url),
      stop: (r) => runtime.remove(r.id, 2000),
      reopen: async () => {
        const again = await fx.reopen();
        opened.push(again);
        return again;
      },
      readyTimeoutMs,
    }));

    let first: ReplicaStatus;
    let firstSpec: ReplicaSpec;

    test('ensure starts a replica without waiting for it; it becomes ready and answers an iris inference', async () => {
      firstSpec = await spec('0');
      first = await runtime.ensure(firstSpec);
      assert.equal(first.name, firstSpec.name);
      assert.deepEqual(first.labels, firstSpec.labels);
      const socket = socketPathOf(first.url);
      assert.ok(socket !== null, `listens on a unix socket, not ${first.url}`);
      assert.ok(first.state === 'starting' || first.state === 'ready', first.state);
      assert.ok(Math.abs(first.startedAt - Date.now()) < 60_000);
      await until('readiness', readyTimeoutMs, async () => ((await readiness(first.url)) ? true : undefined));
      const res = await postReplica(
        first.url,
        '/v2/models/iris/infer',
        readFileSync(join(IRIS, 'requests', 'setosa.json')),
      );
      assert.equal(res.status, 200);
      const body = res.body as { outputs: Array<{ name: string; data: number[] }> };
      assert.deepEqual(body.outputs.find((o) => o.name === 'label')?.data, [0]);
      const [listed] = await withReadiness(await runtime.list(labels));
      assert.equal(listed?.state, 'ready');
      assert.equal(first.restarts, 0);
      assert.equal(listed?.restarts, 0, 'restarts: none in place');
      // A socket on this machine, in a directory of its own.
      assert.ok(lstatSync(socket).isSocket());
      await fx.checkReplica?.(first, firstSpec);
    });

    test('secrets arrive as files the server reads and removes; they are in no environment anyone can read', async () => {
      const value = `contract-secret-${run}`;
      const withSecret = { ...(await spec('s')), secrets: { FERRY_CONTRACT_SECRET: value } };
      const replica = await runtime.ensure(withSecret);
      try {
        await until('readiness', readyTimeoutMs, async () =>
          (await readiness(replica.url)) ? true : undefined,
        );
        const exposed = await fx.exposedEnvironment(replica);
        assert.ok(exposed.includes('FERRY_SECRETS_DIR'), 'the environment is read (it names the directory)');
        assert.ok(!exposed.includes(value), 'the value is in no environment');
        await until('the server says it read the file', readyTimeoutMs, async () =>
          (await runtime.logs(replica.id)).some((l) => l.line.includes('FERRY_CONTRACT_SECRET'))
            ? true
            : undefined,
        );
        assert.ok(!(await runtime.logs(replica.id)).some((l) => l.line.includes(value)), 'nor in its log');
        if (process.getuid?.() === 0)
          assert.equal(
            existsSync(join(dirname(socketPathOf(replica.url)!), 'secrets')),
            false,
            'the files are gone once read',
          );
      } finally {
        await runtime.remove(replica.id, 1000);
      }
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
      const text = lines.map((l) => `${l.stream}: ${l.line}`).join('\n');
      assert.ok(
        lines.some((l) => l.line.includes('iris')),
        text,
      );
      assert.ok(
        lines.every((l) => !l.line.includes('\n') && (l.stream === 'stdout' || l.stream === 'stderr')),
      );
      const tail = await runtime.logs(first.id, { tail: 1 });
      assert.deepEqual(tail, lines.slice(-1));
    });

    test('ensure refuses a bad name or a missing model source with FERRY_BAD_REQUEST', async () => {
      const good = await spec('9');
      for (const bad of [
        { ...good, name: '../escape' },
        { ...good, modelDir: undefined, image: undefined },
        { ...good, egressNetwork: 'no spaces allowed' },
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
      assert.equal(await portOpen(first.url), false, 'nothing answers on its socket after remove');
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

    test('watch reports started, exited (137) on a crash, then removed, for its labels only; followLogs follows', async () => {
      const watched = { ...labels, 'dev.ferry.watched': 'yes' };
      const mine = new EventLog();
      const everything = new EventLog();
      const w = runtime.watch(watched, mine.listener);
      const wAll = runtime.watch(labels, everything.listener);
      const follows: AbortController[] = [];
      try {
        const other = await runtime.ensure(await spec('3'));
        const s = await spec('2', { 'dev.ferry.watched': 'yes' });
        const r = await runtime.ensure(s);
        const started = await mine.waitFor('a started event', 10_000, (e) => e.replica.id === r.id);
        assert.equal(started.type, 'started');
        assert.equal(started.replica.state, 'starting');
        assert.deepEqual(started.replica.labels, s.labels);
        assert.equal(started.replica.url, r.url);
        assert.equal(started.replica.restarts, 0);
        await everything.waitFor(
          'the unfiltered watch to see the other replica start',
          10_000,
          (e) => e.replica.id === other.id && e.type === 'started',
        );
        await until('readiness', readyTimeoutMs, async () => ((await readiness(r.url)) ? true : undefined));

        // followLogs: a line written after the call (a bad request logs a warn line with its request id).
        const aborted = new AbortController();
        const untilStopped = new AbortController();
        follows.push(aborted, untilStopped);
        const it = runtime.followLogs(r.id, aborted.signal)[Symbol.asyncIterator]();
        const it2 = runtime.followLogs(r.id, untilStopped.signal)[Symbol.asyncIterator]();
        const reqId = `follow-${run}`;
        const res = await postReplica(
          r.url,
          '/v2/models/iris/infer',
          '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}',
          { 'x-request-id': reqId },
        );
        assert.equal(res.status, 400);
        const line = await lineMatching(it, 'the request log line', 10_000, (l) => l.line.includes(reqId));
        assert.equal(JSON.parse(line.line).reqId, reqId);
        assert.ok(line.stream === 'stdout' || line.stream === 'stderr');
        await lineMatching(it2, 'the request log line (second follower)', 10_000, (l) =>
          l.line.includes(reqId),
        );
        aborted.abort();
        await drain(it, 'followLogs to end after its signal aborted', 5000);

        await fx.crash(r);
        const dead = await mine.waitFor('an exited event after the crash', 5000, (e) => e.type === 'exited');
        assert.equal(dead.replica.id, r.id);
        assert.equal(dead.replica.exitCode, 137);
        assert.equal(dead.replica.state, 'failed');
        assert.equal(typeof dead.replica.restarts, 'number');
        // A follow ends by itself once its replica has stopped.
        await drain(it2, 'followLogs to end after the replica crashed', 10_000);

        await runtime.remove(r.id, 2000);
        const gone = await mine.waitFor('a removed event', 10_000, (e) => e.type === 'removed');
        assert.equal(gone.replica.id, r.id);
        await runtime.remove(other.id, 2000);
        await everything.waitFor(
          'the unfiltered watch to see the other replica removed',
          10_000,
          (e) => e.replica.id === other.id && e.type === 'removed',
        );
        assert.deepEqual(
          mine.events.map((e) => [e.type, e.replica.id]),
          [
            ['started', r.id],
            ['exited', r.id],
            ['removed', r.id],
          ],
          'exactly these, in this order, and nothing of the replica without the label',
        );
        assert.deepEqual(await runtime.list(labels), []);
      } finally {
        for (const f of follows) f.abort();
        w.close();
        wAll.close();
      }
    });
  });
}
