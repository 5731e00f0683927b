import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scopeOf, unscopeText } from './tenant-scope.ts';

test('keys of the reading tenant read as plain names; image references and other tenants are left alone', () => {
  assert.equal(
    unscopeText('Deployment team-a/iris has no rollout ("team-a/iris", [team-a/m])', 'team-a'),
    'Deployment iris has no rollout ("iris", [m])',
  );
  assert.equal(
    unscopeText('Cannot pin registry:5000/team-a/iris:1', 'team-a'),
    'Cannot pin registry:5000/team-a/iris:1',
  );
  assert.equal(unscopeText('team-b/iris', 'team-a'), 'team-b/iris');
  assert.equal(unscopeText('iris', 'default'), 'iris');
});

test('a name with the key separator is refused, so no path reaches another tenant', () => {
  assert.equal(scopeOf('default').key('iris'), 'iris');
  assert.equal(scopeOf('team-a').key('iris'), 'team-a/iris');
  assert.throws(() => scopeOf('default').key('team-a/iris'), /cannot contain "\/"/);
});
