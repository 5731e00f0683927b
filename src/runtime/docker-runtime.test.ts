import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupContainers, requireDocker, uniqueName } from '../../test/docker-env.ts';
import { createEngine, loadIntoEngine } from '../image/engine/index.ts';
import { baseCacheDir, buildImage, defaultBaseTag, ferryBase } from '../image/index.ts';
import { runRuntimeContract } from './contract.ts';
import { DockerRuntime } from './docker-runtime.ts';

const IRIS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'iris');

runRuntimeContract('docker', async ({ labels }) => {
  const engine = requireDocker();
  // What `ferry build examples/iris --base ferry-base:node<ver>` makes, under a tag of this run only (other
  // suites remove and reload iris:1 concurrently).
  const base = defaultBaseTag(process.version);
  if (!existsSync(baseCacheDir(base))) await ferryBase({ ociDir: baseCacheDir(base), tag: base });
  const built = await buildImage({ dir: IRIS, base });
  const tag = `${uniqueName('ferry-runtime-iris')}:1`;
  await loadIntoEngine(engine, built.image, tag);
  return {
    runtime: new DockerRuntime(engine),
    replicaSource: tag,
    reopen: () => new DockerRuntime(createEngine()),
    crash: async (replica) => {
      await engine.docker.getContainer(replica.id).kill();
    },
    cleanup: async () => {
      await cleanupContainers(labels);
      await engine.removeImage(tag, true);
    },
  };
});
