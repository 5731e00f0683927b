/**
 * The control-plane API between tenants, generated from /openapi.json so a new route is covered the day it is
 * added:
 * - BOLA: every route that names an object, called with tenant B's token on tenant A's object, answers exactly
 *   as for an object that exists nowhere (status, error code, body with the name swapped, content type), and
 *   A's objects are untouched afterwards;
 * - BFLA: every role on every route is refused (403) or not as the role table in docs/security.md says, and
 *   that table is the one the API enforces (ROLES_FOR);
 * - tokens: expired, revoked, of another tenant, malformed, very long, in the query string.
 * A real platform (process runtime, SQLite, the artifact store) on a temporary home; no replica runs.
 * Timing parity of the BOLA answers is measured by bench/bola-timing.ts, not asserted here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addVersionFromDir } from '../../src/cli/upload.ts';
import { CONTROL_API_ROUTES, ControlClient, ROLES_FOR } from '../../src/control/index.ts';
import { type Platform, startPlatform } from '../../src/platform/index.ts';
import { ROOT, tempDir } from '../helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const ROLES = ['viewer', 'deployer', 'admin', 'platform-admin', 'invoker', 'gateway', 'metrics'] as const;
/** Roles of no tenant: made by a platform admin in the default tenant, they name no other. */
const PLATFORM_WIDE: readonly Role[] = ['platform-admin', 'gateway', 'metrics'];
type Role = (typeof ROLES)[number];

interface Op {
  method: string;
  /** OpenAPI path, e.g. /v1/deployments/{name} */
  path: string;
  operationId: string;
  roles: string[] | undefined;
  hasBody: boolean;
  rawBody: boolean;
}

/** A body each operation accepts in shape, so an answer is about the object, not about validation. */
const BODIES: Record<string, unknown> = {
  createModel: { name: 'bfla-model' },
  addVersion: { version: '9', image: 'registry.invalid/none:1' },
  setAlias: { version: '1' },
  deploy: { name: 'bfla-dep', model: 'zz-none', version: '1', replicas: 0 },
  updateDeployment: { replicas: 0 },
  scale: { replicas: 0 },
  setTraffic: { traffic: [{ revision: 1, percent: 100 }] },
  undo: {},
  createToken: { name: 'bfla-token', role: 'viewer' },
  createTenant: { name: 'bfla-tenant' },
  setQuotas: { quotas: {} },
  setSecret: { value: 'bfla-value' },
};

let platform: Platform;
const home = tempDir('ferry-security-');
let ops: Op[];
/** tokens[tenant][role] */
const tokens: Record<string, Record<Role, string>> = {};
let artifactDigest: string;

async function call(
  method: string,
  url: string,
  token: string | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string; body: unknown; text: string }> {
  const res = await fetch(`${platform.apiUrl}${url}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  // A stream (GET /v1/stream) answers until the client goes: its first event is the answer here.
  const type = res.headers.get('content-type') ?? '';
  const text = type.startsWith('text/event-stream') ? await firstEvent(res) : await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: parsed, text };
}

/** The text of a server-sent event stream up to its first event; then the connection is closed. */
async function firstEvent(res: Response): Promise<string> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (!text.includes('\n\n')) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text;
}

/** Tenant A's object for each path parameter, and one that exists nowhere. */
function fill(path: string, which: 'a' | 'none'): string {
  const owned: Record<string, string> = {
    model: 'model-of-a',
    alias: 'alias-of-a',
    digest: artifactDigest,
    tenant: 'tenant-a',
  };
  const none: Record<string, string> = {
    model: 'zz-none',
    alias: 'zz-none',
    digest: `sha256:${'0'.repeat(64)}`,
    tenant: 'zz-none',
  };
  return path.replace(/\{([^}]+)\}/g, (_, p: string) => {
    if (p === 'name') {
      if (which === 'none') return 'zz-none';
      if (path.startsWith('/v1/tokens')) return 'token-of-a';
      return path.startsWith('/v1/secrets') ? 'secret-of-a' : 'dep-of-a';
    }
    return (which === 'a' ? owned : none)[p] ?? 'zz-none';
  });
}

/** An answer with the object's name put back to a placeholder, for comparing. */
function normalized(answer: { status: number; type: string; body: unknown; text: string }, names: string[]) {
  // Times differ between two calls; they are not what a caller could learn anything from.
  let text = answer.text.replace(/"(createdAt|updatedAt|at|expiresAt)":\d+/g, '"$1":0');
  for (const n of names) text = text.split(JSON.stringify(n).slice(1, -1)).join('<name>');
  return { status: answer.status, type: answer.type, text };
}

before(async () => {
  platform = await startPlatform({ home: home.path, runtime: 'process', apiPort: 0, gatewayPort: 0 });
  const root = platform.adminToken!;
  const doc = (await call('GET', '/openapi.json', undefined)).body as {
    paths: Record<
      string,
      Record<
        string,
        {
          operationId: string;
          'x-ferry-roles'?: string[];
          requestBody?: { content: Record<string, unknown> };
        }
      >
    >;
  };
  ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      operationId: op.operationId,
      roles: op['x-ferry-roles'],
      hasBody: op.requestBody !== undefined,
      rawBody: op.requestBody !== undefined && !('application/json' in op.requestBody.content),
    })),
  );
  for (const t of ['a', 'b']) {
    const tenant = `tenant-${t}`;
    assert.equal((await call('POST', '/v1/tenants', root, { name: tenant })).status, 201);
    tokens[t] = {} as Record<Role, string>;
    for (const role of ROLES) {
      // None belongs to a tenant: the root token, and one gateway and one metrics token in the default tenant
      // (below).
      if (PLATFORM_WIDE.includes(role)) continue;
      const created = await call(
        'POST',
        '/v1/tokens',
        root,
        { name: `${t}-${role}`, role },
        { 'x-ferry-tenant': tenant },
      );
      assert.equal(created.status, 201, created.text);
      tokens[t]![role] = (created.body as { token: string }).token;
    }
    tokens[t]!['platform-admin'] = root;
  }
  const gateway = await call('POST', '/v1/tokens', root, { name: 'the-gateways', role: 'gateway' });
  assert.equal(gateway.status, 201, gateway.text);
  tokens.a!.gateway = tokens.b!.gateway = (gateway.body as { token: string }).token;
  const metrics = await call('POST', '/v1/tokens', root, { name: 'the-prometheus', role: 'metrics' });
  assert.equal(metrics.status, 201, metrics.text);
  tokens.a!.metrics = tokens.b!.metrics = (metrics.body as { token: string }).token;
  // Tenant A's objects: a model (version 1 from an uploaded artifact, an alias), a deployment (no replicas), a
  // secret, a token.
  const a = new ControlClient({ url: platform.apiUrl, token: tokens.a!.admin });
  await a.createModel('model-of-a');
  const version = await addVersionFromDir(a, 'model-of-a', '1', IRIS);
  artifactDigest = version.artifact!;
  await a.setAlias('model-of-a', 'alias-of-a', '1');
  await a.deploy({ name: 'dep-of-a', model: 'model-of-a', version: '1', replicas: 0 });
  await a.setSecret('secret-of-a', 'a-secret-value');
  await a.createToken('token-of-a', 'viewer');
});

after(async () => {
  await platform?.stop({ removeReplicas: true });
  home.remove();
});

describe('BOLA: tenant B on tenant A’s objects', () => {
  test('every route that names an object answers as for one that exists nowhere', async () => {
    const named = ops.filter((o) => o.path.includes('{'));
    assert.ok(named.length >= 20, `routes that name an object: ${named.length}`);
    // The objects are real: tenant A's admin reads every one of them (so the comparison below is not vacuous).
    // (Tenants and replicas' metrics are no tenant's objects: platform admins and metrics tokens read them.)
    for (const op of named.filter(
      (o) => o.method === 'GET' && !o.path.startsWith('/v1/tenants') && !o.path.startsWith('/v1/replicas'),
    )) {
      const own = await call('GET', fill(op.path, 'a'), tokens.a!.admin);
      assert.equal(own.status, 200, `A's admin reads ${op.path}: ${own.text}`);
    }
    const checked: string[] = [];
    for (const role of ['viewer', 'deployer', 'admin'] as const) {
      const token = tokens.b![role];
      for (const op of named) {
        const body = op.rawBody ? undefined : op.hasBody ? (BODIES[op.operationId] ?? {}) : undefined;
        const onA = await call(op.method, fill(op.path, 'a'), token, body);
        const onNone = await call(op.method, fill(op.path, 'none'), token, body);
        const names = [
          'model-of-a',
          'alias-of-a',
          'dep-of-a',
          'secret-of-a',
          'token-of-a',
          'tenant-a',
          artifactDigest,
          'zz-none',
          `sha256:${'0'.repeat(64)}`,
        ];
        assert.deepEqual(
          normalized(onA, names),
          normalized(onNone, names),
          `${role} ${op.method} ${op.path}: A's object and a missing one must look the same`,
        );
        assert.notEqual(onA.status, 500, `${op.method} ${op.path}: ${onA.text}`);
        checked.push(`${op.method} ${op.path}`);
      }
    }
    // A's objects are all still there and unchanged.
    const a = new ControlClient({ url: platform.apiUrl, token: tokens.a!.admin });
    assert.equal((await a.getDeployment('dep-of-a')).replicas, 0);
    assert.equal((await a.getModel('model-of-a')).aliases['alias-of-a'], '1');
    assert.deepEqual(
      (await a.listSecrets()).map((s) => s.name),
      ['secret-of-a'],
    );
    assert.ok((await a.listTokens()).some((t) => t.name === 'token-of-a'));
    console.log(`# BOLA: ${new Set(checked).size} routes x 3 roles, all answers identical`);
  });

  test("a tenant's token that names another tenant is refused on every route", async () => {
    for (const op of ops.filter((o) => o.roles !== undefined)) {
      const answer = await call(op.method, fill(op.path, 'none'), tokens.b!.admin, undefined, {
        'x-ferry-tenant': 'tenant-a',
      });
      assert.equal(answer.status, 403, `${op.method} ${op.path}: ${answer.text}`);
    }
  });

  test('a name holding the key separator never reaches another tenant', async () => {
    for (const url of [
      '/v1/deployments/tenant-a%2Fdep-of-a',
      '/v1/models/tenant-a%2Fmodel-of-a',
      '/v1/deployments/tenant-a%2Fdep-of-a/traffic',
    ]) {
      const answer = await call('GET', url, platform.adminToken!);
      assert.equal(answer.status, 400, `${url}: ${answer.text}`);
      assert.ok(!answer.text.includes('"replicas"'), url);
    }
  });

  test('lists show a tenant its own objects only', async () => {
    const b = new ControlClient({ url: platform.apiUrl, token: tokens.b!.admin });
    assert.deepEqual(await b.listDeployments(), []);
    assert.deepEqual(await b.listModels(), []);
    assert.ok((await b.events()).every((e) => e.deployment === undefined || e.tenant === 'tenant-b'));
    assert.ok((await b.listTokens()).every((t) => t.tenant === 'tenant-b'));
  });
});

describe('BFLA: every role on every route', () => {
  test('the role table in docs/security.md is the one the API enforces', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'security.md'), 'utf8');
    const rows = new Map<string, string>();
    for (const m of doc.matchAll(/^\| `(GET|POST|PUT|PATCH|DELETE) ([^`]+)` \| ([^|]+) \|/gm))
      rows.set(`${m[1]} ${m[2]}`, m[3]!.trim());
    const expected = CONTROL_API_ROUTES.map((r) => {
      const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
      const who = r.access === 'public' ? 'anyone' : ROLES_FOR[r.access].join(', ');
      return [`${r.method} ${path}`, who] as const;
    });
    const table = expected.map(([route, who]) => `| \`${route}\` | ${who} |`).join('\n');
    for (const [route, who] of expected)
      assert.equal(
        rows.get(route),
        who,
        `docs/security.md must list ${route} for ${who}; the table is:\n${table}`,
      );
    assert.equal(
      rows.size,
      expected.length,
      `docs/security.md lists routes the API does not have; the table is:\n${table}`,
    );
  });

  test('each role is refused exactly where the table says, and nowhere else', async () => {
    let cases = 0;
    for (const op of ops.filter((o) => o.roles !== undefined)) {
      for (const role of ROLES) {
        const body = op.rawBody ? undefined : op.hasBody ? (BODIES[op.operationId] ?? {}) : undefined;
        // A gateway or metrics token acts in no tenant but its own (the default): it names none.
        const answer = await call(
          op.method,
          fill(op.path, 'none'),
          tokens.b![role],
          body,
          role === 'gateway' || role === 'metrics' ? {} : { 'x-ferry-tenant': 'tenant-b' },
        );
        const allowed = op.roles!.includes(role);
        if (allowed)
          assert.ok(
            answer.status !== 403 && answer.status !== 401,
            `${role} ${op.method} ${op.path}: ${answer.text}`,
          );
        else {
          assert.equal(answer.status, 403, `${role} ${op.method} ${op.path} must be refused: ${answer.text}`);
          assert.equal((answer.body as { code: string }).code, 'FERRY_FORBIDDEN');
        }
        cases++;
      }
    }
    console.log(`# BFLA: ${cases} role x route cases`);
  });
});

describe('tokens', () => {
  test('expired, revoked, malformed, very long, unknown, in the query string: 401, the same way', async () => {
    const root = platform.adminToken!;
    const expiring = await call('POST', '/v1/tokens', root, {
      name: 'short-lived',
      role: 'viewer',
      expiresInSeconds: 1,
    });
    const expired = (expiring.body as { token: string }).token;
    const revokedAnswer = await call('POST', '/v1/tokens', root, { name: 'revoked', role: 'viewer' });
    const revoked = (revokedAnswer.body as { token: string }).token;
    assert.equal((await call('DELETE', '/v1/tokens/revoked', root)).status, 204);
    const { token: valid } = (await call('POST', '/v1/tokens', root, { name: 'valid', role: 'viewer' }))
      .body as { token: string };
    // The expiry is a second away: wait until the platform's clock passed it (a condition, not a fixed sleep).
    while ((await call('GET', '/v1/info', expired)).status === 200)
      await new Promise((r) => setTimeout(r, 50));
    const refused = [
      expired,
      revoked,
      `${valid.slice(0, -1)}${valid.endsWith('A') ? 'B' : 'A'}`,
      'ferry_0000000000000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
      'not-a-token',
      `ferry_${'a'.repeat(8000)}`,
    ];
    for (const token of refused) {
      const answer = await call('GET', '/v1/info', token);
      assert.equal(answer.status, 401, `${token.slice(0, 30)}: ${answer.text}`);
      assert.equal((answer.body as { code: string }).code, 'FERRY_UNAUTHORIZED');
    }
    for (const q of [`token=${valid}`, `access_token=${valid}`]) {
      const answer = await call('GET', `/v1/info?${q}`, undefined);
      assert.equal(answer.status, 401, `a token in the query string is not a credential: ${answer.text}`);
    }
    assert.equal((await call('GET', '/v1/info', valid)).status, 200);
  });

  test('a tenant admin cannot mint a platform admin; an invoker has no control-plane access', async () => {
    const answer = await call('POST', '/v1/tokens', tokens.a!.admin, {
      name: 'escalate',
      role: 'platform-admin',
    });
    assert.equal(answer.status, 403, answer.text);
    for (const op of ops.filter((o) => o.roles !== undefined)) {
      const refused = await call(op.method, fill(op.path, 'none'), tokens.a!.invoker);
      assert.equal(refused.status, 403, `${op.method} ${op.path}`);
    }
  });

  test('only a platform admin mints a gateway token, in the default tenant; it reads the route file and reports load only', async () => {
    for (const [token, headers] of [
      [tokens.a!.admin, {}],
      [tokens.b!.deployer, {}],
      [platform.adminToken!, { 'x-ferry-tenant': 'tenant-a' }],
    ] as const) {
      const answer = await call(
        'POST',
        '/v1/tokens',
        token,
        { name: 'gw-escalate', role: 'gateway' },
        headers,
      );
      assert.equal(answer.status, 403, answer.text);
    }
    const gateway = tokens.a!.gateway;
    const ownOps = new Set(['gatewayRoutes', 'gatewayLoad']);
    for (const op of ops.filter((o) => o.roles !== undefined && !ownOps.has(o.operationId))) {
      const refused = await call(op.method, fill(op.path, 'none'), gateway);
      assert.equal(refused.status, 403, `${op.method} ${op.path}`);
    }
    // Its route is there (404 on the process runtime: no route file, the gateway is built in), not refused.
    const own = await call('GET', '/v1/gateway/routes', gateway);
    assert.equal(own.status, 404, own.text);
    assert.equal((own.body as { code: string }).code, 'FERRY_ROUTE_NOT_FOUND');
    const elsewhere = await call('GET', '/v1/gateway/routes', gateway, undefined, {
      'x-ferry-tenant': 'tenant-a',
    });
    assert.equal(elsewhere.status, 403, 'a gateway token acts in no tenant of a team');
  });
});

test('only a platform admin mints a metrics token, in the default tenant; it reads metrics and scrape targets only', async () => {
  for (const [token, headers] of [
    [tokens.a!.admin, {}],
    [tokens.b!.deployer, {}],
    [platform.adminToken!, { 'x-ferry-tenant': 'tenant-a' }],
  ] as const) {
    const answer = await call('POST', '/v1/tokens', token, { name: 'm-escalate', role: 'metrics' }, headers);
    assert.equal(answer.status, 403, answer.text);
  }
  const metrics = tokens.a!.metrics;
  const ownOps = new Set(['metrics', 'prometheusTargets', 'replicaMetrics']);
  for (const op of ops.filter((o) => o.roles !== undefined && !ownOps.has(o.operationId))) {
    const refused = await call(op.method, fill(op.path, 'none'), metrics);
    assert.equal(refused.status, 403, `${op.method} ${op.path}`);
  }
  assert.equal((await call('GET', '/metrics', metrics)).status, 200);
  assert.equal((await call('GET', '/v1/prometheus/targets', metrics)).status, 200);
  const unknown = await call('GET', '/v1/replicas/zz-none/metrics', metrics);
  assert.equal(unknown.status, 404, unknown.text);
  const elsewhere = await call('GET', '/v1/prometheus/targets', metrics, undefined, {
    'x-ferry-tenant': 'tenant-a',
  });
  assert.equal(elsewhere.status, 403, 'a metrics token acts in no tenant of a team');
});

describe('quotas', () => {
  test('deploy, scale and change beyond a quota are refused, naming the quota, its use and its limit', async () => {
    const root = platform.adminToken!;
    assert.equal(
      (
        await call('POST', '/v1/tenants', root, {
          name: 'tenant-q',
          quotas: { deployments: 2, replicas: 3, cpu: 2 },
        })
      ).status,
      201,
    );
    const admin = (
      (
        await call(
          'POST',
          '/v1/tokens',
          root,
          { name: 'q-admin', role: 'admin' },
          { 'x-ferry-tenant': 'tenant-q' },
        )
      ).body as { token: string }
    ).token;
    const q = new ControlClient({ url: platform.apiUrl, token: admin });
    await q.createModel('m');
    await addVersionFromDir(q, 'm', '1', IRIS);
    // examples/iris asks for 1 CPU per replica (the default): 3 replicas would be 3 CPU > 2.
    await q.deploy({ name: 'one', model: 'm', version: '1', replicas: 1 });
    const over = await call('POST', '/v1/deployments', admin, {
      name: 'two',
      model: 'm',
      version: '1',
      replicas: 2,
    });
    assert.equal(over.status, 403, over.text);
    assert.equal((over.body as { code: string }).code, 'FERRY_QUOTA_EXCEEDED');
    assert.match((over.body as { error: string }).error, /cpu: 3 CPU of 2 CPU/);
    assert.equal((await call('GET', '/v1/deployments/two', admin)).status, 404, 'nothing was made');
    const scaled = await call('PUT', '/v1/deployments/one/replicas', admin, { replicas: 4 });
    assert.equal(scaled.status, 403);
    assert.match((scaled.body as { error: string }).error, /replicas: 4 of 3/);
    assert.equal((await q.getDeployment('one')).replicas, 1, 'the scale did not happen');
    const changed = await call('PATCH', '/v1/deployments/one', admin, { resources: { cpu: 3 } });
    assert.equal(changed.status, 403);
    assert.equal((await q.revisions('one')).length, 1, 'no revision was made');
    await q.deploy({ name: 'two', model: 'm', version: '1', replicas: 1, resources: { cpu: 0.5 } });
    const third = await call('POST', '/v1/deployments', admin, {
      name: 'three',
      model: 'm',
      version: '1',
      replicas: 0,
    });
    assert.match((third.body as { error: string }).error, /deployments: 3 of 2/);
    const usage = (await call('GET', '/v1/tenant', admin)).body as { usage: Record<string, number> };
    assert.deepEqual(
      { deployments: usage.usage.deployments, replicas: usage.usage.replicas, cpu: usage.usage.cpu },
      { deployments: 2, replicas: 2, cpu: 1.5 },
    );
    await q.scale('one', 0);
    await q.scale('two', 0);
  });
});
