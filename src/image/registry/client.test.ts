import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, sign as cryptoSign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isFerryError } from '../../core/errors.ts';
import { assembleImage } from '../oci/image.ts';
import { buildLayer } from '../oci/layer.ts';
import type { Image, ImageConfig } from '../oci/types.ts';
import { type PushProgress, parseChallenge, RegistryClient } from './client.ts';
import { startTestRegistry, type TestRegistry } from './test-registry.ts';

const config: Omit<ImageConfig, 'rootfs' | 'history'> = {
  architecture: 'amd64',
  os: 'linux',
  created: '1970-01-01T00:00:00Z',
  config: { Cmd: ['/app/run'] },
};

// A "base" layer big enough that skipping it is visible, and a small top layer.
const bigBase = Buffer.alloc(256 * 1024);
for (let i = 0; i < bigBase.length; i++) bigBase[i] = (i * 7919) & 0xff;

async function image(code: string): Promise<Image> {
  const base = await buildLayer([{ type: 'file', path: 'usr/lib/libbig.so', source: bigBase }], 'runtime');
  const top = await buildLayer(
    [{ type: 'file', path: 'app/handler.js', source: Buffer.from(code) }],
    'handler',
  );
  return assembleImage({ layers: [base, top], config });
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('RegistryClient against docker-registry', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startTestRegistry();
  });
  after(async () => {
    await reg?.stop();
  });

  test('push uploads every blob, a second push skips them all, a top-layer change uploads only it', async () => {
    const events: PushProgress[] = [];
    const client = new RegistryClient(reg.host, { onProgress: (e) => events.push(e) });
    const v1 = await image('v1');
    for (const l of v1.layers) assert.equal(await client.hasBlob('team/iris', l.digest), false);

    const first = await client.pushImage('team/iris', '1', v1);
    const total = v1.layers.reduce((n, l) => n + l.size, 0) + v1.configBlob.byteLength;
    assert.deepEqual(first, {
      digest: v1.manifestDigest,
      pushedBytes: total,
      skippedBytes: 0,
      pushedBlobs: 3,
      skippedBlobs: 0,
    });
    for (const l of v1.layers) assert.equal(await client.hasBlob('team/iris', l.digest), true);
    assert.equal(await client.hasBlob('team/iris', v1.configDigest), true);
    assert.deepEqual(
      events.map((e) => (e.type === 'blob' ? `${e.status} ${e.what}` : `manifest ${e.tag}`)),
      [
        'uploading runtime',
        'uploaded runtime',
        'uploading handler',
        'uploaded handler',
        'uploading config',
        'uploaded config',
        'manifest 1',
      ],
    );

    const again = await client.pushImage('team/iris', '1', v1);
    assert.equal(again.pushedBytes, 0);
    assert.equal(again.pushedBlobs, 0);
    assert.equal(again.skippedBytes, total);
    assert.equal(again.digest, v1.manifestDigest);

    const v2 = await image('v2');
    assert.equal(v2.layers[0]!.digest, v1.layers[0]!.digest);
    const second = await client.pushImage('team/iris', '2', v2);
    assert.equal(second.pushedBlobs, 2);
    assert.equal(second.pushedBytes, v2.layers[1]!.size + v2.configBlob.byteLength);
    assert.equal(second.skippedBytes, v1.layers[0]!.size);
  });

  test('pull returns the same bytes; the pulled image serves as a base', async () => {
    const client = new RegistryClient(reg.host);
    const v1 = await image('pull');
    await client.pushImage('team/pull', 'latest', v1);
    for (const ref of ['latest', v1.manifestDigest]) {
      const got = await client.pullImage('team/pull', ref);
      assert.equal(hex(got.manifestBlob), hex(v1.manifestBlob));
      assert.equal(hex(got.configBlob), hex(v1.configBlob));
      assert.equal(got.configDigest, v1.configDigest);
      assert.deepEqual(
        got.layers.map((l) => [l.digest, l.diffId, l.size, hex(l.blob)]),
        v1.layers.map((l) => [l.digest, l.diffId, l.size, hex(l.blob)]),
      );
      assert.equal(assembleImage({ base: got, layers: [], config }).manifestDigest, v1.manifestDigest);
    }
    const m = await client.getManifest('team/pull', 'latest');
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(m.digest, v1.manifestDigest);
  });

  test('missing images and unreachable registries give FerryErrors naming registry and repository', async () => {
    const client = new RegistryClient(reg.host);
    await assert.rejects(
      client.getManifest('team/none', 'latest'),
      (e) =>
        isFerryError(e) &&
        e.code === 'FERRY_FILE_NOT_FOUND' &&
        e.message.includes(`${reg.host} has no image team/none:latest`),
    );
    await assert.rejects(
      client.getBlob('team/iris', `sha256:${'0'.repeat(64)}`),
      (e) => isFerryError(e) && /answered 404/.test(e.message) && e.message.includes('team/iris'),
    );
    const other = await startTestRegistry();
    const host = other.host;
    await other.stop();
    await assert.rejects(
      new RegistryClient(host).hasBlob('x/y', `sha256:${'0'.repeat(64)}`),
      (e) =>
        isFerryError(e) &&
        e.code === 'FERRY_CONNECTION_FAILED' &&
        e.message.includes(`Cannot reach registry ${host}`),
    );
  });
});

describe('RegistryClient with htpasswd auth', () => {
  const username = 'ferry';
  const password = 'S3cret-pässword';
  let reg: TestRegistry;
  before(async () => {
    reg = await startTestRegistry({ auth: { username, password } });
  });
  after(async () => {
    await reg?.stop();
  });

  test('right credentials push and pull', async () => {
    const client = new RegistryClient(reg.host, { credentials: { username, password } });
    const img = await image('auth');
    const res = await client.pushImage('secure/iris', '1', img);
    assert.equal(res.pushedBlobs, 3);
    const got = await client.pullImage('secure/iris', '1');
    assert.equal(got.manifestDigest, img.manifestDigest);
  });

  test('no or wrong credentials give a clear error without the password', async () => {
    const img = await image('auth');
    const check = (e: unknown, re: RegExp) => {
      assert.ok(isFerryError(e));
      assert.equal(e.code, 'FERRY_CONNECTION_FAILED');
      assert.match(e.message, re);
      assert.ok(e.message.includes(reg.host) && e.message.includes('secure/iris'));
      const all = JSON.stringify({ m: e.message, h: e.hint, d: e.details });
      assert.ok(!all.includes('wrong-pass') && !all.includes(password) && !all.includes('d3Jvbmc'), all);
      assert.match(e.hint ?? '', /FERRY_REGISTRY_USERNAME/);
      return true;
    };
    await assert.rejects(new RegistryClient(reg.host).pushImage('secure/iris', '2', img), (e) =>
      check(e, /no credentials were found|none were found/),
    );
    const wrong = new RegistryClient(reg.host, { credentials: { username, password: 'wrong-pass' } });
    await assert.rejects(wrong.pushImage('secure/iris', '2', img), (e) =>
      check(e, /rejected the credentials/),
    );
    await assert.rejects(wrong.getManifest('secure/iris', '1'), (e) => check(e, /rejected the credentials/));
  });
});

describe('parseChallenge', () => {
  test('quoted and bare parameters', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"',
      ),
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example.com/token',
          service: 'registry.example.com',
          scope: 'repository:a/b:pull,push',
        },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm=ferry-test'), {
      scheme: 'basic',
      params: { realm: 'ferry-test' },
    });
  });
});

describe('RegistryClient with bearer token auth', () => {
  const username = 'tok-user';
  const password = 'tok-secret';
  let reg: TestRegistry;
  let tokenServer: Server;
  let dir: string;
  const tokenRequests: Array<{ scope: string | null; service: string | null; basic: boolean }> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-token-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=ferry-test-token',
        '-days',
        '2',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const key = createPrivateKey(readFileSync(join(dir, 'key.pem')));
    const certDer = new X509Certificate(readFileSync(join(dir, 'cert.pem'))).raw.toString('base64');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    // A token server in the style of Docker Hub's: Basic creds in, a JWT for the asked scope out.
    tokenServer = createHttpServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const scope = url.searchParams.get('scope');
      const auth = req.headers.authorization ?? '';
      tokenRequests.push({
        scope,
        service: url.searchParams.get('service'),
        basic: auth.startsWith('Basic '),
      });
      if (auth !== `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`) {
        res.writeHead(401).end();
        return;
      }
      const [type, name, actions] = (scope ?? '').split(':');
      const now = Math.floor(Date.now() / 1000);
      const header = b64({ typ: 'JWT', alg: 'RS256', x5c: [certDer] });
      const claims = b64({
        iss: 'ferry-test-issuer',
        sub: username,
        aud: 'ferry-test',
        exp: now + 600,
        nbf: now - 60,
        iat: now,
        jti: String(Math.random()),
        access: [{ type, name, actions: (actions ?? '').split(',') }],
      });
      const sig = cryptoSign('sha256', Buffer.from(`${header}.${claims}`), key).toString('base64url');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: `${header}.${claims}.${sig}` }));
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
    const port = (tokenServer.address() as AddressInfo).port;
    reg = await startTestRegistry({
      token: {
        realm: `http://127.0.0.1:${port}/token`,
        service: 'ferry-test',
        issuer: 'ferry-test-issuer',
        rootCertBundle: join(dir, 'cert.pem'),
      },
    });
  });
  after(async () => {
    await reg?.stop();
    tokenServer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a token is fetched for the push scope, with the credentials; push and pull work', async () => {
    const client = new RegistryClient(reg.host, { credentials: { username, password } });
    const img = await image('token');
    assert.equal((await client.pushImage('tok/iris', '1', img)).pushedBlobs, 3);
    assert.equal((await client.pullImage('tok/iris', '1')).manifestDigest, img.manifestDigest);
    assert.ok(
      tokenRequests.some(
        // The registry lists the actions in either order (it builds them from a Go map).
        (r) =>
          /^repository:tok\/iris:(pull,push|push,pull)$/.test(r.scope ?? '') &&
          r.service === 'ferry-test' &&
          r.basic,
      ),
    );
  });

  test('a refused token request is an auth error without the password', async () => {
    const client = new RegistryClient(reg.host, { credentials: { username, password: 'nope-wrong' } });
    await assert.rejects(client.getManifest('tok/iris', '1'), (e) => {
      assert.ok(isFerryError(e) && e.code === 'FERRY_CONNECTION_FAILED');
      assert.match(e.message, /token service refused the credentials/);
      assert.ok(!JSON.stringify({ m: e.message, h: e.hint, d: e.details }).includes('nope-wrong'));
      return true;
    });
  });
});
