/**
 * A small POSIX tar writer (ustar headers, PAX extended headers where ustar cannot hold a value).
 *
 * Only what Ferry's layers and archives need: regular files, directories and symlinks, written in the order
 * given, with every header field fixed by the caller (no host uid/gid/mtime/uname leaks in). The output is a
 * stream of chunks; file contents are read from disk in chunks, never held whole.
 */
import { open } from 'node:fs/promises';
import { FerryError } from '../../core/errors.ts';

export const BLOCK = 512;
const READ_CHUNK = 1 << 20;

/** A tar member with every header field decided. `path` has no leading slash; directories end in '/'. */
export type TarMember =
  | { type: 'dir'; path: string; mode: number; uid: number; gid: number; mtime: number }
  | {
      type: 'file';
      path: string;
      mode: number;
      uid: number;
      gid: number;
      mtime: number;
      source: Uint8Array | { file: string };
    }
  | { type: 'symlink'; path: string; target: string; uid: number; gid: number; mtime: number };

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

/** Writes `value` as zero-padded octal of `width - 1` digits followed by NUL. */
function writeOctal(buf: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, '0');
  buf.write(digits, offset, width - 1, 'ascii');
  buf[offset + width - 1] = 0;
}

function writeString(buf: Buffer, offset: number, width: number, value: string): void {
  buf.write(value, offset, width, 'utf8');
}

/** One PAX record: "<len> <key>=<value>\n", where len counts the whole record including itself. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length + bodyLen !== len) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

const MAX_OCTAL_11 = 0o77777777777; // 8 GiB - 1: the largest size an 11-digit ustar field holds

interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
}

function rawHeader(f: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, 0, 100, f.name);
  writeOctal(h, 100, 8, f.mode & 0o7777);
  writeOctal(h, 108, 8, f.uid);
  writeOctal(h, 116, 8, f.gid);
  writeOctal(h, 124, 12, Math.min(f.size, MAX_OCTAL_11));
  writeOctal(h, 136, 12, f.mtime);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h.write(f.typeflag, 156, 1, 'ascii');
  writeString(h, 157, 100, f.linkname);
  h.write('ustar\u000000', 257, 8, 'ascii');
  // uname/gname stay empty; devmajor/devminor as octal zeros like GNU tar and Go's archive/tar.
  writeOctal(h, 329, 8, 0);
  writeOctal(h, 337, 8, 0);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return h;
}

function padding(size: number): Buffer | null {
  const rest = size % BLOCK;
  return rest === 0 ? null : Buffer.alloc(BLOCK - rest);
}

function fits(value: string, width: number): boolean {
  return isAscii(value) && value.length <= width;
}

/**
 * The header block(s) for one member: a PAX extended header first when the path or link target is longer
 * than ustar allows (100 bytes) or not plain ASCII, or the size is 8 GiB or more.
 */
export function headerBlocks(
  m: { path: string; mode: number; uid: number; gid: number; mtime: number },
  typeflag: '0' | '2' | '5',
  size: number,
  linkname = '',
): Buffer[] {
  const records: string[] = [];
  if (!fits(m.path, 100)) records.push(paxRecord('path', m.path));
  if (!fits(linkname, 100)) records.push(paxRecord('linkpath', linkname));
  if (size > MAX_OCTAL_11) records.push(paxRecord('size', String(size)));
  const out: Buffer[] = [];
  if (records.length > 0) {
    const data = Buffer.from(records.join(''), 'utf8');
    const shortName = `PaxHeaders/${truncateAscii(m.path, 89)}`;
    out.push(
      rawHeader({
        name: shortName,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        mtime: m.mtime,
        typeflag: 'x',
        linkname: '',
      }),
      data,
    );
    const pad = padding(data.length);
    if (pad) out.push(pad);
  }
  out.push(
    rawHeader({
      name: truncateAscii(m.path, 100),
      mode: m.mode,
      uid: m.uid,
      gid: m.gid,
      size,
      mtime: m.mtime,
      typeflag,
      linkname: truncateAscii(linkname, 100),
    }),
  );
  return out;
}

/** A fallback name for readers without PAX support: the last `width` bytes, non-ASCII replaced. */
function truncateAscii(s: string, width: number): string {
  const ascii = s.replace(/[^\x20-\x7e]/g, '_');
  return ascii.length <= width ? ascii : ascii.slice(ascii.length - width);
}

/**
 * Yields the tar stream for `members` in the order given, ending with the two zero blocks.
 * File sources on disk are opened once, their size taken from that open handle, and read in 1 MiB chunks;
 * a file that changes size while it is read is an error (the header already promised a size).
 */
export async function* tarStream(members: Iterable<TarMember>): AsyncGenerator<Uint8Array> {
  for (const m of members) {
    if (m.type === 'dir') {
      yield* headerBlocks(m, '5', 0);
    } else if (m.type === 'symlink') {
      yield* headerBlocks({ ...m, mode: 0o777 }, '2', 0, m.target);
    } else if (m.source instanceof Uint8Array) {
      yield* headerBlocks(m, '0', m.source.byteLength);
      if (m.source.byteLength > 0) yield m.source;
      const pad = padding(m.source.byteLength);
      if (pad) yield pad;
    } else {
      yield* fileMember(m, m.source.file);
    }
  }
  yield Buffer.alloc(BLOCK * 2);
}

async function* fileMember(
  m: { path: string; mode: number; uid: number; gid: number; mtime: number },
  file: string,
): AsyncGenerator<Uint8Array> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FerryError(
      code === 'ENOENT' ? 'FERRY_FILE_NOT_FOUND' : 'FERRY_INTERNAL',
      `Cannot read ${file} for the image layer entry "${m.path}": ${code ?? String(err)}.`,
      { cause: err },
    );
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `${file} (for the image layer entry "${m.path}") is not a regular file.`,
      );
    }
    const size = stat.size;
    yield* headerBlocks(m, '0', size);
    let done = 0;
    while (done < size) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - done));
      const { bytesRead } = await handle.read(buf, 0, buf.length, done);
      if (bytesRead === 0) break;
      done += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
    if (done !== size) {
      throw new FerryError(
        'FERRY_FILE_NOT_FOUND',
        `${file} changed while the image layer was written (expected ${size} bytes, read ${done}).`,
        { hint: 'Do not modify model files during `ferry build`.' },
      );
    }
    const pad = padding(size);
    if (pad) yield pad;
  } finally {
    await handle.close();
  }
}
