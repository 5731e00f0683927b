import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type EjectionPolicy,
  type EjectionState,
  ejectionState,
  isEjected,
  onResult,
  syncReplicas,
} from './ejection.ts';

const t0 = 1_700_000_000_000;
const s = 1000;
const policy: EjectionPolicy = {
  consecutiveFailures: 5,
  baseEjectionMs: 10 * s,
  maxEjectionMs: 60 * s,
  maxEjectedPercent: 50,
};

function fail(state: EjectionState, id: string, now: number, times = 1): EjectionState {
  for (let i = 0; i < times; i++) state = onResult(state, id, false, now, policy);
  return state;
}

test('five consecutive failures eject for the base time; a success in between resets the count', () => {
  let st = ejectionState(['a', 'b']);
  st = fail(st, 'a', t0, 4);
  assert.equal(st.replicas.a!.failures, 4);
  assert.equal(isEjected(st, 'a', t0), false);
  st = onResult(st, 'a', true, t0, policy); // t0: a success resets
  assert.equal(st.replicas.a!.failures, 0);
  st = fail(st, 'a', t0 + 1 * s, 4);
  assert.equal(isEjected(st, 'a', t0 + 1 * s), false, 'still only 4 in a row');
  st = fail(st, 'a', t0 + 1 * s); // t0+1s: the fifth in a row
  assert.equal(isEjected(st, 'a', t0 + 1 * s), true);
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 11 * s);
  assert.equal(isEjected(st, 'a', t0 + 11 * s - 1), true, 'ejected until t0+11s');
  assert.equal(isEjected(st, 'a', t0 + 11 * s), false, 'back at t0+11s');
  assert.equal(isEjected(st, 'b', t0 + 1 * s), false, 'b untouched');
});

test('late results during an ejection change nothing', () => {
  let st = fail(ejectionState(['a', 'b']), 'a', t0, 5);
  const ejected = st;
  st = fail(st, 'a', t0 + 2 * s, 10);
  st = onResult(st, 'a', true, t0 + 3 * s, policy);
  assert.equal(st, ejected);
});

test('timeline: one probe per cool-down, exponential backoff, cap at maxEjectionMs, then recovery', () => {
  let st = fail(ejectionState(['a', 'b']), 'a', t0, 5); // t0: ejected 10s
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 10 * s);
  st = fail(st, 'a', t0 + 10 * s); // t0+10s: the single probe fails -> 20s
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 30 * s);
  st = fail(st, 'a', t0 + 30 * s); // t0+30s: probe fails -> 40s
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 70 * s);
  st = fail(st, 'a', t0 + 70 * s); // t0+70s: probe fails -> 80s capped at 60s
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 130 * s);
  st = fail(st, 'a', t0 + 130 * s); // t0+130s: still capped
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 190 * s);
  st = onResult(st, 'a', true, t0 + 190 * s, policy); // t0+190s: the probe succeeds
  assert.deepEqual(st.replicas.a, { failures: 0, ejections: 5, ejectedUntil: t0 + 190 * s, probing: false });
  assert.equal(isEjected(st, 'a', t0 + 190 * s), false);
  // Serving again: one failure no longer ejects, it takes five.
  st = fail(st, 'a', t0 + 191 * s, 4);
  assert.equal(isEjected(st, 'a', t0 + 191 * s), false);
  // t0+192s: fifth failure, soon after the last ejection: backoff continues (capped 60s).
  st = fail(st, 'a', t0 + 192 * s);
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 252 * s);
});

test('healthy for longer than maxEjectionMs: the backoff starts over at the base time', () => {
  let st = fail(ejectionState(['a', 'b']), 'a', t0, 5); // t0: ejected until t0+10s
  st = fail(st, 'a', t0 + 10 * s); // probe fails: until t0+30s, second ejection
  st = onResult(st, 'a', true, t0 + 30 * s, policy); // recovers
  st = fail(st, 'a', t0 + 90 * s, 5); // t0+90s: 60s after the end, not more: third ejection (40s)
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 130 * s);
  st = onResult(st, 'a', true, t0 + 130 * s, policy);
  st = fail(st, 'a', t0 + 191 * s, 5); // t0+191s: 61s healthy: forgiven, base time again
  assert.equal(st.replicas.a!.ejections, 1);
  assert.equal(st.replicas.a!.ejectedUntil, t0 + 201 * s);
});

test('maxEjectedPercent: never more than floor(n * percent / 100) ejected at once', () => {
  // Rows: replicas, percent, how many of them fail 5 times at t0, how many end up ejected.
  const rows: Array<[number, number, number, number]> = [
    [1, 50, 1, 0], // a single replica is never ejected at 50%
    [1, 100, 1, 1],
    [2, 50, 2, 1], // both faulty: one keeps serving
    [4, 50, 4, 2],
    [5, 50, 5, 2],
    [10, 10, 3, 1],
    [10, 0, 3, 0], // 0 disables ejection
    [3, 100, 3, 3],
  ];
  for (const [n, percent, failing, want] of rows) {
    const ids = Array.from({ length: n }, (_, i) => `r${i}`);
    let st = ejectionState(ids);
    const p = { ...policy, maxEjectedPercent: percent };
    for (const id of ids.slice(0, failing)) for (let i = 0; i < 5; i++) st = onResult(st, id, false, t0, p);
    const ejected = ids.filter((id) => isEjected(st, id, t0)).length;
    assert.equal(ejected, want, `${n} replicas, ${percent}%, ${failing} failing`);
  }
});

test('held back by the cap, a failing replica is ejected on its next failure once there is room', () => {
  let st = fail(ejectionState(['a', 'b']), 'a', t0, 5); // a ejected until t0+10s
  st = fail(st, 'b', t0 + 1 * s, 5);
  assert.equal(isEjected(st, 'b', t0 + 1 * s), false, 'cap: 1 of 2');
  st = fail(st, 'b', t0 + 10 * s); // a's ejection is over, so there is room
  assert.equal(isEjected(st, 'b', t0 + 10 * s), true);
  assert.equal(st.replicas.b!.ejectedUntil, t0 + 20 * s);
});

test('replica set: unknown ids are added on first result; syncReplicas keeps, adds and forgets', () => {
  let st = ejectionState(['a']);
  st = onResult(st, 'b', true, t0, policy);
  assert.deepEqual(Object.keys(st.replicas), ['a', 'b']);
  st = fail(st, 'a', t0, 5);
  assert.equal(isEjected(st, 'a', t0), true, 'b counts toward n, so 1 of 2 may be ejected');
  st = syncReplicas(st, ['a', 'c']);
  assert.deepEqual(Object.keys(st.replicas), ['a', 'c']);
  assert.equal(isEjected(st, 'a', t0), true, 'a keeps its health');
  assert.equal(st.replicas.c!.failures, 0);
  assert.equal(isEjected(st, 'zzz', t0), false, 'an unknown id is not ejected');
});

test('onResult never mutates the state it was given', () => {
  const st = ejectionState(['a', 'b']);
  const copy = structuredClone(st);
  fail(st, 'a', t0, 5);
  onResult(st, 'c', false, t0, policy);
  assert.deepEqual(st, copy);
});
