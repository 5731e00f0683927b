export * from './errors.ts';
export { freePort } from './free-port.ts';
export { pidAlive } from './pid.ts';
export { FERRY_VERSION } from './version.ts';
