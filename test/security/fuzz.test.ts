/**
 * Fuzzing the control-plane API's bodies, path parameters and queries, and the gateway's paths and headers
 * (fast-check, a fixed seed so a failure reproduces): whatever arrives, the answer is a 4xx or a success, never a
 * 5xx and never a dropped connection, and both still answer afterwards. A real platform (process runtime) with one
 * private and one public deployment serving examples/iris. Traffic only to 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { addVersionFromDir } from '../../src/cli/upload.ts';
import { ControlClient } from '../../src/control/index.ts';
import { type Platform, startPlatform } from '../../src/platform/index.ts';
import { ROOT, tempDir, until } from '../helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const SEED = 20261206;
let platform: Platform;
const home = tempDir('ferry-fuzz-');
let invoker: string;
let ops: Array<{ method: string; path: string; operationId: string }>;

/** A raw HTTP request (node:http: any path bytes and header values fetch would refuse), its status or an error. */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<number> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    // Content-Length always: node:http sends a DELETE's body without one, which is not HTTP.
    const framed = body === undefined ? headers : { ...headers, 'content-length': String(body.length) };
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers: framed, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  platform = await startPlatform({ home: home.path, runtime: 'process', apiPort: 0, gatewayPort: 0 });
  const client = new ControlClient({ url: platform.apiUrl, token: platform.adminToken! });
  await client.createModel('iris');
  await addVersionFromDir(client, 'iris', '1', IRIS);
  await client.deploy({ name: 'iris', model: 'iris', version: '1', replicas: 1 });
  await client.deploy({ name: 'open', model: 'iris', version: '1', replicas: 1, public: true });
  invoker = (await client.createToken('fuzz', 'invoker')).token;
  for (const name of ['iris', 'open'])
    await until(`${name} ready`, async () => (await client.replicas(name)).some((r) => r.state === 'ready'));
  const doc = (await (await fetch(`${platform.apiUrl}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { operationId: string }>>;
  };
  ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      operationId: op.operationId,
    })),
  );
});

after(async () => {
  await platform?.stop({ removeReplicas: true });
  home.remove();
});

/** Strings that have broken parsers before: separators, encodings, traversal, control and wide characters. */
const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '',
    '..',
    '%2F',
    '%2e%2e',
    'a%2Fb',
    '%00',
    '%',
    '%zz',
    '\u00e9',
    'x'.repeat(300),
    'a/b',
    '\\',
    '*',
  ),
  fc.stringMatching(/^[a-z0-9-]{1,20}$/),
);

describe('fuzz: control-plane API', () => {
  test('random bodies, path parameters and queries on every route: never a 5xx', async () => {
    let requests = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.dictionary(fc.string({ maxLength: 8 }), nasty, { maxKeys: 3 }),
        nasty,
        fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(undefined)),
        async (pick, query, param, body) => {
          const op = ops[pick % ops.length]!;
          // Streams (logs with follow, GET /v1/stream) answer until the client goes.
          if (
            op.operationId === 'rotateSecretKey' ||
            op.operationId === 'logs' ||
            op.operationId === 'stream'
          )
            return;
          const path =
            op.path.replace(/\{[^}]+\}/g, encodeURIComponent(param)) +
            (Object.keys(query).length === 0 ? '' : `?${new URLSearchParams(query)}`);
          const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
          const status = await raw(
            platform.apiUrl,
            op.method,
            path,
            {
              authorization: `Bearer ${platform.adminToken}`,
              ...(payload ? { 'content-type': 'application/json' } : {}),
            },
            payload,
          );
          requests++;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          assert.ok(
            status >= 200 && status < 500,
            `${op.method} ${path} ${JSON.stringify(body)?.slice(0, 200)}: ${status}`,
          );
        },
      ),
      { seed: SEED, numRuns: 600 },
    );
    console.log(`# API fuzz: ${requests} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.equal((await fetch(`${platform.apiUrl}/healthz`)).status, 200);
  });

  test('random bytes as bodies and content types: never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2048 }),
        fc.constantFrom(
          'application/json',
          'application/x-tar',
          'text/plain',
          'application/json; charset=utf-16',
          '',
        ),
        fc.constantFrom(
          '/v1/models',
          '/v1/deployments',
          `/v1/artifacts/sha256:${'a'.repeat(64)}`,
          '/v1/tokens',
        ),
        async (bytes, type, path) => {
          const method = path.startsWith('/v1/artifacts') ? 'PUT' : 'POST';
          const status = await raw(
            platform.apiUrl,
            method,
            path,
            { authorization: `Bearer ${platform.adminToken}`, ...(type ? { 'content-type': type } : {}) },
            Buffer.from(bytes),
          );
          assert.ok(status >= 400 && status < 500, `${method} ${path} (${type}): ${status}`);
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
  });
});

describe('fuzz: gateway', () => {
  test('random paths, tenants, Hosts and Authorization headers: never a 5xx from the gateway itself', async () => {
    let requests = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          '/v2/models/',
          '/t/',
          '/t/default/v2/models/',
          '/v1/models/',
          '/v2/',
          '/',
          '/metrics',
          '/v2/health/',
        ),
        fc.oneof(nasty, fc.constantFrom('iris', 'open', 'default')),
        fc.constantFrom('', '/infer', '/ready', '/versions/1/infer', ':predict', '/v2/models/iris/infer'),
        fc.oneof(
          fc.constant(undefined),
          fc.constant(`Bearer ${invoker}`),
          fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
          fc.constant('Bearer'),
          fc.constant(`bearer ${'x'.repeat(4000)}`),
        ),
        fc.oneof(
          fc.constant(undefined),
          nasty.map((s) => s.replace(/[^\x21-\x7e]/g, '') || 'h'),
        ),
        fc.oneof(
          fc.constant('{"inputs":[]}'),
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
          fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b).toString('latin1')),
        ),
        async (prefix, middle, suffix, authorization, host, body) => {
          const path = `${prefix}${encodeURIComponent(middle)}${suffix}`;
          const status = await raw(
            platform.gatewayUrl,
            'POST',
            path,
            {
              'content-type': 'application/json',
              ...(authorization === undefined ? {} : { authorization }),
              ...(host === undefined ? {} : { host }),
            },
            Buffer.from(body, 'latin1'),
          );
          requests++;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          assert.ok(
            status >= 200 && status < 500,
            `POST ${path} (auth ${String(authorization).slice(0, 20)}, host ${host}): ${status}`,
          );
        },
      ),
      { seed: SEED, numRuns: 600 },
    );
    console.log(
      `# gateway fuzz: ${requests} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    const ok = await raw(
      platform.gatewayUrl,
      'POST',
      '/v2/models/open/infer',
      { 'content-type': 'application/json' },
      Buffer.from(
        JSON.stringify({
          inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
        }),
      ),
    );
    assert.equal(ok, 200, 'the gateway still serves');
  });
});
