import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePath } from './paths.ts';

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
    assert.deepEqual(parsePath(url), { kind: 'model', deployment, before, after }, url);
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
  ])
    assert.deepEqual(parsePath(url), { kind: 'unknown' }, url);
});
