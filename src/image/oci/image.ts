/**
 * Image assembly: base layers + Ferry's layers + a config, serialised as canonical JSON (keys sorted at every
 * level, no whitespace) so that the config digest (the image ID) and the manifest digest are a pure function
 * of the inputs. No I/O.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../../core/errors.ts';
import { type Image, type ImageConfig, type Layer, MEDIA_TYPES } from './types.ts';

/** JSON with object keys sorted (by UTF-16 code unit, like JSON.stringify would meet them) and no spaces. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** OCI layer media type for a layer whatever registry or archive it came from (same bytes, OCI name). */
export function ociLayerMediaType(mediaType: string): string {
  switch (mediaType) {
    case MEDIA_TYPES.layerGzip:
    case MEDIA_TYPES.dockerLayerGzip:
      return MEDIA_TYPES.layerGzip;
    case MEDIA_TYPES.layerTar:
    case MEDIA_TYPES.dockerLayerTar:
      return MEDIA_TYPES.layerTar;
    default:
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `The base image has a layer of media type "${mediaType}", which Ferry cannot use.`,
        { hint: 'Use a base image with gzip or plain tar layers (e.g. one built by `ferry base`).' },
      );
  }
}

export interface AssembleImageOptions {
  /** The base image (its layers come first, its history is kept). Null or absent: from scratch. */
  base?: { layers: Layer[]; config: ImageConfig } | null;
  /** Ferry's layers, bottom to top. */
  layers: Layer[];
  /** The final config (Env, User, Labels, ...). rootfs and history are computed here. */
  config: Omit<ImageConfig, 'rootfs' | 'history'>;
  /** history[].created_by for Ferry's layers; default "ferry build". The layer's comment is kept too. */
  createdBy?: string;
  /** Manifest annotations (e.g. org.opencontainers.image.*). */
  annotations?: Record<string, string>;
}

/** Puts an image together. Pure: the same options always give the same bytes and digests. */
export function assembleImage(options: AssembleImageOptions): Image {
  const base = options.base ?? null;
  const baseLayers = base?.layers ?? [];
  const created = options.config.created;
  const createdBy = options.createdBy ?? 'ferry build';

  let baseHistory: ImageConfig['history'] = [];
  if (base) {
    const h = base.config.history ?? [];
    const nonEmpty = h.filter((e) => !e.empty_layer).length;
    baseHistory =
      nonEmpty === baseLayers.length && h.length > 0
        ? h
        : baseLayers.map((l) => ({
            created: base.config.created ?? created,
            created_by: l.comment || 'base',
          }));
    const baseDiffIds = base.config.rootfs?.diff_ids ?? [];
    if (baseDiffIds.length !== baseLayers.length || baseDiffIds.some((d, i) => d !== baseLayers[i]!.diffId)) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        "The base image's config does not match its layers (rootfs.diff_ids differ from the layers' digests).",
        { hint: 'Rebuild or re-pull the base image.' },
      );
    }
  }

  const layers: Layer[] = [...baseLayers, ...options.layers].map((l) => {
    const mediaType = ociLayerMediaType(l.mediaType);
    return mediaType === l.mediaType ? l : { ...l, mediaType };
  });

  const config: ImageConfig = {
    ...options.config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: [
      ...baseHistory,
      ...options.layers.map((l) => ({
        created,
        created_by: createdBy,
        ...(l.comment ? { comment: l.comment } : {}),
      })),
    ],
  };
  const configBlob = Buffer.from(canonicalJson(config), 'utf8');
  const configDigest = sha256Digest(configBlob);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: configDigest, size: configBlob.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(options.annotations && Object.keys(options.annotations).length > 0
      ? { annotations: options.annotations }
      : {}),
  };
  const manifestBlob = Buffer.from(canonicalJson(manifest), 'utf8');
  return {
    layers,
    config,
    configBlob,
    configDigest,
    manifestBlob,
    manifestDigest: sha256Digest(manifestBlob),
  };
}

/** The shape of an OCI image manifest (and of a Docker v2 schema 2 manifest, which has the same fields). */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: { mediaType: string; digest: string; size: number };
  layers: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }>;
  annotations?: Record<string, string>;
}

/** An OCI image index / Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Array<{
    mediaType: string;
    digest: string;
    size: number;
    platform?: { architecture: string; os: string; variant?: string };
    annotations?: Record<string, string>;
  }>;
}

/** Picks linux/amd64 from an index; FERRY_BAD_REQUEST naming `where` when there is none. */
export function pickPlatform(index: ImageIndex, where: string): ImageIndex['manifests'][number] {
  const found = index.manifests.find(
    (m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64' && !m.platform.variant,
  );
  const any = found ?? (index.manifests.length === 1 ? index.manifests[0] : undefined);
  if (!any) {
    const have = index.manifests.map((m) => `${m.platform?.os ?? '?'}/${m.platform?.architecture ?? '?'}`);
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `${where} has no linux/amd64 image (it has: ${have.join(', ')}).`,
    );
  }
  return any;
}

/**
 * Rebuilds an Image from a manifest, a config blob and the layer blobs (as read from a layout or a
 * registry), checking that the config's diff_ids line up with the layers.
 */
export function imageFromParts(
  manifestBlob: Uint8Array,
  configBlob: Uint8Array,
  layerBlobs: Uint8Array[],
  where: string,
): Image {
  const manifest = parseJson(manifestBlob, `${where}: manifest`) as ImageManifest;
  const config = parseJson(configBlob, `${where}: config`) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (!Array.isArray(manifest.layers) || diffIds.length !== manifest.layers.length) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `${where}: the config lists ${diffIds.length} layers but the manifest ${manifest.layers?.length ?? 0}.`,
    );
  }
  const layers: Layer[] = manifest.layers.map((d, i) => ({
    digest: d.digest,
    diffId: diffIds[i]!,
    size: d.size,
    mediaType: d.mediaType,
    blob: layerBlobs[i]!,
    comment: 'base',
  }));
  return {
    layers,
    config,
    configBlob,
    configDigest: manifest.config.digest,
    manifestBlob,
    manifestDigest: sha256Digest(manifestBlob),
  };
}

export function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new FerryError('FERRY_BAD_REQUEST', `${what} is not valid JSON.`, { cause: err });
  }
}

/** FERRY_BAD_REQUEST unless sha256(bytes) is `digest`. */
export function verifyDigest(bytes: Uint8Array, digest: string, what: string): void {
  if (!digest.startsWith('sha256:')) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `${what} uses digest algorithm "${digest}"; only sha256 is supported.`,
    );
  }
  const actual = sha256Digest(bytes);
  if (actual !== digest) {
    throw new FerryError('FERRY_BAD_REQUEST', `${what} is corrupt: expected ${digest}, got ${actual}.`);
  }
}
