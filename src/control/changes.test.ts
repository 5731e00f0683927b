import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ChangeFeed, type PlatformChange } from './changes.ts';
import { eventRecorder } from './events.ts';
import { openStore } from './store/store.ts';

test('watchers get each change until they unwatch; one that throws does not stop the others', () => {
  const warnings: string[] = [];
  const feed = new ChangeFeed({ info: () => {}, warn: (_o, m) => warnings.push(m ?? ''), error: () => {} });
  const seen: string[] = [];
  const stopA = feed.watch((c) => seen.push(`a:${c.kind}`));
  const stopBad = feed.watch(() => {
    throw new Error('boom');
  });
  const stopB = feed.watch((c) => seen.push(`b:${c.kind}`));
  assert.equal(feed.watchers, 3);
  feed.emit({ kind: 'state' });
  assert.deepEqual(seen, ['a:state', 'b:state']);
  assert.deepEqual(warnings, ['a change watcher failed']);
  stopA();
  stopA(); // twice is harmless
  stopBad();
  feed.emit({ kind: 'state' });
  assert.deepEqual(seen, ['a:state', 'b:state', 'b:state']);
  stopB();
  assert.equal(feed.watchers, 0);
});

test('the event recorder hands each stored record to the feed, id and tenant included', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-changes-'));
  const store = openStore(join(dir, 'state.db'));
  try {
    const feed = new ChangeFeed();
    const changes: PlatformChange[] = [];
    feed.watch((c) => changes.push(c));
    const record = eventRecorder(store, () => 42, undefined, feed);
    record('team-a/web', 'Warning', 'Crashed', 'team-a/web crashed');
    record(undefined, 'Normal', 'Adopted', 'replicas adopted');
    record(undefined, 'Normal', 'DeploymentDeleted', 'team-a/web deleted', 'team-a');
    assert.deepEqual(
      changes,
      store
        .listEvents()
        .reverse()
        .map((event) => ({ kind: 'event', event })),
    );
    assert.deepEqual(
      changes.map((c) => (c as { event: { tenant: string } }).event.tenant),
      ['team-a', 'default', 'team-a'],
      'an event that names no deployment is the default tenant unless told',
    );
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
