/** The gateways' route file (route-file.ts): its text, its ETag, what a change does. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { DiscoveryTable } from '../core/route-table.ts';
import { RouteFile, routeFileEtag } from './route-file.ts';

const IRIS: DiscoveryTable = {
  deployments: [
    {
      name: 'iris',
      public: true,
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
  ],
  callers: [],
};

test('starts as an empty table, its ETag the quoted first 32 hex of the sha256 of its text', () => {
  const { body, etag } = new RouteFile().current();
  assert.equal(body, '{"deployments":[],"callers":[]}');
  const hex = createHash('sha256').update(body).digest('hex');
  assert.equal(etag, `"${hex.slice(0, 32)}"`);
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  assert.equal(routeFileEtag(body), etag);
});

test('set: the JSON text of the table and its ETag; the same table again changes nothing', () => {
  const file = new RouteFile();
  const empty = file.current();
  assert.equal(file.set(IRIS), true);
  const one = file.current();
  assert.deepEqual(JSON.parse(one.body), IRIS);
  assert.equal(one.etag, routeFileEtag(one.body));
  assert.notEqual(one.etag, empty.etag);
  assert.equal(file.set(structuredClone(IRIS)), false, 'an equal table is no change');
  assert.equal(file.current(), one, 'the same version, not a new one');
});

test('any change of the table changes the ETag; going back gives the old one', () => {
  const file = new RouteFile(IRIS);
  const before = file.current().etag;
  const moved = structuredClone(IRIS);
  moved.deployments[0]!.revisions[0]!.service = { host: 'tasks.ferry-iris-r2', port: 8080 };
  assert.equal(file.set(moved), true);
  assert.notEqual(file.current().etag, before);
  file.set(IRIS);
  assert.equal(file.current().etag, before, 'the ETag is a function of the text only');
});

test('the current version cannot be changed from outside', () => {
  const file = new RouteFile();
  const v = file.current() as { body: string };
  assert.throws(() => {
    v.body = 'x';
  }, TypeError);
  assert.equal(file.current().body, '{"deployments":[],"callers":[]}');
});
