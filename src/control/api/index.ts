/** The control-plane HTTP API (Fastify app factory), its typed client and the request/response types. */
export {
  buildControlApi,
  type ControlApiOptions,
  callerOf,
  type FieldProblem,
  TENANT_HEADER,
} from './app.ts';
export {
  ControlClient,
  type ControlClientOptions,
  type MetricsStreamEvent,
  readServerSentEvents,
  type ServerSentEvent,
  type StreamMessage,
} from './client.ts';
export { buildOpenApi } from './openapi.ts';
export { ROLES_FOR, ROUTES as CONTROL_API_ROUTES } from './routes.ts';
export {
  type AddVersionBodyInput,
  type AliasResult,
  type AuditQueryInput,
  type CreateModelInput,
  type CreateTenantInput,
  type CreateTokenInput,
  type DeployInput,
  type ErrorBody,
  type EventsQueryInput,
  type Health as ControlApiHealth,
  type Info as ControlApiInfo,
  type LogsQueryInput,
  type MetricsHistory as MetricsHistoryBody,
  type MetricsPoint,
  type ResourcesBodyInput,
  type ScaleInput,
  type SetAliasInput,
  type TenantView,
  TOKEN_ROLES,
  type TokenRole,
  type TrafficInput,
  type UndoInput,
  type UpdateInput,
} from './schemas.ts';
