/**
 * A model artifact: the model directory exactly as an image holds it under /app/model (ferry.yaml, weights,
 * the handler compiled to one ES module, the model's npm dependencies, the examples), as one deterministic tar
 * stream. `ferry deploy` sends it to the platform, which keeps it by its sha256 (src/control/artifacts.ts), so
 * a version pins content rather than a path: the process runtime serves the artifact's directory, the docker
 * runtime an image built from it, and both serve the same bytes.
 *
 * The files come from the image plan (plan.ts), not from a second list: whatever the image's model directory
 * holds, the artifact holds. Every member has mode 0444/0555, owner 0 and mtime 0, in sorted order, so the same
 * content gives the same digest on any machine, at any time.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSpec } from '../spec/index.ts';
import type { LoadedSpec } from '../spec/types.ts';
import { modelPlanInputs } from './build.ts';
import { epochToCreated } from './oci/index.ts';
import { planMembers } from './oci/layer.ts';
import { type TarMember, tarStream } from './oci/tar.ts';
import type { LayerEntry } from './oci/types.ts';
import { MODEL_DIR, planImage } from './plan.ts';

export interface PreparedArtifact {
  /** sha256 of the tar stream: `sha256:<hex>`. */
  digest: string;
  /** Files in it, and their total size. */
  files: number;
  bytes: number;
  /** Size of the tar stream. */
  tarBytes: number;
  source: LoadedSpec;
  /** The tar stream again (it reads the files anew); call as often as needed until cleanup(). */
  stream(): AsyncGenerator<Uint8Array>;
  /** Removes the staged files (compiled handler, installed dependencies). */
  cleanup(): Promise<void>;
}

export interface PrepareArtifactOptions {
  onProgress?: (line: string) => void;
  /** Reuse npm installs from earlier builds ($FERRY_HOME/cache). Default true. */
  cache?: boolean;
}

/** Prepares the artifact of the model directory `dir` (compiles, installs dependencies, hashes). */
export async function prepareArtifact(
  dir: string,
  options: PrepareArtifactOptions = {},
): Promise<PreparedArtifact> {
  const log = options.onProgress ?? (() => undefined);
  const source = await loadSpec(dir);
  const staging = await mkdtemp(join(tmpdir(), 'ferry-artifact-'));
  const cleanup = () => rm(staging, { recursive: true, force: true });
  try {
    const model = await modelPlanInputs(source, staging, log, {
      cache: options.cache !== false,
      prepared: false,
    });
    // Only the model directory of the plan is used; the runtime layer and the image config are not.
    const plan = planImage({
      ...model,
      serverFiles: [],
      onnxFiles: [],
      ferryVersion: 'artifact',
      created: epochToCreated(0),
      baseRef: 'artifact',
    });
    const members = artifactMembers(plan.layers.flatMap((l) => l.entries));
    const stream = () => tarStream(members);
    const hash = createHash('sha256');
    let tarBytes = 0;
    for await (const chunk of stream()) {
      hash.update(chunk);
      tarBytes += chunk.byteLength;
    }
    const files = members.filter((m) => m.type === 'file');
    let bytes = 0;
    for (const f of files)
      bytes += f.type === 'file' && f.source instanceof Uint8Array ? f.source.byteLength : 0;
    for (const f of files)
      if (f.type === 'file' && !(f.source instanceof Uint8Array)) bytes += (await stat(f.source.file)).size;
    return {
      digest: `sha256:${hash.digest('hex')}`,
      files: files.length,
      bytes,
      tarBytes,
      source,
      stream,
      cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** The plan's entries under the model directory, relative to it, as sorted tar members with fixed metadata. */
export function artifactMembers(entries: readonly LayerEntry[]): TarMember[] {
  const prefix = `${MODEL_DIR}/`;
  const seenDirs = new Set<string>();
  const inside: LayerEntry[] = [];
  for (const e of entries) {
    if (!e.path.startsWith(prefix)) continue;
    const path = e.path.slice(prefix.length);
    if (e.type === 'dir') {
      // Several layers list the same parent directories.
      if (seenDirs.has(path)) continue;
      seenDirs.add(path);
    }
    inside.push({
      ...e,
      path,
      uid: 0,
      gid: 0,
      ...(e.type === 'symlink' ? {} : { mode: e.type === 'dir' ? 0o555 : 0o444 }),
    });
  }
  return planMembers(inside, 0);
}
