/**
 * OpenAPI 3.1 document of the control-plane API, generated from the route table (routes.ts) and the zod
 * schemas (schemas.ts) with z.toJSONSchema: every registered schema becomes `#/components/schemas/<id>`,
 * path parameters and query strings are listed per operation, every route but the public ones needs the
 * bearer scheme.
 */
import { z } from 'zod';
import { ROLES_FOR, type RouteDef } from './routes.ts';
import { COMPONENTS, ErrorBodySchema } from './schemas.ts';

type Json = Record<string, unknown>;

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });

function componentId(schema: z.ZodType, where: string): string {
  const id = COMPONENTS.get(schema)?.id;
  if (!id) throw new Error(`${where}: schema is not registered in COMPONENTS (schemas.ts)`);
  return id;
}

function strip(schema: Json): Json {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

let components: Record<string, Json> | undefined;

function componentSchemas(): Record<string, Json> {
  if (!components) {
    const out = z.toJSONSchema(COMPONENTS, {
      uri: (id) => `#/components/schemas/${id}`,
      io: 'input',
    }) as { schemas: Record<string, Json> };
    components = Object.fromEntries(Object.entries(out.schemas).map(([id, s]) => [id, strip(s)]));
  }
  return components;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (!schema) return [];
  if (!(schema instanceof z.ZodObject)) throw new Error(`${where} schema must be a z.object`);
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => ({
    name,
    in: where,
    required: where === 'path' || !field.safeParse(undefined).success,
    schema: strip(z.toJSONSchema(field, { io: 'input' }) as Json),
  }));
}

/** `/v1/deployments/:name` -> `/v1/deployments/{name}` */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

const ERROR_RESPONSE = {
  description: 'Error: {"error", "code", "hint"?}',
  content: { 'application/json': { schema: ref(componentId(ErrorBodySchema, 'Error')) } },
};

function operation(route: RouteDef): Json {
  const where = `${route.method} ${route.url}`;
  const responses: Json = {};
  if (route.response) {
    const item = ref(componentId(route.response.schema, where));
    const content: Json = {
      'application/json': { schema: route.response.many ? { type: 'array', items: item } : item },
    };
    if (route.response.ndjson) content['application/x-ndjson'] = { schema: item };
    responses[String(route.status)] = { description: route.summary, content };
  } else if (route.events) {
    // OpenAPI 3.1 has no words for a stream of server-sent events: the body is text, and x-ferry-events gives
    // each event's name with the schema of its data (one JSON document on one `data:` line).
    responses[String(route.status)] = {
      description: route.summary,
      content: { 'text/event-stream': { schema: { type: 'string' } } },
      'x-ferry-events': Object.fromEntries(
        Object.entries(route.events).map(([name, e]) => {
          const item = ref(componentId(e.schema, `${where} event ${name}`));
          return [
            name,
            { description: e.description, schema: e.many ? { type: 'array', items: item } : item },
          ];
        }),
      ),
    };
  } else {
    responses[String(route.status)] = { description: route.summary };
  }
  responses.default = ERROR_RESPONSE;
  const op: Json = {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query')],
    responses,
  };
  if (route.rawBody) {
    op.requestBody = {
      required: true,
      description: route.rawBody.description,
      content: {
        [route.rawBody.contentType]: {
          schema: { type: 'string', contentMediaType: route.rawBody.contentType },
        },
      },
    };
  } else if (route.body) {
    op.requestBody = {
      required: !route.bodyOptional,
      content: { 'application/json': { schema: ref(componentId(route.body, where)) } },
    };
  }
  if (route.access === 'public') op.security = [];
  else op['x-ferry-roles'] = ROLES_FOR[route.access];
  return op;
}

export interface OpenApiInfo {
  version: string;
  apiUrl?: string;
}

/** The document for these routes. Throws when a route uses a schema that is not a registered component. */
export function buildOpenApi(routes: readonly RouteDef[], info: OpenApiInfo): Json {
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    const path = openApiPath(route.url);
    paths[path] ??= {};
    (paths[path] as Json)[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Ferry control plane',
      version: info.version,
      description:
        'Models, deployments, traffic, rollouts, logs, tokens and the audit log. Send `Authorization: Bearer <token>`; viewers may only read, deployers and admins write, admins manage tokens and read the audit log.',
    },
    ...(info.apiUrl ? { servers: [{ url: info.apiUrl }] } : {}),
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A Ferry API token' } },
    },
  };
}
