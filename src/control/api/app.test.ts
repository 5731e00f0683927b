import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { z } from 'zod';
import type { DiscoveryTable } from '../../core/route-table.ts';
import { prepareArtifact } from '../../image/artifact.ts';
import { ArtifactStore } from '../artifacts.ts';
import { GatewayLoads } from '../gateway-load.ts';
import { ControlMetrics } from '../metrics.ts';
import { RouteFile } from '../route-file.ts';
import type {
  CreatedToken,
  EventRecord,
  ModelRecord,
  ModelVersion,
  StoredRevision,
  TokenRecord,
  TrafficEntry,
} from '../store/store.ts';
import { openStore, type Store } from '../store/store.ts';
import type { AddVersionRequest } from '../versions.ts';
import type {
  DeploymentView,
  DescribeView,
  LogLine,
  ReplicaView,
  RolloutView,
  StrategyInput,
} from '../views.ts';
import { buildControlApi, type ControlApiOptions } from './app.ts';
import { openApiPath } from './openapi.ts';
import { ROUTES } from './routes.ts';
import type * as S from './schemas.ts';
import { type RecordingControl, recordingControl } from './testing.ts';

const IRIS = join(import.meta.dirname, '..', '..', '..', 'examples', 'iris');
const INFO = { version: '9.9.9', runtime: 'process' as const, gatewayUrl: 'http://127.0.0.1:8080' };

interface Env {
  app: FastifyInstance;
  store: Store;
  control: RecordingControl;
  logs: string[];
  admin: string;
  deployer: string;
  viewer: string;
  close(): Promise<void>;
}

async function setup(extra: Pick<ControlApiOptions, 'gatewayRoutes' | 'gatewayLoad'> = {}): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-api-'));
  const store = openStore(join(dir, 'state.db'));
  const control = recordingControl(store, INFO.gatewayUrl);
  const logs: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => logs.push(line) });
  const artifacts = new ArtifactStore(join(dir, 'artifacts'));
  const app = buildControlApi({
    store,
    control,
    info: INFO,
    logger,
    versions: { store, artifacts },
    ...extra,
  });
  await app.ready();
  return {
    app,
    store,
    control,
    logs,
    admin: store.createToken('root', 'admin').token,
    deployer: store.createToken('ci', 'deployer').token,
    viewer: store.createToken('look', 'viewer').token,
    async close() {
      await app.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test answers are inspected field by field
  body: any;
  headers: Record<string, unknown>;
}

const routeFor = (method: string, url: string) => {
  const path = url.split('?')[0] as string;
  return ROUTES.find(
    (r) => r.method === method && new RegExp(`^${r.url.replace(/:[^/]+/g, '[^/]+')}$`).test(path),
  );
};

/** Injects a request; a 2xx JSON answer is also checked against the route's documented response schema. */
async function call(
  env: Env,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  token?: string,
  body?: unknown,
): Promise<Answer> {
  const res = await env.app.inject({
    method,
    url,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });
  const parsed = res.body === '' ? undefined : JSON.parse(res.body);
  const route = routeFor(method, url);
  if (res.statusCode < 300 && route?.response && parsed !== undefined) {
    const schema = route.response.many ? z.array(route.response.schema) : route.response.schema;
    const check = schema.safeParse(parsed);
    assert.ok(check.success, `${method} ${url}: answer does not match its schema: ${check.error?.message}`);
  }
  if (res.statusCode >= 400) {
    assert.equal(typeof parsed?.error, 'string', `${method} ${url}: error body has a message`);
    assert.match(parsed?.code, /^FERRY_/);
  }
  return { status: res.statusCode, body: parsed, headers: res.headers };
}

function assertError(answer: Answer, status: number, code: string, pattern?: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.code, code);
  if (pattern) assert.match(answer.body.error, pattern);
}

/** A pinned image reference whose digest depends on the name and version. */
function pinned(repo: string, version: string): string {
  return `${repo}@sha256:${createHash('sha256').update(`${repo}:${version}`).digest('hex')}`;
}

async function seedModel(env: Env, name = 'iris', versions = ['1', '2']): Promise<void> {
  assert.equal((await call(env, 'POST', '/v1/models', env.deployer, { name })).status, 201);
  for (const version of versions) {
    const r = await call(env, 'POST', `/v1/models/${name}/versions`, env.deployer, {
      version,
      image: pinned(`reg/${name}`, version),
    });
    assert.equal(r.status, 201);
  }
}

async function seedDeployment(env: Env, name = 'web'): Promise<void> {
  await seedModel(env);
  const r = await call(env, 'POST', '/v1/deployments', env.deployer, { name, model: 'iris', version: '1' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

describe('auth', () => {
  let env: Env;
  before(async () => {
    env = await setup();
  });
  after(() => env.close());

  test('public routes need no token', async () => {
    const health = await call(env, 'GET', '/healthz');
    assert.deepEqual(health.body, { ok: true, version: '9.9.9' });
    assert.equal((await call(env, 'GET', '/openapi.json')).status, 200);
  });

  test('no token, a bad token or a non-bearer header: 401 with WWW-Authenticate', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer ferry_0123456789abcdef_nope' },
      { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      { authorization: 'Bearer' },
    ]) {
      const res = await env.app.inject({ method: 'GET', url: '/v1/info', headers });
      assert.equal(res.statusCode, 401, JSON.stringify(headers));
      assert.equal(res.json().code, 'FERRY_UNAUTHORIZED');
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    }
  });

  test('401 comes before validation and routing of the body', async () => {
    const r = await call(env, 'POST', '/v1/deployments', undefined, { nonsense: true });
    assertError(r, 401, 'FERRY_UNAUTHORIZED');
  });

  test('a viewer may read but not write; 403 says which role is needed', async () => {
    assert.deepEqual((await call(env, 'GET', '/v1/info', env.viewer)).body, INFO);
    assert.equal((await call(env, 'GET', '/v1/models', env.viewer)).status, 200);
    const r = await call(env, 'POST', '/v1/models', env.viewer, { name: 'x' });
    assertError(r, 403, 'FERRY_FORBIDDEN', /"look".*viewer/);
    assert.match(r.body.hint, /deployer|admin/);
    assertError(await call(env, 'DELETE', '/v1/deployments/x', env.viewer), 403, 'FERRY_FORBIDDEN');
    assert.equal(env.control.calls.length, 0);
  });

  test('only an admin manages tokens', async () => {
    assertError(await call(env, 'GET', '/v1/tokens', env.deployer), 403, 'FERRY_FORBIDDEN');
    assertError(await call(env, 'GET', '/v1/tokens', env.viewer), 403, 'FERRY_FORBIDDEN');
    assertError(
      await call(env, 'POST', '/v1/tokens', env.deployer, { name: 'x', role: 'admin' }),
      403,
      'FERRY_FORBIDDEN',
    );

    const created = await call(env, 'POST', '/v1/tokens', env.admin, { name: 'bot', role: 'viewer' });
    assert.equal(created.status, 201);
    assert.equal(created.headers['cache-control'], 'no-store');
    assert.match(created.body.token, /^ferry_/);
    assert.equal(created.body.role, 'viewer');
    assert.equal((await call(env, 'GET', '/v1/info', created.body.token)).status, 200);

    const list = await call(env, 'GET', '/v1/tokens', env.admin);
    assert.deepEqual(list.body.map((t: { name: string }) => t.name).sort(), ['bot', 'ci', 'look', 'root']);
    assert.ok(!JSON.stringify(list.body).includes(created.body.token), 'listing never shows tokens');

    assertError(
      await call(env, 'POST', '/v1/tokens', env.admin, { name: 'bot', role: 'viewer' }),
      409,
      'FERRY_CONFLICT',
    );
    const badRole = await call(env, 'POST', '/v1/tokens', env.admin, { name: 'x', role: 'root' });
    assertError(badRole, 400, 'FERRY_BAD_REQUEST', /role/);
    assert.deepEqual(
      badRole.body.details.map((d: { path: string }) => d.path),
      ['role'],
    );

    assert.equal((await call(env, 'DELETE', '/v1/tokens/bot', env.admin)).status, 204);
    assertError(await call(env, 'GET', '/v1/info', created.body.token), 401, 'FERRY_UNAUTHORIZED');
    assertError(await call(env, 'DELETE', '/v1/tokens/bot', env.admin), 404, 'FERRY_NOT_FOUND', /bot/);
  });

  test('an invoker token (data plane only) may do nothing here', async () => {
    const invoker = env.store.createToken('caller', 'invoker').token;
    assertError(await call(env, 'GET', '/v1/info', invoker), 403, 'FERRY_FORBIDDEN', /invoker/);
  });
});

describe('models', () => {
  let env: Env;
  before(async () => {
    env = await setup();
  });
  after(() => env.close());

  test('create, list, get, add versions, aliases', async () => {
    assert.deepEqual((await call(env, 'GET', '/v1/models', env.viewer)).body, []);
    const created = await call(env, 'POST', '/v1/models', env.deployer, { name: 'iris' });
    assert.equal(created.status, 201);
    assert.equal(created.body.name, 'iris');
    const v = await call(env, 'POST', '/v1/models/iris/versions', env.deployer, {
      version: '1.0',
      image: pinned('reg/iris', '1.0'),
      metadata: { accuracy: 0.97, tags: ['a'] },
    });
    assert.equal(v.status, 201);
    assert.deepEqual(v.body.metadata, { accuracy: 0.97, tags: ['a'] });
    await call(env, 'POST', '/v1/models/iris/versions', env.deployer, {
      version: '2.0',
      image: pinned('reg/iris', '2.0'),
    });

    const alias = await call(env, 'PUT', '/v1/models/iris/aliases/stable', env.deployer, { version: '1.0' });
    assert.equal(alias.status, 200);
    assert.deepEqual(alias.body, { model: 'iris', alias: 'stable', version: '1.0', updated: [] });
    assert.deepEqual(env.control.calls.at(-1), { method: 'setAlias', args: ['iris', 'stable', '1.0'] });

    const got = await call(env, 'GET', '/v1/models/iris', env.viewer);
    assert.deepEqual(got.body.aliases, { stable: '1.0' });
    assert.deepEqual(
      got.body.versions.map((x: { version: string }) => x.version),
      ['1.0', '2.0'],
    );
    assert.equal((await call(env, 'GET', '/v1/models', env.viewer)).body.length, 1);
  });

  test('errors: duplicate, unknown model, bad names, missing image, strict bodies', async () => {
    assertError(await call(env, 'POST', '/v1/models', env.deployer, { name: 'iris' }), 409, 'FERRY_CONFLICT');
    assertError(await call(env, 'GET', '/v1/models/nope', env.viewer), 404, 'FERRY_MODEL_NOT_FOUND', /nope/);
    assertError(
      await call(env, 'POST', '/v1/models/nope/versions', env.deployer, { version: '1', image: 'x' }),
      404,
      'FERRY_MODEL_NOT_FOUND',
    );
    const badName = await call(env, 'POST', '/v1/models', env.deployer, { name: 'Iris_Model' });
    assertError(badName, 400, 'FERRY_BAD_REQUEST', /name/);
    assert.equal(badName.body.details[0].path, 'name');

    const noSource = await call(env, 'POST', '/v1/models/iris/versions', env.deployer, { version: '3' });
    assertError(noSource, 400, 'FERRY_BAD_REQUEST', /needs an image or an artifact/);
    const tag = await call(env, 'POST', '/v1/models/iris/versions', env.deployer, {
      version: '3',
      image: 'reg/iris:3',
    });
    assertError(tag, 400, 'FERRY_BAD_REQUEST', /reg\/iris:3 is not pinned by digest/);
    const path = await call(env, 'POST', '/v1/models/iris/versions', env.deployer, {
      version: '3',
      artifactDir: '/etc',
    });
    assertError(path, 400, 'FERRY_BAD_REQUEST', /artifactDir: unknown field/);
    const unknownArtifact = await call(env, 'POST', '/v1/models/iris/versions', env.deployer, {
      version: '3',
      artifact: `sha256:${'a'.repeat(64)}`,
    });
    assertError(unknownArtifact, 404, 'FERRY_NOT_FOUND', /No artifact sha256:a{64}/);

    const typo = await call(env, 'POST', '/v1/models/iris/versions', env.deployer, {
      version: '3',
      imag: 'x',
    });
    assertError(typo, 400, 'FERRY_BAD_REQUEST', /imag: unknown field/);
    assert.deepEqual(typo.body.details, [{ path: 'imag', message: 'unknown field' }]);
    assert.match(typo.body.hint, /version, image, artifact, metadata/);

    assertError(
      await call(env, 'PUT', '/v1/models/iris/aliases/stable', env.deployer, { version: '9' }),
      404,
      'FERRY_VERSION_NOT_FOUND',
    );
    const missing = await call(env, 'PUT', '/v1/models/iris/aliases/stable', env.deployer, {});
    assertError(missing, 400, 'FERRY_BAD_REQUEST', /version/);
    assert.equal(missing.body.details[0].path, 'version');
  });
});

describe('artifacts', () => {
  let env: Env;
  before(async () => {
    env = await setup();
  });
  after(() => env.close());

  const put = (digest: string, payload: Buffer, token = env.deployer, type = 'application/x-tar') =>
    env.app.inject({
      method: 'PUT',
      url: `/v1/artifacts/${digest}`,
      headers: { authorization: `Bearer ${token}`, 'content-type': type },
      payload,
    });

  test('an uploaded directory becomes a version that pins it, with what its ferry.yaml says', async () => {
    const prepared = await prepareArtifact(IRIS);
    try {
      const chunks: Uint8Array[] = [];
      for await (const c of prepared.stream()) chunks.push(c);
      const tar = Buffer.concat(chunks);
      assert.equal((await call(env, 'GET', `/v1/artifacts/${prepared.digest}`, env.viewer)).status, 404);
      assertError(
        {
          status: (await put(prepared.digest, tar, env.viewer)).statusCode,
          body: (await put(prepared.digest, tar, env.viewer)).json(),
          headers: {},
        },
        403,
        'FERRY_FORBIDDEN',
      );
      const wrongType = await put(prepared.digest, tar, env.deployer, 'text/plain');
      assert.equal(wrongType.statusCode, 415, wrongType.body);
      const up = await put(prepared.digest, tar);
      assert.equal(up.statusCode, 201, up.body);
      assert.deepEqual(up.json(), {
        digest: prepared.digest,
        files: prepared.files,
        bytes: tar.length,
        created: true,
      });
      assert.equal((await call(env, 'GET', `/v1/artifacts/${prepared.digest}`, env.viewer)).status, 200);

      await call(env, 'POST', '/v1/models', env.deployer, { name: 'flowers' });
      const v = await call(env, 'POST', '/v1/models/flowers/versions', env.deployer, {
        version: 'a1',
        artifact: prepared.digest,
      });
      assert.equal(v.status, 201, JSON.stringify(v.body));
      assert.equal(v.body.artifact, prepared.digest);
      assert.match(v.body.artifactDir, /sha256[/][0-9a-f]{64}$/);
      // What iris's ferry.yaml says: it serves the name "iris", whatever the model is called here.
      assert.equal(v.body.spec.servedName, 'iris');
      assert.equal(v.body.spec.modelVersion, '1');
      assert.deepEqual(v.body.spec.resources, { cpu: null, memoryBytes: null, gpu: 0 });
    } finally {
      await prepared.cleanup();
    }
  });

  test('a tampered upload is refused naming the digests', async () => {
    const wrong = await put(`sha256:${'b'.repeat(64)}`, Buffer.alloc(1024));
    assert.equal(wrong.statusCode, 400);
    assert.equal(wrong.json().code, 'FERRY_BAD_REQUEST');
    const bad = await call(env, 'GET', '/v1/artifacts/sha256:nothex', env.viewer);
    assertError(bad, 400, 'FERRY_BAD_REQUEST', /digest/);
  });
});

describe('deployments', () => {
  let env: Env;
  before(async () => {
    env = await setup();
    await seedDeployment(env, 'web');
  });
  after(() => env.close());

  test('deploy: 201 with the view, replicas default to 1, version becomes versionRef', async () => {
    const deploy = env.control.calls.find((c) => c.method === 'deploy');
    assert.deepEqual(deploy?.args, [{ name: 'web', model: 'iris', versionRef: '1' }]);
    const r = await call(env, 'POST', '/v1/deployments', env.admin, {
      name: 'canary',
      model: 'iris',
      version: '2',
      replicas: 3,
      resources: { cpu: 0.5, memoryBytes: 1_000_000 },
      env: { LOG_LEVEL: 'debug' },
      secretRefs: ['db-password'],
      serving: { batching: { maxBatchSize: 8 } },
      strategy: { kind: 'canary', steps: [{ percent: 10, pauseMs: 1000 }, { percent: 50 }] },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.replicas, 3);
    assert.equal(r.body.versionRef, '2');
    assert.deepEqual(r.body.strategy, {
      kind: 'canary',
      steps: [{ percent: 10, pauseMs: 1000 }, { percent: 50 }],
    });
    assert.deepEqual(r.body.traffic, [{ revision: 1, percent: 100 }]);
    assert.equal(r.body.endpoint, 'http://127.0.0.1:8080/v2/models/canary/infer');
    const list = await call(env, 'GET', '/v1/deployments', env.viewer);
    assert.deepEqual(
      list.body.map((d: { name: string }) => d.name),
      ['canary', 'web'],
    );
  });

  test('deploy errors: duplicate, unknown model or version, strict nested validation', async () => {
    assertError(
      await call(env, 'POST', '/v1/deployments', env.deployer, { name: 'web', model: 'iris', version: '1' }),
      409,
      'FERRY_CONFLICT',
    );
    assertError(
      await call(env, 'POST', '/v1/deployments', env.deployer, { name: 'x', model: 'nope', version: '1' }),
      404,
      'FERRY_MODEL_NOT_FOUND',
    );
    assertError(
      await call(env, 'POST', '/v1/deployments', env.deployer, { name: 'x', model: 'iris', version: '7' }),
      404,
      'FERRY_VERSION_NOT_FOUND',
    );
    const deploysBefore = env.control.calls.filter((c) => c.method === 'deploy').length;
    const bad = await call(env, 'POST', '/v1/deployments', env.deployer, {
      name: 'x',
      model: 'iris',
      version: '1',
      replica: 2,
      resources: { cpu: -1, disk: 3 },
      env: { 'bad-key': 'v' },
      strategy: { kind: 'canary', steps: [{ percent: 150 }] },
    });
    assertError(bad, 400, 'FERRY_BAD_REQUEST');
    const paths = bad.body.details.map((d: { path: string }) => d.path).sort();
    assert.deepEqual(paths, [
      'env.bad-key',
      'replica',
      'resources.cpu',
      'resources.disk',
      'strategy.steps[0].percent',
    ]);
    for (const p of ['replica', 'resources.cpu', 'resources.disk', 'strategy.steps[0].percent']) {
      assert.ok(bad.body.error.includes(p), `message names ${p}: ${bad.body.error}`);
    }
    const noBody = await env.app.inject({
      method: 'POST',
      url: '/v1/deployments',
      headers: { authorization: `Bearer ${env.deployer}` },
    });
    assert.equal(noBody.statusCode, 400);
    assert.equal(noBody.json().code, 'FERRY_BAD_REQUEST');
    assert.equal(
      env.control.calls.filter((c) => c.method === 'deploy').length,
      deploysBefore,
      'invalid bodies never reach the controller',
    );
  });

  test('get: view, revisions and the last 20 events', async () => {
    for (let i = 0; i < 25; i++) {
      env.store.addEvent({ deployment: 'web', type: 'Normal', reason: 'Tick', message: `n${i}`, at: i });
    }
    env.store.addEvent({ deployment: 'canary', type: 'Warning', reason: 'Other', message: 'x', at: 99 });
    const r = await call(env, 'GET', '/v1/deployments/web', env.viewer);
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'web');
    assert.equal(r.body.revisions.length, 1);
    assert.equal(r.body.events.length, 20);
    assert.equal(r.body.events[0].message, 'n24');
    assert.ok(r.body.events.every((e: { deployment: string }) => e.deployment === 'web'));
    assertError(await call(env, 'GET', '/v1/deployments/nope', env.viewer), 404, 'FERRY_NOT_FOUND', /nope/);
  });

  test('events: filtered by deployment, limited', async () => {
    const r = await call(env, 'GET', '/v1/events?deployment=web&limit=3', env.viewer);
    assert.deepEqual(
      r.body.map((e: { message: string }) => e.message),
      ['n24', 'n23', 'n22'],
    );
    assert.equal((await call(env, 'GET', '/v1/events?limit=1', env.viewer)).body[0].message, 'x');
    const bad = await call(env, 'GET', '/v1/events?limit=0', env.viewer);
    assertError(bad, 400, 'FERRY_BAD_REQUEST', /limit/);
    const typo = await call(env, 'GET', '/v1/events?limt=3', env.viewer);
    assertError(typo, 400, 'FERRY_BAD_REQUEST', /limt: unknown field/);
    assert.match(typo.body.hint, /deployment, limit/);
  });

  test('patch makes a new revision; unknown deployment 404; name cannot change', async () => {
    const r = await call(env, 'PATCH', '/v1/deployments/web', env.deployer, {
      version: '2',
      env: { A: '1' },
      strategy: { kind: 'rolling', maxSurge: 2 },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.revision, 2);
    assert.deepEqual(r.body.strategy, { kind: 'rolling', maxSurge: 2 });
    assert.deepEqual(env.control.calls.at(-1), {
      method: 'update',
      args: ['web', { env: { A: '1' }, versionRef: '2', strategy: { kind: 'rolling', maxSurge: 2 } }],
    });
    const revisions = await call(env, 'GET', '/v1/deployments/web/revisions', env.viewer);
    assert.deepEqual(
      revisions.body.map((x: { number: number; spec: { version: string } }) => [x.number, x.spec.version]),
      [
        [1, '1'],
        [2, '2'],
      ],
    );
    assertError(
      await call(env, 'PATCH', '/v1/deployments/nope', env.deployer, { replicas: 2 }),
      404,
      'FERRY_NOT_FOUND',
    );
    const rename = await call(env, 'PATCH', '/v1/deployments/web', env.deployer, { name: 'other' });
    assertError(rename, 400, 'FERRY_BAD_REQUEST', /name: unknown field/);
    assertError(await call(env, 'GET', '/v1/deployments/nope/revisions', env.viewer), 404, 'FERRY_NOT_FOUND');
  });

  test('scale and replicas', async () => {
    const r = await call(env, 'PUT', '/v1/deployments/web/replicas', env.deployer, { replicas: 4 });
    assert.equal(r.body.replicas, 4);
    assert.deepEqual(env.control.calls.at(-1), { method: 'scale', args: ['web', 4] });
    const bad = await call(env, 'PUT', '/v1/deployments/web/replicas', env.deployer, { replicas: -1 });
    assertError(bad, 400, 'FERRY_BAD_REQUEST', /replicas/);
    assertError(
      await call(env, 'PUT', '/v1/deployments/web/replicas', env.deployer, { replicas: '2' }),
      400,
      'FERRY_BAD_REQUEST',
      /replicas/,
    );
    assertError(
      await call(env, 'PUT', '/v1/deployments/nope/replicas', env.deployer, { replicas: 1 }),
      404,
      'FERRY_NOT_FOUND',
    );
    env.control.replicas.set('web', [
      {
        id: 'c1',
        name: 'web-2-0',
        revision: 2,
        index: 0,
        state: 'ready',
        url: 'http://127.0.0.1:9000',
        startedAt: 1,
        restarts: 0,
      },
    ]);
    const replicas = await call(env, 'GET', '/v1/deployments/web/replicas', env.viewer);
    assert.deepEqual(
      replicas.body.map((x: { id: string }) => x.id),
      ['c1'],
    );
    assertError(await call(env, 'GET', '/v1/deployments/nope/replicas', env.viewer), 404, 'FERRY_NOT_FOUND');
  });

  test('traffic: get, set, errors from the store, conflict during a rollout', async () => {
    assert.deepEqual((await call(env, 'GET', '/v1/deployments/web/traffic', env.viewer)).body, {
      traffic: [{ revision: 1, percent: 100 }],
    });
    const set = await call(env, 'PUT', '/v1/deployments/web/traffic', env.deployer, {
      traffic: [
        { revision: 1, percent: 90 },
        { revision: 2, percent: 10, shadow: 50 },
      ],
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.traffic, [
      { revision: 1, percent: 90 },
      { revision: 2, percent: 10, shadow: 50 },
    ]);
    const sum = await call(env, 'PUT', '/v1/deployments/web/traffic', env.deployer, {
      traffic: [{ revision: 1, percent: 90 }],
    });
    assertError(sum, 400, 'FERRY_BAD_REQUEST', /sum to 90/);
    const field = await call(env, 'PUT', '/v1/deployments/web/traffic', env.deployer, {
      traffic: [{ revision: 1, percent: 100, weight: 1 }],
    });
    assertError(field, 400, 'FERRY_BAD_REQUEST', /traffic\[0\]\.weight: unknown field/);
    assertError(
      await call(env, 'PUT', '/v1/deployments/web/traffic', env.deployer, { traffic: [] }),
      400,
      'FERRY_BAD_REQUEST',
      /traffic/,
    );
    assertError(await call(env, 'GET', '/v1/deployments/nope/traffic', env.viewer), 404, 'FERRY_NOT_FOUND');
  });

  test('rollout: none, undo, promote, abort, conflicts', async () => {
    assert.deepEqual((await call(env, 'GET', '/v1/deployments/web/rollout', env.viewer)).body, {
      rollout: null,
    });
    assertError(
      await call(env, 'POST', '/v1/deployments/web/rollout/promote', env.deployer),
      409,
      'FERRY_CONFLICT',
    );
    const undo = await call(env, 'POST', '/v1/deployments/web/rollout/undo', env.deployer);
    assert.equal(undo.status, 200, JSON.stringify(undo.body));
    assert.deepEqual([undo.body.from, undo.body.to], [2, 1]);
    const undoTo = await call(env, 'POST', '/v1/deployments/web/rollout/undo', env.deployer, { revision: 2 });
    assert.equal(undoTo.body.to, 2);
    assert.deepEqual(env.control.calls.at(-1), { method: 'undo', args: ['web', 2] });
    assertError(
      await call(env, 'POST', '/v1/deployments/web/rollout/undo', env.deployer, { revision: 0 }),
      400,
      'FERRY_BAD_REQUEST',
      /revision/,
    );
    assertError(
      await call(env, 'POST', '/v1/deployments/web/rollout/undo', env.deployer, { revision: 9 }),
      404,
      'FERRY_NOT_FOUND',
    );
    assert.equal((await call(env, 'GET', '/v1/deployments/web/rollout', env.viewer)).body.rollout.to, 2);
    assertError(
      await call(env, 'PUT', '/v1/deployments/web/traffic', env.deployer, {
        traffic: [{ revision: 1, percent: 100 }],
      }),
      409,
      'FERRY_CONFLICT',
      /rollout/,
    );
    const promote = await call(env, 'POST', '/v1/deployments/web/rollout/promote', env.deployer);
    assert.equal(promote.body.phase, 'progressing');
    const abort = await call(env, 'POST', '/v1/deployments/web/rollout/abort', env.deployer);
    assert.equal(abort.body.phase, 'aborting');
    const withBody = await call(env, 'POST', '/v1/deployments/web/rollout/abort', env.deployer, {
      now: true,
    });
    assertError(withBody, 400, 'FERRY_BAD_REQUEST', /takes no body/);
    assertError(
      await call(env, 'POST', '/v1/deployments/nope/rollout/abort', env.deployer),
      404,
      'FERRY_NOT_FOUND',
    );
  });

  test('logs: JSON array with revision and tail; bad queries name the parameter', async () => {
    const line = (n: number, revision: number): LogLine => ({
      at: n,
      replica: 'web-1-0',
      revision,
      stream: 'stdout',
      line: `line ${n}`,
    });
    env.control.lines.push(line(1, 1), line(2, 2), line(3, 1), line(4, 1));
    const r = await call(env, 'GET', '/v1/deployments/web/logs?revision=1&tail=2', env.viewer);
    assert.deepEqual(
      r.body.map((l: LogLine) => l.line),
      ['line 3', 'line 4'],
    );
    assert.deepEqual(env.control.calls.at(-1), { method: 'logs', args: ['web', { revision: 1, tail: 2 }] });
    assert.equal((await call(env, 'GET', '/v1/deployments/web/logs', env.viewer)).body.length, 4);
    assertError(
      await call(env, 'GET', '/v1/deployments/web/logs?tail=abc', env.viewer),
      400,
      'FERRY_BAD_REQUEST',
      /tail/,
    );
    assertError(
      await call(env, 'GET', '/v1/deployments/web/logs?follow=yes', env.viewer),
      400,
      'FERRY_BAD_REQUEST',
      /follow/,
    );
    assertError(await call(env, 'GET', '/v1/deployments/nope/logs', env.viewer), 404, 'FERRY_NOT_FOUND');
    assertError(
      await call(env, 'GET', '/v1/deployments/nope/logs?follow=true', env.viewer),
      404,
      'FERRY_NOT_FOUND',
    );
  });

  test('delete: 204, then gone', async () => {
    const r = await call(env, 'DELETE', '/v1/deployments/canary', env.deployer);
    assert.equal(r.status, 204);
    assert.equal(r.body, undefined);
    assertError(await call(env, 'GET', '/v1/deployments/canary', env.viewer), 404, 'FERRY_NOT_FOUND');
    assertError(await call(env, 'DELETE', '/v1/deployments/canary', env.deployer), 404, 'FERRY_NOT_FOUND');
  });
});

describe('framework errors', () => {
  let env: Env;
  before(async () => {
    env = await setup();
  });
  after(() => env.close());

  test('unknown route: 404 FERRY_ROUTE_NOT_FOUND as JSON', async () => {
    assertError(await call(env, 'GET', '/v1/nope', env.viewer), 404, 'FERRY_ROUTE_NOT_FOUND', /\/v1\/nope/);
    assertError(await call(env, 'POST', '/v1/info', env.admin), 404, 'FERRY_ROUTE_NOT_FOUND');
    assertError(await call(env, 'GET', '/'), 404, 'FERRY_ROUTE_NOT_FOUND');
  });

  test('bad JSON: 400; wrong content type: 415', async () => {
    const headers = { authorization: `Bearer ${env.admin}`, 'content-type': 'application/json' };
    const bad = await env.app.inject({ method: 'POST', url: '/v1/models', headers, payload: '{"name":' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().code, 'FERRY_BAD_REQUEST');
    const text = await env.app.inject({
      method: 'POST',
      url: '/v1/models',
      headers: { ...headers, 'content-type': 'application/xml' },
      payload: '<name>x</name>',
    });
    assert.equal(text.statusCode, 415);
    assert.equal(text.json().code, 'FERRY_UNSUPPORTED_MEDIA_TYPE');
    const plain = await env.app.inject({
      method: 'POST',
      url: '/v1/models',
      headers: { ...headers, 'content-type': 'text/plain' },
      payload: 'x',
    });
    assert.equal(plain.statusCode, 400);
    assert.match(plain.json().error, /expected object/);
  });

  test('an untyped throw from the controller is a 500 FERRY_INTERNAL with a JSON body', async () => {
    const original = env.control.list;
    env.control.list = () => {
      throw new Error('boom');
    };
    try {
      const answer = await call(env, 'GET', '/v1/deployments', env.viewer);
      assertError(answer, 500, 'FERRY_INTERNAL', /Internal error/);
      assert.ok(!JSON.stringify(answer.body).includes('boom'), 'the cause stays in the log');
      assert.ok(!JSON.stringify(answer.body).includes('at '), 'no stack');
    } finally {
      env.control.list = original;
    }
  });
});

describe('openapi', () => {
  test('documents every route Fastify registered, with params, bodies, responses and bearer auth', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-api-'));
    const store = openStore(join(dir, 'state.db'));
    const app = buildControlApi({ store, control: recordingControl(store), info: INFO });
    const registered: string[] = [];
    app.addHook('onRoute', (r) => {
      for (const m of [r.method].flat()) registered.push(`${m} ${openApiPath(r.url)}`);
    });
    await app.ready();
    try {
      const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
      assert.equal(doc.openapi, '3.1.0');
      const documented: string[] = [];
      for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
        for (const method of Object.keys(ops)) documented.push(`${method.toUpperCase()} ${path}`);
      }
      assert.equal(registered.length, 51, `routes seen: ${registered.join(', ')}`);
      assert.deepEqual([...documented].sort(), [...registered].sort());

      assert.deepEqual(doc.components.securitySchemes.bearer, {
        type: 'http',
        scheme: 'bearer',
        description: 'A Ferry API token',
      });
      assert.deepEqual(doc.security, [{ bearer: [] }]);
      assert.deepEqual(doc.paths['/healthz'].get.security, []);
      assert.deepEqual(doc.paths['/openapi.json'].get.security, []);
      assert.equal(doc.paths['/v1/info'].get.security, undefined, 'private routes use the global scheme');

      interface Op {
        parameters: Array<{ name: string; in: string }>;
        responses: Record<string, unknown>;
        requestBody?: { content?: Record<string, { schema?: unknown }> };
      }
      for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Op>>)) {
        const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        for (const [method, op] of Object.entries(ops)) {
          const where = `${method} ${path}`;
          const pathParams = op.parameters.filter((p: { in: string }) => p.in === 'path');
          assert.deepEqual(
            pathParams.map((p: { name: string }) => p.name),
            names,
            `${where}: path parameters`,
          );
          assert.ok(
            Object.keys(op.responses).some((s) => /^2\d\d$/.test(s)),
            `${where}: success response`,
          );
          assert.ok(op.responses.default, `${where}: error response`);
          if (
            ['post', 'put', 'patch'].includes(method) &&
            !/(rollout\/(promote|abort)|rotate-key)$/.test(path)
          ) {
            const content = op.requestBody?.content ?? {};
            const raw = /\/artifacts\//.test(path) ? 'application/x-tar' : 'application/json';
            assert.ok(content[raw]?.schema, `${where}: body schema (${raw})`);
          }
        }
      }
      const deployBody = doc.components.schemas.DeployBody;
      assert.equal(deployBody.additionalProperties, false);
      assert.deepEqual(deployBody.required.sort(), ['model', 'name', 'version']);
      const logsQuery = doc.paths['/v1/deployments/{name}/logs'].get.parameters.map(
        (p: { name: string }) => p.name,
      );
      assert.deepEqual(logsQuery, ['name', 'revision', 'tail', 'follow']);
      assert.ok(
        doc.paths['/v1/deployments/{name}/logs'].get.responses['200'].content['application/x-ndjson'],
      );
      const stream = doc.paths['/v1/stream'].get;
      assert.deepEqual(stream['x-ferry-roles'], ['viewer', 'deployer', 'admin', 'platform-admin']);
      assert.deepEqual(stream.responses['200'].content, {
        'text/event-stream': { schema: { type: 'string' } },
      });
      assert.deepEqual(stream.responses['200']['x-ferry-events'].deployments.schema, {
        type: 'array',
        items: { $ref: '#/components/schemas/DeploymentView' },
      });
      assert.deepEqual(stream.responses['200']['x-ferry-events'].event.schema, {
        $ref: '#/components/schemas/Event',
      });

      // Every $ref resolves inside the document.
      const refs: string[] = [];
      const walk = (value: unknown): void => {
        if (Array.isArray(value)) value.forEach(walk);
        else if (value && typeof value === 'object') {
          for (const [k, v] of Object.entries(value)) {
            if (k === '$ref') refs.push(v as string);
            else walk(v);
          }
        }
      };
      walk(doc);
      assert.ok(refs.length > 40, `refs: ${refs.length}`);
      for (const ref of new Set(refs)) {
        assert.match(ref, /^#\//, ref);
        let node: unknown = doc;
        for (const part of ref.slice(2).split('/')) {
          node = (node as Record<string, unknown> | undefined)?.[
            part.replace(/~1/g, '/').replace(/~0/g, '~')
          ];
        }
        assert.ok(node && typeof node === 'object', `$ref ${ref} does not resolve`);
      }
      assert.ok(!JSON.stringify(doc).includes('"$defs"'), 'no local $defs (they would not resolve)');
    } finally {
      await app.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("GET /metrics: the control plane's metrics in Prometheus text, for metrics tokens and platform admins only; 404 without them", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-api-'));
  const store = openStore(join(dir, 'state.db'));
  const metrics = new ControlMetrics();
  const app = buildControlApi({ store, control: recordingControl(store), info: INFO, metrics });
  const bare = buildControlApi({ store, control: recordingControl(store), info: INFO });
  try {
    const platformAdmin = store.createToken('ops', 'platform-admin').token;
    const get = (a: FastifyInstance, token?: string) =>
      a.inject({
        method: 'GET',
        url: '/metrics',
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      });
    const ok = await get(app, platformAdmin);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.match(String(ok.headers['content-type']), /^text\/plain/);
    assert.match(ok.body, /# TYPE ferry_cold_start_seconds histogram/);
    const prometheus = await get(app, store.createToken('prom', 'metrics').token);
    assert.equal(prometheus.statusCode, 200, prometheus.body);
    assert.equal((await get(app)).statusCode, 401);
    for (const role of ['admin', 'deployer', 'viewer', 'gateway', 'invoker'])
      assert.equal((await get(app, store.createToken(`t-${role}`, role).token)).statusCode, 403, role);
    const none = await get(bare, platformAdmin);
    assert.equal(none.statusCode, 404);
    assert.equal(none.json().code, 'FERRY_ROUTE_NOT_FOUND');
  } finally {
    await app.close();
    await bare.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('Prometheus: GET /v1/prometheus/targets (http_sd) and GET /v1/replicas/{replica}/metrics', () => {
  let env: Env;
  let metricsToken: string;
  let platformAdmin: string;
  let dir: string;
  let replicaServer: Server;
  const REPLICA_BODY = '# TYPE ferry_model_ready gauge\nferry_model_ready{model="iris",version="1"} 1\n';
  const replica = (over: Partial<ReplicaView>): ReplicaView => ({
    id: 'c1',
    name: 'ferry-web-r1-0-aaaa',
    revision: 1,
    index: 0,
    state: 'ready',
    url: 'unix:/nowhere/ferry.sock',
    startedAt: 1,
    restarts: 0,
    ...over,
  });
  before(async () => {
    env = await setup();
    await seedDeployment(env);
    metricsToken = env.store.createToken('prom', 'metrics').token;
    platformAdmin = env.store.createToken('ops', 'platform-admin').token;
    // A replica as the runtime makes them: a server on a unix socket; /metrics answers, anything else 404.
    dir = mkdtempSync(join(tmpdir(), 'ferry-replica-'));
    replicaServer = createServer((req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(REPLICA_BODY);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => replicaServer.listen(join(dir, 'ferry.sock'), resolve));
    env.control.replicas.set('web', [
      replica({ url: `unix:${join(dir, 'ferry.sock')}` }),
      replica({ id: 'c2', name: 'ferry-web-r1-1-bbbb', index: 1, state: 'starting' }),
      replica({ id: 'c3', name: 'ferry-web-r1-2-cccc', index: 2 }),
    ]);
    env.control.replicas.set('team-a/api', [
      replica({ id: 'c4', name: 'ferry-team-a_api-r3-0-dddd', revision: 3 }),
    ]);
  });
  after(async () => {
    await new Promise((resolve) => replicaServer.close(resolve));
    rmSync(dir, { recursive: true, force: true });
    await env.close();
  });

  test('targets: the gateway, the control plane, and every ready replica with its labels, scraped through the control plane', async () => {
    const r = await call(env, 'GET', '/v1/prometheus/targets', metricsToken);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(String(r.headers['content-type']), /^application\/json/);
    // inject() has no socket address: the control plane's own address is what the socket says (here none).
    const self = r.body[1].targets[0];
    assert.deepEqual(r.body, [
      {
        targets: ['127.0.0.1:8080'],
        labels: { __metrics_path__: '/metrics', __scheme__: 'http', ferry_component: 'gateway' },
      },
      {
        targets: [self],
        labels: { __metrics_path__: '/metrics', __scheme__: 'http', ferry_component: 'control-plane' },
      },
      ...[
        ['ferry-team-a_api-r3-0-dddd', 'team-a', 'api', '3', ''],
        ['ferry-web-r1-0-aaaa', 'default', 'web', '1', 'iris'],
        ['ferry-web-r1-2-cccc', 'default', 'web', '1', 'iris'],
      ].map(([name, tenant, deployment, revision, model]) => ({
        targets: [self],
        labels: {
          __metrics_path__: `/v1/replicas/${name}/metrics`,
          __scheme__: 'http',
          ferry_component: 'replica',
          instance: name,
          tenant,
          deployment,
          revision,
          replica: name,
          model,
        },
      })),
    ]);
    assert.equal((await call(env, 'GET', '/v1/prometheus/targets', platformAdmin)).status, 200);
  });

  test('targets over a real socket: the control plane is listed at the address the request reached', async () => {
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = env.app.server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/v1/prometheus/targets`, {
      headers: { authorization: `Bearer ${metricsToken}`, host: 'evil.example:1' },
    });
    const body = (await res.json()) as Array<{ targets: string[] }>;
    assert.deepEqual(body[1]!.targets, [`127.0.0.1:${port}`], 'not the Host header');
    assert.ok(body.slice(1).every((g) => g.targets[0] === `127.0.0.1:${port}`));
  });

  test("a replica's metrics: relayed with their content type; unknown, not ready, not answering: clear errors", async () => {
    for (const token of [metricsToken, platformAdmin]) {
      const res = await env.app.inject({
        method: 'GET',
        url: '/v1/replicas/ferry-web-r1-0-aaaa/metrics',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.body, REPLICA_BODY);
      assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    }
    // By the runtime's id too.
    const byId = await env.app.inject({
      method: 'GET',
      url: '/v1/replicas/c1/metrics',
      headers: { authorization: `Bearer ${metricsToken}` },
    });
    assert.equal(byId.body, REPLICA_BODY);
    assertError(
      await call(env, 'GET', '/v1/replicas/ferry-nope/metrics', metricsToken),
      404,
      'FERRY_NOT_FOUND',
      /No replica named "ferry-nope"/,
    );
    // Never a URL: a name that looks like one is just an unknown name.
    assertError(
      await call(
        env,
        'GET',
        `/v1/replicas/${encodeURIComponent('http://169.254.169.254/')}/metrics`,
        metricsToken,
      ),
      404,
      'FERRY_NOT_FOUND',
    );
    const starting = await call(env, 'GET', '/v1/replicas/ferry-web-r1-1-bbbb/metrics', metricsToken);
    assertError(starting, 503, 'FERRY_REPLICA_UNAVAILABLE', /ferry-web-r1-1-bbbb is starting, not ready/);
    assert.equal(starting.headers['retry-after'], '1');
    assertError(
      await call(env, 'GET', '/v1/replicas/ferry-web-r1-2-cccc/metrics', metricsToken),
      502,
      'FERRY_UPSTREAM_FAILED',
      /Replica ferry-web-r1-2-cccc did not answer GET \/metrics/,
    );
  });

  test('refused to every other role and without a token; a metrics token may do nothing else', async () => {
    for (const url of ['/v1/prometheus/targets', '/v1/replicas/ferry-web-r1-0-aaaa/metrics']) {
      assertError(await call(env, 'GET', url), 401, 'FERRY_UNAUTHORIZED');
      for (const [role, token] of [
        ['viewer', env.viewer],
        ['deployer', env.deployer],
        ['admin', env.admin],
        ['gateway', env.store.createToken(`gw-${url.length}`, 'gateway').token],
      ] as const) {
        const r = await call(env, 'GET', url, token);
        assertError(r, 403, 'FERRY_FORBIDDEN', new RegExp(`role "${role}".*metrics or scrape targets`));
        assert.match(r.body.hint, /metrics or platform-admin/);
      }
    }
    for (const [method, url, body] of [
      ['GET', '/v1/info'],
      ['GET', '/v1/deployments'],
      ['GET', '/v1/deployments/web/replicas'],
      ['GET', '/v1/tokens'],
      ['GET', '/v1/gateway/routes'],
      ['POST', '/v1/tokens', { name: 'x', role: 'metrics' }],
      ['DELETE', '/v1/deployments/web'],
    ] as const) {
      const r = await call(env, method, url, metricsToken, body);
      assertError(r, 403, 'FERRY_FORBIDDEN', /"prom" has role "metrics", which may not/);
    }
  });

  test('only a platform admin makes a metrics token, and only in the default tenant', async () => {
    const refused = await call(env, 'POST', '/v1/tokens', env.admin, { name: 'prom2', role: 'metrics' });
    assertError(refused, 403, 'FERRY_FORBIDDEN', /Only a platform admin makes metrics tokens/);
    assert.match(refused.body.hint, /reads every tenant's metrics/);
    const made = await call(env, 'POST', '/v1/tokens', platformAdmin, { name: 'prom2', role: 'metrics' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal(made.body.role, 'metrics');
    assert.equal(made.body.tenant, 'default');
  });
});

describe("GET /v1/gateway/routes: the gateways' route file (Swarm)", () => {
  const IRIS: DiscoveryTable = {
    deployments: [
      {
        name: 'iris',
        public: false,
        revisions: [
          {
            revision: 1,
            percent: 100,
            shadow: 0,
            servedName: 'iris',
            service: { host: 'tasks.ferry-iris-r1', port: 8080 },
          },
        ],
      },
      {
        name: 'iris',
        tenant: 'team-a',
        public: true,
        revisions: [
          {
            revision: 2,
            percent: 100,
            shadow: 0,
            servedName: 'iris',
            service: { host: 'tasks.ferry-team-a-iris-r2', port: 8080 },
          },
        ],
      },
    ],
    callers: [{ id: '0123456789abcdef', hash: 'ab'.repeat(32), tenant: 'default' }],
  };
  const file = new RouteFile(IRIS);
  let env: Env;
  let platformAdmin: string;
  let gateway: string;
  before(async () => {
    env = await setup({ gatewayRoutes: file });
    platformAdmin = env.store.createToken('ops', 'platform-admin').token;
    const created = await call(env, 'POST', '/v1/tokens', platformAdmin, { name: 'gw', role: 'gateway' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.role, 'gateway');
    assert.equal(created.body.tenant, 'default');
    gateway = created.body.token;
  });
  after(() => env.close());

  const get = (token?: string, headers: Record<string, string> = {}) =>
    env.app.inject({
      method: 'GET',
      url: '/v1/gateway/routes',
      headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    });

  test("a gateway token gets every tenant's routes as JSON, with an ETag and no caching", async () => {
    const ok = await call(env, 'GET', '/v1/gateway/routes', gateway); // also checked against its schema
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, IRIS);
    assert.equal(ok.headers.etag, file.current().etag);
    assert.match(String(ok.headers.etag), /^"[0-9a-f]{32}"$/);
    assert.match(String(ok.headers['content-type']), /^application\/json/);
    assert.equal(ok.headers['cache-control'], 'no-store');
    const raw = await get(gateway);
    assert.equal(raw.body, file.current().body, 'the stored text, as is');
    assert.equal((await get(platformAdmin)).statusCode, 200, 'a platform admin may read it too');
  });

  test('If-None-Match with the current ETag: 304, no body; any other: 200', async () => {
    const { etag } = file.current();
    const same = await get(gateway, { 'if-none-match': etag });
    assert.equal(same.statusCode, 304);
    assert.equal(same.body, '');
    assert.equal(same.headers.etag, etag);
    assert.equal(same.headers['cache-control'], 'no-store');
    assert.equal((await get(gateway, { 'if-none-match': `"other", ${etag}` })).statusCode, 304, 'a list');
    assert.equal((await get(gateway, { 'if-none-match': `W/${etag}` })).statusCode, 304, 'weak compare');
    assert.equal((await get(gateway, { 'if-none-match': '"0123"' })).statusCode, 200);
  });

  test('a changed table: a new ETag, and the old one gets the new file', async () => {
    const before = file.current().etag;
    const moved = structuredClone(IRIS);
    moved.deployments[0]!.revisions[0]!.service = { host: 'tasks.ferry-iris-r3', port: 8080 };
    file.set(moved);
    try {
      const res = await get(gateway, { 'if-none-match': before });
      assert.equal(res.statusCode, 200);
      assert.notEqual(res.headers.etag, before);
      assert.equal(res.headers.etag, file.current().etag);
      assert.deepEqual(res.json(), moved);
      assert.equal((await get(gateway, { 'if-none-match': String(res.headers.etag) })).statusCode, 304);
    } finally {
      file.set(IRIS);
    }
  });

  test('no token: 401; every other role: 403 naming who may', async () => {
    assertError(await call(env, 'GET', '/v1/gateway/routes'), 401, 'FERRY_UNAUTHORIZED');
    const invoker = env.store.createToken('caller', 'invoker').token;
    for (const [role, token] of [
      ['viewer', env.viewer],
      ['deployer', env.deployer],
      ['admin', env.admin],
      ['invoker', invoker],
    ] as const) {
      const r = await call(env, 'GET', '/v1/gateway/routes', token);
      assertError(r, 403, 'FERRY_FORBIDDEN', new RegExp(`role "${role}".*route file`));
      assert.match(r.body.hint, /gateway or platform-admin/);
    }
  });

  test('a gateway token may do nothing else, nor act in a tenant', async () => {
    const refused: Array<[Parameters<typeof call>[1], string, unknown?]> = [
      ['GET', '/v1/info'],
      ['GET', '/v1/deployments'],
      ['GET', '/v1/tokens'],
      ['GET', '/v1/tenant'],
      ['GET', '/metrics'],
      ['POST', '/v1/models', { name: 'x' }],
      ['POST', '/v1/deployments', { name: 'x', model: 'iris', version: '1' }],
      ['POST', '/v1/tokens', { name: 'x', role: 'gateway' }],
      ['DELETE', '/v1/tokens/gw'],
    ];
    for (const [method, url, body] of refused) {
      const r = await call(env, method, url, gateway, body);
      assertError(r, 403, 'FERRY_FORBIDDEN', /"gw" has role "gateway", which may not/);
    }
    const other = await get(gateway, { 'x-ferry-tenant': 'team-a' });
    assert.equal(other.statusCode, 403, other.body);
    assert.equal(env.control.calls.length, 0);
  });

  test('only a platform admin makes a gateway token, and only in the default tenant', async () => {
    for (const token of [env.admin, env.deployer]) {
      const r = await call(env, 'POST', '/v1/tokens', token, { name: 'gw2', role: 'gateway' });
      assertError(r, 403, 'FERRY_FORBIDDEN');
    }
    const tenantAdmin = await call(env, 'POST', '/v1/tokens', env.admin, { name: 'gw2', role: 'gateway' });
    assert.match(tenantAdmin.body.error, /Only a platform admin makes gateway tokens/);
    env.store.createTenant('team-a', {});
    const elsewhere = await env.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { authorization: `Bearer ${platformAdmin}`, 'x-ferry-tenant': 'team-a' },
      payload: { name: 'gw2', role: 'gateway' },
    });
    assert.equal(elsewhere.statusCode, 403, elsewhere.body);
    assert.match(elsewhere.json().hint, /leave --tenant out/);
    await seedDeployment(env, 'web');
    const scoped = await call(env, 'POST', '/v1/tokens', platformAdmin, {
      name: 'gw2',
      role: 'gateway',
      deployment: 'web',
    });
    assertError(scoped, 400, 'FERRY_BAD_REQUEST', /gateway token cannot have a deployment/);
    assert.equal(env.store.listTokens().filter((t) => t.role === 'gateway').length, 1);
  });

  test('without a route file (every runtime but Swarm): 404 naming the built-in gateway', async () => {
    const bare = await setup();
    try {
      const ops = bare.store.createToken('ops', 'platform-admin').token;
      const r = await call(bare, 'GET', '/v1/gateway/routes', ops);
      assertError(r, 404, 'FERRY_ROUTE_NOT_FOUND', /runtime \(process\) serves no route file/);
      assert.match(r.body.hint, /built-in gateway \(http:\/\/127\.0\.0\.1:8080\)/);
    } finally {
      await bare.close();
    }
  });
});

test('the route check sees a route added outside the table', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-api-'));
  const store = openStore(join(dir, 'state.db'));
  const app = buildControlApi({ store, control: recordingControl(store), info: INFO });
  const registered: string[] = [];
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) registered.push(`${m} ${openApiPath(r.url)}`);
  });
  app.get('/v1/undocumented', async () => ({}));
  await app.ready();
  try {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    assert.ok(registered.includes('GET /v1/undocumented'));
    assert.equal(doc.paths['/v1/undocumented'], undefined);
  } finally {
    await app.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('logs', () => {
  test('tokens and the Authorization header never reach the logs', async () => {
    const env = await setup();
    try {
      await seedDeployment(env);
      const created = await call(env, 'POST', '/v1/tokens', env.admin, { name: 'new', role: 'deployer' });
      await call(env, 'GET', '/v1/deployments/web', created.body.token);
      await call(env, 'GET', '/v1/info', 'ferry_0123456789abcdef_wrongwrongwrongwrongwrongwrongwrongwrong1');
      await call(env, 'GET', '/v1/tokens', env.viewer);
      const original = env.control.list;
      env.control.list = () => {
        throw new Error('boom');
      };
      await call(env, 'GET', '/v1/deployments', env.admin);
      env.control.list = original;

      const text = env.logs.join('');
      assert.ok(env.logs.length > 10, 'requests are logged');
      assert.match(text, /\/v1\/deployments\/web/);
      assert.match(text, /boom/);
      for (const secret of [
        env.admin,
        env.deployer,
        env.viewer,
        created.body.token,
        'wrongwrongwrongwrong',
      ]) {
        assert.ok(!text.includes(secret), 'a token leaked into the logs');
      }
      assert.ok(!/authorization/i.test(text), 'the Authorization header is not logged');
    } finally {
      await env.close();
    }
  });
});

// The documented response schemas say what the contract's types say (checked by tsc, both directions).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShapes: [
  Same<z.infer<typeof S.DeploymentViewSchema>, DeploymentView>,
  Same<z.infer<typeof S.DescribeViewSchema>, DescribeView>,
  Same<z.infer<typeof S.RolloutSchema>, RolloutView>,
  Same<z.infer<typeof S.ReplicaSchema>, ReplicaView>,
  Same<z.infer<typeof S.LogLineSchema>, LogLine>,
  Same<z.infer<typeof S.StrategySchema>, StrategyInput>,
  Same<z.infer<typeof S.ModelSchema>, ModelRecord>,
  Same<z.infer<typeof S.ModelVersionSchema>, ModelVersion>,
  Same<z.infer<typeof S.RevisionSchema>, StoredRevision>,
  Same<z.infer<typeof S.EventSchema>, EventRecord>,
  Same<z.infer<typeof S.TokenSchema>, TokenRecord>,
  Same<z.infer<typeof S.CreatedTokenSchema>, CreatedToken>,
  Same<z.infer<typeof S.TrafficEntrySchema>, TrafficEntry>,
  Same<z.infer<typeof S.AddVersionBody>, AddVersionRequest>,
  Same<z.infer<typeof S.RouteFileSchema>, DiscoveryTable>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true, true];
test('response schemas match the contract types', () => {
  assert.ok(sameShapes.every(Boolean));
});

describe('API hygiene', () => {
  let env: Env;
  before(async () => {
    env = await setup();
  });
  after(() => env.close());

  test('lists page: limit, then x-ferry-next-after, until the last page', async () => {
    for (const name of ['a1', 'a2', 'a3']) await call(env, 'POST', '/v1/models', env.deployer, { name });
    const first = await env.app.inject({
      method: 'GET',
      url: '/v1/models?limit=2',
      headers: { authorization: `Bearer ${env.viewer}` },
    });
    assert.deepEqual(
      first.json().map((m: { name: string }) => m.name),
      ['a1', 'a2'],
    );
    assert.equal(first.headers['x-ferry-next-after'], 'a2');
    const last = await env.app.inject({
      method: 'GET',
      url: '/v1/models?limit=2&after=a2',
      headers: { authorization: `Bearer ${env.viewer}` },
    });
    assert.deepEqual(
      last.json().map((m: { name: string }) => m.name),
      ['a3'],
    );
    assert.equal(last.headers['x-ferry-next-after'], undefined);
    assertError(
      await call(env, 'GET', '/v1/models?limit=5000', env.viewer),
      400,
      'FERRY_BAD_REQUEST',
      /limit/,
    );
  });

  test('every answer carries the security headers; a body over 1 MiB is 413', async () => {
    for (const url of ['/healthz', '/v1/info', '/v1/nope']) {
      const res = await env.app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${env.viewer}` },
      });
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
      assert.equal(res.headers['x-frame-options'], 'DENY', url);
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'/, url);
      assert.equal(res.headers['cache-control'], 'no-store', url);
    }
    const big = await env.app.inject({
      method: 'POST',
      url: '/v1/models',
      headers: { authorization: `Bearer ${env.deployer}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'x', pad: 'y'.repeat(1024 * 1024) }),
    });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().code, 'FERRY_PAYLOAD_TOO_LARGE');
  });
});

describe('POST /v1/gateway/load: the load of gateways elsewhere (Swarm), for the autoscaler', () => {
  let now = 1000;
  const loads = new GatewayLoads(() => now);
  let wakes = 0;
  let env: Env;
  let gateway: string;
  before(async () => {
    env = await setup({ gatewayLoad: { report: (r) => loads.report(r), wake: () => void wakes++ } });
    const platformAdmin = env.store.createToken('ops', 'platform-admin').token;
    gateway = (await call(env, 'POST', '/v1/tokens', platformAdmin, { name: 'gw', role: 'gateway' })).body
      .token;
  });
  after(() => env.close());

  const report = (held: number) => ({
    gateway: 'n1',
    samples: [{ deployment: 'iris', revision: 1, at: 900, periodMs: 1000, concurrency: 2.5, arrivals: 40 }],
    held: [{ deployment: 'iris', held }],
  });

  test('a gateway token reports; the autoscaler reads it; held requests wake the controller', async () => {
    const r = await call(env, 'POST', '/v1/gateway/load', gateway, report(0));
    assert.equal(r.status, 204, JSON.stringify(r.body));
    assert.equal(wakes, 0);
    now = 2000;
    assert.deepEqual(
      loads.loadSamples(now).map((s) => [s.deployment, s.revision, s.concurrency, s.arrivals]),
      [['iris', 1, 2.5, 40]],
    );
    assert.equal((await call(env, 'POST', '/v1/gateway/load', gateway, report(3))).status, 204);
    assert.equal(wakes, 1);
    assert.deepEqual(loads.heldSamples(), [{ deployment: 'iris', held: 3 }]);
  });

  test('a bad report is refused naming the field; other roles and no token are refused', async () => {
    const bad = await call(env, 'POST', '/v1/gateway/load', gateway, {
      ...report(0),
      held: [{ deployment: 'iris', held: -1 }],
    });
    assertError(bad, 400, 'FERRY_BAD_REQUEST', /held/);
    assertError(await call(env, 'POST', '/v1/gateway/load', undefined, report(0)), 401, 'FERRY_UNAUTHORIZED');
    for (const token of [env.viewer, env.deployer, env.admin])
      assertError(await call(env, 'POST', '/v1/gateway/load', token, report(0)), 403, 'FERRY_FORBIDDEN');
  });

  test('without gateways elsewhere (a built-in gateway): 404 naming the runtime', async () => {
    const plain = await setup();
    try {
      const platformAdmin = plain.store.createToken('ops', 'platform-admin').token;
      const gw = (await call(plain, 'POST', '/v1/tokens', platformAdmin, { name: 'gw', role: 'gateway' }))
        .body.token;
      assertError(
        await call(plain, 'POST', '/v1/gateway/load', gw, report(0)),
        404,
        'FERRY_ROUTE_NOT_FOUND',
        /built in/,
      );
    } finally {
      plain.close();
    }
  });
});
