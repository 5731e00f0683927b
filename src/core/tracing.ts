/**
 * OpenTelemetry tracing shared by the gateway and the model server (issue 14, docs/tracing.md).
 *
 * Pure parts: W3C trace context (`traceparent`) parsing and formatting, and reading the standard `OTEL_*`
 * variables into a TracingConfig (null: tracing is off). The SDK part, startTracing(), loads the OpenTelemetry
 * packages with dynamic imports only when tracing is on, so a server or gateway without `OTEL_*` variables
 * never loads them: its hot path checks one constant (the Tracing object or null) and nothing else.
 *
 * Spans are recorded with explicit parents, start and end times (no context manager, no async hooks): the
 * server records the worker threads' phases after the fact on the main thread, from times the workers measure.
 */
import type { Attributes, Link, Span, SpanContext, SpanKind } from '@opentelemetry/api';
import { FerryError } from './errors.ts';

/** A parsed `traceparent` (version 00): ids as lower-case hex. */
export interface TraceParent {
  traceId: string;
  spanId: string;
  /** The sampled bit of trace-flags. */
  sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/**
 * A `traceparent` header value, or null when it is absent or invalid (W3C Trace Context level 1: a new trace
 * starts then). Version ff is invalid; versions above 00 are read as 00 (their first four fields), and only
 * version 00 must have nothing after the flags. All-zero ids are invalid. Upper-case hex is invalid.
 */
export function parseTraceparent(value: string | string[] | undefined): TraceParent | null {
  if (value === undefined) return null;
  const text = (Array.isArray(value) ? (value.length === 1 ? value[0]! : '') : value).trim();
  const m = TRACEPARENT.exec(text);
  if (m === null) return null;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId: traceId!, spanId: spanId!, sampled: (Number.parseInt(flags!, 16) & 1) === 1 };
}

export function formatTraceparent(parent: TraceParent): string {
  return `00-${parent.traceId}-${parent.spanId}-${parent.sampled ? '01' : '00'}`;
}

export type SamplerConfig =
  | { kind: 'always_on' | 'always_off' | 'parentbased_always_on' | 'parentbased_always_off' }
  | { kind: 'traceidratio' | 'parentbased_traceidratio'; ratio: number };

export interface TracingConfig {
  /** Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  url: string;
  serviceName: string;
  sampler: SamplerConfig;
  /** OTEL_RESOURCE_ATTRIBUTES, then service.name. */
  resource: Record<string, string>;
  /** Warnings to log once (e.g. a protocol other than http/json asked for). */
  warnings: string[];
  /**
   * FERRY_OTLP_SOCKET: spans are POSTed over this unix socket (a sealed docker replica's relay, /run/ferry/otlp.sock)
   * instead of a TCP connection to `url`'s host; `url` still gives the request's path and Host header.
   */
  socket?: string;
}

/**
 * A sealed replica's way to export (docs/tracing.md, "Docker replicas"): the absolute path of a unix socket the
 * platform's OTLP relay listens on (runtime/otlp-relay.ts). The exporter connects there, whatever `url` names.
 */
export const OTLP_SOCKET_ENV = 'FERRY_OTLP_SOCKET';

/** The variables a replica is given from the platform's environment (control/replica-spec.ts). */
export function otelEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env))
    if (key.startsWith('OTEL_') && value !== undefined && value !== '') out[key] = value;
  return out;
}

const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

/**
 * Tracing's configuration from the standard variables, or null when tracing is off: no OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_SDK_DISABLED=true or
 * OTEL_TRACES_EXPORTER=none. A value that cannot work throws FERRY_BAD_REQUEST naming the variable. Empty
 * variables count as unset.
 */
export function tracingConfig(
  env: Record<string, string | undefined>,
  defaultServiceName: string,
): TracingConfig | null {
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  if (get('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return null;
  const exporters = get('OTEL_TRACES_EXPORTER');
  if (exporters?.split(',').some((e) => e.trim().toLowerCase() === 'none')) return null;
  const traces = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = get('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (traces === undefined && base === undefined) return null;
  const url = traces ?? `${base!.replace(/\/+$/, '')}/v1/traces`;
  if (!/^https?:\/\/[^/]/.test(url))
    throw bad(
      traces === undefined ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      `is not an http(s) URL: ${JSON.stringify(traces ?? base)}`,
    );
  const warnings: string[] = [];
  if (exporters !== undefined && exporters.toLowerCase() !== 'otlp')
    warnings.push(`OTEL_TRACES_EXPORTER=${exporters}: Ferry exports OTLP only`);
  const protocol = get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? get('OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol !== 'http/json')
    warnings.push(`OTLP protocol ${protocol} asked for: Ferry exports OTLP over HTTP with JSON (http/json)`);

  const samplerName = (get('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  if (!SAMPLERS.includes(samplerName))
    throw bad('OTEL_TRACES_SAMPLER', `is ${JSON.stringify(samplerName)}; Ferry knows ${SAMPLERS.join(', ')}`);
  let sampler: SamplerConfig;
  if (samplerName === 'traceidratio' || samplerName === 'parentbased_traceidratio') {
    const arg = get('OTEL_TRACES_SAMPLER_ARG');
    const ratio = arg === undefined ? 1 : Number(arg);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1)
      throw bad('OTEL_TRACES_SAMPLER_ARG', `must be a number from 0 to 1, got ${JSON.stringify(arg)}`);
    sampler = { kind: samplerName, ratio };
  } else sampler = { kind: samplerName as Exclude<SamplerConfig['kind'], 'traceidratio'> } as SamplerConfig;

  const resource = parseResourceAttributes(get('OTEL_RESOURCE_ATTRIBUTES'));
  const serviceName = get('OTEL_SERVICE_NAME') ?? resource['service.name'] ?? defaultServiceName;
  resource['service.name'] = serviceName;
  const socket = get(OTLP_SOCKET_ENV);
  if (socket !== undefined && (!socket.startsWith('/') || socket.includes('\0')))
    throw bad(OTLP_SOCKET_ENV, `must be an absolute path of a unix socket, got ${JSON.stringify(socket)}`);
  if (socket !== undefined && !url.startsWith('http:'))
    throw bad(OTLP_SOCKET_ENV, `sends plain HTTP over the socket; the endpoint ${url} is not an http: URL`);
  return { url, serviceName, sampler, resource, warnings, ...(socket === undefined ? {} : { socket }) };
}

/**
 * `OTEL_EXPORTER_OTLP_HEADERS` merged with `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (which wins per key): `k=v,...`
 * with percent-encoded values, as the OpenTelemetry exporter reads them. The platform's OTLP relay adds them to
 * what it forwards for sealed replicas, which never see them. A malformed list throws FERRY_BAD_REQUEST.
 */
export function otlpTraceHeaders(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const text = env[name]?.trim();
    if (!text) continue;
    for (const pair of text.split(',')) {
      if (pair.trim() === '') continue;
      const eq = pair.indexOf('=');
      const key = eq <= 0 ? '' : pair.slice(0, eq).trim().toLowerCase();
      if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(key)) throw bad(name, `has "${pair}", not key=value`);
      let value: string;
      try {
        value = decodeURIComponent(pair.slice(eq + 1).trim());
      } catch {
        throw bad(name, `has a bad percent escape in the value of ${key}`);
      }
      if (/[\r\n\0]/.test(value)) throw bad(name, `has a line break or NUL in the value of ${key}`);
      out[key] = value;
    }
  }
  return out;
}

/** `key1=value1,key2=value2` with percent-encoded values (the OTel SDK specification's format). */
export function parseResourceAttributes(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === undefined) return out;
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw bad('OTEL_RESOURCE_ATTRIBUTES', `has "${pair}", not key=value`);
    let value = pair.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      throw bad('OTEL_RESOURCE_ATTRIBUTES', `has a bad percent escape in "${pair}"`);
    }
    out[pair.slice(0, eq).trim()] = value;
  }
  return out;
}

function bad(variable: string, what: string): FerryError {
  return new FerryError('FERRY_BAD_REQUEST', `${variable} ${what}`, {
    hint: 'See docs/tracing.md for the OTEL_* variables Ferry reads; unset OTEL_EXPORTER_OTLP_ENDPOINT to turn tracing off.',
  });
}

/** A span's parent: a remote one (traceparent) or one of ours. */
export type SpanParent = TraceParent | Span;

export interface SpanOptions {
  kind?: 'server' | 'client' | 'internal';
  parent?: SpanParent | null | undefined;
  /** ms since the epoch (fractions allowed); default now. */
  startTime?: number;
  attributes?: Attributes;
  links?: (Span | TraceParent)[];
  /** The span's id, chosen beforehand (newSpanId): a worker was handed it as its parent already. */
  spanId?: string;
}

/** What the gateway and the server record spans with: a thin layer over the SDK's tracer. */
export interface Tracing {
  readonly config: TracingConfig;
  startSpan(name: string, options?: SpanOptions): Span;
  /** A random span id (16 hex digits) for SpanOptions.spanId. */
  newSpanId(): string;
  /** The span's traceparent, for a request it makes. */
  traceparent(span: Span): string;
  /** Sends what is recorded; waits for the export (bounded by the exporter's timeout). */
  flush(): Promise<void>;
  /** Flushes and stops. */
  shutdown(): Promise<void>;
}

/** An http.Agent whose every connection is to the unix socket at `path` (kept alive between exports). */
async function socketAgent(path: string): Promise<import('node:http').Agent> {
  const [{ Agent }, { createConnection }] = await Promise.all([import('node:http'), import('node:net')]);
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  // The agent's default connects to the URL's host and port; here, to the socket, whatever the URL names.
  (agent as unknown as { createConnection: () => import('node:net').Socket }).createConnection = () =>
    createConnection({ path });
  return agent;
}

/**
 * A CommonJS package imported dynamically: Node gives its exports by name, but a bundle made by esbuild with
 * code splitting (dist/cli) gives them on `default` only.
 */
function interop<T extends object>(module: T, name: keyof T): T {
  if (name in module && module[name] !== undefined) return module;
  return (module as { default?: T }).default ?? module;
}

/**
 * Starts the SDK (OTLP/HTTP JSON exporter, batch span processor) when `env` turns tracing on; null otherwise,
 * and then no OpenTelemetry module is loaded.
 */
export async function startTracing(
  env: Record<string, string | undefined>,
  defaultServiceName: string,
): Promise<Tracing | null> {
  const config = tracingConfig(env, defaultServiceName);
  if (config === null) return null;
  const [api, sdk, resources, exporterModule] = await Promise.all([
    import('@opentelemetry/api').then((m) => interop(m, 'SpanKind')),
    import('@opentelemetry/sdk-trace-base').then((m) => interop(m, 'BasicTracerProvider')),
    import('@opentelemetry/resources').then((m) => interop(m, 'resourceFromAttributes')),
    import('@opentelemetry/exporter-trace-otlp-http').then((m) => interop(m, 'OTLPTraceExporter')),
  ]);
  const random = new sdk.RandomIdGenerator();
  let presetSpanId: string | undefined;
  const idGenerator = {
    generateTraceId: () => random.generateTraceId(),
    generateSpanId: () => {
      const preset = presetSpanId;
      presetSpanId = undefined;
      return preset ?? random.generateSpanId();
    },
  };
  const s = config.sampler;
  const ratio = 'ratio' in s ? new sdk.TraceIdRatioBasedSampler(s.ratio) : null;
  const root =
    s.kind === 'always_on' || s.kind === 'parentbased_always_on'
      ? new sdk.AlwaysOnSampler()
      : s.kind === 'always_off' || s.kind === 'parentbased_always_off'
        ? new sdk.AlwaysOffSampler()
        : ratio!;
  const sampler = s.kind.startsWith('parentbased_') ? new sdk.ParentBasedSampler({ root }) : root;
  const socket = config.socket;
  const exporter = new exporterModule.OTLPTraceExporter({
    url: config.url,
    // A sealed replica: every connection goes to the relay's unix socket (FERRY_OTLP_SOCKET).
    ...(socket === undefined ? {} : { httpAgentOptions: () => socketAgent(socket) }),
  });
  const provider = new sdk.BasicTracerProvider({
    resource: resources.resourceFromAttributes(config.resource),
    sampler,
    idGenerator,
    spanProcessors: [new sdk.BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('ferry');
  const KIND: Record<NonNullable<SpanOptions['kind']>, SpanKind> = {
    server: api.SpanKind.SERVER,
    client: api.SpanKind.CLIENT,
    internal: api.SpanKind.INTERNAL,
  };
  const contextOf = (p: Span | TraceParent): SpanContext =>
    'traceId' in p
      ? {
          traceId: p.traceId,
          spanId: p.spanId,
          traceFlags: p.sampled ? api.TraceFlags.SAMPLED : api.TraceFlags.NONE,
          isRemote: true,
        }
      : p.spanContext();
  return {
    config,
    startSpan(name, options = {}) {
      const parent = options.parent;
      const ctx =
        parent === undefined || parent === null
          ? api.ROOT_CONTEXT
          : 'traceId' in parent
            ? api.trace.setSpanContext(api.ROOT_CONTEXT, contextOf(parent))
            : api.trace.setSpan(api.ROOT_CONTEXT, parent);
      const links: Link[] | undefined = options.links?.map((l) => ({ context: contextOf(l) }));
      presetSpanId = options.spanId;
      try {
        return tracer.startSpan(
          name,
          {
            kind: KIND[options.kind ?? 'internal'],
            ...(options.startTime === undefined ? {} : { startTime: options.startTime }),
            ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
            ...(links === undefined ? {} : { links }),
          },
          ctx,
        );
      } finally {
        presetSpanId = undefined;
      }
    },
    newSpanId: () => random.generateSpanId(),
    traceparent(span) {
      const c = span.spanContext();
      return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 1) === 1 ? '01' : '00'}`;
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
