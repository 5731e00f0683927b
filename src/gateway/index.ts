/**
 * The gateway's decisions, as pure functions: state, `now` and a random source go in, a decision
 * comes out. No HTTP, no timers, no I/O here; the HTTP proxy (one port in front of every
 * deployment's replicas) wires them together per request:
 *
 * - traffic.ts: which revision serves a request (weighted split, or the `x-ferry-revision` pin)
 *   and which revisions get a mirrored copy (shadow). `validateTraffic` lists a table's problems.
 * - balancer.ts: which replica of that revision: least outstanding requests, or power of two
 *   choices; skips replicas that are not ready, ejected, or already failed this request.
 * - ejection.ts: passive outlier ejection: consecutive failures take a replica out for a while,
 *   with exponential backoff, a single probe after each ejection and a cap on how many go at once.
 * - retry-budget.ts: whether a failed attempt may be retried (only connection failures before any
 *   response byte) and whether the sliding-window retry budget still allows it.
 * - random.ts: the `Random` type and a seeded generator for tests and simulations.
 *
 * Per request, roughly: pickRevision -> (shadowTargets) -> balancer pick with `exclude` of failed
 * replicas -> send -> onResult -> on failure, shouldRetry && canRetry -> recordRetry -> pick again.
 *
 * The HTTP data plane around them:
 *
 * - routes.ts: the route table the control plane hands over (`setRoutes`) and its validation.
 * - server.ts: `createGateway` (node:http server, local endpoints, revision and replica choice).
 * - proxy.ts: one proxied request (streaming, retries, shadow copies, timeouts, client aborts).
 * - upstream.ts: the keep-alive HTTP/1.1 client to the replicas.
 * - state.ts: replicas by id (outstanding counts, ejection, retry budget), `waitIdle`.
 * - paths.ts, headers.ts, reply.ts, metrics.ts: path parsing (tenant prefix and Host), header rewriting,
 *   error bodies, metrics.
 * - access.ts, rate-limit.ts: private deployments (bearer token hashed and looked up among the table's
 *   callers) and per-token token buckets.
 * - load.ts: per-revision in-flight and arrivals for the autoscaler (`loadSamples`).
 * - activator.ts: scale from zero: holds requests while no replica of their revision is ready.
 */
export {
  type AccessDecision,
  AccessTable,
  bearerToken,
  type CallerState,
  type Denied,
  mayCall,
  tokenHash,
} from './access.ts';
export {
  isEligible,
  leastOutstanding,
  powerOfTwoChoices,
  type Replica,
} from './balancer.ts';
export {
  type EjectionPolicy,
  type EjectionState,
  ejectionState,
  isEjected,
  onResult,
  type ReplicaHealth,
  syncReplicas,
} from './ejection.ts';
export {
  type ActivatorRejectReason,
  type DeniedReason,
  type FailureReason,
  GatewayMetrics,
  type ShadowOutcome,
} from './metrics.ts';
export { addressedTenant, type LocalRoute, type ParsedPath, parsePath, tenantFromHost } from './paths.ts';
export type { BalancerName } from './proxy.ts';
export { evenlySpread, type Random, seededRandom } from './random.ts';
export {
  canRetry,
  DEFAULT_RETRY_BUDGET,
  type RetryBudgetPolicy,
  type RetryBudgetState,
  type RetryQuestion,
  recordRequest,
  recordRetry,
  retryBudget,
  shouldRetry,
  windowTotals,
} from './retry-budget.ts';
export {
  assertRouteTable,
  parseReplicaUrl,
  type RouteCaller,
  type RouteDeployment,
  type RouteReplica,
  type RouteRevision,
  type RouteTable,
  routeTableProblems,
} from './routes.ts';
export {
  createGateway,
  DEFAULT_EJECTION_POLICY,
  type Gateway,
  type GatewayOptions,
} from './server.ts';
export {
  type PickOptions,
  type PickResult,
  pickRevision,
  shadowTargets,
  type TrafficTarget,
  validateTraffic,
} from './traffic.ts';
