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

/**
 * What a replica's server says of its startup, in its ready answer (`GET /v2/health/ready` 200:
 * `{"ready":true,"startup":{...}}`): when it reached each step, in ms since the epoch. The platform reads it once
 * per replica for the phases of a cold start. Listening and loading overlap (loading starts first); a time is null
 * when the step did not happen (no model READY).
 */
export interface ReplicaStartup {
  /** The server process started (its performance.timeOrigin). */
  processStartedAt: number;
  listeningAt: number | null;
  /** The first model's load began, and the last one's workers were up with their sessions (before warm-up). */
  modelLoadStartedAt: number | null;
  modelLoadedAt: number | null;
  /** The last model's warm-up was done. */
  warmedAt: number | null;
  /** Startup was over: ready from then on. */
  readyAt: number;
}

/**
 * Milliseconds the server keeps serving after SIGTERM before it drains (0-60000, default 0): readiness is false
 * at once, requests are still answered, each with Connection: close. For runtimes whose discovery a gateway may
 * still hold the replica in after the stop signal (Swarm's DNS). The image's entry reads it.
 */
export const SHUTDOWN_DELAY_ENV = 'FERRY_SHUTDOWN_DELAY_MS';
/** Its largest value: a delay is the time a gateway may keep a stale address, seconds, not minutes. */
export const MAX_SHUTDOWN_DELAY_MS = 60_000;

/** The replica's effective CPU limit in cores; the server sizes its threads by it on every runtime. */
export const CPU_LIMIT_ENV = 'FERRY_CPU_LIMIT';

/**
 * A replica's address when it listens on a unix socket: `unix:<absolute path>` (the route table's
 * RouteReplica.url and a runtime's ReplicaStatus.url). Otherwise a replica's url is `http://127.0.0.1:<port>`.
 */
export const UNIX_URL_PREFIX = 'unix:';

/** The server listens on this unix socket (absolute path) instead of TCP; the image's entry reads it. */
export const LISTEN_SOCKET_ENV = 'FERRY_LISTEN_SOCKET';

/** Permission bits of that socket, octal (default 600: only the server's own user may connect). */
export const SOCKET_MODE_ENV = 'FERRY_SOCKET_MODE';

/** Longest unix socket path Linux takes (sun_path is 108 bytes, with its terminating NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** `unix:<path>` for an absolute socket path. */
export function unixUrl(path: string): string {
  return `${UNIX_URL_PREFIX}${path}`;
}

/**
 * The socket path of a `unix:<path>` url, or null when the url is not one or the path is unusable (not
 * absolute, with NUL, '.' or '..' segments, or longer than MAX_SOCKET_PATH_BYTES).
 */
export function socketPathOf(url: unknown): string | null {
  if (typeof url !== 'string' || !url.startsWith(UNIX_URL_PREFIX)) return null;
  const path = url.slice(UNIX_URL_PREFIX.length);
  if (!path.startsWith('/') || path.includes('\0') || Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
    return null;
  if (path.split('/').some((p) => p === '.' || p === '..')) return null;
  return path;
}

/**
 * The directory a replica's secrets arrive in, one file per secret named as its environment variable; the
 * server reads them into its environment and removes them (src/server/secret-files.ts).
 */
export const SECRETS_DIR_ENV = 'FERRY_SECRETS_DIR';

/**
 * The model server's own load, for the autoscaler (issue 11): `GET` this path on a replica answers a LoadReport
 * (JSON). Cheap: numbers the server keeps anyway, no scraping of /metrics; not reachable through the gateway.
 */
export const LOAD_PATH = '/ferry/load';

/** One loaded model version's load. Counters are cumulative since it loaded: readers take differences. */
export interface ModelLoadReport {
  model: string;
  version: string;
  /** Inference worker threads running now. */
  workers: number;
  /** Batches a worker has in flight at once (the batcher's pipeline: one runs, the next waits in its port). */
  pipelineDepth: number;
  /** Samples one model call holds at most: maxBatchSize when requests are batched, 1 when each is its own call. */
  batchSize: number;
  /** Requests waiting in the batching queue now, and how many it holds before shedding (503). */
  queueDepth: number;
  maxQueueSize: number;
  /** Model calls (batches, or groups of unbatched requests) finished, and the samples (requests) in them. */
  batches: number;
  samples: number;
  /**
   * Filled executor time (ms): a batch in flight fills min(1, samples / batchSize) of one of the
   * workers x pipelineDepth slots for as long as it is out (waiting behind its worker's previous batch
   * included); a group of unbatched requests fills its slot. Its rate over workers x pipelineDepth is how full
   * the replica ran: 1 = every slot held a full batch all the time.
   */
  fillMs: number;
  /**
   * Estimated time (ms) a worker takes for one full call (batchSize samples), fitted on recent calls as measured
   * from the main thread (hops included, waiting behind the worker's previous call not); null until measured.
   */
  batchServiceMs: number | null;
}

export interface LoadReport {
  /** The server's monotonic clock (ms) when the report was made: counters' differences divide by its. */
  at: number;
  /** READY versions only. */
  models: ModelLoadReport[];
  /**
   * The server's main thread (HTTP, JSON, the batcher): time its event loop was busy and idle since the process
   * started (ms, cumulative; performance.eventLoopUtilization). A replica whose main thread is saturated is at
   * capacity however empty its batches are. Left out by an older server.
   */
  loop?: { activeMs: number; idleMs: number };
}
