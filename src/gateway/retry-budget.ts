/**
 * Retries, two questions:
 *
 * 1. `shouldRetry`: may this failed attempt be retried at all? Only when nothing can have been
 *    half-delivered: the connection failed before any response byte arrived (refused, reset,
 *    replica gone). A 5xx answer is a response, so it is passed on, not retried: the replica
 *    spoke, and retrying a slow or overloaded model only adds load.
 *
 *    | failed before response bytes | method                                  | attempt < max | retry |
 *    |------------------------------|-----------------------------------------|---------------|-------|
 *    | no                           | any                                     | any           | no    |
 *    | yes                          | GET HEAD OPTIONS PUT DELETE, and POST   | yes           | yes   |
 *    | yes                          | anything else (PATCH, CONNECT, TRACE)   | yes           | no    |
 *    | yes                          | any                                     | no            | no    |
 *
 *    GET ... DELETE are the idempotent methods of RFC 9110. POST is retried because the POSTs the
 *    gateway proxies (`/v2/models/.../infer`) compute and change nothing on the replica; repeating
 *    one costs compute, not correctness.
 *
 * 2. `canRetry`: is there budget left? (as Linkerd's retry budget / Envoy's retry_budget) Retries
 *    are allowed while `retries < ratio * requests + minRetriesPerSecond * windowSeconds`, both
 *    counted over a sliding window. The ratio keeps retries to a fixed share of real traffic, so a
 *    failing backend is not hit by a retry storm; the per-second minimum lets a quiet service
 *    still retry. The window is a few buckets of `bucketMs`; every function takes `now`.
 */

export interface RetryBudgetPolicy {
  /** Retries allowed per request in the window, e.g. 0.1. */
  ratio: number;
  /** Retries always allowed per second of window, whatever the traffic. */
  minRetriesPerSecond: number;
  /** Window length; a multiple of bucketMs. */
  windowMs: number;
  bucketMs: number;
}

/**
 * Defaults: the ratio matches the T15 bound (upstream attempts <= 1.1 x client requests); the
 * minimum adds at most 1 retry per second on top, which matters only at a few requests per second.
 */
export const DEFAULT_RETRY_BUDGET: RetryBudgetPolicy = {
  ratio: 0.1,
  minRetriesPerSecond: 1,
  windowMs: 10_000,
  bucketMs: 1_000,
};

interface Bucket {
  /** floor(time / bucketMs) */
  readonly index: number;
  readonly requests: number;
  readonly retries: number;
}

export interface RetryBudgetState {
  readonly policy: RetryBudgetPolicy;
  /** Buckets still inside the window, oldest first; at most windowMs / bucketMs of them. */
  readonly buckets: readonly Bucket[];
}

export function retryBudget(policy: RetryBudgetPolicy = DEFAULT_RETRY_BUDGET): RetryBudgetState {
  return { policy, buckets: [] };
}

function bucketCount(p: RetryBudgetPolicy): number {
  return Math.max(1, Math.ceil(p.windowMs / p.bucketMs));
}

/** Adds to the bucket of `now`, dropping buckets that have left the window. */
function add(state: RetryBudgetState, now: number, requests: number, retries: number): RetryBudgetState {
  const { policy } = state;
  const index = Math.floor(now / policy.bucketMs);
  const oldest = index - bucketCount(policy) + 1;
  const buckets: Bucket[] = [];
  let added = false;
  for (const b of state.buckets) {
    if (b.index < oldest) continue;
    if (b.index === index) {
      buckets.push({ index, requests: b.requests + requests, retries: b.retries + retries });
      added = true;
    } else buckets.push(b);
  }
  if (!added) buckets.push({ index, requests, retries });
  return { policy, buckets };
}

export function recordRequest(state: RetryBudgetState, now: number): RetryBudgetState {
  return add(state, now, 1, 0);
}

export function recordRetry(state: RetryBudgetState, now: number): RetryBudgetState {
  return add(state, now, 0, 1);
}

/** Requests and retries counted in the window that ends at `now`. */
export function windowTotals(state: RetryBudgetState, now: number): { requests: number; retries: number } {
  const index = Math.floor(now / state.policy.bucketMs);
  const oldest = index - bucketCount(state.policy) + 1;
  let requests = 0;
  let retries = 0;
  for (const b of state.buckets) {
    if (b.index < oldest || b.index > index) continue;
    requests += b.requests;
    retries += b.retries;
  }
  return { requests, retries };
}

/** True when one more retry at `now` stays within the budget. */
export function canRetry(state: RetryBudgetState, now: number): boolean {
  const { ratio, minRetriesPerSecond, windowMs } = state.policy;
  const { requests, retries } = windowTotals(state, now);
  return retries < ratio * requests + minRetriesPerSecond * (windowMs / 1000);
}

const RETRYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'POST']);

export interface RetryQuestion {
  /** The attempt failed before any byte of a response arrived (connect error, reset, replica gone). */
  failedBeforeResponseBytes: boolean;
  method: string;
  /** 1-based number of the attempt that just failed. */
  attempt: number;
  /** Total attempts allowed, the first one included. */
  maxAttempts: number;
}

/** Whether this failure may be retried at all; the budget (canRetry) is asked separately. */
export function shouldRetry(q: RetryQuestion): boolean {
  return (
    q.failedBeforeResponseBytes && q.attempt < q.maxAttempts && RETRYABLE_METHODS.has(q.method.toUpperCase())
  );
}
