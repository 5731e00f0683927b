import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statusLabel, statusLabels } from './status-label.ts';

test('registered codes and 499 stay themselves; others fold into their class; outside 100-599 is other', () => {
  assert.equal(statusLabel(200), '200');
  assert.equal(statusLabel(503), '503');
  assert.equal(statusLabel(418), '418');
  assert.equal(statusLabel(499), '499');
  assert.equal(statusLabel(299), '2xx');
  assert.equal(statusLabel(599), '5xx');
  assert.equal(statusLabel(600), 'other');
  assert.equal(statusLabel(999), 'other');
  assert.equal(statusLabel(-1), 'other');
  assert.equal(statusLabel(1.5), 'other');
  const all = new Set(statusLabels());
  for (let s = 0; s <= 1000; s++) assert.ok(all.has(statusLabel(s)), String(s));
  assert.equal(all.size, 70);
});
