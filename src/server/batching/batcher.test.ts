/**
 * The batching loop walked along a timeline with a manual clock and a hand-driven executor.
 * No real timers, no sleeps: `flush()` only lets pending promise callbacks run.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FerryError } from '../../core/errors.ts';
import type { BatchingSpec } from '../../spec/types.ts';
import { Batcher, type BatchInfo, type Clock, type TimerHandle } from './batcher.ts';
import { BatchLatencyEstimator } from './policy.ts';

class ManualClock implements Clock {
  time = 0;
  readonly timers = new Set<{ at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer = { at: this.time + ms, fn };
    this.timers.add(timer);
    return { cancel: () => this.timers.delete(timer) };
  }

  /** The times of armed timers, ascending. */
  get armed(): number[] {
    return [...this.timers].map((t) => t.at).sort((a, b) => a - b);
  }

  /** Moves to `to`, firing due timers in time order (each at its own time). */
  async advanceTo(to: number): Promise<void> {
    for (;;) {
      let next: { at: number; fn: () => void } | undefined;
      for (const t of this.timers) if (t.at <= to && (next === undefined || t.at < next.at)) next = t;
      if (next === undefined) break;
      this.timers.delete(next);
      this.time = next.at;
      next.fn();
      await flush();
    }
    this.time = to;
  }
}

/** Lets promise callbacks (then/finally chains) run; no timer involved. */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

interface Req {
  id: string;
  n: number;
  key?: string;
}

interface Call {
  batch: Req[];
  resolve: (results: string[]) => void;
  reject: (error: unknown) => void;
}

const SPEC: BatchingSpec = {
  maxBatchSize: 4,
  maxQueueDelayMs: 0,
  preferredBatchSizes: [],
  maxQueueSize: 100,
};

function setup(
  spec: Partial<BatchingSpec> = {},
  options: { concurrency?: number; keyed?: boolean; estimator?: BatchLatencyEstimator } = {},
) {
  const clock = new ManualClock();
  const calls: Call[] = [];
  const batches: BatchInfo[] = [];
  const batcher = new Batcher<Req, string>({
    policy: { ...SPEC, ...spec },
    clock,
    concurrency: options.concurrency ?? 1,
    samplesOf: (r) => r.n,
    ...(options.keyed ? { keyOf: (r: Req) => r.key ?? '' } : {}),
    ...(options.estimator ? { estimator: options.estimator } : {}),
    execute: (batch) => new Promise<string[]>((resolve, reject) => calls.push({ batch, resolve, reject })),
    onBatch: (info) => batches.push(info),
  });
  /** Tracks a submitted request's outcome without awaiting it. */
  const submit = (id: string, n = 1, deadline = Number.POSITIVE_INFINITY, key?: string) => {
    const outcome: { value?: string; error?: FerryError } = {};
    const promise = batcher.submit({ id, n, ...(key === undefined ? {} : { key }) }, deadline).then(
      (value) => {
        outcome.value = value;
      },
      (error: FerryError) => {
        outcome.error = error;
      },
    );
    return Object.assign(outcome, { promise });
  };
  /** Finishes call i with "<id>!" for each request. */
  const complete = async (i: number) => {
    const call = calls[i]!;
    call.resolve(call.batch.map((r) => `${r.id}!`));
    await flush();
  };
  const ids = (i: number) => calls[i]!.batch.map((r) => r.id);
  return { clock, calls, batches, batcher, submit, complete, ids };
}

describe('Batcher', () => {
  test('low load: with no delay and a free executor, submit dispatches synchronously and arms no timer', async () => {
    const { clock, calls, batcher, submit, complete } = setup();
    const a = submit('a');
    assert.equal(calls.length, 1, 'execute ran before submit returned');
    assert.deepEqual(clock.armed, []);
    assert.equal(batcher.queueDepth, 0);
    await complete(0);
    assert.equal(a.value, 'a!');
  });

  test('a burst while the executor is busy forms batches of up to maxBatchSize samples', async () => {
    const { calls, batches, batcher, submit, complete, ids } = setup({ maxBatchSize: 4 });
    const all = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => submit(id));
    assert.deepEqual(ids(0), ['a']);
    assert.equal(batcher.queueDepth, 6);
    await complete(0);
    assert.deepEqual(ids(1), ['b', 'c', 'd', 'e']);
    await complete(1);
    assert.deepEqual(ids(2), ['f', 'g']);
    await complete(2);
    assert.equal(calls.length, 3);
    assert.deepEqual(
      all.map((r) => r.value),
      ['a!', 'b!', 'c!', 'd!', 'e!', 'f!', 'g!'],
    );
    assert.deepEqual(
      batches.map((b) => [b.size, b.samples, b.ok]),
      [
        [1, 1, true],
        [4, 4, true],
        [2, 2, true],
      ],
    );
  });

  test('batch size counts samples: a request that does not fit waits for the next batch', async () => {
    const { submit, complete, ids } = setup({ maxBatchSize: 4 });
    submit('a');
    submit('b', 3);
    submit('c', 2);
    submit('d', 1);
    await complete(0);
    assert.deepEqual(ids(1), ['b'], 'b (3) + c (2) > 4');
    await complete(1);
    assert.deepEqual(ids(2), ['c', 'd']);
  });

  test('concurrency: as many batches run at once as there are executors', async () => {
    const { calls, submit, complete, ids } = setup({ maxBatchSize: 4 }, { concurrency: 2 });
    for (const id of ['a', 'b', 'c', 'd']) submit(id);
    assert.deepEqual([ids(0), ids(1)], [['a'], ['b']]);
    assert.equal(calls.length, 2);
    await complete(1);
    assert.deepEqual(ids(2), ['c', 'd']);
  });

  test('maxQueueDelayMs: a lone request waits for partners, then goes when the delay expires', async () => {
    const { clock, calls, batches, submit, complete, ids } = setup({ maxBatchSize: 8, maxQueueDelayMs: 10 });
    const a = submit('a');
    assert.equal(calls.length, 0);
    assert.deepEqual(clock.armed, [10]);
    await clock.advanceTo(4);
    submit('b');
    assert.deepEqual(clock.armed, [10], 'one timer, kept');
    await clock.advanceTo(9.99);
    assert.equal(calls.length, 0);
    await clock.advanceTo(10);
    assert.deepEqual(ids(0), ['a', 'b']);
    assert.deepEqual(clock.armed, []);
    await clock.advanceTo(13);
    await complete(0);
    assert.equal(a.value, 'a!');
    assert.deepEqual(batches[0], { size: 2, samples: 2, queueMs: [10, 6], runMs: 3, ok: true });
  });

  test('a full batch does not wait for the delay', async () => {
    const { clock, submit, ids } = setup({ maxBatchSize: 3, maxQueueDelayMs: 10 });
    submit('a');
    await clock.advanceTo(1);
    submit('b', 2);
    assert.deepEqual(ids(0), ['a', 'b']);
    assert.deepEqual(clock.armed, []);
  });

  test('preferred batch sizes: a batch goes as soon as it reaches one', async () => {
    const { clock, calls, submit, ids } = setup({
      maxBatchSize: 8,
      maxQueueDelayMs: 10,
      preferredBatchSizes: [2],
    });
    submit('a');
    assert.equal(calls.length, 0);
    await clock.advanceTo(3);
    submit('b');
    assert.deepEqual(ids(0), ['a', 'b']);
    assert.deepEqual(clock.armed, [], 'the delay timer was cancelled');
  });

  test('keyOf: only requests with equal keys share a batch', async () => {
    const { submit, complete, ids } = setup({ maxBatchSize: 8 }, { keyed: true });
    submit('x', 1, Number.POSITIVE_INFINITY, 'k1');
    submit('a', 1, Number.POSITIVE_INFINITY, 'k1');
    submit('b', 1, Number.POSITIVE_INFINITY, 'k2');
    submit('c', 1, Number.POSITIVE_INFINITY, 'k1');
    await complete(0);
    assert.deepEqual(ids(1), ['a', 'c']);
    await complete(1);
    assert.deepEqual(ids(2), ['b']);
  });

  test('a full queue sheds at submit with FERRY_QUEUE_FULL and Retry-After', async () => {
    const { calls, submit } = setup({ maxQueueSize: 2 });
    submit('a');
    submit('b');
    submit('c');
    const d = submit('d');
    await d.promise;
    assert.equal(d.error?.code, 'FERRY_QUEUE_FULL');
    assert.equal(d.error?.status, 503);
    assert.equal(d.error?.retryAfterSeconds, 1, 'at least 1 s without an estimate');
    assert.match(d.error?.message ?? '', /2 requests waiting.*maxQueueSize is 2/);
    assert.equal(calls.length, 1);
  });

  test('Retry-After grows with the estimated time to work off the queue', async () => {
    const estimator = new BatchLatencyEstimator({ minObservations: 1, warmup: 0 });
    estimator.observe(4, 1500);
    const { submit } = setup({ maxBatchSize: 4, maxQueueSize: 12 }, { estimator });
    submit('running', 1, Number.POSITIVE_INFINITY);
    for (let i = 0; i < 12; i++) submit(`q${i}`);
    const shed = submit('late');
    await shed.promise;
    // 12 queued samples = 3 batches of 4 at ~1500 ms each on one executor -> 4.5 s -> 5
    assert.equal(shed.error?.code, 'FERRY_QUEUE_FULL');
    assert.equal(shed.error?.retryAfterSeconds, 5);
  });

  test('a queued request is rejected with 504 at its deadline, while the executor is still busy', async () => {
    const { clock, calls, submit, complete, ids } = setup();
    const a = submit('a');
    const b = submit('b', 1, 50);
    const c = submit('c', 1, 80);
    assert.deepEqual(clock.armed, [50]);
    await clock.advanceTo(50);
    assert.equal(b.error?.code, 'FERRY_DEADLINE_EXCEEDED');
    assert.equal(b.error?.status, 504);
    assert.match(b.error?.message ?? '', /deadline passed while it waited; it waited 50 ms/);
    assert.equal(a.value, undefined, 'a is still running');
    assert.deepEqual(clock.armed, [80]);
    await complete(0);
    assert.deepEqual(ids(1), ['c']);
    assert.deepEqual(clock.armed, [80], "c's running batch watches c's deadline");
    assert.equal(calls.length, 2);
    await complete(1);
    assert.equal(c.value, 'c!');
    assert.deepEqual(clock.armed, [], 'the watch ends with the batch');
  });

  test('a running request is answered 504 at its deadline; its late result is dropped', async () => {
    const { clock, submit, complete } = setup();
    const a = submit('a', 1, 40);
    const b = submit('b', 1, 90);
    assert.deepEqual(clock.armed, [40, 90], "the running batch's watch at a's deadline; b's in the queue");
    await clock.advanceTo(40);
    assert.equal(a.error?.code, 'FERRY_DEADLINE_EXCEEDED');
    assert.match(a.error?.message ?? '', /still running 40 ms after the request arrived/);
    await complete(0);
    assert.equal(a.value, undefined, 'the late result does not reach a');
    await complete(1);
    assert.equal(b.value, 'b!', 'the next request runs and answers');
  });

  test('with a run-time estimate, a request that cannot finish in time is rejected early, never run', async () => {
    const estimator = new BatchLatencyEstimator({ minObservations: 1, warmup: 0 });
    estimator.observe(1, 100);
    const { calls, submit } = setup({}, { estimator });
    const a = submit('a', 1, 60);
    await a.promise;
    assert.equal(a.error?.code, 'FERRY_DEADLINE_EXCEEDED');
    assert.match(a.error?.message ?? '', /estimated run time \(~100 ms or more\)/);
    assert.equal(calls.length, 0);
    const b = submit('b', 1, 100);
    assert.equal(calls.length, 1, 'finishing exactly at the deadline is in time');
    assert.equal(b.error, undefined);
  });

  test('the estimator learns from executed batches', async () => {
    const estimator = new BatchLatencyEstimator({ minObservations: 2, warmup: 0 });
    const { clock, submit, complete } = setup({}, { estimator });
    submit('a');
    await clock.advanceTo(30);
    await complete(0);
    submit('b');
    await clock.advanceTo(60);
    await complete(1);
    assert.equal(estimator.estimate(1), 30);
  });

  test('an executor failure rejects every request of the batch, and the loop goes on', async () => {
    const { calls, batches, submit, complete, ids } = setup();
    submit('a');
    const b = submit('b');
    const c = submit('c');
    await complete(0);
    calls[1]!.reject(new Error('CUDA out of memory'));
    await flush();
    for (const r of [b, c]) {
      assert.equal(r.error?.code, 'FERRY_INFERENCE_FAILED');
      assert.match(r.error?.message ?? '', /batch of 2 request\(s\): CUDA out of memory/);
      assert.equal((r.error!.cause as Error).message, 'CUDA out of memory');
    }
    assert.equal(batches[1]?.ok, false);
    const d = submit('d');
    assert.deepEqual(ids(2), ['d']);
    await complete(2);
    assert.equal(d.value, 'd!');
  });

  test('a result that is a FerryError fails that request alone; the others get theirs', async () => {
    const { calls, submit, complete } = setup();
    submit('a');
    const b = submit('b');
    const c = submit('c');
    await complete(0);
    calls[1]!.resolve(['b!', new FerryError('FERRY_INVALID_INPUT', 'c is not a picture')] as never);
    await flush();
    assert.equal(b.value, 'b!');
    assert.equal(c.error?.code, 'FERRY_INVALID_INPUT');
    assert.equal(c.error?.message, 'c is not a picture');
  });

  test('a FerryError from the executor passes through unchanged; a synchronous throw is caught', async () => {
    const clock = new ManualClock();
    const notReady = new FerryError('FERRY_MODEL_NOT_READY', 'no worker');
    let mode: 'ferry' | 'sync' = 'ferry';
    const batcher = new Batcher<number, number>({
      policy: SPEC,
      clock,
      concurrency: 1,
      samplesOf: () => 1,
      execute: (batch) => {
        if (mode === 'sync') throw new TypeError(`bad batch ${batch.length}`);
        return Promise.reject(notReady);
      },
    });
    await assert.rejects(batcher.submit(1, Number.POSITIVE_INFINITY), (e) => e === notReady);
    mode = 'sync';
    await assert.rejects(batcher.submit(1, Number.POSITIVE_INFINITY), {
      code: 'FERRY_INFERENCE_FAILED',
      message: /bad batch 1/,
    });
    assert.equal(batcher.running, 0);
  });

  test('an executor returning the wrong number of results is a FERRY_INTERNAL for the whole batch', async () => {
    const { calls, submit } = setup();
    const a = submit('a');
    calls[0]!.resolve([]);
    await flush();
    assert.equal(a.error?.code, 'FERRY_INTERNAL');
    assert.match(a.error?.message ?? '', /returned 0 results for a batch of 1/);
  });

  test('a bad sample count is rejected at submit', async () => {
    const { submit, calls } = setup();
    const a = submit('a', -1);
    await a.promise;
    assert.equal(a.error?.code, 'FERRY_INTERNAL');
    assert.equal(calls.length, 0);
  });

  test('drain resolves only when the queue is empty and nothing runs', async () => {
    const { batcher, submit, complete } = setup();
    let drained = false;
    await batcher.drain();
    submit('a');
    submit('b');
    const done = batcher.drain().then(() => {
      drained = true;
    });
    await complete(0);
    assert.equal(drained, false, 'b still queued and running');
    await complete(1);
    await done;
    assert.equal(drained, true);
  });

  test('close rejects new submits, dispatches waiting requests without the delay, and drains', async () => {
    const { clock, batcher, submit, complete, ids } = setup({ maxQueueDelayMs: 1000 });
    const a = submit('a');
    assert.deepEqual(clock.armed, [1000]);
    let closed = false;
    const closing = batcher.close().then(() => {
      closed = true;
    });
    assert.deepEqual(ids(0), ['a'], 'dispatched at close, clock still at 0');
    assert.deepEqual(clock.armed, []);
    const late = submit('late');
    await late.promise;
    assert.equal(late.error?.code, 'FERRY_SHUTTING_DOWN');
    assert.equal(late.error?.status, 503);
    assert.equal(closed, false);
    await complete(0);
    await closing;
    assert.equal(closed, true);
    assert.equal(a.value, 'a!');
  });

  test('rejects a nonsensical configuration with FERRY_INTERNAL', () => {
    const base = { clock: new ManualClock(), execute: async () => [], samplesOf: () => 1 };
    assert.throws(() => new Batcher({ ...base, policy: SPEC, concurrency: 0 }), { code: 'FERRY_INTERNAL' });
    assert.throws(() => new Batcher({ ...base, policy: { ...SPEC, maxBatchSize: 0 }, concurrency: 1 }), {
      code: 'FERRY_INTERNAL',
      message: /maxBatchSize 0 must be >= 1/,
    });
  });
});
