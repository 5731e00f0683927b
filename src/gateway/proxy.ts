/**
 * One proxied request (an Exchange): send it to a replica, stream the body up and the response
 * back, retry on another replica when an attempt failed before any response byte, mirror shadow
 * copies, and keep outstanding counts, ejection and metrics current. The decisions come from the
 * pure modules (balancer, ejection, retry-budget, traffic); this file only does the I/O.
 *
 * Body: chunks go to the replica as they arrive (no concatenation); they are also kept, up to
 * maxRetryBodyBytes, so that a retry or a shadow copy can resend them. Past that limit nothing is
 * kept and the request can no longer be retried or mirrored.
 *
 * Attempt outcomes:
 *
 * | what happened                                    | ejection | client gets                             |
 * |--------------------------------------------------|----------|-----------------------------------------|
 * | response, status not 502/503/504                 | ok       | the response, streamed                  |
 * | response 502/503/504 (not shutting down)         | failure  | the response, streamed                  |
 * | 503 with x-ferry-draining: 1 (draining replica)  | failure  | retry elsewhere, else 502               |
 * | connect error / reset before response headers    | failure  | retry elsewhere, else 502               |
 * | request timeout                                  | failure  | 504 (or a cut connection if streaming)  |
 * | connection broke while streaming the response    | failure  | the connection is cut (cannot be fixed) |
 *
 * One exception to "never the same replica twice": a reset on a reused keep-alive connection
 * before any response byte (the replica closed an idle connection just as we reused it) is
 * resent once to the same replica on a fresh connection, without counting as a failure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { FerryError } from '../core/errors.ts';
import { DRAINING_HEADER } from '../core/replica.ts';
import { leastOutstanding, powerOfTwoChoices } from './balancer.ts';
import { forwardResponseHeaders, requestHead } from './headers.ts';
import type { FailureReason, ShadowOutcome } from './metrics.ts';
import type { Random } from './random.ts';
import { sendError } from './reply.ts';
import { canRetry, recordRetry, shouldRetry } from './retry-budget.ts';
import type { ReplicaState, RevisionState, RouteState } from './state.ts';
import { endAttempt, type GatewayTrace } from './tracing.ts';
import type { UpstreamClient, UpstreamConnection, UpstreamError, UpstreamListener } from './upstream.ts';

export type BalancerName = 'least-outstanding' | 'power-of-two';

/** A body the activator read while the request was held (kept whole: it was within maxRetryBodyBytes). */
export interface HeldBody {
  chunks: Buffer[];
  bytes: number;
  ended: boolean;
}

export interface ProxyContext {
  state: RouteState;
  upstream: UpstreamClient;
  random: Random;
  now: () => number;
  balancer: BalancerName;
  maxAttempts: number;
  maxRetryBodyBytes: number;
  requestTimeoutMs: number;
  logger: Logger | undefined;
  /** The gateway is closing: responses carry Connection: close. */
  closing: boolean;
}

export function pickReplica(
  ctx: ProxyContext,
  revision: RevisionState,
  exclude?: ReadonlySet<string>,
): ReplicaState | null {
  const now = ctx.now();
  const id =
    ctx.balancer === 'power-of-two'
      ? powerOfTwoChoices(revision.replicas, now, ctx.random, exclude)
      : leastOutstanding(revision.replicas, now, exclude);
  if (id === null) return null;
  for (const r of revision.replicas) if (r.id === id) return r;
  return null;
}

/** The header a draining replica's 503 carries (src/core/replica.ts), lower case as raw headers are compared. */
const DRAINING = DRAINING_HEADER.toLowerCase();

/** True when the response headers say the replica is draining (`x-ferry-draining: 1`). */
function isDraining(rawHeaders: string[]): boolean {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.length === DRAINING.length && rawHeaders[i]!.toLowerCase() === DRAINING)
      return rawHeaders[i + 1]!.trim() === '1';
  return false;
}

function noop(): void {}

/** One attempt of an exchange on one replica connection; relays the connection's events. */
class Attempt implements UpstreamListener {
  /** The outstanding slot was given back; every later event of this attempt is ignored. */
  released = false;
  /** Response headers arrived. */
  responded = false;
  status = 0;
  /** Tracing on: this attempt's client span (tracing.ts). */
  span: Span | undefined = undefined;

  constructor(
    readonly exchange: Exchange,
    readonly replica: ReplicaState,
    readonly conn: UpstreamConnection,
  ) {}

  head(status: number, rawHeaders: string[]): void {
    this.exchange.onHead(this, status, rawHeaders);
  }
  data(chunk: Buffer, last: boolean): void {
    this.exchange.onBody(this, chunk, last);
  }
  end(): void {
    this.exchange.onUpstreamEnd(this);
  }
  error(err: UpstreamError): void {
    this.exchange.onUpstreamError(this, err);
  }
}

export class Exchange {
  readonly #ctx: ProxyContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #revision: RevisionState;
  readonly #method: string;
  readonly #path: string;
  readonly #block: string;
  readonly #chunked: boolean;
  readonly #requestId: string;
  readonly #startedAt: number;
  /** Path pieces around the model name, to build shadow paths. */
  readonly #before: string;
  readonly #after: string;
  #shadows: string[] | null;
  /** Tracing on: the request's trace (tracing.ts); undefined otherwise. */
  readonly #trace: GatewayTrace | undefined;

  #chunks: Buffer[] = [];
  #bodyBytes = 0;
  #overflow = false;
  #bodyEnded = false;
  #current: Attempt | null = null;
  #attempts = 0;
  #exclude: Set<string> | null = null;
  #staleRetried = false;
  /** The outcome is decided (answered, timed out, aborted): late events change nothing. */
  #done = false;
  #code = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #resumeClient = () => this.#req.resume();

  constructor(
    ctx: ProxyContext,
    req: IncomingMessage,
    res: ServerResponse,
    revision: RevisionState,
    path: { before: string; after: string },
    forwarded: { block: string; chunked: boolean; requestId: string; trace?: GatewayTrace | undefined },
    startedAt: number,
    shadows: string[] | null,
  ) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
    this.#revision = revision;
    this.#method = req.method ?? 'GET';
    this.#before = path.before;
    this.#after = path.after;
    this.#path = path.before + revision.encodedName + path.after;
    this.#block = forwarded.block;
    this.#chunked = forwarded.chunked;
    this.#requestId = forwarded.requestId;
    this.#startedAt = startedAt;
    this.#shadows = shadows;
    this.#trace = forwarded.trace;
  }

  /**
   * Sends the request to `replica`. `held`: the activator held it and read (part of) its body already; the
   * request is then already in flight for the revision's load (counted when it was held).
   */
  start(replica: ReplicaState, held?: HeldBody): void {
    // The close listener first: whatever happens next, the load's in-flight count comes down with it.
    this.#res.once('close', () => this.#onClose());
    if (held === undefined) this.#revision.load.arrive(this.#ctx.now());
    else {
      this.#chunks = held.chunks;
      this.#bodyBytes = held.bytes;
      this.#bodyEnded = held.ended;
    }
    this.#send(replica);
    const req = this.#req;
    if (!this.#bodyEnded) {
      req.on('data', (chunk: Buffer) => this.#onData(chunk));
      req.on('end', () => this.#onEnd());
    } else this.#startShadows();
    req.on('error', noop);
    this.#timer = setTimeout(() => this.#onTimeout(), this.#ctx.requestTimeoutMs);
  }

  #send(replica: ReplicaState): void {
    this.#attempts++;
    const ctx = this.#ctx;
    ctx.state.acquire(replica, this.#revision.metrics);
    const conn = ctx.upstream.connection(replica.host, replica.port, replica.hostHeader);
    const a = new Attempt(this, replica, conn);
    this.#current = a;
    let block = this.#block;
    if (this.#trace !== undefined) {
      const traced = this.#trace.attempt(replica.id, this.#revision.key);
      a.span = traced.span;
      block += traced.header;
    }
    conn.start(
      {
        head: requestHead(this.#method, this.#path, replica.hostHeader, block, this.#chunked),
        chunked: this.#chunked,
        headOnly: this.#method === 'HEAD',
      },
      a,
    );
    for (const c of this.#chunks) conn.write(c, noop);
    if (this.#bodyEnded) conn.end();
  }

  #onData(chunk: Buffer): void {
    if (!this.#overflow) {
      this.#bodyBytes += chunk.length;
      if (this.#bodyBytes > this.#ctx.maxRetryBodyBytes) {
        this.#overflow = true;
        this.#chunks = [];
      } else this.#chunks.push(chunk);
    }
    const a = this.#current;
    if (a === null || a.released) return;
    if (!a.conn.write(chunk, this.#resumeClient)) this.#req.pause();
  }

  #onEnd(): void {
    this.#bodyEnded = true;
    const a = this.#current;
    if (a !== null && !a.released) a.conn.end();
    this.#startShadows();
  }

  #startShadows(): void {
    const shadows = this.#shadows;
    if (shadows !== null && !this.#done) {
      this.#shadows = null;
      for (const key of shadows) this.#shadow(key);
    }
  }

  /** `outcome`: the replica's status, or why the attempt ended without a whole answer (its span's end). */
  #release(a: Attempt, outcome: number | string): void {
    if (a.span !== undefined) endAttempt(a.span, outcome);
    a.released = true;
    this.#ctx.state.release(a.replica, this.#revision.metrics);
  }

  #fail(a: Attempt, reason: FailureReason, detail: string): void {
    const ctx = this.#ctx;
    const rev = this.#revision;
    this.#release(a, reason);
    rev.metrics.upstreamFailure(reason);
    ctx.state.result(rev, a.replica, false, ctx.now());
    ctx.logger?.warn(
      {
        deployment: rev.deployment.name,
        revision: rev.key,
        replica: a.replica.id,
        reason,
        detail,
        requestId: this.#requestId,
        attempt: this.#attempts,
      },
      'gateway: attempt to replica failed',
    );
  }

  onUpstreamError(a: Attempt, err: UpstreamError): void {
    if (a.released) return;
    if (a.responded) {
      // Broke while the response streamed: the client connection cannot be repaired.
      this.#fail(a, 'response_aborted', err.code);
      this.#abortClient();
      return;
    }
    if (
      !this.#done &&
      !this.#staleRetried &&
      a.conn.reused &&
      !a.responded &&
      (err.code === 'ECONNRESET' || err.code === 'EPIPE') &&
      !this.#overflow
    ) {
      // A keep-alive connection the replica had just closed: not the replica's fault.
      this.#staleRetried = true;
      this.#release(a, 'stale_connection');
      this.#attempts--;
      this.#send(a.replica);
      return;
    }
    this.#fail(a, 'connect', err.code);
    this.#retryOrFail(a.replica, `replica ${a.replica.id} failed before answering (${err.code})`);
  }

  #retryOrFail(failed: ReplicaState, why: string): void {
    if (this.#done) return;
    this.#current = null;
    const ctx = this.#ctx;
    const dep = this.#revision.deployment;
    const may = shouldRetry({
      failedBeforeResponseBytes: true,
      method: this.#method,
      attempt: this.#attempts,
      maxAttempts: ctx.maxAttempts,
    });
    if (!may) {
      const more = this.#attempts >= ctx.maxAttempts ? ` after ${this.#attempts} attempt(s)` : '';
      this.#bad(`${why}${more}`);
      return;
    }
    if (this.#overflow) {
      this.#bad(`${why}; the body is over ${ctx.maxRetryBodyBytes} bytes, so it was not kept for a retry`);
      return;
    }
    const now = ctx.now();
    if (!canRetry(dep.budget, now)) {
      this.#bad(`${why}; the retry budget of deployment '${dep.name}' is spent`);
      return;
    }
    if (this.#exclude === null) this.#exclude = new Set();
    this.#exclude.add(failed.id);
    const next = pickReplica(ctx, this.#revision, this.#exclude);
    if (next === null) {
      this.#bad(`${why}; no other ready replica of revision ${this.#revision.key}`);
      return;
    }
    dep.budget = recordRetry(dep.budget, now);
    dep.countRetry();
    this.#req.resume();
    this.#send(next);
  }

  #bad(message: string): void {
    this.#error(
      new FerryError('FERRY_UPSTREAM_FAILED', `${message} (deployment '${this.#revision.deployment.name}')`, {
        hint: 'The request was not answered by any replica; it is safe to retry.',
      }),
    );
  }

  #error(error: FerryError): void {
    this.#done = true;
    this.#current = null;
    const res = this.#res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    this.#code = error.status;
    sendError(res, error, this.#requestId, [
      'x-ferry-revision',
      this.#revision.key,
      ...(this.#ctx.closing ? ['connection', 'close'] : []),
    ]);
  }

  onHead(a: Attempt, status: number, rawHeaders: string[]): void {
    if (a.released || this.#done) {
      a.conn.abort();
      return;
    }
    a.status = status;
    if (status === 503 && isDraining(rawHeaders)) {
      // Draining: nothing was processed, and nothing has been sent to the client. The replica closes the
      // connection after this answer; drop it now and try another replica.
      a.conn.abort();
      this.#fail(a, 'shutting_down', DRAINING_HEADER);
      this.#retryOrFail(a.replica, `replica ${a.replica.id} is shutting down`);
      return;
    }
    a.responded = true;
    const ctx = this.#ctx;
    if (status === 502 || status === 503 || status === 504) {
      this.#revision.metrics.upstreamFailure('status_5xx');
      ctx.state.result(this.#revision, a.replica, false, ctx.now());
    } else ctx.state.result(this.#revision, a.replica, true, ctx.now());
    this.#writeHead(a, status, rawHeaders);
  }

  #writeHead(a: Attempt, status: number, rawHeaders: string[]): void {
    this.#code = status;
    this.#res.writeHead(
      status,
      forwardResponseHeaders(
        rawHeaders,
        this.#revision.key,
        a.replica.id,
        this.#requestId,
        this.#ctx.closing,
      ),
    );
  }

  onBody(a: Attempt, chunk: Buffer, last: boolean): void {
    if (a.released) return;
    if (last) {
      // The common case (a whole small answer in one read): one end() call, one write to the client.
      this.#finishResponse(a, chunk);
      return;
    }
    this.#write(a, chunk);
  }

  #write(a: Attempt, chunk: Buffer): void {
    const res = this.#res;
    if (!res.write(chunk)) {
      const conn = a.conn;
      conn.pause();
      res.once('drain', () => conn.resume());
    }
  }

  onUpstreamEnd(a: Attempt): void {
    if (a.released) return;
    this.#finishResponse(a, undefined);
  }

  #finishResponse(a: Attempt, chunk: Buffer | undefined): void {
    // The response may end before the request body did (an early answer): drop that connection.
    if (!this.#bodyEnded) a.conn.abort();
    this.#release(a, a.status);
    this.#done = true;
    if (chunk === undefined) this.#res.end();
    else this.#res.end(chunk);
  }

  #abortClient(): void {
    this.#done = true;
    this.#current = null;
    this.#res.destroy();
  }

  #onTimeout(): void {
    if (this.#done) return;
    const a = this.#current;
    if (a !== null && !a.released) {
      this.#fail(a, 'timeout', `no complete answer within ${this.#ctx.requestTimeoutMs} ms`);
      a.conn.abort();
    }
    this.#error(
      new FerryError(
        'FERRY_DEADLINE_EXCEEDED',
        `deployment '${this.#revision.deployment.name}' did not answer within the gateway's request timeout of ${this.#ctx.requestTimeoutMs} ms`,
        { hint: 'Retry later, or send a smaller request.' },
      ),
    );
  }

  /** The response is over: finished (metrics) or the client went away (abort upstream). */
  #onClose(): void {
    clearTimeout(this.#timer);
    const res = this.#res;
    const finished = res.writableFinished;
    this.#done = true;
    if (!finished) {
      const a = this.#current;
      if (a !== null && !a.released) {
        this.#release(a, 'client_gone');
        a.conn.abort();
      }
    }
    this.#revision.load.leave(this.#ctx.now());
    this.#revision.metrics.request(finished ? this.#code : 499, (performance.now() - this.#startedAt) / 1000);
  }

  #shadow(key: string): void {
    const ctx = this.#ctx;
    const rev = this.#revision.deployment.revisions.get(key);
    if (rev === undefined) return;
    if (this.#overflow) {
      rev.metrics.shadow('body_too_large', 0);
      return;
    }
    const replica = pickReplica(ctx, rev);
    if (replica === null) {
      rev.metrics.shadow('no_replica', 0);
      return;
    }
    sendShadow(ctx, rev, replica, {
      head: requestHead(
        this.#method,
        this.#before + rev.encodedName + this.#after,
        replica.hostHeader,
        `${this.#block}${this.#trace === undefined ? '' : this.#trace.shadowHeader()}x-ferry-shadow: 1\r\n`,
        this.#chunked,
      ),
      chunked: this.#chunked,
      headOnly: this.#method === 'HEAD',
      body: this.#chunks,
      requestId: this.#requestId,
    });
  }
}

/** Fire and forget: a mirrored copy whose answer is discarded; never touches the live response. */
export function sendShadow(
  ctx: ProxyContext,
  rev: RevisionState,
  replica: ReplicaState,
  req: { head: string; chunked: boolean; headOnly: boolean; body: readonly Buffer[]; requestId: string },
): void {
  const startedAt = performance.now();
  let finished = false;
  let status = 0;
  ctx.state.acquire(replica, rev.metrics);
  const conn = ctx.upstream.connection(replica.host, replica.port, replica.hostHeader);
  const finish = (outcome: ShadowOutcome, detail: string | number) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    ctx.state.release(replica, rev.metrics);
    const seconds = (performance.now() - startedAt) / 1000;
    rev.metrics.shadow(outcome, seconds);
    ctx.state.result(rev, replica, outcome !== 'failed', ctx.now());
    // Every shadow answer is logged: a failed or non-2xx one at warn (what a shadow rollout is watched for).
    ctx.logger?.[outcome === 'ok' ? 'info' : 'warn'](
      {
        deployment: rev.deployment.name,
        revision: rev.key,
        replica: replica.id,
        outcome,
        detail,
        ms: Math.round(seconds * 1e4) / 10,
        requestId: req.requestId,
      },
      'gateway: shadow request',
    );
  };
  const timer = setTimeout(() => {
    finish('failed', 'timeout');
    conn.abort();
  }, ctx.requestTimeoutMs);
  conn.start(
    { head: req.head, chunked: req.chunked, headOnly: req.headOnly },
    {
      head: (s) => {
        status = s;
      },
      data: noop,
      end: () => finish(status >= 200 && status < 300 ? 'ok' : 'error_status', status),
      error: (e) => finish('failed', e.code),
    },
  );
  for (const c of req.body) conn.write(c, noop);
  conn.end();
}
