/**
 * GET /v1/deployments/{name}/metrics and its SSE stream over real HTTP, with a hand-driven history: the body, the
 * snapshot then points, the ping comment, `deleted` at the end, a client that does not read cut off, and 404s.
 * test/metrics-history.test.ts runs the same routes on a real platform.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { HistoryListener, HistoryView, Point } from '../metrics-history/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { buildControlApi } from './app.ts';
import { readServerSentEvents } from './client.ts';
import { recordingControl } from './testing.ts';

const INFO = { version: '9.9.9', runtime: 'process' as const, gatewayUrl: 'http://127.0.0.1:8080' };
const point = (t: number): Point => ({
  t,
  rps: 2,
  p50: 0.004,
  p99: 0.01,
  codes: { '200': 2 },
  replicas: 1,
  batchSize: 1,
  queueDepth: 0,
  coldStarts: 0,
});

/** A history driven by hand: `emit` sends a point to the listeners, `gone` tells them the deployment went. */
function handHistory() {
  const listeners = new Map<string, Set<HistoryListener>>();
  const views: Array<{ deployment: string; since: number | undefined }> = [];
  return {
    views,
    listeners,
    view(deployment: string, since?: number): HistoryView {
      views.push({ deployment, since });
      return {
        stepMs: 5000,
        windowMs: 3_600_000,
        source: 'scraped',
        revisions: [{ revision: 1, points: [point(1000), point(6000)].filter((p) => p.t > (since ?? 0)) }],
      };
    },
    subscribe(deployment: string, listener: HistoryListener) {
      let set = listeners.get(deployment);
      if (!set) {
        set = new Set();
        listeners.set(deployment, set);
      }
      set.add(listener);
      return () => set.delete(listener);
    },
    emit(deployment: string, revision: number, p: Point) {
      for (const l of [...(listeners.get(deployment) ?? [])]) l.point(revision, p);
    },
    gone(deployment: string) {
      for (const l of [...(listeners.get(deployment) ?? [])]) l.deleted();
    },
  };
}

let dir: string;
let store: Store;
let base: string;
let token: string;
let close: () => Promise<void>;
const history = handHistory();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-history-api-'));
  store = openStore(join(dir, 'state.db'));
  const app = buildControlApi({
    store,
    control: recordingControl(store),
    info: INFO,
    metricsHistory: history,
    followHeartbeatMs: 50,
  });
  base = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('[::1]', '127.0.0.1');
  close = () => app.close();
  token = store.createToken('look', 'viewer').token;
  store.createModel('iris');
  const digest = createHash('sha256').update('x').digest('hex');
  store.addVersion('iris', { version: '1', image: `reg/iris@sha256:${digest}` });
  store.createDeployment({ name: 'web', model: 'iris', versionRef: '1', replicas: 1 });
});

after(async () => {
  await close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = () => ({ authorization: `Bearer ${token}` });

test('GET .../metrics: the history with the deployment’s name, since passed on; 404 for an unknown one', async () => {
  const res = await fetch(`${base}/v1/deployments/web/metrics?since=1000`, { headers: auth() });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { deployment: string; revisions: Array<{ points: Point[] }> };
  assert.equal(body.deployment, 'web');
  assert.deepEqual(
    body.revisions[0]!.points.map((p) => p.t),
    [6000],
  );
  assert.deepEqual(history.views.at(-1), { deployment: 'web', since: 1000 });
  const bad = await fetch(`${base}/v1/deployments/web/metrics?since=soon`, { headers: auth() });
  assert.equal(bad.status, 400);
  for (const path of ['/v1/deployments/nope/metrics', '/v1/deployments/nope/metrics/stream']) {
    const r = await fetch(`${base}${path}`, { headers: auth() });
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as { code: string }).code, 'FERRY_NOT_FOUND');
  }
  assert.equal((await fetch(`${base}/v1/deployments/web/metrics`)).status, 401);
});

test('the stream: snapshot, points, a ping comment, and deleted at the end', async () => {
  const res = await fetch(`${base}/v1/deployments/web/metrics/stream`, { headers: auth() });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: Array<{ event: string; data: string }> = [];
  let emitted = false;
  let pinged = false;
  for await (const sse of readServerSentEvents(res.body!)) {
    if (!('event' in sse)) pinged ||= sse.comment.trim() === 'ping';
    else events.push({ event: sse.event, data: sse.data });
    if (!emitted && events.length > 0) {
      emitted = true;
      history.emit('web', 1, point(11_000));
      history.emit('other', 1, point(11_000));
    }
    // The ping (every 50 ms here) has come: the deployment goes.
    if (pinged && events.some((e) => e.event === 'point')) history.gone('web');
  }
  assert.deepEqual(
    events.map((e) => e.event),
    ['snapshot', 'point', 'deleted'],
  );
  assert.equal(JSON.parse(events[0]!.data).deployment, 'web');
  assert.deepEqual(JSON.parse(events[1]!.data), { revision: 1, point: point(11_000) });
  assert.deepEqual(JSON.parse(events[2]!.data), { deployment: 'web' });
  assert.equal(history.listeners.get('web')?.size ?? 0, 0, 'unsubscribed at the end');
});

test('a client that does not read is cut off, not buffered for', async () => {
  const url = new URL(`${base}/v1/deployments/web/metrics/stream`);
  await new Promise<void>((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, headers: auth() },
      (res) => {
        // Never read, so the server's buffer fills, until it lets the client go.
        res.pause();
        const big = {
          ...point(0),
          codes: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x${i}`, i])),
        };
        const flood = () => {
          if ((history.listeners.get('web')?.size ?? 0) > 0) {
            for (let i = 0; i < 200; i++) history.emit('web', 1, big);
            setImmediate(flood);
            return;
          }
          // Unsubscribed: the server gave up on it. Reading now finds the connection closed by the server.
          res.on('error', () => resolve());
          res.on('end', () => resolve());
          res.on('close', () => resolve());
          res.resume();
        };
        flood();
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(history.listeners.get('web')?.size ?? 0, 0, 'its listener is gone');
});
