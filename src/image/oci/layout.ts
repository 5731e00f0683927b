/**
 * Writing images out of the process: an OCI image layout directory, a tar of one (`--output image.tar`), and
 * a docker-archive for `docker load`. Reading an OCI layout back gives a base image.
 *
 * The archives Ferry writes are both at once, like `docker save` since Docker 25: an OCI layout (oci-layout,
 * index.json, blobs/sha256/...) plus Docker's manifest.json pointing into blobs/. Layers stay gzip-compressed
 * in both; Docker 20.10's `docker load` decompresses them and checks them against the config's diff_ids.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../../core/errors.ts';
import {
  canonicalJson,
  type ImageIndex,
  type ImageManifest,
  imageFromParts,
  parseJson,
  pickPlatform,
  verifyDigest,
} from './image.ts';
import { type TarMember, tarStream } from './tar.ts';
import { type Image, MEDIA_TYPES } from './types.ts';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** containerd / Docker 25 put the full image name here; Ferry writes and reads it too. */
export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function blobPath(digest: string): string {
  if (!DIGEST_RE.test(digest)) {
    throw new FerryError('FERRY_BAD_REQUEST', `"${digest}" is not a sha256 digest.`);
  }
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

/** The blobs of an image (manifest, config, layers), each once, in a fixed order. */
function imageBlobs(image: Image): Array<{ digest: string; bytes: Uint8Array }> {
  const seen = new Set<string>();
  const out: Array<{ digest: string; bytes: Uint8Array }> = [];
  const add = (digest: string, bytes: Uint8Array) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    out.push({ digest, bytes });
  };
  for (const l of image.layers) add(l.digest, l.blob);
  add(image.configDigest, image.configBlob);
  add(image.manifestDigest, image.manifestBlob);
  return out;
}

function manifestDescriptor(
  image: Image,
  annotations: Record<string, string>,
): ImageIndex['manifests'][number] {
  return {
    mediaType: MEDIA_TYPES.manifest,
    digest: image.manifestDigest,
    size: image.manifestBlob.byteLength,
    platform: { architecture: image.config.architecture, os: image.config.os },
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/** Annotations for index.json: ref.name is the tag for "name:tag" refs (the OCI convention), else the ref. */
function refAnnotations(ref: string | undefined): Record<string, string> {
  if (!ref) return {};
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > lastSlash && !ref.includes('@')) {
    return { [IMAGE_NAME_ANNOTATION]: ref, [REF_NAME_ANNOTATION]: ref.slice(colon + 1) };
  }
  return { [REF_NAME_ANNOTATION]: ref };
}

const OCI_LAYOUT = `${canonicalJson({ imageLayoutVersion: '1.0.0' })}`;

/**
 * Writes (or adds to) an OCI image layout directory. An existing index.json keeps its other entries; an
 * entry with the same ref is replaced. Blobs already present are not rewritten.
 */
export async function writeOciLayout(dir: string, image: Image, ref?: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), OCI_LAYOUT);
  for (const { digest, bytes } of imageBlobs(image)) {
    const path = join(dir, blobPath(digest));
    const existing = await stat(path).catch(() => null);
    if (existing?.size === bytes.byteLength) continue;
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  }
  const annotations = refAnnotations(ref);
  let index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] };
  const existingIndex = await readFile(join(dir, 'index.json')).catch(() => null);
  if (existingIndex) {
    const parsed = parseJson(existingIndex, `${join(dir, 'index.json')}`) as ImageIndex;
    if (Array.isArray(parsed.manifests)) index = { ...parsed, mediaType: MEDIA_TYPES.index };
  }
  const sameRef = (m: ImageIndex['manifests'][number]) =>
    ref !== undefined
      ? m.annotations?.[REF_NAME_ANNOTATION] === annotations[REF_NAME_ANNOTATION] &&
        m.annotations?.[IMAGE_NAME_ANNOTATION] === annotations[IMAGE_NAME_ANNOTATION]
      : m.digest === image.manifestDigest && !m.annotations?.[REF_NAME_ANNOTATION];
  index.manifests = [...index.manifests.filter((m) => !sameRef(m)), manifestDescriptor(image, annotations)];
  const tmp = join(dir, `index.json.tmp-${process.pid}`);
  await writeFile(tmp, canonicalJson(index));
  await rename(tmp, join(dir, 'index.json'));
}

/** An image read from an OCI layout (blobs read fully and checked against their digests). */
export interface LayoutImage extends Image {
  manifest: ImageManifest;
}

/**
 * Reads one image from an OCI layout directory. `ref` matches the ref.name annotation (a tag such as
 * "latest") or the full image name annotation; without it the layout must hold exactly one image.
 * An index entry (multi-platform) resolves to its linux/amd64 image.
 */
export async function readOciLayout(dir: string, ref?: string): Promise<LayoutImage> {
  const where = `OCI layout ${dir}`;
  const layoutFile = await readFile(join(dir, 'oci-layout')).catch((err: NodeJS.ErrnoException) => {
    throw new FerryError('FERRY_FILE_NOT_FOUND', `${dir} is not an OCI image layout (no oci-layout file).`, {
      cause: err,
    });
  });
  const version = (parseJson(layoutFile, `${where}: oci-layout`) as { imageLayoutVersion?: string })
    .imageLayoutVersion;
  if (version !== '1.0.0') {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `${where} has imageLayoutVersion "${version}"; Ferry reads 1.0.0.`,
    );
  }
  const index = parseJson(await readBlobFile(dir, 'index.json', where), `${where}: index.json`) as ImageIndex;
  if (!Array.isArray(index.manifests)) {
    throw new FerryError('FERRY_BAD_REQUEST', `${where}: index.json has no manifests list.`);
  }
  const names = (m: ImageIndex['manifests'][number]) =>
    [m.annotations?.[REF_NAME_ANNOTATION], m.annotations?.[IMAGE_NAME_ANNOTATION]].filter(
      (n): n is string => typeof n === 'string',
    );
  let desc: ImageIndex['manifests'][number] | undefined;
  if (ref !== undefined) {
    const matches = index.manifests.filter((m) => names(m).includes(ref));
    desc = matches.length > 0 ? matches[matches.length - 1] : undefined;
  } else if (index.manifests.length === 1) {
    desc = index.manifests[0];
  }
  if (!desc) {
    const all = index.manifests.flatMap(names);
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      ref !== undefined
        ? `${where} has no image named "${ref}" (it has: ${all.join(', ') || 'no named images'}).`
        : `${where} holds ${index.manifests.length} images; say which one (${all.join(', ') || 'unnamed'}).`,
    );
  }
  let manifestBytes = await readBlob(dir, desc.digest, where);
  let manifestJson = parseJson(manifestBytes, `${where}: manifest`) as ImageManifest | ImageIndex;
  if ('manifests' in manifestJson) {
    const picked = pickPlatform(manifestJson, where);
    manifestBytes = await readBlob(dir, picked.digest, where);
    manifestJson = parseJson(manifestBytes, `${where}: manifest`) as ImageManifest;
  }
  const manifest = manifestJson as ImageManifest;
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw new FerryError('FERRY_BAD_REQUEST', `${where}: ${desc.digest} is not an image manifest.`);
  }
  const configBlob = await readBlob(dir, manifest.config.digest, where);
  const layerBlobs: Uint8Array[] = [];
  for (const l of manifest.layers) layerBlobs.push(await readBlob(dir, l.digest, where));
  return { ...imageFromParts(manifestBytes, configBlob, layerBlobs, where), manifest };
}

async function readBlobFile(dir: string, rel: string, where: string): Promise<Buffer> {
  try {
    return await readFile(join(dir, rel));
  } catch (err) {
    throw new FerryError('FERRY_FILE_NOT_FOUND', `${where} is missing ${rel}.`, { cause: err });
  }
}

async function readBlob(dir: string, digest: string, where: string): Promise<Buffer> {
  const bytes = await readBlobFile(dir, blobPath(digest), where);
  verifyDigest(bytes, digest, `${where}: blob ${digest}`);
  return bytes;
}

function archiveMembers(image: Image, ref: string | undefined, repoTags: string[]): TarMember[] {
  const common = { uid: 0, gid: 0, mtime: 0 };
  const members: TarMember[] = [
    { type: 'dir', path: 'blobs/', mode: 0o755, ...common },
    { type: 'dir', path: 'blobs/sha256/', mode: 0o755, ...common },
  ];
  for (const { digest, bytes } of imageBlobs(image)) {
    members.push({ type: 'file', path: blobPath(digest), mode: 0o644, ...common, source: bytes });
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [manifestDescriptor(image, refAnnotations(ref))],
  };
  const dockerManifest = [
    {
      Config: blobPath(image.configDigest),
      RepoTags: repoTags,
      Layers: image.layers.map((l) => blobPath(l.digest)),
    },
  ];
  const text = (s: string) => Buffer.from(s, 'utf8');
  members.push(
    { type: 'file', path: 'index.json', mode: 0o644, ...common, source: text(canonicalJson(index)) },
    {
      type: 'file',
      path: 'manifest.json',
      mode: 0o644,
      ...common,
      source: text(JSON.stringify(dockerManifest)),
    },
    { type: 'file', path: 'oci-layout', mode: 0o644, ...common, source: text(OCI_LAYOUT) },
  );
  return members;
}

async function writeArchive(members: TarMember[], out: Writable | string): Promise<void> {
  const source = Readable.from(tarStream(members), { objectMode: false });
  if (typeof out === 'string') {
    const tmp = `${out}.tmp-${process.pid}`;
    await pipeline(source, createWriteStream(tmp));
    await rename(tmp, out);
  } else {
    await pipeline(source, out);
  }
}

/**
 * Writes a tarball that `docker load` accepts (Docker 20.10 and later), tagged `repoTag` ("name:tag").
 * It is also an OCI layout. `out` is a stream (e.g. the Engine API's load request) or a file path.
 */
export async function writeDockerArchive(
  image: Image,
  repoTag: string,
  out: Writable | string,
): Promise<void> {
  await writeArchive(archiveMembers(image, repoTag, [repoTag]), out);
}

/**
 * Writes the OCI layout as one tarball (`ferry build --output image.tar`). When `ref` is a "name:tag" it also
 * carries Docker's manifest.json, so the same file can be given to `docker load`.
 */
export async function writeOciArchive(
  image: Image,
  ref: string | undefined,
  out: Writable | string,
): Promise<void> {
  const tagged = ref !== undefined && ref.lastIndexOf(':') > ref.lastIndexOf('/') && !ref.includes('@');
  await writeArchive(archiveMembers(image, ref, tagged ? [ref] : []), out);
}
