import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canRetry,
  DEFAULT_RETRY_BUDGET,
  type RetryBudgetPolicy,
  type RetryBudgetState,
  recordRequest,
  recordRetry,
  retryBudget,
  shouldRetry,
  windowTotals,
} from './retry-budget.ts';

const t0 = 1_700_000_000_000;
const s = 1000;
// 20% of requests, plus 1 retry per second of a 10 s window (= 10), in 1 s buckets.
const policy: RetryBudgetPolicy = { ratio: 0.2, minRetriesPerSecond: 1, windowMs: 10 * s, bucketMs: s };

function requests(state: RetryBudgetState, now: number, n: number): RetryBudgetState {
  for (let i = 0; i < n; i++) state = recordRequest(state, now);
  return state;
}

/** Records retries at `now` while the budget allows, up to `max`; returns the state and how many. */
function retryWhileAllowed(state: RetryBudgetState, now: number, max = 10_000): [RetryBudgetState, number] {
  let n = 0;
  while (n < max && canRetry(state, now)) {
    state = recordRetry(state, now);
    n++;
  }
  return [state, n];
}

test('no traffic: only the minimum (1/s over 10 s = 10 retries)', () => {
  const [, n] = retryWhileAllowed(retryBudget(policy), t0);
  assert.equal(n, 10);
});

test('with traffic: ratio * requests + minimum', () => {
  let st = requests(retryBudget(policy), t0, 100);
  let n: number;
  [st, n] = retryWhileAllowed(st, t0);
  assert.equal(n, 30, '0.2 * 100 + 10');
  assert.equal(canRetry(st, t0), false);
  st = requests(st, t0, 5); // five more requests earn one more retry
  [st, n] = retryWhileAllowed(st, t0);
  assert.equal(n, 1);
});

test('timeline: old requests and retries leave the window bucket by bucket', () => {
  let st = requests(retryBudget(policy), t0, 100); // t0: 100 requests
  [st] = retryWhileAllowed(st, t0); // t0: 30 retries, budget spent
  assert.deepEqual(
    windowTotals(st, t0 + 9 * s),
    { requests: 100, retries: 30 },
    't0+9s: still in the window',
  );
  assert.equal(canRetry(st, t0 + 9 * s), false);
  assert.deepEqual(windowTotals(st, t0 + 10 * s), { requests: 0, retries: 0 }, 't0+10s: t0 has left');
  assert.equal(canRetry(st, t0 + 10 * s), true);
  st = requests(st, t0 + 10 * s, 50); // t0+10s: recording drops the old bucket
  assert.equal(st.buckets.length, 1);
  const [, n] = retryWhileAllowed(st, t0 + 10 * s);
  assert.equal(n, 20, '0.2 * 50 + 10');
});

test('sliding: requests spread over the window all count', () => {
  let st = retryBudget(policy);
  for (let k = 0; k < 10; k++) st = requests(st, t0 + k * s, 10); // 10 req/s for 10 s
  assert.deepEqual(windowTotals(st, t0 + 9 * s + 999), { requests: 100, retries: 0 });
  assert.deepEqual(windowTotals(st, t0 + 10 * s), { requests: 90, retries: 0 });
  assert.ok(st.buckets.length <= 10);
});

test('steady failure: retries stay within ratio + minimum of requests (no retry storm)', () => {
  // 100 req/s for 60 s, every request fails once and asks for a retry (T15 with defaults).
  let st = retryBudget(DEFAULT_RETRY_BUDGET);
  let sent = 0;
  let retried = 0;
  for (let ms = 0; ms < 60_000; ms += 10) {
    st = recordRequest(st, t0 + ms);
    sent++;
    if (canRetry(st, t0 + ms)) {
      st = recordRetry(st, t0 + ms);
      retried++;
    }
  }
  assert.equal(sent, 6000);
  assert.ok(retried <= 0.1 * sent + 60 + 10, `retried ${retried}`);
  assert.ok(retried >= 0.1 * sent, `retried ${retried}: the budget should be used`);
  assert.ok(st.buckets.length <= 10);
});

test('shouldRetry: decision table rows', () => {
  const rows: Array<[boolean, string, number, number, boolean]> = [
    // failedBeforeResponseBytes, method, attempt, maxAttempts, want
    [false, 'POST', 1, 2, false], // a response (even 5xx) is passed on
    [false, 'GET', 1, 3, false],
    [true, 'POST', 1, 2, true], // infer: connection refused/reset before any byte
    [true, 'post', 1, 2, true],
    [true, 'GET', 1, 2, true],
    [true, 'HEAD', 2, 3, true],
    [true, 'OPTIONS', 1, 2, true],
    [true, 'PUT', 1, 2, true],
    [true, 'DELETE', 1, 2, true],
    [true, 'PATCH', 1, 2, false],
    [true, 'CONNECT', 1, 2, false],
    [true, 'POST', 2, 2, false], // attempts used up
    [true, 'GET', 3, 2, false],
    [true, 'POST', 1, 1, false], // retries disabled
  ];
  for (const [failedBeforeResponseBytes, method, attempt, maxAttempts, want] of rows)
    assert.equal(
      shouldRetry({ failedBeforeResponseBytes, method, attempt, maxAttempts }),
      want,
      JSON.stringify({ failedBeforeResponseBytes, method, attempt, maxAttempts }),
    );
});
