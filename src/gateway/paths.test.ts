import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressedTenant, parsePath, tenantFromHost } from './paths.ts';

test('model paths: the deployment name, and the pieces around it for the rewrite', () => {
  const cases: [string, string, string, string][] = [
    ['/v2/models/iris', 'iris', '/v2/models/', ''],
    ['/v2/models/iris/ready', 'iris', '/v2/models/', '/ready'],
    ['/v2/models/iris/infer?x=1&y=2', 'iris', '/v2/models/', '/infer?x=1&y=2'],
    ['/v2/models/iris/versions/3', 'iris', '/v2/models/', '/versions/3'],
    ['/v2/models/iris/versions/3/ready', 'iris', '/v2/models/', '/versions/3/ready'],
    ['/v2/models/iris/versions/3/infer', 'iris', '/v2/models/', '/versions/3/infer'],
    ['/v2/models/my%20model/infer', 'my model', '/v2/models/', '/infer'],
    ['/v1/models/iris', 'iris', '/v1/models/', ''],
    ['/v1/models/iris:predict', 'iris', '/v1/models/', ':predict'],
    ['/v1/models/iris:predict?a', 'iris', '/v1/models/', ':predict?a'],
  ];
  for (const [url, deployment, before, after] of cases)
    assert.deepEqual(parsePath(url), { kind: 'model', tenant: null, deployment, before, after }, url);
});

test('local routes and unknown paths', () => {
  assert.deepEqual(parsePath('/v2/health/live'), { kind: 'local', route: 'live' });
  assert.deepEqual(parsePath('/v2/health/ready?x'), { kind: 'local', route: 'ready' });
  assert.deepEqual(parsePath('/v2'), { kind: 'local', route: 'server' });
  assert.deepEqual(parsePath('/metrics'), { kind: 'local', route: 'metrics' });
  for (const url of [
    '/',
    '/constructor',
    '/__proto__',
    '/v2/models/',
    '/v2/models//infer',
    '/v2/models/iris/explain',
    '/v2/models/iris/infer/more',
    '/v2/models/iris/versions/',
    '/v2/models/iris/versions/3/explain',
    '/v2/models/iris/versions',
    '/v2/models/%E0%A4%A/infer',
    '/v1/models/',
    '/v1/models/:predict',
    '/v1/models/iris:explain',
    '/v1/models/a/b',
    '/v3/models/iris',
    // A name that decodes to something with '/' would spell another tenant's key ('acme/iris').
    '/v2/models/acme%2Firis/infer',
    '/v2/models/acme%2firis',
    '/v1/models/acme%2Firis:predict',
    '/v2/models/%2F/infer',
  ])
    assert.deepEqual(parsePath(url), { kind: 'unknown' }, url);
});

test('/t/{tenant}/ prefixes every model path; the OIP path inside stays standard', () => {
  const cases: [string, string, string, string, string][] = [
    ['/t/acme/v2/models/iris', 'acme', 'iris', '/v2/models/', ''],
    ['/t/acme/v2/models/iris/infer?x=1', 'acme', 'iris', '/v2/models/', '/infer?x=1'],
    ['/t/acme/v2/models/iris/ready', 'acme', 'iris', '/v2/models/', '/ready'],
    ['/t/acme/v2/models/iris/versions/2/infer', 'acme', 'iris', '/v2/models/', '/versions/2/infer'],
    ['/t/acme/v1/models/iris', 'acme', 'iris', '/v1/models/', ''],
    ['/t/acme/v1/models/iris:predict', 'acme', 'iris', '/v1/models/', ':predict'],
    ['/t/default/v2/models/iris', 'default', 'iris', '/v2/models/', ''],
    ['/t/te%61m/v2/models/my%20model/infer', 'team', 'my model', '/v2/models/', '/infer'],
  ];
  for (const [url, tenant, deployment, before, after] of cases)
    assert.deepEqual(parsePath(url), { kind: 'model', tenant, deployment, before, after }, url);
});

test("under a prefix: health and server metadata are the gateway's own, /metrics and tricks match nothing", () => {
  assert.deepEqual(parsePath('/t/acme/v2/health/live'), { kind: 'local', route: 'live' });
  assert.deepEqual(parsePath('/t/acme/v2/health/ready'), { kind: 'local', route: 'ready' });
  assert.deepEqual(parsePath('/t/acme/v2'), { kind: 'local', route: 'server' });
  for (const url of [
    '/t/acme/metrics',
    '/t/acme',
    '/t/acme/',
    '/t//v2/models/iris',
    '/t/',
    '/t',
    '/t/acme?x/v2/models/iris',
    // A tenant or name that decodes to something with '/': never another tenant's deployment.
    '/t/acme%2Fother/v2/models/iris',
    '/t/acme/v2/models/other%2Firis/infer',
    '/t/acme/v1/models/other%2Firis:predict',
    '/t/%2F/v2/models/iris',
    '/t/%E0%A4%A/v2/models/iris',
    // One prefix only.
    '/t/acme/t/other/v2/models/iris',
    '/t/acme/v3/models/iris',
    '/t/acme/v2/models/',
  ])
    assert.deepEqual(parsePath(url), { kind: 'unknown' }, url);
});

test('tenantFromHost: a DNS label under the suffix names a tenant; other hosts are the default tenant', () => {
  const suffix = '.models.example.com';
  const cases: [string | undefined, string | null | undefined][] = [
    ['acme.models.example.com', 'acme'],
    ['ACME.Models.Example.COM:8080', 'acme'],
    ['acme.models.example.com.', 'acme'],
    ['team-7.models.example.com', 'team-7'],
    ['127.0.0.1:8080', undefined],
    ['localhost', undefined],
    ['[::1]:8080', undefined],
    ['models.example.com', undefined],
    ['acme.models.example.org', undefined],
    [undefined, undefined],
    // Under the suffix but not one tenant name: no route.
    ['.models.example.com', null],
    ['a.b.models.example.com', null],
    ['-x.models.example.com', null],
    ['a_b.models.example.com', null],
  ];
  for (const [host, tenant] of cases) assert.equal(tenantFromHost(host, suffix), tenant, String(host));
  assert.equal(tenantFromHost('acme.models.example.com', ''), undefined, 'no suffix: no Host routing');
});

test('addressedTenant: prefix, else Host, else default; a prefix never reaches past the Host', () => {
  const cases: [string | null, string | null | undefined, string | null][] = [
    [null, undefined, 'default'],
    ['acme', undefined, 'acme'],
    [null, 'acme', 'acme'],
    ['acme', 'acme', 'acme'],
    ['other', 'acme', null],
    [null, null, null],
    ['acme', null, null],
  ];
  for (const [path, host, want] of cases)
    assert.equal(addressedTenant(path, host, 'default'), want, `${path} ${host}`);
});
