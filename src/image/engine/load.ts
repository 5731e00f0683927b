import { PassThrough } from 'node:stream';
import { FerryError } from '../../core/errors.ts';
import { writeDockerArchive } from '../oci/layout.ts';
import type { Image } from '../oci/types.ts';
import type { Engine, ImageInfo } from './types.ts';

/**
 * Streams an assembled image into the engine as a docker-archive tagged `repoTag` (nothing written to
 * disk), and returns what the engine then reports for it. The engine's image ID equals image.configDigest.
 */
export async function loadIntoEngine(engine: Engine, image: Image, repoTag: string): Promise<ImageInfo> {
  const pipe = new PassThrough();
  const writing = writeDockerArchive(image, repoTag, pipe).catch((err: unknown) => {
    pipe.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  });
  const [, loaded] = await Promise.all([writing, engine.loadImage(pipe)]);
  const info = await engine.inspectImage(repoTag);
  if (info === null) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `The engine loaded ${loaded.join(', ') || 'nothing'} but has no '${repoTag}'.`,
    );
  }
  return info;
}
