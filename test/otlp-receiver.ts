/**
 * An OTLP/HTTP trace receiver for tests (docs/tracing.md): node:http on 127.0.0.1, takes what an OpenTelemetry
 * exporter POSTs to /v1/traces as JSON (ExportTraceServiceRequest, the OTLP JSON encoding: hex or base64 ids),
 * decodes it and keeps the spans flat, each with its resource's service.name.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  service: string;
  /** Its resource's attributes. */
  resource: Record<string, string | number | boolean>;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  /** ms since the epoch. */
  start: number;
  end: number;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
  status: number;
}

/** The one span named `name` among `spans` (an assertion fails, naming those there are, if not exactly one). */
export function one(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name);
  assert.equal(
    found.length,
    1,
    `one ${name} span, got ${found.length}: ${spans.map((s) => s.name).join(', ')}`,
  );
  return found[0]!;
}

export interface OtlpReceiver {
  /** Base endpoint, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint: string;
  spans: ReceivedSpan[];
  /** Every request the receiver got (path, content type, headers; the services of its spans), spans or not. */
  requests: { path: string; contentType: string; headers: IncomingHttpHeaders; services: string[] }[];
  close(): Promise<void>;
}

/** OTLP JSON ids: lower-case hex by the spec's JSON mapping; base64 (the protobuf JSON mapping) is taken too. */
function hexId(id: unknown): string {
  if (typeof id !== 'string' || id === '') return '';
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

function value(v: Record<string, unknown>): string | number | boolean {
  if ('stringValue' in v) return String(v.stringValue);
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('boolValue' in v) return Boolean(v.boolValue);
  return JSON.stringify(v);
}

type KeyValues = { key: string; value: Record<string, unknown> }[] | undefined;
const attrs = (list: KeyValues) => Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));
const ms = (nanos: unknown) => Number(BigInt(String(nanos)) / 1000n) / 1000;

export function decodeOtlpJson(body: string): ReceivedSpan[] {
  const request = JSON.parse(body) as {
    resourceSpans?: {
      resource?: { attributes?: KeyValues };
      scopeSpans?: { spans?: Record<string, unknown>[] }[];
    }[];
  };
  const out: ReceivedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    const service = String(resource['service.name'] ?? '');
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        out.push({
          service,
          resource,
          traceId: hexId(s.traceId),
          spanId: hexId(s.spanId),
          parentSpanId: hexId(s.parentSpanId),
          name: String(s.name),
          kind: Number(s.kind ?? 0),
          start: ms(s.startTimeUnixNano),
          end: ms(s.endTimeUnixNano),
          attributes: attrs(s.attributes as KeyValues),
          links: ((s.links as { traceId: string; spanId: string }[] | undefined) ?? []).map((l) => ({
            traceId: hexId(l.traceId),
            spanId: hexId(l.spanId),
          })),
          status: Number((s.status as { code?: number } | undefined)?.code ?? 0),
        });
  }
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const contentType = String(req.headers['content-type'] ?? '');
      const entry = { path: req.url ?? '', contentType, headers: req.headers, services: [] as string[] };
      requests.push(entry);
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !contentType.startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      try {
        const got = decodeOtlpJson(Buffer.concat(chunks).toString('utf8'));
        entry.services = [...new Set(got.map((s) => s.service))];
        spans.push(...got);
      } catch {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
