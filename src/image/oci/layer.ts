/**
 * Reproducible image layers: the same entries always give the same tar bytes (diffId) and the same gzip
 * bytes (digest), whatever order the entries come in and whatever the host's clock, umask or user is.
 *
 * Fixed by construction:
 * - entries sorted by path (byte order of the UTF-8 path); missing parent directories added (0755, 0:0);
 * - mtime of every entry: SOURCE_DATE_EPOCH when set (the reproducible-builds convention), else 0
 *   (1970-01-01); `options.mtime` overrides both;
 * - owner 0:0 unless an entry says otherwise; uname/gname empty; mode 0644 files, 0755 dirs, 0777 symlinks;
 * - gzip from node:zlib at level 6; its header carries mtime 0, no file name, XFL 0 and OS 3 (Unix) on
 *   every host. (The deflate bytes depend on the zlib version bundled with Node; the diffId does not.)
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zc } from 'node:zlib';
import { FerryError } from '../../core/errors.ts';
import { BLOCK, type TarMember, tarStream } from './tar.ts';
import { type Layer, type LayerEntry, MEDIA_TYPES } from './types.ts';

export const GZIP_LEVEL = 6;

export interface BuildLayerOptions {
  /** Seconds since the epoch for every entry's mtime. Default: sourceDateEpoch(). */
  mtime?: number;
}

/**
 * SOURCE_DATE_EPOCH (seconds) when set, else 0. Layers use it for mtimes; the image config's `created`
 * should use it too (see epochToCreated).
 */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return 0;
  if (!/^\d{1,11}$/.test(raw)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 (got "${raw}").`,
      { hint: 'Unset it, or set it to e.g. the last commit time: git log -1 --format=%ct' },
    );
  }
  return Number(raw);
}

/** The RFC 3339 timestamp for `created` fields: "1970-01-01T00:00:00Z" for 0. */
export function epochToCreated(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** Normalises a layer path: no leading "/" or "./", no trailing "/", no empty, "." or ".." segments. */
export function normalizeLayerPath(path: string): string {
  const parts = path.split('/').filter((p, i) => !(p === '' || (p === '.' && i === 0)));
  if (parts.length === 0 || parts.some((p) => p === '.' || p === '..' || p.includes('\0'))) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `Image layer entry path "${path}" is not allowed (empty, or has "." / ".." segments or NUL).`,
    );
  }
  return parts.join('/');
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Turns entries into tar members in their final order: normalised paths, parents added, sorted.
 * Duplicate paths are an error, except that an explicit directory replaces an implied one.
 */
export function planMembers(entries: readonly LayerEntry[], mtime: number): TarMember[] {
  const byPath = new Map<string, TarMember>();
  const implied = new Set<string>();
  for (const e of entries) {
    const path = normalizeLayerPath(e.path);
    const uid = e.uid ?? 0;
    const gid = e.gid ?? 0;
    let member: TarMember;
    if (e.type === 'dir') {
      member = { type: 'dir', path, mode: e.mode ?? 0o755, uid, gid, mtime };
    } else if (e.type === 'file') {
      member = { type: 'file', path, mode: e.mode ?? 0o644, uid, gid, mtime, source: e.source };
    } else {
      if (e.target === '' || e.target.includes('\0')) {
        throw new FerryError(
          'FERRY_INTERNAL',
          `Image layer symlink "${path}" has an empty or invalid target.`,
        );
      }
      member = { type: 'symlink', path, target: e.target, uid, gid, mtime };
    }
    const existing = byPath.get(path);
    if (existing && !(implied.has(path) && member.type === 'dir')) {
      throw new FerryError('FERRY_INTERNAL', `Image layer entry "${path}" appears twice.`);
    }
    byPath.set(path, member);
    implied.delete(path);
    // Parent directories.
    let slash = path.lastIndexOf('/');
    while (slash > 0) {
      const parent = path.slice(0, slash);
      const p = byPath.get(parent);
      if (p) {
        if (p.type !== 'dir') {
          throw new FerryError(
            'FERRY_INTERNAL',
            `Image layer entry "${path}" is inside "${parent}", which is not a directory in the layer.`,
          );
        }
        break; // its parents are there already
      }
      byPath.set(parent, { type: 'dir', path: parent, mode: 0o755, uid: 0, gid: 0, mtime });
      implied.add(parent);
      slash = parent.lastIndexOf('/');
    }
  }
  const members = [...byPath.values()].map((m) => (m.type === 'dir' ? { ...m, path: `${m.path}/` } : m));
  // Sort by the path without the directory slash so a directory sorts right before its contents.
  const key = (m: TarMember) => (m.type === 'dir' ? m.path.slice(0, -1) : m.path);
  members.sort((a, b) => compareBytes(key(a), key(b)));
  return members;
}

function hashingTap(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

/** An upper bound of the tar's size (files stat'ed, not read), so the gzip output can go into one buffer. */
async function tarSizeBound(members: readonly TarMember[]): Promise<number> {
  let total = 2 * BLOCK;
  for (const m of members) {
    let size = 0;
    if (m.type === 'file') {
      size =
        m.source instanceof Uint8Array
          ? m.source.byteLength
          : ((await stat(m.source.file).catch(() => null))?.size ?? 0);
    }
    const names = Buffer.byteLength(m.path) + (m.type === 'symlink' ? Buffer.byteLength(m.target) : 0);
    total += Math.ceil(size / BLOCK) * BLOCK + 4 * BLOCK + Math.ceil((names + 64) / BLOCK) * BLOCK;
  }
  return total;
}

/** zlib's deflateBound for the default window and memLevel, plus the gzip wrapper and some slack. */
function gzipBound(n: number): number {
  return n + (n >> 12) + (n >> 14) + (n >> 25) + 7 + 18 + 1024;
}

/**
 * Collects the compressed output into one buffer sized from the bound, so a layer of big weights is not held
 * twice (chunks + concatenation). A result much smaller than the bound is copied out so the big allocation
 * can be freed; if the bound is ever exceeded (a file grew) it falls back to chunks.
 */
class BlobSink {
  private buf: Buffer | null;
  private used = 0;
  private chunks: Buffer[] = [];
  constructor(bound: number) {
    this.buf = Buffer.allocUnsafe(bound);
  }
  push(chunk: Buffer): void {
    if (this.buf && this.used + chunk.length <= this.buf.length) {
      chunk.copy(this.buf, this.used);
      this.used += chunk.length;
      return;
    }
    if (this.buf) {
      this.chunks.push(this.buf.subarray(0, this.used));
      this.buf = null;
    }
    this.chunks.push(chunk);
    this.used += chunk.length;
  }
  finish(): Buffer {
    if (!this.buf) return Buffer.concat(this.chunks, this.used);
    const out = this.buf.subarray(0, this.used);
    return this.used * 2 < this.buf.length ? Buffer.from(out) : out;
  }
}

/**
 * Builds one layer: a gzip-compressed tar of `entries` plus its digests. Files given as `{ file }` are
 * streamed from disk once (hashed and compressed on the way); only the compressed blob is kept in memory.
 */
export async function buildLayer(
  entries: readonly LayerEntry[],
  comment: string,
  options: BuildLayerOptions = {},
): Promise<Layer> {
  const mtime = options.mtime ?? sourceDateEpoch();
  const members = planMembers(entries, mtime);
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  const sink = new BlobSink(gzipBound(await tarSizeBound(members)));
  await pipeline(
    Readable.from(tarStream(members), { objectMode: false }),
    hashingTap(tarHash),
    createGzip({ level: GZIP_LEVEL, memLevel: 8, windowBits: 15, strategy: zc.Z_DEFAULT_STRATEGY }),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        gzHash.update(chunk);
        sink.push(chunk);
        cb();
      },
    }),
  );
  const blob = sink.finish();
  const size = blob.byteLength;
  return {
    digest: `sha256:${gzHash.digest('hex')}`,
    diffId: `sha256:${tarHash.digest('hex')}`,
    size,
    mediaType: MEDIA_TYPES.layerGzip,
    blob,
    comment,
  };
}
