/**
 * GET /v1/stream over a listening port (platform-stream.ts): what a client sees first and on each change,
 * tenants kept apart, who may subscribe, heartbeats, and that a stream leaves nothing behind when the client
 * goes, when it is too slow, and when the API closes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { ArtifactStore } from '../artifacts.ts';
import { ChangeFeed } from '../changes.ts';
import { eventRecorder } from '../events.ts';
import { openStore, type Store } from '../store/store.ts';
import type { DeploymentView } from '../views.ts';
import { buildControlApi } from './app.ts';
import { ControlClient, readServerSentEvents, type StreamMessage } from './client.ts';
import { PlatformStreams } from './platform-stream.ts';
import { type RecordingControl, recordingControl } from './testing.ts';

const PINNED = `reg/iris@sha256:${'ab'.repeat(32)}`;
const INFO = { version: '9.9.9', runtime: 'process' as const, gatewayUrl: 'http://127.0.0.1:8080' };

interface Server {
  app: FastifyInstance;
  store: Store;
  control: RecordingControl;
  url: string;
  /** A platform admin of the default tenant. */
  admin: ControlClient;
  client(token: string, tenant?: string): ControlClient;
  token(name: string, role: string): string;
  close(): Promise<void>;
}

async function serve(opts: { heartbeatMs?: number } = {}): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-stream-'));
  const store = openStore(join(dir, 'state.db'));
  const control = recordingControl(store, INFO.gatewayUrl);
  const app = buildControlApi({
    store,
    control,
    info: INFO,
    versions: { store, artifacts: new ArtifactStore(join(dir, 'artifacts')) },
    ...(opts.heartbeatMs === undefined ? {} : { followHeartbeatMs: opts.heartbeatMs }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  const client = (token: string, tenant?: string) =>
    new ControlClient({ url, token, ...(tenant ? { tenant } : {}) });
  let closed = false;
  return {
    app,
    store,
    control,
    url,
    admin: client(store.createToken('root', 'platform-admin').token),
    client,
    token: (name, role) => store.createToken(name, role).token,
    async close() {
      if (!closed) await app.close();
      closed = true;
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A typed stream read message by message; `close` leaves it (the connection closes). */
function subscribe(client: ControlClient, pings = false) {
  const abort = new AbortController();
  const iterator = client.stream(abort.signal, { pings })[Symbol.asyncIterator]();
  return {
    async next(): Promise<StreamMessage> {
      const r = await iterator.next();
      assert.equal(r.done, false, 'the stream ended');
      return r.value as StreamMessage;
    },
    /** Messages until one passes `done` (that one last). */
    async until(done: (m: StreamMessage) => boolean): Promise<StreamMessage[]> {
      const seen: StreamMessage[] = [];
      for (;;) {
        const m = await this.next();
        seen.push(m);
        if (done(m)) return seen;
      }
    },
    async end(): Promise<IteratorResult<StreamMessage>> {
      return iterator.next();
    },
    close(): void {
      abort.abort();
    },
  };
}

const deploymentsOf = (m: StreamMessage): DeploymentView[] => {
  assert.equal(m.type, 'deployments', JSON.stringify(m));
  return (m as { deployments: DeploymentView[] }).deployments;
};
const isDeployments = (pred: (ds: DeploymentView[]) => boolean) => (m: StreamMessage) =>
  m.type === 'deployments' && pred(m.deployments);
const isEvent = (reason: string) => (m: StreamMessage) => m.type === 'event' && m.event.reason === reason;

/** Every `deployments` message differs from the one before it (nothing is sent when nothing changed). */
function assertEachChanged(messages: StreamMessage[], first?: DeploymentView[]): void {
  let previous = first === undefined ? undefined : JSON.stringify(first);
  for (const m of messages) {
    if (m.type !== 'deployments') continue;
    const json = JSON.stringify(m.deployments);
    assert.notEqual(json, previous, 'a deployments message repeats the one before');
    previous = json;
  }
}

async function deploy(client: ControlClient, name: string, replicas = 1): Promise<void> {
  await client.createModel('iris').catch(() => {});
  await client.addVersion('iris', { version: '1', image: PINNED }).catch(() => {});
  await client.deploy({ name, model: 'iris', version: '1', replicas });
}

const activeTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('GET /v1/stream', { timeout: 60_000 }, () => {
  let s: Server;
  before(async () => {
    s = await serve();
  });
  after(() => s.close());

  test('a viewer connects: an event stream whose first message is the body of GET /v1/deployments', async () => {
    await deploy(s.admin, 'web');
    const viewer = s.token('look', 'viewer');
    const abort = new AbortController();
    try {
      const response = await fetch(`${s.url}/v1/stream`, {
        headers: { authorization: `Bearer ${viewer}` },
        signal: abort.signal,
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.ok(response.headers.get('x-request-id'));
      const listed = await (
        await fetch(`${s.url}/v1/deployments`, { headers: { authorization: `Bearer ${viewer}` } })
      ).text();
      const frames = readServerSentEvents(response.body as ReadableStream<Uint8Array>)[
        Symbol.asyncIterator
      ]();
      const first = (await frames.next()).value;
      assert.deepEqual(first, { event: 'deployments', data: listed });
      await frames.return?.();
    } finally {
      abort.abort();
      await s.control.remove('web');
    }
  });

  test('a deployment appears, its replica gets ready, it scales, events come in order; nothing when unchanged', async () => {
    const stream = subscribe(s.client(s.token('watcher', 'viewer')));
    try {
      const empty = deploymentsOf(await stream.next());
      assert.deepEqual(empty, []);

      await deploy(s.admin, 'api', 1);
      s.control.event('api', 'Normal', 'DeploymentCreated', 'Deployment api created');
      const created = await stream.until(isDeployments((ds) => ds.some((d) => d.name === 'api')));
      const view = deploymentsOf(created.at(-1) as StreamMessage)[0] as DeploymentView;
      assert.equal(view.replicas, 1);
      assert.equal(view.tenant, 'default');

      s.control.replicas.set('api', [
        {
          id: 'r1',
          name: 'api-1-0',
          revision: 1,
          index: 0,
          state: 'ready',
          url: 'unix:/x',
          startedAt: 1,
          restarts: 0,
        },
      ]);
      s.control.changed(); // what the loop's pass does
      const ready = await stream.until(
        isDeployments((ds) => ds[0]?.replicaStatus.some((r) => r.state === 'ready') === true),
      );

      // Passes that change nothing send nothing: the next deployments message is the scale.
      for (let i = 0; i < 3; i++) s.control.changed();
      for (const n of [1, 2, 3, 4, 5]) s.control.event('api', 'Normal', `Step${n}`, `step ${n}`);
      await s.admin.scale('api', 3);
      const scaled = await stream.until(isDeployments((ds) => ds[0]?.replicas === 3));

      const all = [...created, ...ready, ...scaled];
      assertEachChanged(all, empty);
      const events = all.flatMap((m) => (m.type === 'event' ? [m.event] : []));
      assert.deepEqual(
        events.map((e) => e.reason),
        ['DeploymentCreated', 'Step1', 'Step2', 'Step3', 'Step4', 'Step5'],
      );
      assert.deepEqual(
        events.map((e) => e.id),
        [...events.map((e) => e.id)].sort((a, b) => a - b),
      );
      // Each event is the record GET /v1/events answers.
      const listed = await s.admin.events({ deployment: 'api', limit: 6 });
      assert.deepEqual(events, listed.reverse());
    } finally {
      stream.close();
      await s.control.remove('api');
    }
  });

  test('tenants: a caller sees only its tenant; a platform admin names one with X-Ferry-Tenant', async () => {
    s.store.createTenant('team-a', {});
    const teamAdmin = s.client(s.token('team-a/boss', 'admin'));
    await deploy(s.admin, 'web');
    await deploy(teamAdmin, 'secret-model');
    const home = subscribe(s.client(s.token('home-viewer', 'viewer')));
    const team = subscribe(s.client(s.token('team-a/viewer', 'viewer')));
    const named = subscribe(s.client(s.token('ops', 'platform-admin'), 'team-a'));
    try {
      assert.deepEqual(
        deploymentsOf(await home.next()).map((d) => [d.name, d.tenant]),
        [['web', 'default']],
      );
      for (const stream of [team, named])
        assert.deepEqual(
          deploymentsOf(await stream.next()).map((d) => [d.name, d.tenant]),
          [['secret-model', 'team-a']],
        );

      s.control.event('team-a/secret-model', 'Warning', 'TeamThing', 'team-a/secret-model crashed');
      s.control.event('web', 'Normal', 'HomeThing', 'web scaled');
      await teamAdmin.scale('secret-model', 2);

      for (const stream of [team, named]) {
        const seen = await stream.until(isDeployments((ds) => ds[0]?.replicas === 2));
        const events = seen.flatMap((m) => (m.type === 'event' ? [m.event] : []));
        assert.deepEqual(
          events.map((e) => [e.reason, e.deployment, e.tenant, e.message]),
          [['TeamThing', 'secret-model', 'team-a', 'secret-model crashed']],
        );
        for (const m of seen)
          if (m.type === 'deployments')
            assert.deepEqual(
              m.deployments.map((d) => d.name),
              ['secret-model'],
            );
      }
      // The default tenant's stream had its own event, not team-a's (recorded before it), and no deployments
      // message for team-a's change.
      assert.deepEqual(
        (await home.until(isEvent('HomeThing'))).map((m) => m.type),
        ['event'],
      );
      s.control.event('web', 'Normal', 'Marker', 'after the team-a change');
      assert.deepEqual(
        (await home.until(isEvent('Marker'))).map((m) => m.type),
        ['event'],
      );
    } finally {
      home.close();
      team.close();
      named.close();
    }
  });
});

describe('GET /v1/stream: who may subscribe', { timeout: 60_000 }, () => {
  let s: Server;
  before(async () => {
    s = await serve();
    s.store.createTenant('team-a', {});
  });
  after(() => s.close());

  const refused = async (client: ControlClient, code: string, pattern: RegExp) => {
    const stream = client.stream()[Symbol.asyncIterator]();
    await assert.rejects(stream.next(), (error: Error & { code?: string }) => {
      assert.equal(error.code, code);
      assert.match(error.message, pattern);
      return true;
    });
  };

  test('viewers, deployers and admins may; invoker and gateway tokens may not; no token is a 401', async () => {
    for (const role of ['viewer', 'deployer', 'admin', 'platform-admin']) {
      const stream = subscribe(s.client(s.token(`may-${role}`, role)));
      assert.equal((await stream.next()).type, 'deployments', role);
      stream.close();
    }
    await refused(
      s.client(s.token('caller', 'invoker')),
      'FERRY_FORBIDDEN',
      /role "invoker".*GET \/v1\/stream/,
    );
    await refused(s.client(s.token('gw', 'gateway')), 'FERRY_FORBIDDEN', /role "gateway"/);
    await refused(new ControlClient({ url: s.url }), 'FERRY_UNAUTHORIZED', /No bearer token/);
    await refused(
      s.client(s.token('team-a/v', 'viewer'), 'default'),
      'FERRY_FORBIDDEN',
      /cannot act in another/,
    );
  });
});

test('pings come every heartbeat while nothing changes', { timeout: 20_000 }, async () => {
  const s = await serve({ heartbeatMs: 10 });
  try {
    const stream = subscribe(s.client(s.token('look', 'viewer')), true);
    assert.equal((await stream.next()).type, 'deployments');
    assert.deepEqual(await stream.next(), { type: 'ping' });
    assert.deepEqual(await stream.next(), { type: 'ping' });
    stream.close();
  } finally {
    await s.close();
  }
});

test('streams that go leave nothing behind: no watcher, no timer', { timeout: 20_000 }, async () => {
  const s = await serve();
  try {
    s.store.createTenant('team-a', {});
    const baseline = activeTimers();
    const streams = [
      subscribe(s.client(s.token('a', 'viewer'))),
      subscribe(s.client(s.token('b', 'viewer'))),
      subscribe(s.client(s.token('team-a/c', 'viewer'))),
    ];
    for (const stream of streams) await stream.next();
    assert.equal(s.control.changes.watchers, 1, 'one watch for every stream');
    assert.ok(activeTimers() >= baseline + 3, 'a ping timer per stream');
    // A change in flight: a look is due for each tenant.
    s.control.changed();
    s.control.event(undefined, 'Normal', 'Something', 'happened');
    for (const stream of streams) stream.close();
    await until(() => s.control.changes.watchers === 0);
    await until(() => activeTimers() === baseline);
    // And a new stream starts from scratch.
    const again = subscribe(s.client(s.token('d', 'viewer')));
    assert.equal((await again.next()).type, 'deployments');
    assert.equal(s.control.changes.watchers, 1);
    again.close();
    await until(() => s.control.changes.watchers === 0 && activeTimers() === baseline);
  } finally {
    await s.close();
  }
});

test('closing the API ends every stream cleanly, and the close does not wait for them', {
  timeout: 20_000,
}, async () => {
  const s = await serve();
  try {
    const streams = [subscribe(s.client(s.token('a', 'viewer'))), subscribe(s.admin)];
    for (const stream of streams) await stream.next();
    await s.app.close();
    for (const stream of streams) assert.deepEqual(await stream.end(), { done: true, value: undefined });
    assert.equal(s.control.changes.watchers, 0);
  } finally {
    await s.close();
  }
});

describe('a client that does not read', () => {
  /** A response whose client never reads: nothing it is written ever leaves its buffer. */
  const stalled = () => {
    const res = new Writable({ highWaterMark: 1024, write: () => {} });
    return res as unknown as ServerResponse & Writable;
  };

  test('deployments are not queued behind each other: the newest goes out when it drains', async () => {
    const changes = new ChangeFeed();
    let replicas = 1;
    const views = () =>
      [
        { name: 'web', model: 'iris', replicas, rollout: null, filler: 'x'.repeat(2000) },
      ] as unknown as DeploymentView[];
    const streams = new PlatformStreams({
      control: { list: views, watch: (w) => changes.watch(w) },
      minCheckMs: 0,
      maxBufferedBytes: 1 << 20,
    });
    const written: string[] = [];
    let release: (() => void) | undefined;
    const res = new Writable({
      highWaterMark: 1024,
      write: (chunk: Buffer, _e, done) => {
        written.push(chunk.toString());
        release = done;
      },
    }) as unknown as ServerResponse & Writable;
    streams.open('default', res);
    assert.equal(res.writableNeedDrain, true, 'the first body fills the buffer');
    for (const n of [2, 3, 4]) {
      replicas = n;
      changes.emit({ kind: 'state' });
      // The look is a timer of 0 (1) ms: one made after it runs after it.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.equal(written.length, 1, 'nothing more while the client has not read');
    release?.();
    await until(() => written.length === 2);
    assert.match(
      written[1] as string,
      /^event: deployments\ndata: \[\{"name":"web","model":"iris","replicas":4,/,
    );
    streams.close();
    assert.equal(changes.watchers, 0);
  });

  test('events past the bound: the stream is dropped, its timers and watch with it', async () => {
    const changes = new ChangeFeed();
    const dir = mkdtempSync(join(tmpdir(), 'ferry-stream-slow-'));
    const store = openStore(join(dir, 'state.db'));
    try {
      const record = eventRecorder(store, Date.now, undefined, changes);
      const streams = new PlatformStreams({
        control: { list: () => [], watch: (w) => changes.watch(w) },
        maxBufferedBytes: 16 * 1024,
      });
      const res = stalled();
      streams.open('default', res);
      let sent = 0;
      while (!res.destroyed && sent < 10_000) {
        record(undefined, 'Normal', 'Busy', `event ${sent++} ${'x'.repeat(100)}`);
      }
      assert.equal(res.destroyed, true, 'dropped');
      // An event's frame is about 200 bytes: dropped once some 16 KiB waited, not later.
      assert.ok(sent > 20 && sent < 200, `dropped after ${sent} events`);
      assert.deepEqual(streams.stats, { streams: 0, tenants: 0, watching: false, timers: 0 });
      assert.equal(changes.watchers, 0);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Waits for a condition without a fixed sleep (a macrotask between looks). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

test('readServerSentEvents: CRLF and CR line ends, lines split across chunks, multi-line data, comments', async () => {
  const text =
    ': hello\r\nevent: deployments\r\ndata: [1,\r\ndata: 2]\r\n\r\ndata:x\r\rid: 7\nretry: 10\nevent: e\ndata\n\nevent: cut';
  const bytes = new TextEncoder().encode(text);
  // One byte per chunk: every split a network could make, a CRLF cut in two included.
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const b of bytes) controller.enqueue(new Uint8Array([b]));
      controller.close();
    },
  });
  const seen = [];
  for await (const e of readServerSentEvents(body)) seen.push(e);
  assert.deepEqual(seen, [
    { comment: ' hello' },
    { event: 'deployments', data: '[1,\n2]' },
    { event: 'message', data: 'x' },
    { event: 'e', data: '' },
  ]);
});
