/**
 * The gateway between tenants, on a real platform (process runtime, real replicas of examples/iris): private by
 * default, invoker tokens and per-deployment keys, another tenant's token, the same deployment name in two
 * tenants, rate limits, revoked and expired tokens. Traffic only to 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addVersionFromDir } from '../../src/cli/upload.ts';
import { ControlClient } from '../../src/control/index.ts';
import { type Platform, startPlatform } from '../../src/platform/index.ts';
import { ROOT, tempDir, until } from '../helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const BODY = readFileSync(join(IRIS, 'requests', 'setosa.json'));

let platform: Platform;
const home = tempDir('ferry-data-plane-');
const as: Record<string, ControlClient> = {};

async function infer(
  path: string,
  token?: string,
): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`${platform.gatewayUrl}${path}`, {
    method: 'POST',
    body: BODY,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

before(async () => {
  platform = await startPlatform({
    home: home.path,
    runtime: 'process',
    apiPort: 0,
    gatewayPort: 0,
    resyncMs: 300,
    tenantHostSuffix: '.models.test',
  });
  const root = new ControlClient({ url: platform.apiUrl, token: platform.adminToken! });
  for (const t of ['tenant-a', 'tenant-b']) {
    await root.createTenant(t);
    const admin = await new ControlClient({
      url: platform.apiUrl,
      token: platform.adminToken!,
      tenant: t,
    }).createToken('admin', 'admin');
    as[t] = new ControlClient({ url: platform.apiUrl, token: admin.token });
    await as[t]!.createModel('iris');
    await addVersionFromDir(as[t]!, 'iris', '1', IRIS);
    await as[t]!.deploy({ name: 'iris', model: 'iris', version: '1', replicas: 1 });
  }
  // A second private deployment in tenant-a (no replica needed: access is decided before routing).
  await as['tenant-a']!.deploy({ name: 'other', model: 'iris', version: '1', replicas: 0 });
  await as['tenant-a']!.deploy({ name: 'open', model: 'iris', version: '1', replicas: 1, public: true });
  for (const [t, name] of [
    ['tenant-a', 'iris'],
    ['tenant-b', 'iris'],
    ['tenant-a', 'open'],
  ] as const)
    await until(`${t}/${name} ready`, async () =>
      (await as[t]!.replicas(name)).some((r) => r.state === 'ready'),
    );
});

after(async () => {
  await platform?.stop({ removeReplicas: true });
  home.remove();
});

describe('private endpoints', () => {
  test('new deployments are private: no token 401, the tenant’s invoker token 200, through /t/<tenant>/', async () => {
    const none = await infer('/t/tenant-a/v2/models/iris/infer');
    assert.equal(none.status, 401, none.body);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm="ferry"/);
    const { token } = await as['tenant-a']!.createToken('caller', 'invoker');
    await until(
      'the token reaches the gateway',
      async () => (await infer('/t/tenant-a/v2/models/iris/infer', token)).status === 200,
    );
    const ok = await infer('/t/tenant-a/v2/models/iris/infer', token);
    assert.equal(ok.status, 200, ok.body);
    assert.ok(JSON.parse(ok.body).outputs.length > 0);
    // A public deployment needs nothing.
    assert.equal((await infer('/t/tenant-a/v2/models/open/infer')).status, 200);
    // The same name in the default tenant does not exist: 404, not tenant-a's.
    assert.equal((await infer('/v2/models/iris/infer', token)).status, 404);
  });

  test("a tenant's token on another tenant's deployment of the same name: 403; a key works on its deployment only", async () => {
    const { token: bToken } = await as['tenant-b']!.createToken('b-caller', 'invoker');
    const { token: key } = await as['tenant-a']!.createToken('iris-key', 'invoker', { deployment: 'iris' });
    await until(
      'keys reach the gateway',
      async () => (await infer('/t/tenant-a/v2/models/iris/infer', key)).status === 200,
    );
    await until(
      'b reaches its own',
      async () => (await infer('/t/tenant-b/v2/models/iris/infer', bToken)).status === 200,
    );
    const cross = await infer('/t/tenant-a/v2/models/iris/infer', bToken);
    assert.equal(cross.status, 403, cross.body);
    assert.equal(JSON.parse(cross.body).code, 'FERRY_FORBIDDEN');
    assert.equal(
      (await infer('/t/tenant-a/v2/models/other/infer', key)).status,
      403,
      'a key is for its deployment',
    );
    assert.equal((await infer('/t/tenant-b/v2/models/iris/infer', key)).status, 403);
    for (const path of ['/t/tenant-a%2Firis/v2/models/iris/infer', '/v2/models/tenant-a%2Firis/infer']) {
      assert.equal((await infer(path, key)).status, 404, path);
    }
  });

  test('Host-based tenants (ferry up --tenant-host-suffix): the Host names the tenant for plain OIP paths', async () => {
    const { token } = await as['tenant-a']!.createToken('host-caller', 'invoker');
    const viaHost = (host: string, t?: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(platform.gatewayUrl);
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            method: 'POST',
            path: '/v2/models/iris/infer',
            headers: {
              host,
              'content-type': 'application/json',
              'content-length': String(BODY.length),
              ...(t ? { authorization: `Bearer ${t}` } : {}),
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(BODY);
      });
    await until(
      'the token reaches the gateway',
      async () => (await viaHost('tenant-a.models.test', token)) === 200,
    );
    assert.equal(await viaHost('tenant-a.models.test'), 401, 'still private');
    assert.equal(await viaHost('tenant-b.models.test', token), 403, "tenant-b's iris is not tenant-a's");
    assert.equal(
      await viaHost('127.0.0.1', token),
      404,
      'any other Host is the default tenant, which has no iris',
    );
  });

  test('a token in the query string is not a credential', async () => {
    const { token } = await as['tenant-a']!.createToken('query-caller', 'invoker');
    await until(
      'the token reaches the gateway',
      async () => (await infer('/t/tenant-a/v2/models/iris/infer', token)).status === 200,
    );
    for (const q of ['access_token', 'token']) {
      const answer = await infer(`/t/tenant-a/v2/models/iris/infer?${q}=${token}`);
      assert.equal(answer.status, 401, answer.body);
    }
  });

  test('rate limit: the burst passes, then 429 with Retry-After', async () => {
    const { token } = await as['tenant-a']!.createToken('limited', 'invoker', {
      rateLimit: { perSecond: 0.01, burst: 2 },
    });
    const iris = '/t/tenant-a/v2/models/iris/infer';
    // The first answer that is not 401 (the token reached the gateway) spends the first of the burst of two.
    await until('the token reaches the gateway', async () => (await infer(iris, token)).status !== 401);
    assert.equal((await infer(iris, token)).status, 200, 'the second of the burst');
    const limited = await infer(iris, token);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal(JSON.parse(limited.body).code, 'FERRY_RATE_LIMITED');
  });

  test('revoked and expired tokens stop working', async () => {
    const { token: revoked } = await as['tenant-a']!.createToken('to-revoke', 'invoker');
    await until(
      'works first',
      async () => (await infer('/t/tenant-a/v2/models/iris/infer', revoked)).status === 200,
    );
    await as['tenant-a']!.deleteToken('to-revoke');
    await until(
      'revoked: 401',
      async () => (await infer('/t/tenant-a/v2/models/iris/infer', revoked)).status === 401,
    );
    const { token: expiring } = await as['tenant-a']!.createToken('short', 'invoker', {
      expiresInSeconds: 1,
    });
    await until(
      'expired: 401',
      async () => (await infer('/t/tenant-a/v2/models/iris/infer', expiring)).status === 401,
    );
  });

  test('deleting a deployment revokes its keys', async () => {
    await as['tenant-a']!.deploy({ name: 'temp', model: 'iris', version: '1', replicas: 0 });
    await as['tenant-a']!.createToken('temp-key', 'invoker', { deployment: 'temp' });
    await as['tenant-a']!.deleteDeployment('temp');
    assert.ok(!(await as['tenant-a']!.listTokens()).some((t) => t.name === 'temp-key'));
  });
});
