import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HANG_MS } from '../../test/hang.ts';
import { isFerryError } from '../core/errors.ts';
import { socketPathOf } from '../core/replica.ts';
import { lineMatching, postReplica, runRuntimeContract } from './contract.ts';
import { ProcessRuntime, REPLICA_UID } from './process-runtime.ts';
import { readiness } from './readiness.ts';
import type { ReplicaLogLine, ReplicaStatus, RuntimeEvent } from './types.ts';

const IRIS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'iris');

runRuntimeContract('process', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-process-runtime-'));
  const runtime = new ProcessRuntime({ stateDir });
  return {
    runtime,
    replicaSource: IRIS,
    reopen: () => new ProcessRuntime({ stateDir }),
    crash: async (replica) => {
      const pid = await runtime.pidOf(replica.id);
      if (pid === undefined) throw new Error(`no pid for ${replica.id}`);
      process.kill(pid, 'SIGKILL');
    },
    exposedEnvironment: async (replica) =>
      readFileSync(`/proc/${await runtime.pidOf(replica.id)}/environ`, 'utf8'),
    // Only Ferry's user may connect; under root, the replica runs as the unprivileged REPLICA_UID.
    checkReplica: async (replica) => {
      const socket = socketPathOf(replica.url)!;
      const asRoot = process.getuid?.() === 0;
      const want = asRoot ? REPLICA_UID : process.getuid?.();
      const st = statSync(socket);
      assert.equal(st.mode & 0o777, 0o600, 'the socket is 0600');
      assert.equal(st.uid, want);
      assert.equal(statSync(dirname(socket)).mode & 0o777, 0o700, 'its directory is 0700');
      const pid = await runtime.pidOf(replica.id);
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const [, real, effective] = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status) ?? [];
      assert.deepEqual([Number(real), Number(effective)], [want, want], 'the replica runs as that user');
      if (asRoot) assert.match(status, /^Groups:\s*$/m, 'with no supplementary groups');
    },
    cleanup: async () => rmSync(stateDir, { recursive: true, force: true }),
  };
});

/** Resolves when probe gives a value; fails naming `what` after ms. */
async function until<T>(
  what: string,
  ms: number,
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const MAX_LOG = 8192;

describe('ProcessRuntime: log cuts and watching from another instance', { timeout: 4 * HANG_MS }, () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-process-runtime-cut-'));
  // Small logs: a few requests' lines make it cut (on list()).
  const runtime = new ProcessRuntime({ stateDir, maxLogBytes: MAX_LOG });
  const labels = { 'dev.ferry.test': `cut-${process.pid}` };
  let replica: ReplicaStatus;

  before(async () => {
    replica = await runtime.ensure({
      name: `ferry-cut-${process.pid}`,
      labels,
      modelDir: IRIS,
      env: { FERRY_LOG_LEVEL: 'info' },
    });
    await until('readiness', HANG_MS, async () => ((await readiness(replica.url)) ? true : undefined));
  });

  after(async () => {
    for (const r of await runtime.list(labels)) await runtime.remove(r.id, 1000);
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function badRequest(id: string): Promise<void> {
    const res = await postReplica(
      replica.url,
      '/v2/models/iris/infer',
      '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}',
      { 'x-request-id': id },
    );
    assert.equal(res.status, 400);
  }

  const reqIds = (lines: ReplicaLogLine[]) =>
    lines.flatMap((l) => {
      const m = /"reqId":"(cut-[a-z]+-\d+)"/.exec(l.line);
      return m ? [m[1]] : [];
    });

  test('followLogs catches up from .log.1 when the log was cut before it read the end', async () => {
    const log = runtime.logPath(replica.name);
    // Close to the cap without a cut (list() is what cuts), then follow from there.
    // The server may write a request's line just after answering it: each line is waited for, so the size read
    // before the next request (and before the follow starts) is the whole log's.
    const logged = (id: string) =>
      until(`the line of ${id} in the log`, HANG_MS, () =>
        readFileSync(log, 'utf8').includes(`"reqId":"${id}"`) ? true : undefined,
      );
    for (let i = 0; statSync(log).size < MAX_LOG - 700; i++) {
      await badRequest(`cut-fill-${i}`);
      await logged(`cut-fill-${i}`);
    }
    assert.ok(statSync(log).size <= MAX_LOG, 'not past the cap yet');
    const abort = new AbortController();
    const it = runtime.followLogs(replica.id, abort.signal)[Symbol.asyncIterator]();
    try {
      // Written after the call, and cut away before the follow reads anything: at least three lines, and
      // as many as it takes to pass the cap (line lengths vary with paths and ports).
      const behind: string[] = [];
      while (behind.length < 3 || statSync(log).size <= MAX_LOG) {
        behind.push(`cut-behind-${behind.length}`);
        await badRequest(behind.at(-1)!);
      }
      assert.ok(statSync(log).size > MAX_LOG, 'past the cap');
      await runtime.list(labels);
      assert.ok(statSync(log).size < MAX_LOG, 'the log was cut');
      behind.push(`cut-behind-${behind.length}`);
      await badRequest(behind.at(-1)!);
      const lines: ReplicaLogLine[] = [];
      for (let k = 0; k < behind.length; k++) {
        lines.push(
          await lineMatching(it, `request line ${k} (written around the cut)`, HANG_MS, (l) =>
            l.line.includes('"reqId":"cut-'),
          ),
        );
      }
      assert.deepEqual(reqIds(lines), behind);
    } finally {
      abort.abort();
      await it.return?.();
    }
  });

  test('followLogs goes on across log cuts without losing or repeating a line, and joins a partial line', async () => {
    const abort = new AbortController();
    const lines: ReplicaLogLine[] = [];
    const following = (async () => {
      for await (const l of runtime.followLogs(replica.id, abort.signal)) lines.push(l);
    })();
    const log = runtime.logPath(replica.name);
    const cutsSoFar = () =>
      existsSync(`${log}.cut`)
        ? (JSON.parse(readFileSync(`${log}.cut`, 'utf8')) as { cuts: number }).cuts
        : 0;
    const cutsBefore = cutsSoFar();
    try {
      // Requests until the log was cut at least twice (the server writes its lines a moment after answering, so
      // how many requests that takes depends on the machine's load), and 60 at least.
      let n = 0;
      while (n < 60 || (cutsSoFar() - cutsBefore < 2 && n < 2000)) {
        await badRequest(`cut-live-${n}`);
        n += 1;
        await runtime.list(labels); // cuts the log when it is past maxLogBytes
      }
      // The server may write a request's line just after answering it: the partial line goes in after the last.
      await until('the last request line to be followed', HANG_MS, () =>
        lines.some((l) => l.line.includes(`"reqId":"cut-live-${n - 1}"`)) ? true : undefined,
      );
      appendFileSync(log, 'a partial ');
      appendFileSync(log, 'line\n');
      await until('the partial line to be followed', HANG_MS, () =>
        lines.some((l) => l.line === 'a partial line') ? true : undefined,
      );
      const cuts = cutsSoFar();
      assert.ok(cuts - cutsBefore >= 2, `the log was cut several times (${cuts - cutsBefore})`);
      assert.deepEqual(
        reqIds(lines),
        Array.from({ length: n }, (_, i) => `cut-live-${i}`),
      );
      assert.ok(lines.every((l) => l.stream === 'stdout' && !l.line.includes('\n')));
    } finally {
      abort.abort();
      await following;
    }
  });

  test('another instance sees, by polling, a replica started, crashed and removed elsewhere', async () => {
    const other = new ProcessRuntime({ stateDir, watchPollMs: 100 });
    const events: RuntimeEvent[] = [];
    const w = other.watch(labels, (e) => events.push(e));
    try {
      const s = {
        name: `ferry-cut-${process.pid}-b`,
        labels,
        modelDir: IRIS,
      };
      const r = await runtime.ensure(s);
      await until('started (seen by polling)', HANG_MS, () =>
        events.find((e) => e.replica.id === r.id && e.type === 'started'),
      );
      const pid = await runtime.pidOf(r.id);
      assert.ok(pid !== undefined);
      process.kill(pid, 'SIGKILL');
      const dead = await until('exited (seen by polling)', HANG_MS, () =>
        events.find((e) => e.type === 'exited'),
      );
      assert.equal(dead.replica.exitCode, 137);
      await runtime.remove(r.id, 1000);
      await until('removed (seen by polling)', HANG_MS, () => events.find((e) => e.type === 'removed'));
      assert.deepEqual(
        events.map((e) => [e.type, e.replica.id]),
        [
          ['started', r.id],
          ['exited', r.id],
          ['removed', r.id],
        ],
        'the replica running before watch() began is not reported',
      );
    } finally {
      w.close();
    }
  });
});

describe('ProcessRuntime as root', () => {
  test("refuses, naming the directory, a model directory the replica's user cannot read", {
    skip: process.getuid?.() !== 0 ? 'Ferry is not running as root here' : false,
  }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ferry-process-runtime-root-'));
    const hidden = mkdtempSync(join(tmpdir(), 'ferry-hidden-')); // 0700, root's
    try {
      const modelDir = join(hidden, 'iris');
      cpSync(IRIS, modelDir, { recursive: true });
      const runtime = new ProcessRuntime({ stateDir });
      await assert.rejects(
        runtime.ensure({ name: `ferry-hidden-${process.pid}`, labels: {}, modelDir }),
        (err: unknown) =>
          isFerryError(err) &&
          err.code === 'FERRY_BAD_REQUEST' &&
          err.message.includes(`uid ${REPLICA_UID}`) &&
          err.message.includes(`${hidden} (mode 0700) does not let it through`) &&
          /FERRY_HOME/.test(err.hint ?? ''),
      );
      assert.deepEqual(await runtime.list({}), []);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(hidden, { recursive: true, force: true });
    }
  });
});
