/**
 * Images for the platform's docker runtime:
 *   pinImage            a reference as given (a tag) -> the same content by digest, or the engine's image ID,
 *                       with the labels of its config (the served model name); done once, when a version is added
 *   ensureEngineImage   a version -> an image the engine has now: already there, pulled from its registry
 *                       (with the credentials `ferry push` uses), or built from the version's artifact
 *   buildArtifactImage  that build (also what registry-provision.ts pushes for a cluster's nodes)
 * Both report what they do in lines, and fail with a FerryError that says what was tried.
 */
import { createHash } from 'node:crypto';
import { FerryError, isFerryError } from '../core/errors.ts';
import { registryAllowed } from '../core/ssrf.ts';
import { loadSpec } from '../spec/index.ts';
import { type BuiltImage, buildImage, formatBytes, hostBase } from './build.ts';
import { modelServerId } from './bundle.ts';
import { loadIntoEngine } from './engine/load.ts';
import type { Engine } from './engine/types.ts';
import { parseJson } from './oci/image.ts';
import { guardedFetch } from './registry/guarded-fetch.ts';
import { DOCKER_HUB, parseImageRef, RegistryClient, resolveCredentials } from './registry/index.ts';

const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

export interface PinnedImage {
  /** `host/repo@sha256:...` or an engine image ID `sha256:...`. */
  ref: string;
  labels: Record<string, string>;
}

/**
 * The image `ref` names, pinned: a registry reference by its manifest digest (asked of the registry), a local
 * image by the engine's ID. A reference with a digest stays as given.
 */
/**
 * `allowedRegistries`: the platform's allow-list (exact host[:port] or *.domain; empty: every registry on an
 * allowed address, see src/core/ssrf.ts).
 */
export async function pinImage(
  ref: string,
  engine: Engine | undefined,
  allowedRegistries: readonly string[] = [],
): Promise<PinnedImage> {
  const local = async () => {
    const info = await engine?.inspectImage(ref);
    return info ? { ref: info.id, labels: info.config.Labels ?? {} } : undefined;
  };
  if (IMAGE_ID.test(ref)) {
    const found = await local();
    if (!found)
      throw new FerryError('FERRY_NOT_FOUND', `The Docker engine has no image with ID ${ref}`, {
        hint: 'Give a registry reference (host:port/name:tag), or build the image again.',
      });
    return found;
  }
  const parsed = parseImageRef(ref);
  if (parsed.registry === DOCKER_HUB && !ref.includes('docker.io/')) {
    // A name without a registry host: an image built or loaded into this engine (Docker Hub is not used).
    const found = await local();
    if (found) return found;
    throw new FerryError(
      'FERRY_NOT_FOUND',
      `The Docker engine has no image ${ref}, and it names no registry`,
      {
        hint: 'Build or load it first (ferry build), or name it with its registry: host:port/name:tag.',
      },
    );
  }
  if (!registryAllowed(parsed.registry, allowedRegistries))
    throw new FerryError(
      'FERRY_FORBIDDEN',
      `Registry ${parsed.registry} is not one this platform pulls from (allowed: ${allowedRegistries.join(', ')})`,
      {
        hint: 'A platform admin allows it with ferry up --allow-registry <host[:port]> (or FERRY_ALLOWED_REGISTRIES).',
      },
    );
  const { credentials } = resolveCredentials(parsed.registry);
  // An API caller named this reference: every connection it causes passes the SSRF guard.
  const client = new RegistryClient(parsed.registry, {
    ...(credentials ? { credentials } : {}),
    fetch: guardedFetch,
  });
  try {
    const manifest = await client.getManifest(parsed.repository, parsed.reference);
    const host = ref.slice(0, ref.indexOf('/'));
    const pinned = parsed.digest ? ref : `${host}/${parsed.repository}@${manifest.digest}`;
    return {
      ref: pinned,
      labels: await configLabels(client, parsed.repository, manifest.bytes).catch(() => ({})),
    };
  } catch (error) {
    const found = parsed.digest ? undefined : await local();
    if (found) return found;
    throw new FerryError(
      isFerryError(error) ? error.code : 'FERRY_CONNECTION_FAILED',
      `Cannot pin ${ref} to a digest: ${error instanceof Error ? error.message : String(error)}`,
      {
        hint: 'Check that the registry answers and has this tag (ferry push), and its credentials (FERRY_REGISTRY_* or ~/.docker/config.json).',
      },
    );
  }
}

async function configLabels(client: RegistryClient, repository: string, manifestBytes: Uint8Array) {
  const manifest = parseJson(manifestBytes, 'manifest') as { config?: { digest?: string } };
  const digest = manifest.config?.digest;
  if (!digest) return {};
  const config = parseJson(await client.getBlob(repository, digest), 'image config') as {
    config?: { Labels?: Record<string, string> };
  };
  return config.config?.Labels ?? {};
}

export interface EngineImageRequest {
  model: string;
  /** The version's pinned image, if it has one. */
  image: string | null;
  /** The version's artifact directory, if it has one (built into an image when there is no image). */
  artifactDir: string | null;
  /** Base for a build (default: build.base of the artifact's ferry.yaml, else this host's `ferry base`). */
  base?: string;
  /** When the version was registered (ms): what a built image says as its creation time. */
  createdAt?: number;
}

/**
 * The engine tag of an image built from an artifact: by the artifact and by the model server that goes in it, so
 * an image another Ferry built (say, before an upgrade) is not taken for this one's. Pure.
 */
export function engineImageTag(model: string, artifactDir: string, serverId: string): string {
  return `ferry/${model}:${createHash('sha256').update(`${artifactDir}\0${serverId}`).digest('hex').slice(0, 12)}`;
}

/** Makes sure the engine has the version's image; resolves with what to run (a reference or an image ID). */

export async function ensureEngineImage(
  engine: Engine,
  request: EngineImageRequest,
  onProgress: (line: string) => void,
): Promise<string> {
  if (request.image) {
    if (await engine.inspectImage(request.image)) return request.image;
    if (!IMAGE_ID.test(request.image)) {
      const { registry } = parseImageRef(request.image);
      const { credentials } = resolveCredentials(registry);
      await engine.pullImage(request.image, { ...(credentials ? { auth: credentials } : {}), onProgress });
      return request.image;
    }
    if (!request.artifactDir)
      throw new FerryError('FERRY_NOT_FOUND', `The Docker engine no longer has image ${request.image}`, {
        hint: 'An image ID cannot be pulled: deploy the model directory again, or use a registry reference.',
      });
  }
  if (!request.artifactDir)
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `Model ${request.model}: the version has neither an image nor an artifact`,
    );
  const dir = request.artifactDir;
  const tag = engineImageTag(request.model, dir, await modelServerId());
  const have = await engine.inspectImage(tag);
  if (have) return have.id;
  const built = await buildArtifactImage(request, dir, onProgress);
  const info = await loadIntoEngine(engine, built.image, tag);
  onProgress(`built ${tag} (${formatBytes(info.size)}), image ${info.id.slice(0, 19)}`);
  return info.id;
}

/**
 * Builds the image of a version's artifact: on `request.base`, else build.base of the artifact's ferry.yaml, else
 * this host's `ferry base`; the artifact taken as prepared; created at the version's registration time. What both
 * the engine (ensureEngineImage) and a registry (registry-provision.ts ensureRegistryImage) get.
 */
export async function buildArtifactImage(
  request: Pick<EngineImageRequest, 'base' | 'createdAt'>,
  dir: string,
  onProgress: (line: string) => void,
): Promise<BuiltImage> {
  const { spec } = await loadSpec(dir);
  const base = request.base ?? spec.build.base ?? (await hostBase(onProgress));
  onProgress(`building an image of the artifact on ${base}`);
  return buildImage({
    dir,
    base,
    prepared: true,
    onProgress,
    ...(request.createdAt === undefined ? {} : { createdAt: Math.floor(request.createdAt / 1000) }),
  });
}
