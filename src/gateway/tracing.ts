/**
 * The gateway's spans (docs/tracing.md). Only made when tracing is on (GatewayOptions.tracing); off, a request
 * carries no trace and its traceparent header goes to the replica untouched, as any other header.
 *
 *   ferry.gateway.request (server; child of the caller's traceparent)
 *     ferry.gateway.route     revision pick (split or pin) and replica pick (balancer)
 *     ferry.gateway.attempt   (client) one per attempt to a replica: retries are each their own; the replica gets
 *                             this span's traceparent, so its ferry.request span is the attempt's child
 *
 * Attributes: ferry.deployment, ferry.revision, ferry.replica, http.response.status_code, ferry.retries
 * (attempts after the first), ferry.attempt (1, 2, ...).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import { parseTraceparent, type Tracing } from '../core/tracing.ts';

const ERROR = 2; // SpanStatusCode.ERROR

/**
 * Now, in wall-clock ms. Every span gets explicit times: the SDK's own end time for a span given a start time adds
 * a Date.now()-based offset (millisecond steps), which could put a span's end before its child's.
 */
function now(): number {
  return performance.timeOrigin + performance.now();
}
const TRACEPARENT_LINE = /^traceparent:[^\r\n]*\r\n/gim;

export class GatewayTrace {
  readonly span: Span;
  deployment: string | undefined;
  revision: string | undefined;
  replica: string | undefined;
  attempts = 0;

  constructor(
    readonly tracing: Tracing,
    req: IncomingMessage,
    res: ServerResponse,
    startedAt: number,
  ) {
    this.span = tracing.startSpan('ferry.gateway.request', {
      kind: 'server',
      parent: parseTraceparent(req.headers.traceparent),
      startTime: performance.timeOrigin + startedAt,
      attributes: { 'http.request.method': req.method ?? 'GET', 'url.path': pathOf(req.url) },
    });
    // Every outcome ends here: answered, refused, held and answered later, client gone (499).
    res.once('close', () => this.#finish(res.writableFinished ? res.statusCode : 499));
  }

  /** The forwarded header block without the caller's traceparent: each attempt sends its own. */
  static strip(block: string): string {
    return block.replace(TRACEPARENT_LINE, '');
  }

  /** The routing decision, recorded when it is made: from `startedAt` (performance.now()) to now. */
  route(
    startedAt: number,
    deployment: string,
    revision: string,
    pinned: boolean,
    replica: string | null,
  ): void {
    this.deployment = deployment;
    this.revision = revision;
    this.tracing
      .startSpan('ferry.gateway.route', {
        parent: this.span,
        startTime: performance.timeOrigin + startedAt,
        attributes: {
          'ferry.deployment': deployment,
          'ferry.revision': revision,
          'ferry.revision.pinned': pinned,
          ...(replica === null ? { 'ferry.held': true } : { 'ferry.replica': replica }),
        },
      })
      .end(now());
  }

  /** An attempt to `replica` starts: its span, and the header line that carries it to the replica. */
  attempt(replica: string, revision: string): { span: Span; header: string } {
    this.attempts++;
    this.replica = replica;
    this.revision = revision;
    const span = this.tracing.startSpan('ferry.gateway.attempt', {
      kind: 'client',
      parent: this.span,
      startTime: now(),
      attributes: { 'ferry.replica': replica, 'ferry.revision': revision, 'ferry.attempt': this.attempts },
    });
    return { span, header: `traceparent: ${this.tracing.traceparent(span)}\r\n` };
  }

  /** The traceparent line for a shadow copy: the request span's. */
  shadowHeader(): string {
    return `traceparent: ${this.tracing.traceparent(this.span)}\r\n`;
  }

  #finish(status: number): void {
    const span = this.span;
    span.setAttribute('http.response.status_code', status);
    if (this.deployment !== undefined) span.setAttribute('ferry.deployment', this.deployment);
    if (this.revision !== undefined) span.setAttribute('ferry.revision', this.revision);
    if (this.replica !== undefined) span.setAttribute('ferry.replica', this.replica);
    span.setAttribute('ferry.retries', Math.max(0, this.attempts - 1));
    if (status >= 500) span.setStatus({ code: ERROR });
    span.end(now());
  }
}

/** Ends an attempt's span: with the replica's status, or with why it failed. */
export function endAttempt(span: Span, outcome: number | string): void {
  if (typeof outcome === 'number') {
    span.setAttribute('http.response.status_code', outcome);
    if (outcome >= 500) span.setStatus({ code: ERROR });
  } else {
    span.setAttribute('error.type', outcome);
    span.setStatus({ code: ERROR, message: outcome });
  }
  span.end(now());
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}
