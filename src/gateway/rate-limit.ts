/**
 * Per-token rate limits at the gateway (issue 10): a token bucket. Pure: the caller keeps the bucket and
 * passes the time (ms on a monotonic clock); nothing here reads a clock or allocates.
 *
 * A bucket holds up to `burst` tokens and refills at `ratePerSecond`; a request takes one.
 *
 * | tokens after refill (capped at burst) | result                                                     |
 * |---------------------------------------|------------------------------------------------------------|
 * | >= 1                                  | allowed; one token taken                                   |
 * | < 1                                   | refused; retryAfterSeconds = ceil((1 - tokens) / rate), >= 1 |
 *
 * A new bucket starts full, so a client's first `burst` requests pass at once. Time that runs backwards
 * (a clock step) refills nothing. A refused request takes nothing, so a client that keeps retrying does not
 * push its own recovery further away.
 */

export interface RateLimit {
  /** Sustained requests per second; > 0. */
  ratePerSecond: number;
  /** Requests allowed at once after a quiet spell; >= 1. */
  burst: number;
}

export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  updatedAt: number;
}

export function newBucket(limit: RateLimit, now: number): Bucket {
  return { tokens: limit.burst, updatedAt: now };
}

/**
 * Takes a token from `bucket` if it has one, updating it in place (the gateway keeps one per token, and this
 * runs on every request). Returns 0 when the request may go, else the seconds to put in Retry-After.
 */
export function takeToken(bucket: Bucket, limit: RateLimit, now: number): number {
  const elapsed = now - bucket.updatedAt;
  if (elapsed > 0) {
    bucket.tokens = Math.min(limit.burst, bucket.tokens + (elapsed / 1000) * limit.ratePerSecond);
    bucket.updatedAt = now;
  }
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  return Math.max(1, Math.ceil((1 - bucket.tokens) / limit.ratePerSecond));
}

/** A configured limit's problems, one sentence each (empty when it is valid). */
export function rateLimitProblems(limit: RateLimit): string[] {
  const problems: string[] = [];
  if (!(Number.isFinite(limit.ratePerSecond) && limit.ratePerSecond > 0))
    problems.push(`ratePerSecond must be a number above 0, got ${limit.ratePerSecond}`);
  if (!(Number.isFinite(limit.burst) && limit.burst >= 1))
    problems.push(`burst must be a number of at least 1, got ${limit.burst}`);
  return problems;
}
