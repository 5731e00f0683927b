/**
 * Where the inference worker's code is, for `new Worker(WORKER_URL)` (pool.ts). Three ways Ferry runs:
 * - in an image: src/image/bundle.ts bundles the worker to worker.mjs beside server.mjs and defines
 *   FERRY_BUNDLED_WORKER ("./worker.mjs", relative to the bundle, whose import.meta.url is server.mjs);
 * - the compiled CLI (bin/ferry.js runs dist/cli): scripts/build-cli.mjs compiles the worker to
 *   dist/cli/worker-<hash>.js and defines FERRY_COMPILED_WORKER as its path relative to this source file
 *   (import.meta.url keeps naming src/server/worker/worker-url.ts in that build);
 * - from source (tests, tsx in development): neither is defined, and the worker starts through
 *   bootstrap.mjs, which registers tsx in the worker thread before importing inference-worker.ts.
 */
declare const FERRY_BUNDLED_WORKER: string | undefined;
declare const FERRY_COMPILED_WORKER: string | undefined;

export const WORKER_URL = new URL(
  typeof FERRY_BUNDLED_WORKER === 'string'
    ? FERRY_BUNDLED_WORKER
    : typeof FERRY_COMPILED_WORKER === 'string'
      ? FERRY_COMPILED_WORKER
      : './bootstrap.mjs',
  import.meta.url,
);
