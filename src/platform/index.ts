/** Ferry on one machine: store + runtime + controller + gateway + control-plane API, started together. */
export {
  chooseRuntime,
  DEFAULT_API_PORT,
  DEFAULT_GATEWAY_PORT,
  type Platform,
  type PlatformOptions,
  platformId,
  type RuntimeChoice,
  startPlatform,
} from './platform.ts';
