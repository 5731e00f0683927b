export * from './errors.ts';
export { FERRY_VERSION } from './version.ts';
