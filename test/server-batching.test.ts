/**
 * Batching, load shedding, deadlines and worker isolation of `ferry serve`, over real HTTP, with real
 * onnxruntime and real handler code in real worker threads. Timing claims are asserted as orderings
 * (which promise settled first, which run started before which ended), not as wall-clock thresholds.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { InferResponse } from '../src/protocol/types.ts';
import { matmulStack, matmulStackWeights, mulberry32 } from '../tools/onnx/models.ts';
import { fixtureModel, metricValue, slowBody, slowRequest } from './fixtures/models.ts';
import { SLOW_EVENTS, type SlowEvent } from './fixtures/slow/handler.ts';
import { onnxSpec, post, serve, type TestServer, tempDir, writeModelDir } from './helpers.ts';

const WIDTH = 256;
const LAYERS = 4;
const REQUESTS = 64;

/** y = relu(...relu(x W0)... W_last) for one row, in float64 from the model's own float32 weights. */
function referenceRow(x: Float32Array, weights: Float32Array[]): Float64Array {
  let h = Float64Array.from(x);
  for (const w of weights) {
    const next = new Float64Array(WIDTH);
    for (let i = 0; i < WIDTH; i++) {
      const xi = h[i]!;
      if (xi === 0) continue;
      const row = i * WIDTH;
      for (let j = 0; j < WIDTH; j++) next[j]! += xi * w[row + j]!;
    }
    for (let j = 0; j < WIDTH; j++) if (next[j]! < 0) next[j] = 0;
    h = next;
  }
  return h;
}

/** Watches the slow fixture's start/end broadcasts (the workers run in this process). */
class SlowEvents {
  readonly events: SlowEvent[] = [];
  readonly #channel = new BroadcastChannel(SLOW_EVENTS);
  #waiters: Array<() => void> = [];

  constructor() {
    this.#channel.onmessage = (message) => {
      this.events.push((message as { data: SlowEvent }).data);
      for (const wake of this.#waiters.splice(0)) wake();
    };
  }

  find(phase: SlowEvent['phase'], id: string): SlowEvent | undefined {
    return this.events.find((e) => e.phase === phase && e.id === id);
  }

  /** Resolves with the event once it was broadcast; rejects after `ms` (a bound, not an assertion). */
  async waitFor(phase: SlowEvent['phase'], id: string, ms = 10_000): Promise<SlowEvent> {
    const limit = Date.now() + ms;
    for (;;) {
      const found = this.find(phase, id);
      if (found) return found;
      if (Date.now() > limit) throw new Error(`no "${phase}" event for request "${id}" within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.#channel.close();
  }
}

const scalar = (response: InferResponse, name: string): number =>
  Number((response.outputs.find((o) => o.name === name)!.data as Float64Array | Int32Array)[0]);

const wallNow = () => performance.timeOrigin + performance.now();

describe('batching, shedding, deadlines and workers over HTTP', () => {
  const dir = tempDir();
  const events = new SlowEvents();
  let server: TestServer;
  let base: string;

  before(async () => {
    writeModelDir(
      join(dir.path, 'mm'),
      onnxSpec('mm', 'serving:\n  threads: 1\n  batching: { maxBatchSize: 16, maxQueueDelay: 500ms }\n'),
      { 'model.onnx': matmulStack({ width: WIDTH, layers: LAYERS }) },
    );
    // Fixed [1] shapes: batching is ignored, but its maxQueueSize still bounds the queue.
    fixtureModel(dir.path, 'shed', 'slow', 'serving:\n  batching: { maxQueueSize: 2 }\n');
    fixtureModel(dir.path, 'deadline', 'slow', 'serving:\n  timeout: 200ms\n');
    fixtureModel(dir.path, 'solo', 'slow');
    fixtureModel(dir.path, 'pair', 'slow', 'serving:\n  concurrency: 2\n');
    server = await serve([dir.path]);
    base = server.url;
  });
  after(async () => {
    events.close();
    await server?.close();
    dir.remove();
  });

  test('64 concurrent requests form batches, and each gets the answer for its own row', async () => {
    const random = mulberry32(7);
    const rows = Array.from({ length: REQUESTS }, () =>
      Float32Array.from({ length: WIDTH }, () => random() * 2 - 1),
    );
    const weights = matmulStackWeights({ width: WIDTH, layers: LAYERS });
    const responses = await Promise.all(
      rows.map((row, i) =>
        server.client.infer('mm', {
          id: `row-${i}`,
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: row }],
        }),
      ),
    );
    for (const [i, response] of responses.entries()) {
      assert.equal(response.id, `row-${i}`);
      const y = response.outputs.find((o) => o.name === 'y')!;
      assert.deepEqual(y.shape, [1, WIDTH]);
      const want = referenceRow(rows[i]!, weights);
      const got = y.data as Float32Array;
      for (let j = 0; j < WIDTH; j++) {
        assert.ok(
          Math.abs(got[j]! - want[j]!) <= 1e-4 * Math.max(1, Math.abs(want[j]!)),
          `row ${i}, y[${j}]: ${got[j]} is not ${want[j]} (answer of another row?)`,
        );
      }
    }
    // Distinct rows give distinct answers: a mix-up between rows could not pass the loop above.
    assert.notDeepEqual(responses[0]!.outputs[0]!.data, responses[1]!.outputs[0]!.data);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    const labels = { model: 'mm', version: '1' };
    const batches = metricValue(metrics, 'ferry_batch_size_count', labels);
    const samples = metricValue(metrics, 'ferry_batch_size_sum', labels);
    assert.equal(samples, REQUESTS, 'every request ran exactly once, in some batch');
    assert.ok(batches !== undefined && batches >= REQUESTS / 16, `batches: ${batches}`);
    assert.ok(batches <= REQUESTS / 4, `requests were not batched: ${batches} batches for ${REQUESTS}`);
    assert.equal(metricValue(metrics, 'ferry_requests_total', { ...labels, status: '200' }), REQUESTS);
  });

  test('beyond maxQueueSize, requests are shed with 503 FERRY_QUEUE_FULL and Retry-After', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, () => post(`${base}/v2/models/shed/infer`, slowBody(400))),
    );
    const ok = results.filter((r) => r.status === 200);
    const shed = results.filter((r) => r.status === 503);
    assert.equal(ok.length + shed.length, 12, `other statuses: ${results.map((r) => r.status)}`);
    // One runs and two wait: the first three to arrive always get in.
    assert.ok(ok.length >= 3, `only ${ok.length} succeeded`);
    assert.ok(shed.length >= 1, 'nothing was shed');
    for (const r of shed) {
      assert.equal(r.json.code, 'FERRY_QUEUE_FULL', r.text);
      assert.match(String(r.json.error), /maxQueueSize is 2/);
      const retryAfter = r.headers.get('retry-after');
      assert.ok(retryAfter !== null && /^\d+$/.test(retryAfter) && Number(retryAfter) >= 1, `${retryAfter}`);
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const labels = { model: 'shed', version: '1' };
    assert.equal(metricValue(metrics, 'ferry_requests_total', { ...labels, status: '503' }), shed.length);
  });

  test('past serving.timeout: 504 FERRY_DEADLINE_EXCEEDED; queued requests are dropped, never run late', async () => {
    const url = `${base}/v2/models/deadline/infer`;
    const received: Record<string, number> = {};
    const send = (id: string, ms: number) =>
      post(url, slowBody(ms, false, id)).then((r) => {
        received[id] = wallNow();
        return r;
      });
    const running = send('A', 800);
    await events.waitFor('start', 'A');
    const queued = ['B', 'C', 'D'].map((id) => send(id, 10));
    const all = await Promise.all([running, ...queued]);
    for (const r of all) {
      assert.equal(r.status, 504, r.text);
      assert.equal(r.json.code, 'FERRY_DEADLINE_EXCEEDED');
    }
    const endA = await events.waitFor('end', 'A');
    // Every 504 left while A still ran: the timeout is enforced, not observed after the fact.
    for (const id of ['A', 'B', 'C', 'D'])
      assert.ok(received[id]! < endA.t, `${id} answered after the run it waited for ended`);
    // The worker is free again; a quick request succeeds, and runs before any late leftover could.
    const probe = await post(url, slowBody(0, false, 'P'));
    assert.equal(probe.status, 200, probe.text);
    for (const id of ['B', 'C', 'D'])
      assert.equal(events.find('start', id), undefined, `${id} ran although its deadline had passed`);
  });

  test('health and readiness answer while a CPU-bound inference runs in a worker', async () => {
    const order: string[] = [];
    const inference = server.client.infer('solo', slowRequest(1000, true, 'X')).then((r) => {
      order.push('inference');
      return r;
    });
    await events.waitFor('start', 'X');
    const probes = ['/v2/health/ready', '/v2/models/solo/ready', '/v2/health/live'].map((path) =>
      fetch(base + path).then((r) => {
        order.push(path);
        return r.status;
      }),
    );
    assert.deepEqual(await Promise.all(probes), [200, 200, 200]);
    await inference;
    assert.equal(order.at(-1), 'inference', `settled in the order ${order.join(', ')}`);
  });

  test('serving.concurrency 2 runs two requests at once in two threads; concurrency 1 does not', async () => {
    const [a, b] = await Promise.all([
      server.client.infer('pair', slowRequest(400)),
      server.client.infer('pair', slowRequest(400)),
    ]);
    const startedLast = Math.max(scalar(a!, 'started'), scalar(b!, 'started'));
    const endedFirst = Math.min(scalar(a!, 'ended'), scalar(b!, 'ended'));
    assert.ok(startedLast < endedFirst, 'both runs started before either ended');
    assert.notEqual(scalar(a!, 'thread'), scalar(b!, 'thread'));

    // The control: one worker runs them one after the other.
    const [c, d] = await Promise.all([
      server.client.infer('solo', slowRequest(200)),
      server.client.infer('solo', slowRequest(200)),
    ]);
    const [first, second] = scalar(c!, 'started') < scalar(d!, 'started') ? [c!, d!] : [d!, c!];
    assert.ok(scalar(second, 'started') >= scalar(first, 'ended'), 'one worker overlapped two runs');
    assert.equal(scalar(c!, 'thread'), scalar(d!, 'thread'));
  });

  test('ferry_requests_in_flight counts requests read and not yet answered (queued or running), back to 0 after', async () => {
    const inFlight = async () =>
      metricValue(await (await fetch(`${base}/metrics`)).text(), 'ferry_requests_in_flight');
    // One worker: one runs, two wait; each takes a second, so the three are in flight together for a while.
    const calls = [0, 1, 2].map((i) =>
      server.client.infer('solo', slowRequest(1000, false, `inflight-${i}`)),
    );
    let done = false;
    const all = Promise.all(calls).then(() => {
      done = true;
    });
    let seen = 0;
    // Polled until the three are counted or they were all answered first (then the assertion below says so).
    while (seen < 3 && !done) {
      seen = (await inFlight()) ?? 0;
      if (seen < 3) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(seen, 3, 'all three were counted while in flight');
    await all;
    assert.equal(await inFlight(), 0, 'answered (and shed or failed ones before) are no longer counted');
  });
});
