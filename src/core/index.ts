export * from './errors.ts';
export { freePort } from './free-port.ts';
export { pidAlive } from './pid.ts';
export {
  CPU_LIMIT_ENV,
  DRAINING_HEADER,
  EXIT_MODEL_LOAD_FAILED,
  FAIL_ON_LOAD_ERROR_ENV,
} from './replica.ts';
export type {
  DiscoveryRevision,
  DiscoveryService,
  DiscoveryTable,
  RouteDeployment,
  RouteReplica,
  RouteRevision,
  RouteTable,
} from './route-table.ts';
export { DEFAULT_TENANT, keyForFiles, plainName, qualify, splitKey, tenantOf } from './tenant.ts';
export { FERRY_VERSION } from './version.ts';
