import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isFerryError } from '../../core/errors.ts';
import { resolveCredentials } from './credentials.ts';
import { parseImageRef } from './ref.ts';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseImageRef', () => {
  const cases: Array<[string, string, string, string | undefined, string | undefined]> = [
    ['node', 'docker.io', 'library/node', 'latest', undefined],
    ['node:20-slim', 'docker.io', 'library/node', '20-slim', undefined],
    ['team/iris', 'docker.io', 'team/iris', 'latest', undefined],
    ['index.docker.io/library/node:20', 'docker.io', 'library/node', '20', undefined],
    ['127.0.0.1:5000/team/iris:1.0', '127.0.0.1:5000', 'team/iris', '1.0', undefined],
    ['localhost/iris', 'localhost', 'iris', 'latest', undefined],
    ['ghcr.io/a/b/c', 'ghcr.io', 'a/b/c', 'latest', undefined],
    [`reg.example.com:443/x@${D}`, 'reg.example.com:443', 'x', undefined, D],
    [`x:1@${D}`, 'docker.io', 'library/x', '1', D],
    ['my-team/iris_v2.x', 'docker.io', 'my-team/iris_v2.x', 'latest', undefined],
  ];
  for (const [ref, registry, repository, tag, digest] of cases) {
    test(ref, () => {
      const r = parseImageRef(ref);
      assert.deepEqual([r.registry, r.repository, r.tag, r.digest], [registry, repository, tag, digest]);
      assert.equal(r.reference, digest ?? tag);
    });
  }
  test('name is normalised', () => {
    assert.equal(parseImageRef('node').name, 'docker.io/library/node:latest');
    assert.equal(parseImageRef(`127.0.0.1:5000/a@${D}`).name, `127.0.0.1:5000/a@${D}`);
  });
  for (const bad of [
    '',
    'Team/iris',
    'iris:',
    'iris:-x',
    'iris@sha256:abc',
    'a//b',
    'iris name',
    '/iris',
    'a/b:c:d',
  ]) {
    test(`rejects "${bad}"`, () => {
      assert.throws(
        () => parseImageRef(bad),
        (e) => isFerryError(e) && e.code === 'FERRY_BAD_REQUEST' && e.message.includes(`"${bad}"`),
      );
    });
  }
});

describe('resolveCredentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-creds-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'config.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
        '127.0.0.1:5000': { auth: Buffer.from('local:secret').toString('base64') },
        'http://reg.example.com/v2/': { username: 'u', password: 'p' },
      },
      credHelpers: { 'gcr.io': 'gcloud' },
    }),
  );

  test('environment wins over the Docker config', () => {
    const env = { FERRY_REGISTRY_USERNAME: 'e', FERRY_REGISTRY_PASSWORD: 'p' };
    assert.deepEqual(resolveCredentials('127.0.0.1:5000', env, cfg), {
      credentials: { username: 'e', password: 'p' },
      source: 'environment',
    });
    assert.deepEqual(resolveCredentials('x', { FERRY_REGISTRY_TOKEN: 't' }, cfg).credentials, { token: 't' });
    assert.throws(
      () => resolveCredentials('x', { FERRY_REGISTRY_USERNAME: 'e' }, cfg),
      (e) => isFerryError(e) && /FERRY_REGISTRY_PASSWORD is not/.test(e.message),
    );
  });

  test('Docker config auths, with URL-style keys and Docker Hub aliases', () => {
    assert.deepEqual(resolveCredentials('127.0.0.1:5000', {}, cfg).credentials, {
      username: 'local',
      password: 'secret',
    });
    assert.deepEqual(resolveCredentials('docker.io', {}, cfg).credentials, {
      username: 'hubuser',
      password: 'hub:pass',
    });
    assert.deepEqual(resolveCredentials('reg.example.com', {}, cfg).credentials, {
      username: 'u',
      password: 'p',
    });
    assert.equal(resolveCredentials('127.0.0.1:5000', {}, cfg).source, cfg);
    assert.deepEqual(resolveCredentials('other:1', {}, cfg), { credentials: undefined, source: 'none' });
    assert.deepEqual(resolveCredentials('x', {}, join(dir, 'missing.json')), {
      credentials: undefined,
      source: 'none',
    });
  });

  test('a credential helper is named in the hint; DOCKER_CONFIG is honoured', () => {
    const r = resolveCredentials('gcr.io', {}, cfg);
    assert.equal(r.credentials, undefined);
    assert.match(r.hint ?? '', /docker-credential-gcloud/);
    assert.equal(resolveCredentials('127.0.0.1:5000', { DOCKER_CONFIG: dir }).source, cfg);
  });

  test('a broken config names the file, never its content', () => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"auths": {"x": {"auth": "c2VjcmV0"}}');
    assert.throws(
      () => resolveCredentials('x', {}, broken),
      (e) => isFerryError(e) && e.message.includes(broken) && !e.message.includes('c2VjcmV0'),
    );
  });
});
