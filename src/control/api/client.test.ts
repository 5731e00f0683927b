import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { FerryError, isFerryError } from '../../core/errors.ts';
import { freePort } from '../../core/free-port.ts';
import { prepareArtifact } from '../../image/artifact.ts';
import { ArtifactStore } from '../artifacts.ts';
import { SecretBox, Secrets } from '../secrets.ts';
import { openStore, type Store } from '../store/store.ts';
import type { LogLine } from '../views.ts';
import { buildControlApi } from './app.ts';
import { ControlClient } from './client.ts';
import { type RecordingControl, recordingControl } from './testing.ts';

const IRIS = join(import.meta.dirname, '..', '..', '..', 'examples', 'iris');
const PINNED = `reg/iris@sha256:${'ab'.repeat(32)}`;
const INFO = { version: '9.9.9', runtime: 'docker' as const, gatewayUrl: 'http://127.0.0.1:8080' };

interface Server {
  app: FastifyInstance;
  store: Store;
  control: RecordingControl;
  url: string;
  admin: ControlClient;
  close(): Promise<void>;
}

async function serve(followHeartbeatMs?: number): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-api-client-'));
  const store = openStore(join(dir, 'state.db'));
  const control = recordingControl(store, INFO.gatewayUrl);
  const app = buildControlApi({
    store,
    control,
    info: INFO,
    secrets: new Secrets(store, SecretBox.open(join(dir, 'secret.key'))),
    versions: { store, artifacts: new ArtifactStore(join(dir, 'artifacts')) },
    ...(followHeartbeatMs === undefined ? {} : { followHeartbeatMs }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  return {
    app,
    store,
    control,
    url,
    admin: new ControlClient({ url, token: store.createToken('root', 'platform-admin').token }),
    async close() {
      await app.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function rejects(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<FerryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isFerryError(error), `not a FerryError: ${error}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected ${code}`);
}

const line = (n: number): LogLine => ({
  at: n,
  replica: 'web-1-0',
  revision: 1,
  stream: 'stdout',
  line: `l${n}`,
});

describe('ControlClient over a listening port', () => {
  let s: Server;
  before(async () => {
    s = await serve();
  });
  after(() => s.close());

  test('secrets: set by a deployer, listed without values, refused to a viewer, deleted', async () => {
    const value = 'sk-test-abcdef0123456789';
    const deployer = new ControlClient({
      url: s.url,
      token: s.store.createToken('ci-deployer', 'deployer').token,
    });
    const viewer = new ControlClient({ url: s.url, token: s.store.createToken('ci-viewer', 'viewer').token });
    const set = await deployer.setSecret('api-key', value);
    assert.equal(set.name, 'api-key');
    const listed = await viewer.listSecrets();
    assert.deepEqual(
      listed.map((x) => x.name),
      ['api-key'],
    );
    assert.ok(!JSON.stringify([set, listed]).includes(value));
    await rejects(viewer.setSecret('api-key', 'x'), 'FERRY_FORBIDDEN');
    await rejects(deployer.setSecret('api-key', ''), 'FERRY_BAD_REQUEST');
    const raw = await fetch(`${s.url}/v1/secrets/api-key`, {
      method: 'PUT',
      headers: { authorization: 'Bearer nope', 'content-type': 'application/json' },
      body: JSON.stringify({ value }),
    });
    assert.equal(raw.status, 401);
    await deployer.deleteSecret('api-key');
    await rejects(deployer.deleteSecret('api-key'), 'FERRY_NOT_FOUND');
    s.store.deleteToken('ci-deployer');
    s.store.deleteToken('ci-viewer');
  });

  test('every method against the real app', async () => {
    const c = s.admin;
    assert.deepEqual(await new ControlClient({ url: `${s.url}/` }).health(), { ok: true, version: '9.9.9' });
    assert.deepEqual(await c.info(), INFO);
    assert.equal((await c.createModel('iris')).name, 'iris');
    const prepared = await prepareArtifact(IRIS);
    try {
      assert.equal(await c.hasArtifact(prepared.digest), false);
      const sent = await c.uploadArtifact(prepared.digest, prepared.stream());
      assert.deepEqual(sent, {
        digest: prepared.digest,
        files: prepared.files,
        bytes: prepared.tarBytes,
        created: true,
      });
      assert.equal(await c.hasArtifact(prepared.digest), true);
      const v1 = await c.addVersion('iris', { version: '1', artifact: prepared.digest });
      assert.equal(v1.artifact, prepared.digest);
    } finally {
      await prepared.cleanup();
    }
    await c.addVersion('iris', { version: '2', image: PINNED });
    assert.deepEqual(await c.setAlias('iris', 'stable', '1'), {
      model: 'iris',
      alias: 'stable',
      version: '1',
      updated: [],
    });
    assert.deepEqual((await c.getModel('iris')).aliases, { stable: '1' });
    assert.equal((await c.listModels()).length, 1);

    const view = await c.deploy({ name: 'web', model: 'iris', version: 'stable', replicas: 2 });
    assert.equal(view.versionRef, 'stable');
    assert.equal(view.replicas, 2);
    assert.deepEqual(
      (await c.listDeployments()).map((d) => d.name),
      ['web'],
    );
    assert.deepEqual((await c.setAlias('iris', 'stable', '2')).updated, [{ deployment: 'web', revision: 2 }]);
    assert.equal((await c.update('web', { env: { A: 'b' } })).revision, 3);
    assert.equal((await c.scale('web', 5)).replicas, 5);
    assert.deepEqual(await c.getTraffic('web'), [{ revision: 1, percent: 100 }]);
    const split = await c.setTraffic('web', [
      { revision: 1, percent: 50 },
      { revision: 3, percent: 50 },
    ]);
    assert.deepEqual(
      split.traffic.map((t) => t.percent),
      [50, 50],
    );
    assert.deepEqual(
      (await c.revisions('web')).map((r) => r.number),
      [1, 2, 3],
    );
    const described = await c.getDeployment('web');
    assert.equal(described.revisions.length, 3);
    assert.deepEqual(described.events, []);
    assert.deepEqual(await c.replicas('web'), []);
    assert.equal(await c.rollout('web'), null);
    assert.equal((await c.undo('web')).to, 2);
    assert.equal((await c.undo('web', 1)).to, 1);
    assert.equal((await c.promote('web')).phase, 'progressing');
    assert.equal((await c.abort('web')).phase, 'aborting');
    assert.equal((await c.rollout('web'))?.phase, 'aborting');

    s.control.lines.push(line(1), line(2), line(3));
    assert.deepEqual(
      (await c.logs('web', { tail: 2 })).map((l) => l.line),
      ['l2', 'l3'],
    );
    s.store.addEvent({ deployment: 'web', type: 'Normal', reason: 'Scaled', message: 'to 5', at: 1 });
    assert.deepEqual(
      (await c.events({ deployment: 'web', limit: 5 })).map((e) => e.reason),
      ['Scaled'],
    );

    const token = await c.createToken('reader', 'viewer');
    assert.match(token.token, /^ferry_/);
    assert.deepEqual((await c.listTokens()).map((t) => t.name).sort(), ['reader', 'root']);
    const reader = new ControlClient({ url: s.url, token: token.token });
    assert.equal((await reader.getDeployment('web')).name, 'web');
    await c.deleteToken('reader');
    await rejects(reader.info(), 'FERRY_UNAUTHORIZED');

    await c.deleteDeployment('web');
    assert.deepEqual(await c.listDeployments(), []);
  });

  test("errors carry the server's code, message, hint and details", async () => {
    const none = await rejects(new ControlClient({ url: s.url }).info(), 'FERRY_UNAUTHORIZED', /bearer/i);
    assert.ok(none.hint);
    assert.equal(none.status, 401);
    const viewer = new ControlClient({ url: s.url, token: s.store.createToken('v', 'viewer').token });
    await rejects(viewer.createModel('x'), 'FERRY_FORBIDDEN', /viewer/);
    const missing = await rejects(s.admin.getDeployment('ghost'), 'FERRY_NOT_FOUND', /ghost/);
    assert.equal(missing.hint, 'List deployments to see the names.');
    const bad = await rejects(
      s.admin.deploy({ name: 'x', model: 'iris', version: '1', replicas: -2 }),
      'FERRY_BAD_REQUEST',
      /replicas/,
    );
    assert.deepEqual(
      (bad.details as Array<{ path: string }>).map((d) => d.path),
      ['replicas'],
    );
    // A typo a TypeScript caller could not make, but a JS one can: refused, naming the field.
    const typo = await rejects(
      s.admin.update('web', { replica: 2 } as unknown as { replicas: number }),
      'FERRY_BAD_REQUEST',
      /replica: unknown field/,
    );
    assert.match(typo.hint ?? '', /replicas/);
  });

  test('a refused connection is FERRY_CONNECTION_FAILED naming the URL and `ferry up`', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const error = await rejects(
      new ControlClient({ url, token: 'x' }).listDeployments(),
      'FERRY_CONNECTION_FAILED',
    );
    assert.ok(error.message.includes(url), error.message);
    assert.match(error.message, /ECONNREFUSED/);
    assert.match(error.hint ?? '', /ferry up/);
  });

  test('a server that is not Ferry: a FerryError derived from the status', async () => {
    const fakeFetch = (async () => new Response('<html>nope</html>', { status: 404 })) as typeof fetch;
    const c = new ControlClient({ url: 'http://127.0.0.1:1', fetch: fakeFetch });
    await rejects(c.info(), 'FERRY_NOT_FOUND', /404/);
  });
});

describe('followLogs', { timeout: 20_000 }, () => {
  let s: Server;
  before(async () => {
    s = await serve();
    await s.admin.createModel('iris');
    await s.admin.addVersion('iris', { version: '1', image: PINNED });
    await s.admin.deploy({ name: 'web', model: 'iris', version: '1' });
  });
  after(() => s.close());

  test('delivers lines as they come and ends on client abort; the server-side signal fires', async () => {
    const client = new AbortController();
    const iterator = s.admin.followLogs('web', { tail: 0 }, client.signal)[Symbol.asyncIterator]();
    const first = iterator.next();
    await s.control.followerStarted(1);
    const serverSignal = s.control.followSignals[0] as AbortSignal;
    assert.deepEqual(s.control.calls.at(-1), { method: 'followLogs', args: ['web', { tail: 0 }] });

    // Each line arrives before the next one is even produced: nothing waits for a buffer to fill.
    for (const n of [1, 2, 3]) {
      const pending = n === 1 ? first : iterator.next();
      s.control.emit(line(n));
      const got = await pending;
      assert.equal(got.done, false);
      assert.deepEqual(got.value, line(n));
    }

    assert.equal(serverSignal.aborted, false);
    const waiting = iterator.next();
    client.abort();
    assert.deepEqual(await waiting, { done: true, value: undefined });
    if (!serverSignal.aborted) {
      await new Promise((resolve) => serverSignal.addEventListener('abort', resolve, { once: true }));
    }
    assert.equal(serverSignal.aborted, true);
  });

  test('breaking out of the loop also closes the stream on the server', async () => {
    const seen: string[] = [];
    const consumer = (async () => {
      for await (const l of s.admin.followLogs('web', {})) {
        seen.push(l.line);
        if (seen.length === 2) break;
      }
    })();
    await s.control.followerStarted(2);
    const serverSignal = s.control.followSignals[1] as AbortSignal;
    s.control.emit(line(1));
    s.control.emit(line(2));
    await consumer;
    assert.deepEqual(seen, ['l1', 'l2']);
    if (!serverSignal.aborted) {
      await new Promise((resolve) => serverSignal.addEventListener('abort', resolve, { once: true }));
    }
    assert.equal(serverSignal.aborted, true);
  });

  test('an unknown deployment is a 404 before any stream', async () => {
    const lines = s.admin.followLogs('ghost', {}, new AbortController().signal);
    await rejects(
      (async () => {
        for await (const _ of lines) assert.fail('no lines');
      })(),
      'FERRY_NOT_FOUND',
      /ghost/,
    );
  });

  test('a failure after the stream started reaches the client as its FerryError', async () => {
    const original = s.control.followLogs;
    s.control.followLogs = async function* () {
      yield line(7);
      throw new FerryError('FERRY_ENGINE_FAILED', 'the engine went away', { hint: 'Restart docker.' });
    };
    try {
      const seen: string[] = [];
      const error = await rejects(
        (async () => {
          for await (const l of s.admin.followLogs('web', {})) seen.push(l.line);
        })(),
        'FERRY_ENGINE_FAILED',
        /engine went away/,
      );
      assert.equal(error.hint, 'Restart docker.');
      assert.deepEqual(seen, ['l7']);
    } finally {
      s.control.followLogs = original;
    }
  });
});

test('the follow stream sends heartbeat newlines while no line comes', { timeout: 20_000 }, async () => {
  const s = await serve(5);
  try {
    await s.admin.createModel('iris');
    await s.admin.addVersion('iris', { version: '1', image: PINNED });
    await s.admin.deploy({ name: 'web', model: 'iris', version: '1' });
    const token = s.store.createToken('raw', 'viewer').token;
    const abort = new AbortController();
    const response = await fetch(`${s.url}/v1/deployments/web/logs?follow=true`, {
      headers: { authorization: `Bearer ${token}` },
      signal: abort.signal,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/x-ndjson/);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const chunk = await reader.read();
    assert.match(new TextDecoder().decode(chunk.value), /^\n+$/);
    abort.abort();
    await reader.cancel().catch(() => {});
  } finally {
    await s.close();
  }
});

test('audit: an admin lists and verifies the log over HTTP; the source is the client address', async () => {
  const s = await serve();
  try {
    await s.admin.createModel('iris');
    const deployer = new ControlClient({ url: s.url, token: s.store.createToken('ci', 'deployer').token });
    await rejects(deployer.listAudit(), 'FERRY_FORBIDDEN', /read the audit log/);
    await rejects(deployer.verifyAudit(), 'FERRY_FORBIDDEN');
    const records = await s.admin.listAudit({ limit: 10 });
    assert.deepEqual(
      records.map((r) => [r.seq, r.actor, r.action, r.object, r.outcome]),
      [
        [3, 'ci', 'verifyAudit', 'audit/verify', 'denied'],
        [2, 'ci', 'listAudit', 'audit', 'denied'],
        [1, 'root', 'createModel', 'models/iris', 'allowed'],
      ],
    );
    assert.equal(records[2]?.source, '127.0.0.1');
    assert.deepEqual(
      (await s.admin.listAudit({ actor: 'ci', after: 2 })).map((r) => r.seq),
      [3],
    );
    const check = await s.admin.verifyAudit();
    assert.equal(check.ok, true);
    assert.deepEqual(check.head, { seq: 3, hash: records[0]!.hash });
    assert.equal((await s.admin.verifyAudit(records[1]!.hash)).ok, false, 'the log goes on past that head');
  } finally {
    await s.close();
  }
});
