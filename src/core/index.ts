export * from './errors.ts';
export { freePort } from './free-port.ts';
export { FERRY_VERSION } from './version.ts';
