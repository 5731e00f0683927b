/**
 * The OCI image model Ferry assembles itself (image-spec v1.1). Layers are gzip-compressed tarballs whose
 * entries carry fixed timestamps, owners and modes, in a fixed order, so the same inputs always give the
 * same bytes, digests and image ID.
 */

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  // Added for reading base images (OCI layouts, `docker save` output, registries):
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** One entry of a layer tarball. Paths are relative, without a leading slash ("app/server.mjs"). */
export type LayerEntry =
  | { type: 'dir'; path: string; mode?: number; uid?: number; gid?: number }
  | {
      type: 'file';
      path: string;
      mode?: number;
      uid?: number;
      gid?: number;
      /** Contents, or an absolute path on the host to read them from. */
      source: Uint8Array | { file: string };
    }
  | { type: 'symlink'; path: string; target: string; uid?: number; gid?: number };

/** A finished layer: the compressed blob and the digests an image needs. */
export interface Layer {
  /** sha256 of the compressed blob, "sha256:<hex>" (the manifest's layer digest). */
  digest: string;
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids). */
  diffId: string;
  /** Compressed size in bytes. */
  size: number;
  mediaType: string;
  /** The compressed bytes. */
  blob: Uint8Array;
  /** What the layer is for (the build plan's step name), shown in progress and history. */
  comment: string;
}

/** The parts of the OCI image config Ferry sets (https://github.com/opencontainers/image-spec/blob/main/config.md). */
export interface ImageConfig {
  architecture: 'amd64';
  os: 'linux';
  /** Fixed (SOURCE_DATE_EPOCH or the epoch) so that builds are reproducible. */
  created: string;
  config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    ExposedPorts?: Record<string, Record<string, never>>;
    Labels?: Record<string, string>;
    StopSignal?: string;
    Healthcheck?: {
      Test: string[];
      Interval?: number;
      Timeout?: number;
      StartPeriod?: number;
      Retries?: number;
    };
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: Array<{ created: string; created_by: string; comment?: string; empty_layer?: boolean }>;
}

/** An assembled image: everything needed to write an OCI layout, a docker-load tarball, or push. */
export interface Image {
  layers: Layer[];
  config: ImageConfig;
  /** Canonical JSON bytes of the config; its sha256 is the image ID. */
  configBlob: Uint8Array;
  configDigest: string;
  /** Canonical JSON bytes of the manifest; its sha256 is the image digest. */
  manifestBlob: Uint8Array;
  manifestDigest: string;
}
