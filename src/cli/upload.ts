/**
 * Sends a model directory to the platform as an artifact (src/image/artifact.ts packs it, the platform keeps it
 * by its sha256): compiled, with its dependencies, exactly what a replica will serve. An artifact the platform
 * has already is not sent again.
 */
import type { ControlClient, ModelVersion } from '../control/index.ts';
import { type PreparedArtifact, prepareArtifact } from '../image/artifact.ts';
import { formatBytes } from '../image/build.ts';
import { shortImage } from './format.ts';

export { formatBytes };

/** Prepares `dir` and uploads it unless the platform has it; the caller calls `cleanup()` on the result. */
export async function uploadModelDir(
  client: ControlClient,
  dir: string,
  progress: (line: string) => void,
): Promise<PreparedArtifact> {
  const prepared = await prepareArtifact(dir, { onProgress: progress });
  try {
    const what = `${prepared.files} file(s), ${formatBytes(prepared.bytes)}`;
    if (await client.hasArtifact(prepared.digest)) {
      progress(`artifact ${shortImage(prepared.digest)} (${what}) is on the platform already`);
      return prepared;
    }
    progress(`uploading artifact ${shortImage(prepared.digest)} (${what})`);
    await client.uploadArtifact(prepared.digest, prepared.stream());
    return prepared;
  } catch (error) {
    await prepared.cleanup();
    throw error;
  }
}

/** Uploads `dir` and registers it as `version` of `model` (which must exist). */
export async function addVersionFromDir(
  client: ControlClient,
  model: string,
  version: string,
  dir: string,
  progress: (line: string) => void = () => undefined,
): Promise<ModelVersion> {
  const uploaded = await uploadModelDir(client, dir, progress);
  try {
    return await client.addVersion(model, { version, artifact: uploaded.digest });
  } finally {
    await uploaded.cleanup();
  }
}
