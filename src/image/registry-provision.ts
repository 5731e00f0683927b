/**
 * Images for a cluster runtime (Docker Swarm): every node pulls a service's image, so a version's image must be in
 * a registry all nodes reach, and services are pinned by digest. The registry is the platform's own, configured by
 * the operator (not named by an API caller), so it is spoken to with the ordinary fetch, not the SSRF guard
 * (which refuses the private addresses such a registry usually has, 10.x).
 *
 *   ensureRegistryImage   a version -> `host[:port]/repo@sha256:<digest>` that the nodes can pull:
 *                           its image already pinned in the target registry   checked there, returned as is
 *                           its image pinned by digest in another registry     returned as is (nodes pull it there;
 *                                                                              copying between registries is not done)
 *                           its image a tag in the target registry             pinned by the registry's digest
 *                           an engine image ID (local to one engine)           refused, unless the version has an
 *                           or a tag in another registry                       artifact, which is built instead
 *                           its artifact                                       `<registry>/ferry/<model>:<tag>`, the tag
 *                                                                              as the engine's (engineImageTag: artifact
 *                                                                              + model server); asked for first, built
 *                                                                              and pushed only when missing
 *   pushGatewayImage      the gateway image -> `<registry>/ferry-gateway@sha256:...`, pushed as
 *                         ferry-gateway:<Ferry's version>, skipped when the registry has that very build
 *
 * Plain HTTP: RegistryClient speaks it to loopback registries by default; a registry on another address that
 * speaks plain HTTP (Debian's docker-registry on 10.231.0.1:5000, an engine's `insecure-registries`) must be
 * marked `insecure: true` by the operator. Credentials as `ferry push` finds them (resolveCredentials).
 * Both report what they do in lines, and fail with a FerryError that says what was tried.
 */

import { FerryError, isFerryError } from '../core/errors.ts';
import { DEFAULT_GATEWAY_IMAGE } from '../core/gateway-image.ts';
import { formatBytes, hostBase } from './build.ts';
import { modelServerId } from './bundle.ts';
import { buildGatewayImage } from './gateway.ts';
import type { Image } from './oci/types.ts';
import { buildArtifactImage, type EngineImageRequest, engineImageTag } from './provision.ts';
import { parseImageRef, RegistryClient, resolveCredentials } from './registry/index.ts';

const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

/** The registry a cluster's nodes pull from. */
export interface RegistryTarget {
  /** `host[:port]`, e.g. `registry.example.com` or `10.231.0.1:5000`. */
  registry: string;
  /** The fetch to use; default the global one (never the SSRF guard: the operator chose this registry). */
  fetch?: typeof fetch;
  /**
   * Plain HTTP instead of HTTPS. Default: plain only for loopback addresses (RegistryClient); set it for a registry
   * on another address that speaks plain HTTP (what Docker calls an insecure registry).
   */
  insecure?: boolean;
}

/** A client for the target, with the credentials `ferry push` would use. */
function clientFor(target: RegistryTarget): RegistryClient {
  const resolved = resolveCredentials(target.registry);
  return new RegistryClient(target.registry, {
    ...(resolved.credentials ? { credentials: resolved.credentials } : {}),
    ...(resolved.hint ? { credentialsHint: resolved.hint } : {}),
    ...(target.insecure === undefined ? {} : { insecure: target.insecure }),
    ...(target.fetch ? { fetch: target.fetch } : {}),
  });
}

/** `<registry>/<path>` parsed, checked to be in that registry (a bare name would be taken for Docker Hub's). */
function inTarget(target: RegistryTarget, path: string) {
  const ref = parseImageRef(`${target.registry}/${path}`);
  if (ref.registry !== target.registry)
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `"${target.registry}" is not a registry address (host[:port], with a "." or a port, or localhost)`,
      {
        hint: 'Name the registry the nodes pull from as host:port, e.g. 10.0.0.5:5000 or registry.example.com.',
      },
    );
  return ref;
}

/** The manifest digest the registry has for `reference`, or undefined when it has none. */
async function manifestDigest(
  client: RegistryClient,
  repository: string,
  reference: string,
): Promise<string | undefined> {
  try {
    return (await client.getManifest(repository, reference)).digest;
  } catch (error) {
    if (isFerryError(error) && (error.details as { reason?: string } | undefined)?.reason === 'not_found')
      return undefined;
    throw error;
  }
}

/** Pushes `image` as `repository:tag`; resolves with `registry/repository@digest`. */
async function push(
  client: RegistryClient,
  repository: string,
  tag: string,
  image: Image,
  onProgress: (line: string) => void,
): Promise<string> {
  onProgress(`pushing ${client.registry}/${repository}:${tag}`);
  const result = await client.pushImage(repository, tag, image, (event) => {
    if (event.type === 'blob' && event.status !== 'uploading')
      onProgress(
        `  ${event.status === 'exists' ? 'exists  ' : 'uploaded'} ${event.what} ${formatBytes(event.size)}`,
      );
  });
  const pinned = `${client.registry}/${repository}@${result.digest}`;
  onProgress(
    `pushed ${pinned}: ${formatBytes(result.pushedBytes)} uploaded, ${formatBytes(result.skippedBytes)} already there`,
  );
  return pinned;
}

/**
 * Makes sure the version's image is in a registry the nodes pull from; resolves with a reference pinned by digest
 * (`host[:port]/repo@sha256:<64 hex>`). See the table at the top of this file.
 */
export async function ensureRegistryImage(
  request: EngineImageRequest,
  target: RegistryTarget,
  onProgress: (line: string) => void,
): Promise<string> {
  const image = request.image;
  if (image && IMAGE_ID.test(image)) {
    if (!request.artifactDir)
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `Model ${request.model}: its image ${image} is an image ID, local to one Docker engine; a Swarm runtime needs a reference in a registry every node reaches`,
        {
          hint: `Push the model to ${target.registry} (ferry push <dir> --registry ${target.registry}) and add the version with the reference it prints (host/name@sha256:...), or deploy the model directory (its artifact is built and pushed for you).`,
        },
      );
    onProgress(`image ${image.slice(0, 19)} is local to one engine: using the version's artifact instead`);
  } else if (image) {
    const ref = parseImageRef(image);
    if (ref.registry === target.registry) {
      const client = clientFor(target);
      onProgress(`checking ${target.registry} for ${ref.repository}@${ref.reference}`);
      const digest = await manifestDigest(client, ref.repository, ref.reference);
      if (!digest)
        throw new FerryError(
          'FERRY_NOT_FOUND',
          `Model ${request.model}: registry ${target.registry} has no image ${image}`,
          {
            hint: 'The nodes pull from this registry: push the image to it again (ferry push), or add a version with an image it has.',
          },
        );
      if (ref.digest) return image;
      const pinned = `${target.registry}/${ref.repository}@${digest}`;
      onProgress(`pinned ${image} to ${pinned}`);
      return pinned;
    }
    if (ref.digest) {
      onProgress(`${image} is pinned by digest in ${ref.registry}: the nodes pull it from there`);
      return image;
    }
    if (!request.artifactDir)
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `Model ${request.model}: its image ${image} is not pinned by digest; a Swarm runtime runs images by digest from a registry every node reaches`,
        {
          hint: `Add the version with a reference pinned by digest (name@sha256:...), e.g. the one ferry push --registry ${target.registry} prints.`,
        },
      );
    onProgress(`image ${image} is not pinned by digest: using the version's artifact instead`);
  }
  if (!request.artifactDir)
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `Model ${request.model}: the version has neither an image nor an artifact`,
    );
  const dir = request.artifactDir;
  // The engine's tag, in the registry: the same artifact and model server are built and pushed once.
  const ref = inTarget(target, engineImageTag(request.model, dir, await modelServerId()));
  const tag = ref.tag!;
  const client = clientFor(target);
  onProgress(`checking ${target.registry} for ${ref.repository}:${tag}`);
  const have = await manifestDigest(client, ref.repository, tag);
  if (have) {
    const pinned = `${target.registry}/${ref.repository}@${have}`;
    onProgress(`${target.registry} has ${ref.repository}:${tag} already: ${pinned}`);
    return pinned;
  }
  const built = await buildArtifactImage(request, dir, onProgress);
  return push(client, ref.repository, tag, built.image, onProgress);
}

export interface PushGatewayImageOptions {
  /** Base image; default this host's `ferry base` (made once, offline), as ensureEngineImage builds on. */
  base?: string;
}

/**
 * Builds the gateway image (as `ferry gateway-image` does) and pushes it as `<registry>/ferry-gateway:<Ferry's
 * version>`; resolves with `<registry>/ferry-gateway@sha256:<digest>`.
 *
 * The build is reproducible (gateway.ts: same sources and base, same digest; test/gateway-image.test.ts checks it),
 * so "the registry has it already" is decided by digest, not by the tag alone: a checkout with other sources but
 * the same version number pushes its own build over the tag (digests already handed out stay pullable). That
 * means the image is always built (a few seconds: one bundle, one layer), and only the push is skipped.
 */
export async function pushGatewayImage(
  target: RegistryTarget,
  onProgress: (line: string) => void,
  options: PushGatewayImageOptions = {},
): Promise<string> {
  const ref = inTarget(target, DEFAULT_GATEWAY_IMAGE);
  const tag = ref.tag!;
  const base = options.base ?? (await hostBase(onProgress));
  onProgress(`building the gateway image on ${base}`);
  const built = await buildGatewayImage({ base, onProgress });
  const digest = built.image.manifestDigest;
  const client = clientFor(target);
  onProgress(`checking ${target.registry} for ${ref.repository}:${tag}`);
  const have = await manifestDigest(client, ref.repository, tag);
  if (have === digest) {
    const pinned = `${target.registry}/${ref.repository}@${digest}`;
    onProgress(`${target.registry} has ${ref.repository}:${tag} as built already: ${pinned}`);
    return pinned;
  }
  if (have)
    onProgress(
      `${target.registry} has ${ref.repository}:${tag} from other sources (${have.slice(0, 19)}): pushing this build over the tag`,
    );
  return push(client, ref.repository, tag, built.image, onProgress);
}
