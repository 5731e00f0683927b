import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isFerryError } from '../core/errors.ts';
import {
  contextPath,
  ferryHomeDir,
  readContext,
  removeContext,
  resolveConnection,
  writeContext,
} from './context.ts';
import { cliCommand } from './output.ts';

const root = mkdtempSync(join(tmpdir(), 'ferry-context-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const home = () => join(root, `home-${n++}`, '.ferry');

const CTX = {
  apiUrl: 'http://127.0.0.1:7070',
  gatewayUrl: 'http://127.0.0.1:8080',
  token: 'fy_secret',
  runtime: 'process' as const,
  pid: 1234,
};

describe('context file', () => {
  test('$FERRY_HOME/context.json, default ~/.ferry', () => {
    assert.equal(ferryHomeDir({ FERRY_HOME: '/srv/ferry' }), '/srv/ferry');
    assert.match(ferryHomeDir({}), /\.ferry$/);
    assert.equal(contextPath('/srv/ferry'), '/srv/ferry/context.json');
  });

  test('written 0600 in a 0700 directory, read back, removed', () => {
    const h = home();
    assert.equal(readContext(h), undefined);
    writeContext(h, CTX);
    assert.equal(statSync(contextPath(h)).mode & 0o777, 0o600);
    assert.equal(statSync(h).mode & 0o777, 0o700);
    assert.deepEqual(readContext(h), CTX);
    writeContext(h, { ...CTX, pid: undefined });
    const { pid: _pid, ...withoutPid } = CTX;
    assert.deepEqual(readContext(h), withoutPid, 'pid cleared');
    assert.equal('pid' in (readContext(h) ?? {}), false);
    removeContext(h);
    assert.equal(readContext(h), undefined);
    removeContext(h); // twice is fine
  });

  test('a damaged file is a FerryError naming it', () => {
    const h = home();
    writeContext(h, CTX);
    writeFileSync(contextPath(h), '{"apiUrl": 3}');
    assert.throws(
      () => readContext(h),
      (e: unknown) =>
        isFerryError(e) && e.code === 'FERRY_CONNECTION_FAILED' && e.message.includes(contextPath(h)),
    );
  });
});

describe('resolveConnection', () => {
  test('flags win over the environment, which wins over the context', () => {
    const h = home();
    writeContext(h, CTX);
    assert.deepEqual(resolveConnection({}, {}, h), {
      apiUrl: CTX.apiUrl,
      source: 'context',
      token: CTX.token,
      gatewayUrl: CTX.gatewayUrl,
    });
    assert.deepEqual(
      resolveConnection({}, { FERRY_API_URL: 'http://10.0.0.1:7070', FERRY_TOKEN: 'env-t' }, h),
      {
        apiUrl: 'http://10.0.0.1:7070',
        source: 'env',
        token: 'env-t',
      },
    );
    assert.deepEqual(
      resolveConnection(
        { api: 'http://h:1', token: 'flag-t' },
        { FERRY_API_URL: 'http://x:2', FERRY_TOKEN: 'env-t' },
        h,
      ),
      { apiUrl: 'http://h:1', source: 'flag', token: 'flag-t' },
    );
  });

  test("the context's token goes only to the context's own API", () => {
    const h = home();
    writeContext(h, CTX);
    assert.deepEqual(resolveConnection({ api: 'http://elsewhere:7070' }, {}, h), {
      apiUrl: 'http://elsewhere:7070',
      source: 'flag',
    });
    assert.equal(resolveConnection({ api: `${CTX.apiUrl}/` }, {}, h).token, CTX.token);
  });

  test('nothing known: FERRY_CONNECTION_FAILED with a hint to run ferry up', () => {
    assert.throws(
      () => resolveConnection({}, {}, home()),
      (e: unknown) =>
        isFerryError(e) &&
        e.code === 'FERRY_CONNECTION_FAILED' &&
        (e.hint ?? '').includes(`'${cliCommand()} up'`) &&
        !/fy_/.test(e.message),
    );
    assert.throws(
      () => resolveConnection({ api: 'localhost:7070' }, {}, home()),
      (e: unknown) =>
        isFerryError(e) && /not an http\(s\) URL/.test(e.message) && e.message.includes('--api'),
    );
  });
});
