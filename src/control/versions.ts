/**
 * Registering a model version so that it pins content: a version is an uploaded artifact (a model directory
 * kept by its sha256, artifacts.ts), or an image pinned by digest, never a path or a tag that could change
 * under it. What the artifact's ferry.yaml says about running the model (served name, resources, env, secret
 * names, autoscaling) is read once, here, with the spec loader, and stored with the version.
 */
import { FerryError } from '../core/errors.ts';
import { tenantOf } from '../core/tenant.ts';
import { loadSpec } from '../spec/index.ts';
import { type ArtifactStore, artifactNotFound } from './artifacts.ts';
import type { JsonValue, ModelVersion, Store, VersionSpec } from './store/store.ts';

/** What a client sends (POST /v1/models/{model}/versions). */
export interface AddVersionRequest {
  version: string;
  image?: string;
  artifact?: string;
  metadata?: Record<string, JsonValue>;
}

/** An image reference pinned to its content, and the labels of its config when known. */
export interface PinnedImage {
  /** `registry/repo@sha256:...`, or an engine image ID `sha256:...`. */
  ref: string;
  labels: Record<string, string>;
}

/** Pins an image reference (a tag) to its digest; throws a FerryError saying why it cannot. */
export type ImagePinner = (ref: string) => Promise<PinnedImage>;

export interface VersionRegistryDeps {
  store: Store;
  artifacts: ArtifactStore;
  /** Without it, image references must already be pinned (`@sha256:` or an image ID). */
  pinImage?: ImagePinner;
}

export async function registerVersion(
  deps: VersionRegistryDeps,
  model: string,
  request: AddVersionRequest,
): Promise<ModelVersion> {
  if (request.image === undefined && request.artifact === undefined)
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `Version ${request.version} of ${model} needs an image or an artifact`,
      {
        hint: 'ferry deploy <dir> uploads the directory as an artifact; ferry deploy <image> --model <name> registers an image.',
      },
    );
  // Fail on an unknown model or a taken name before any slow work (pulling a manifest, reading the artifact).
  const known = deps.store.getModel(model);
  if (!known)
    throw new FerryError('FERRY_MODEL_NOT_FOUND', `No model named ${JSON.stringify(model)}`, {
      hint: 'Create it first (ferry deploy does; or POST /v1/models).',
    });
  if (known.versions.some((v) => v.version === request.version))
    throw new FerryError(
      'FERRY_CONFLICT',
      `Model ${model} already has version ${request.version}; versions are immutable`,
      {
        hint: 'Pick another version name (ferry deploy names a version after its content unless --version is given).',
      },
    );

  let spec: VersionSpec = {};
  let artifactDir: string | undefined;
  if (request.artifact !== undefined) {
    // Another tenant's upload is, to this one, an artifact nobody uploaded.
    if (!deps.store.ownsArtifact(request.artifact, tenantOf(model))) throw artifactNotFound(request.artifact);
    artifactDir = deps.artifacts.require(request.artifact).dir;
    spec = await versionSpecOf(artifactDir);
  }
  let image: string | undefined;
  if (request.image !== undefined) {
    const pinned = await pin(deps, request.image);
    image = pinned.ref;
    const name = pinned.labels['dev.ferry.model.name'];
    if (request.artifact === undefined && name) spec = { ...spec, servedName: name };
    const modelVersion = pinned.labels['dev.ferry.model.version'];
    if (request.artifact === undefined && modelVersion) spec = { ...spec, modelVersion };
  }
  return deps.store.addVersion(model, {
    version: request.version,
    ...(image === undefined ? {} : { image }),
    ...(request.artifact === undefined ? {} : { artifact: request.artifact }),
    ...(artifactDir === undefined ? {} : { artifactDir }),
    spec,
    ...(request.metadata === undefined ? {} : { metadata: request.metadata }),
  });
}

/** What an artifact's ferry.yaml says about running it. */
export async function versionSpecOf(dir: string): Promise<VersionSpec> {
  const { spec } = await loadSpec(dir);
  return {
    servedName: spec.model.name,
    modelVersion: spec.model.version,
    resources: { cpu: spec.resources.cpu, memoryBytes: spec.resources.memoryBytes, gpu: spec.resources.gpu },
    env: { ...spec.env },
    secrets: [...spec.secrets],
    // Only when asked for: versions that do not say keep their spec (and their revisions' hashes) as before.
    ...(spec.network.egress ? { network: { egress: true } } : {}),
    ...(spec.scaling === null ? {} : { scaling: spec.scaling }),
  };
}

async function pin(deps: VersionRegistryDeps, ref: string): Promise<PinnedImage> {
  if (/^sha256:[0-9a-f]{64}$/.test(ref) || /@sha256:[0-9a-f]{64}$/.test(ref)) {
    if (!deps.pinImage) return { ref, labels: {} };
    // Already pinned; still ask for its labels (served name), but a pinned ref stands even if that fails.
    return deps.pinImage(ref).catch(() => ({ ref, labels: {} }));
  }
  if (!deps.pinImage)
    throw new FerryError('FERRY_BAD_REQUEST', `The image ${ref} is not pinned by digest`, {
      hint: 'Give it as name@sha256:<digest> (this control plane cannot look tags up).',
    });
  return deps.pinImage(ref);
}
