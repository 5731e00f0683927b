/**
 * The model server's spans (docs/tracing.md). Only called when tracing is on (a Tracing object exists: see
 * core/tracing.ts startTracing); with it off the data path holds `undefined` where a RequestTrace would be and
 * checks nothing else.
 *
 *   ferry.request (server; child of the caller's traceparent)
 *     ferry.queue          enqueue -> its batch's dispatch
 *     ferry.batch          dispatch -> results back; links to every request span in it; its parent is the
 *                          request span of the batch's first request
 *       ferry.inference    the model call in the worker (batched: one for the batch)
 *     ferry.inference      grouped (one model call per request: handlers, models without a batch dimension):
 *                          one per request, linked to its batch (group) span
 *       ferry.preprocess, ferry.predict, ferry.postprocess   a handler's phases (those it has)
 *
 * Worker threads run no SDK: they measure times on the process's monotonic clock (worker/messages.ts monoMs,
 * WorkerTimings), converted here to this thread's wall-clock scale, and the spans are recorded with those times. A handler is handed the traceparent of its inference span,
 * whose id is chosen before the call (Tracing.newSpanId), so spans a handler makes itself nest under it.
 */
import type { Span } from '@opentelemetry/api';
import { isFerryError } from '../core/errors.ts';
import { parseTraceparent, type Tracing } from '../core/tracing.ts';
import { monoMs, type RequestTimings, type WorkerTimings, type WorkerTrace } from './worker/messages.ts';

/** One inference request's tracing state, from its arrival to its answer. */
export interface RequestTrace {
  readonly tracing: Tracing;
  readonly span: Span;
  /** performance.now() when it was queued for its model version. */
  queuedAt: number;
}

const ERROR = 2; // SpanStatusCode.ERROR (the api's enum is not imported at run time here)

/**
 * Wall-clock ms (fractional) of a performance.now() reading: the clock spans are recorded in. Every span gets
 * explicit times: the SDK's own end time for a span given a start time adds a Date.now()-based offset
 * (millisecond steps), which could put a batch's end before its model call's.
 */
export function wall(perf: number): number {
  return performance.timeOrigin + perf;
}

/** performance.now() minus monoMs() on this thread: a constant (both read the same monotonic clock). */
const MONO_TO_PERF = performance.now() - monoMs();

/** Wall-clock ms of a worker's monoMs() reading, on this thread's scale (so it orders with the batch span). */
function fromWorker(mono: number): number {
  return wall(mono + MONO_TO_PERF);
}

/**
 * The request's trace, or undefined when its span is not sampled (the sampler's decision: a parent's flag, or the
 * ratio): then nothing more is done for it, as with tracing off; its handler gets no traceparent.
 */
export function startRequestTrace(
  tracing: Tracing,
  traceparent: string | string[] | undefined,
  receivedAt: number,
  path: string,
  model: string,
  version: string | undefined,
  requestId: string,
): RequestTrace | undefined {
  const span = tracing.startSpan('ferry.request', {
    kind: 'server',
    parent: parseTraceparent(traceparent),
    startTime: wall(receivedAt),
  });
  // Attributes only for a span that records them: an unsampled request costs the sampling decision alone.
  if (!span.isRecording()) return undefined;
  span.setAttribute('http.request.method', 'POST');
  span.setAttribute('url.path', path);
  span.setAttribute('ferry.model', model);
  if (version !== undefined) span.setAttribute('ferry.model.version', version);
  span.setAttribute('ferry.request_id', requestId);
  return { tracing, span, queuedAt: Number.NaN };
}

export function endRequestTrace(trace: RequestTrace, status: number, errorCode?: string): void {
  const span = trace.span;
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: ERROR, ...(errorCode ? { message: errorCode } : {}) });
  if (errorCode !== undefined) span.setAttribute('error.type', errorCode);
  span.end(wall(performance.now()));
}

/** A batch being run: its span, and what the worker needs to time it. */
export interface BatchTrace {
  readonly worker: WorkerTrace;
  /** Records the worker's phases and ends the batch span. */
  settle(error: unknown): void;
}

/**
 * At a batch's dispatch: ends each traced request's queue span, starts the batch span (linked to all of them),
 * and for grouped batches picks each request's inference span id, to hand its traceparent to the worker.
 */
export function startBatchTrace(
  traces: RequestTrace[],
  size: number,
  batched: boolean,
  fields: { model: string; version: string; samples: number },
): BatchTrace {
  const now = performance.now();
  const tracing = traces[0]!.tracing;
  for (const t of traces)
    tracing.startSpan('ferry.queue', { parent: t.span, startTime: wall(t.queuedAt) }).end(wall(now));
  const batchSpan = tracing.startSpan('ferry.batch', {
    parent: traces[0]!.span,
    startTime: wall(now),
    links: traces.map((t) => t.span),
    attributes: {
      'ferry.model': fields.model,
      'ferry.model.version': fields.version,
      'ferry.batch.requests': size,
      'ferry.batch.samples': fields.samples,
      'ferry.batch.mode': batched ? 'batched' : 'grouped',
    },
  });
  // Grouped: request i of the batch is traces[i] (every request of a traced server is traced, but the warm-up
  // request is not, and it never shares a batch).
  const spanIds = batched || traces.length !== size ? null : traces.map(() => tracing.newSpanId());
  let timings: WorkerTimings | null = null;
  const worker: WorkerTrace = {
    traceparents:
      spanIds === null
        ? null
        : traces.map((t, i) => {
            const c = t.span.spanContext();
            return `00-${c.traceId}-${spanIds[i]}-${(c.traceFlags & 1) === 1 ? '01' : '00'}`;
          }),
    onTimings: (t) => {
      timings = t;
    },
  };
  return {
    worker,
    settle(error) {
      const t = timings as WorkerTimings | null;
      if (t !== null) {
        if (t.kind === 'batch')
          tracing
            .startSpan('ferry.inference', { parent: batchSpan, startTime: fromWorker(t.start) })
            .end(fromWorker(t.end));
        else
          t.requests.forEach((r, i) => {
            const parent = spanIds === null ? batchSpan : traces[i]!.span;
            recordInference(tracing, r, parent, batchSpan, spanIds?.[i]);
          });
      }
      if (error !== undefined) {
        batchSpan.setStatus({ code: ERROR, message: isFerryError(error) ? error.code : String(error) });
      }
      batchSpan.end(wall(performance.now()));
    },
  };
}

function recordInference(
  tracing: Tracing,
  r: RequestTimings,
  parent: Span,
  batch: Span,
  spanId: string | undefined,
): void {
  const span = tracing.startSpan('ferry.inference', {
    parent,
    startTime: fromWorker(r.start),
    links: parent === batch ? [] : [batch],
    ...(spanId === undefined ? {} : { spanId }),
    ...(r.error === undefined ? {} : { attributes: { 'error.type': r.error } }),
  });
  if (r.error !== undefined) span.setStatus({ code: ERROR, message: r.error });
  for (const [name, phase] of [
    ['ferry.preprocess', r.preprocess],
    ['ferry.predict', r.predict],
    ['ferry.postprocess', r.postprocess],
  ] as const) {
    if (phase !== undefined)
      tracing.startSpan(name, { parent: span, startTime: fromWorker(phase[0]) }).end(fromWorker(phase[1]));
  }
  span.end(fromWorker(r.end));
}
