/** Container images: build (daemonless OCI assembly; models and the gateway), base images, registry push, engine load and run. */

export { defaultBaseTag, ferryBase } from './base.ts';
export {
  type BuildImageResult,
  type BuiltImage,
  baseCacheDir,
  buildImage,
  DEFAULT_BASE,
  FERRY_VERSION,
  formatBytes,
  hostBase,
} from './build.ts';
export { renderDockerfile } from './dockerfile.ts';
export { createEngine, type Engine, loadIntoEngine } from './engine/index.ts';
export {
  buildGatewayImage,
  DEFAULT_GATEWAY_IMAGE,
  GATEWAY_ARGS,
  type GatewayImageResult,
} from './gateway.ts';
export { buildLayer, writeOciArchive, writeOciLayout } from './oci/index.ts';
export { parseImageRef, RegistryClient, resolveCredentials } from './registry/index.ts';
export {
  ensureRegistryImage,
  type PushGatewayImageOptions,
  pushGatewayImage,
  type RegistryTarget,
} from './registry-provision.ts';
export { RUN_DEFAULTS, type StartedImage, startImage } from './run.ts';
