/**
 * The process entry inside a Ferry image (bundled to /app/server.mjs by src/image/bundle.ts): no commander,
 * no tsx. Configuration comes from the environment:
 *
 *   FERRY_MODEL_DIR         model directory (with its ferry.yaml)         default /app/model
 *   FERRY_HOST              address to bind                               default 0.0.0.0
 *   FERRY_PORT              port, 0-65535                                 default 8080
 *   FERRY_LISTEN_SOCKET     absolute path of a unix socket to listen on   default none (TCP)
 *                           instead of FERRY_HOST:FERRY_PORT (a stale socket file there is replaced)
 *   FERRY_SOCKET_MODE       that socket's permission bits, octal          default 600
 *   FERRY_SHUTDOWN_TIMEOUT  seconds draining may take on SIGTERM, 0-3600  default 30
 *   FERRY_SHUTDOWN_DELAY_MS ms still served on SIGTERM, 0-60000           default 0
 *                           before the drain: readiness answers 503 at once, requests are served as usual,
 *                           each answer with Connection: close (Swarm: a gateway may hold the address a while)
 *   FERRY_LOG_LEVEL         pino level                                    default info
 *   FERRY_SERVING_OVERRIDES JSON merged over ferry.yaml's serving section  default none
 *   FERRY_FAIL_ON_LOAD_ERROR "1": a model that fails to load ends the server (exit 3), as replicas want
 *   OTEL_*                  OpenTelemetry tracing, on with OTEL_EXPORTER_OTLP_ENDPOINT (docs/tracing.md)
 *
 * An empty variable counts as unset. Invalid configuration: one line on stderr, exit 2. A model directory
 * that is missing or holds an invalid ferry.yaml: exit 2 as well (the error as printed by the spec loader);
 * other startup failures exit 1.
 *
 * As PID 1 in a container the process gets no default signal handlers, so SIGTERM/SIGINT are handled here:
 * drain (readiness false, in-flight requests finish, workers stop), then exit 0, or 1 when the deadline cut
 * requests off. A second signal exits at once (130). With FERRY_SHUTDOWN_DELAY_MS, the drain comes after the
 * delay; a second signal during the delay ends it (the drain starts at once), and a further one exits (130).
 */
// First: starts the model's worker while the modules below load and run (worker/preload.ts).
import './worker/preload-entry.ts';
import { isFerryError } from '../core/errors.ts';
import {
  EXIT_MODEL_LOAD_FAILED,
  FAIL_ON_LOAD_ERROR_ENV,
  LISTEN_SOCKET_ENV,
  MAX_SHUTDOWN_DELAY_MS,
  SHUTDOWN_DELAY_ENV,
  SOCKET_MODE_ENV,
} from '../core/replica.ts';
import { parseServingOverrides, SERVING_OVERRIDES_ENV } from '../spec/index.ts';
import { createLogger, startServer } from './server.ts';
import { parseSocketMode } from './socket.ts';
import { preloadSettled } from './worker/preload.ts';

const EXIT_USAGE = 2;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

interface EntryConfig {
  modelDir: string;
  host: string;
  port: number;
  socketPath: string | undefined;
  socketMode: number;
  shutdownTimeoutMs: number;
  shutdownDelayMs: number;
  logLevel: string;
  servingOverrides: Record<string, unknown> | undefined;
}

/** Reads and checks the configuration; returns the first problem as a sentence instead of throwing. */
function readConfig(env: NodeJS.ProcessEnv): EntryConfig | { problem: string } {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const int = (name: string, fallback: number, min: number, max: number): number | { problem: string } => {
    const text = get(name);
    if (text === undefined) return fallback;
    const n = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max)
      return { problem: `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}` };
    return n;
  };
  const port = int('FERRY_PORT', 8080, 0, 65535);
  if (typeof port !== 'number') return port;
  const timeout = int('FERRY_SHUTDOWN_TIMEOUT', 30, 0, 3600);
  if (typeof timeout !== 'number') return timeout;
  const delay = int(SHUTDOWN_DELAY_ENV, 0, 0, MAX_SHUTDOWN_DELAY_MS);
  if (typeof delay !== 'number') return delay;
  const logLevel = get('FERRY_LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    return {
      problem: `FERRY_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    };
  const host = (get('FERRY_HOST') ?? '0.0.0.0').trim();
  if (/\s|\/|^\[|\]$/.test(host) || host === '')
    return {
      problem: `FERRY_HOST must be an address to bind such as 0.0.0.0, 127.0.0.1 or ::, got ${JSON.stringify(host)}`,
    };
  const socketPath = get(LISTEN_SOCKET_ENV);
  if (socketPath !== undefined && !socketPath.startsWith('/'))
    return { problem: `${LISTEN_SOCKET_ENV} must be an absolute path, got ${JSON.stringify(socketPath)}` };
  const modeText = get(SOCKET_MODE_ENV) ?? '600';
  const socketMode = parseSocketMode(modeText);
  if (socketMode === null)
    return {
      problem: `${SOCKET_MODE_ENV} must be octal permission bits such as 600, got ${JSON.stringify(modeText)}`,
    };
  const overridesText = get(SERVING_OVERRIDES_ENV);
  const overrides = overridesText === undefined ? undefined : parseServingOverrides(overridesText);
  if (overrides !== undefined && 'problem' in overrides) return overrides;
  return {
    servingOverrides: overrides?.value,
    modelDir: get('FERRY_MODEL_DIR') ?? '/app/model',
    host,
    port,
    socketPath,
    socketMode,
    shutdownTimeoutMs: timeout * 1000,
    shutdownDelayMs: delay,
    logLevel,
  };
}

/** Says why on stderr and exits with `code`, once the preloaded worker is out of native setup (preload.ts). */
async function fail(message: string, code: number): Promise<never> {
  process.stderr.write(`ferry: ${message}\n`);
  await preloadSettled();
  process.exit(code);
}

const read = readConfig(process.env);
const config = 'problem' in read ? await fail(`invalid configuration: ${read.problem}`, EXIT_USAGE) : read;

const logger = createLogger(config.logLevel);
let server: Awaited<ReturnType<typeof startServer>> | undefined;
let signals = 0;
const stop = (signal: string) => {
  if (++signals > 1) {
    // During the shutdown delay a second signal only ends the delay; otherwise it ends the process.
    if (signals === 2 && server?.endShutdownDelay()) return;
    process.exit(130);
  }
  // A signal during startup: nothing to drain yet.
  if (server === undefined) {
    void preloadSettled().then(() => process.exit(0));
    return;
  }
  server.logger.info({ signal }, 'shutting down');
  void server.close().then((clean) => process.exit(clean ? 0 : 1));
};
// Installed before startup: as PID 1, a SIGTERM without a handler would be ignored.
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

try {
  server = await startServer({
    paths: [config.modelDir],
    host: config.host,
    port: config.port,
    portSetting: 'FERRY_PORT',
    ...(config.socketPath === undefined
      ? {}
      : { socketPath: config.socketPath, socketMode: config.socketMode }),
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    shutdownDelayMs: config.shutdownDelayMs,
    logger,
    ...(config.servingOverrides ? { servingOverrides: config.servingOverrides } : {}),
    failOnLoadError: process.env[FAIL_ON_LOAD_ERROR_ENV] === '1',
  });
} catch (error) {
  if (isFerryError(error)) {
    // A wrong FERRY_MODEL_DIR or ferry.yaml is configuration, like a bad variable: exit 2.
    const usage = ['FERRY_SPEC_INVALID', 'FERRY_SPEC_NOT_FOUND', 'FERRY_FILE_NOT_FOUND'].includes(error.code);
    const hint = error.hint ? ` (hint: ${error.hint})` : '';
    const code = error.code === 'FERRY_MODEL_LOAD_FAILED' ? EXIT_MODEL_LOAD_FAILED : usage ? EXIT_USAGE : 1;
    await fail(`error ${error.code}: ${error.message}${hint}`, code);
  }
  await fail(`startup failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 1);
}
