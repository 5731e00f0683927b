/** OCI distribution (registry) client, image references and credential resolution. */
export {
  type ManifestResponse,
  type PushProgress,
  type PushResult,
  RegistryClient,
  type RegistryClientOptions,
} from './client.ts';
export {
  type Credentials,
  dockerConfigPath,
  type ResolvedCredentials,
  resolveCredentials,
} from './credentials.ts';
export { DOCKER_HUB, type ImageRef, parseImageRef } from './ref.ts';
