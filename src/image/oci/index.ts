/** OCI image assembly without a daemon: reproducible layers, image config/manifest, layouts and archives. */
export {
  type AssembleImageOptions,
  assembleImage,
  canonicalJson,
  type ImageIndex,
  type ImageManifest,
  imageFromParts,
  sha256Digest,
} from './image.ts';
export {
  type BuildLayerOptions,
  buildLayer,
  epochToCreated,
  GZIP_LEVEL,
  normalizeLayerPath,
  sourceDateEpoch,
} from './layer.ts';
export {
  IMAGE_NAME_ANNOTATION,
  type LayoutImage,
  REF_NAME_ANNOTATION,
  readOciLayout,
  writeDockerArchive,
  writeOciArchive,
  writeOciLayout,
} from './layout.ts';
export type { Image, ImageConfig, Layer, LayerEntry } from './types.ts';
export { MEDIA_TYPES } from './types.ts';
