/**
 * The artifact store: model directories as the platform received them, content-addressed and read-only. A
 * version made from a directory points at one artifact, so every revision and every replica made from it
 * serves the same bytes forever, whatever happens to the directory it came from.
 *
 * An artifact arrives as a tar stream (what `ferry deploy` sends: the model directory as the image would hold
 * it, see src/image/artifact.ts); its digest is the sha256 of those tar bytes. The sender names the digest,
 * the store checks it while it reads, so a broken or tampered upload never becomes an artifact.
 *
 * Layout under the root:
 *   sha256/<hex>/         one artifact: ferry.yaml, weights, compiled handler, its node_modules; files 0444
 *   node_modules/<pkg>    links to packages the server provides to handlers (onnxruntime-node), as /app/node_modules
 *                         does in an image: Node resolves a handler's imports by walking up to it
 *   incoming/             uploads being received; removed when they end, moved into sha256/ when they verify
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { FerryError } from '../core/errors.ts';

export const ARTIFACT_DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export interface ArtifactInfo {
  digest: string;
  /** The artifact's directory (read-only). */
  dir: string;
}

export interface ReceivedArtifact extends ArtifactInfo {
  files: number;
  bytes: number;
  /** False when the store had it already (the upload was read and verified, then dropped). */
  created: boolean;
}

export interface ArtifactStoreOptions {
  /** Largest upload accepted, in bytes of tar. Default 16 GiB. */
  maxBytes?: number;
  /** Most entries (files and directories) in one artifact. Default 100,000. */
  maxEntries?: number;
}

/** The answer for an artifact the platform does not have, or that the asking tenant never uploaded. */
export function artifactNotFound(digest: string): FerryError {
  return new FerryError('FERRY_NOT_FOUND', `No artifact ${digest} on this platform`, {
    hint: 'Upload it first (ferry deploy <dir> does), then register the version.',
  });
}

export class ArtifactStore {
  readonly root: string;
  private readonly maxBytes: number;
  private readonly maxEntries: number;

  constructor(root: string, options: ArtifactStoreOptions = {}) {
    this.root = root;
    this.maxBytes = options.maxBytes ?? 16 * 1024 ** 3;
    this.maxEntries = options.maxEntries ?? 100_000;
  }

  /** The artifact's directory, or undefined when the store does not have it. */
  get(digest: string): ArtifactInfo | undefined {
    checkDigest(digest);
    const dir = this.dirOf(digest);
    return existsSync(dir) ? { digest, dir } : undefined;
  }

  /** Like get(), but a missing artifact is FERRY_NOT_FOUND naming it. */
  require(digest: string): ArtifactInfo {
    const found = this.get(digest);
    if (!found) throw artifactNotFound(digest);
    return found;
  }

  /**
   * Reads a tar stream into the store as `digest`. The stream is checked entry by entry (regular files and
   * directories with plain relative paths only) and its sha256 must equal `digest`; otherwise nothing is
   * kept and the error says what was wrong.
   */
  async receive(digest: string, body: Readable): Promise<ReceivedArtifact> {
    checkDigest(digest);
    const incoming = join(this.root, 'incoming', `${Date.now()}-${randomBytes(4).toString('hex')}`);
    await mkdir(incoming, { recursive: true, mode: 0o700 });
    const hash = createHash('sha256');
    let bytes = 0;
    let files = 0;
    let entries = 0;
    const maxBytes = this.maxBytes;
    const tar = extract();
    // The body goes through the hash into the tar reader; a failure on either side ends the other.
    const fail = (error: Error) => {
      tar.destroy(error);
      body.destroy();
    };
    body.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxBytes)
        return fail(
          bad(`it is larger than the ${maxBytes} bytes this platform accepts`, 'FERRY_PAYLOAD_TOO_LARGE'),
        );
      hash.update(chunk);
      if (!tar.write(chunk)) {
        body.pause();
        tar.once('drain', () => body.resume());
      }
    });
    body.on('end', () => tar.end(null));
    body.on('error', (error) => fail(error));
    try {
      for await (const entry of tar) {
        const { header } = entry;
        if (++entries > this.maxEntries) throw bad(`it has more than ${this.maxEntries} entries`);
        const target = join(incoming, ...entryPath(header.name).split('/'));
        if (header.type === 'directory') {
          await mkdir(target, { recursive: true, mode: 0o700 });
          for await (const _ of entry); // a directory has no data, but the reader waits until it is read
          continue;
        }
        if (header.type !== 'file')
          throw bad(`${header.name} is a ${header.type}; an artifact holds only files and directories`);
        files++;
        await mkdir(dirname(target), { recursive: true, mode: 0o700 });
        const file = await open(target, 'wx', 0o600);
        try {
          for await (const chunk of entry) await file.write(chunk as Uint8Array);
        } finally {
          await file.close();
        }
      }
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest)
        throw bad(
          `its sha256 is ${got}, not ${digest}`,
          'FERRY_BAD_REQUEST',
          'The upload was cut or changed on the way; send it again.',
        );
      if (files === 0) throw bad('it has no files');
      const dir = this.dirOf(digest);
      if (existsSync(dir)) return { digest, dir, files, bytes, created: false };
      await makeReadOnly(incoming);
      await mkdir(dirname(dir), { recursive: true, mode: 0o755 });
      try {
        await rename(incoming, dir);
      } catch (error) {
        // Another upload of the same artifact won the race: same bytes, keep theirs.
        if (existsSync(dir)) return { digest, dir, files, bytes, created: false };
        throw error;
      }
      return { digest, dir, files, bytes, created: true };
    } catch (error) {
      body.destroy();
      if (error instanceof FerryError) throw error;
      throw bad(`it is not a readable tar stream: ${(error as Error).message}`);
    } finally {
      await rm(incoming, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * Links `<root>/node_modules/<name>` to each package directory, replacing what was there: the packages the
   * model server provides to handlers, found by Node's resolution from any artifact below the root.
   */
  async linkPackages(packages: Record<string, string>): Promise<void> {
    const dir = join(this.root, 'node_modules');
    await mkdir(dir, { recursive: true });
    for (const [name, target] of Object.entries(packages)) {
      const link = join(dir, ...name.split('/'));
      await mkdir(dirname(link), { recursive: true });
      await rm(link, { recursive: true, force: true });
      await symlink(target, link, 'dir');
    }
  }

  private dirOf(digest: string): string {
    return join(this.root, 'sha256', digest.slice('sha256:'.length));
  }
}

function checkDigest(digest: string): void {
  if (typeof digest !== 'string' || !ARTIFACT_DIGEST_RE.test(digest))
    throw bad(
      `${JSON.stringify(digest)} is not an artifact digest`,
      'FERRY_BAD_REQUEST',
      'An artifact digest is sha256: and 64 lowercase hex digits.',
    );
}

/** A tar entry's name as a plain relative path ('a/b.txt'); anything that could leave the directory is refused. */
function entryPath(name: string): string {
  const trimmed = name.replace(/\/+$/, '');
  const parts = trimmed.split('/');
  if (
    trimmed === '' ||
    trimmed.startsWith('/') ||
    trimmed.includes('\\') ||
    trimmed.includes('\0') ||
    parts.some((p) => p === '' || p === '.' || p === '..')
  )
    throw bad(`the entry ${JSON.stringify(name)} is not a plain relative path`);
  return trimmed;
}

/** Files 0444, directories 0555, children first. */
async function makeReadOnly(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await makeReadOnly(path);
    else if ((await lstat(path)).isFile()) await chmod(path, 0o444);
  }
  await chmod(dir, 0o555);
}

function bad(
  message: string,
  code: 'FERRY_BAD_REQUEST' | 'FERRY_PAYLOAD_TOO_LARGE' = 'FERRY_BAD_REQUEST',
  hint?: string,
): FerryError {
  return new FerryError(code, `Artifact upload: ${message}`, hint === undefined ? {} : { hint });
}
