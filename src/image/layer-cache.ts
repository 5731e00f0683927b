/**
 * A content-addressed cache of built layers, so a rebuild only compresses the layers whose inputs changed
 * (a code-only change rebuilds the small top layers). The key is a sha256 over the layer's entries with
 * every file's content digest in place of its path on the host; the value is the finished layer.
 * Lives in $FERRY_HOME/cache/layers (default ~/.ferry). A damaged entry is ignored and rebuilt.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { buildLayer, canonicalJson, sha256Digest } from './oci/index.ts';
import type { Layer, LayerEntry } from './oci/types.ts';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.FERRY_HOME ?? join(homedir(), '.ferry'), 'cache');
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The cache key of a layer: what goes into it, not where the files happen to be on this host. */
export async function layerKey(entries: readonly LayerEntry[], mtime: number): Promise<string> {
  const described = await Promise.all(
    entries.map(async (entry) => {
      if (entry.type !== 'file') return entry;
      const { source, ...rest } = entry;
      const content =
        source instanceof Uint8Array ? sha256Digest(source) : `sha256:${await fileDigest(source.file)}`;
      return { ...rest, content };
    }),
  );
  return createHash('sha256')
    .update(canonicalJson({ v: 1, mtime, entries: described }))
    .digest('hex');
}

/** Builds the layer, or takes it from the cache when the same inputs were built before. */
export async function cachedLayer(
  entries: readonly LayerEntry[],
  comment: string,
  mtime: number,
  dir: string = join(cacheRoot(), 'layers'),
): Promise<{ layer: Layer; cached: boolean }> {
  const key = await layerKey(entries, mtime);
  const blobPath = join(dir, `${key}.tar.gz`);
  const metaPath = join(dir, `${key}.json`);
  try {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as Omit<Layer, 'blob' | 'comment'>;
    const blob = await readFile(blobPath);
    if (sha256Digest(blob) === meta.digest) return { layer: { ...meta, blob, comment }, cached: true };
  } catch {
    // not cached (or damaged): build it
  }
  const layer = await buildLayer(entries, comment, { mtime });
  await mkdir(dir, { recursive: true });
  // Write then rename, so a concurrent or interrupted build never leaves a half-written entry.
  const tmp = `${blobPath}.${process.pid}.tmp`;
  await writeFile(tmp, layer.blob);
  await rename(tmp, blobPath);
  const { blob: _blob, comment: _comment, ...meta } = layer;
  await writeFile(`${metaPath}.${process.pid}.tmp`, JSON.stringify(meta));
  await rename(`${metaPath}.${process.pid}.tmp`, metaPath);
  return { layer, cached: false };
}
