/** The control-plane HTTP API (Fastify app factory), its typed client and the request/response schemas. */
export { buildControlApi, type Caller, type ControlApiOptions, callerOf, type FieldProblem } from './app.ts';
export { ControlClient, type ControlClientOptions } from './client.ts';
export { buildOpenApi, openApiPath } from './openapi.ts';
export { type Access, ROUTES, type RouteDef } from './routes.ts';
export {
  type AddVersionBodyInput,
  type AliasResult,
  type CreateModelInput,
  type CreateTokenInput,
  type DeployInput,
  type ErrorBody,
  type EventsQueryInput,
  type Health,
  type Info,
  type LogsQueryInput,
  type ResourcesBodyInput,
  type ScaleInput,
  type SetAliasInput,
  TOKEN_ROLES,
  type TokenRole,
  type TrafficInput,
  type UndoInput,
  type UpdateInput,
} from './schemas.ts';
