/**
 * The contract between the platform and the model server it runs as a replica (`ferry serve` on the process
 * runtime, the image's server on docker): set in the replica's environment, read by the server.
 */

/**
 * Set to "1" for a replica: a model that fails to load ends the server with EXIT_MODEL_LOAD_FAILED (and the
 * reason as its last line on stderr) instead of serving nothing forever, so the platform sees the failure.
 */
export const FAIL_ON_LOAD_ERROR_ENV = 'FERRY_FAIL_ON_LOAD_ERROR';

/** Exit code of a server whose model failed to load (with FAIL_ON_LOAD_ERROR_ENV). */
export const EXIT_MODEL_LOAD_FAILED = 3;

/**
 * Response header of a server that is draining (shutting down): the gateway retries the request on another
 * replica and stops sending to this one. Its value is "1".
 */
export const DRAINING_HEADER = 'x-ferry-draining';

/** The replica's effective CPU limit in cores; the server sizes its threads by it on every runtime. */
export const CPU_LIMIT_ENV = 'FERRY_CPU_LIMIT';
