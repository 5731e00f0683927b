/**
 * Starts a model server: load the repository, listen, and on SIGTERM/SIGINT drain (readiness goes
 * false, in-flight requests finish, workers stop) and close within a deadline. With a shutdown delay, the
 * drain waits that long first: readiness is false at once, but requests are still served meanwhile (for a
 * gateway that still has this replica's address from DNS; see shutdownDelayMs).
 */

import { watch } from 'node:fs';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { FerryError } from '../core/errors.ts';
import { SECRETS_DIR_ENV, unixUrl } from '../core/replica.ts';
import { startTracing, type Tracing, tracingConfig } from '../core/tracing.ts';
import { DataPlane } from './data-plane.ts';
import { createHttpApp } from './http-app.ts';
import { ServerMetrics } from './metrics.ts';
import { ModelRepository } from './repository.ts';
import { loadSecretFiles } from './secret-files.ts';
import { listenOnSocket, removeSocket } from './socket.ts';
import { discardPreloaded } from './worker/preload.ts';

export interface ServerOptions {
  /** Model directories or repository directories. */
  paths: string[];
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Listen on this unix socket (absolute path) instead of host:port. A stale socket file there is replaced;
   * a live one is FERRY_PORT_IN_USE. Removed on close.
   */
  socketPath?: string;
  /** Permission bits of the socket (default 0o600: only this user may connect). */
  socketMode?: number;
  /** How the user sets the port, for the hint when it is taken: "--port" (default) or "FERRY_PORT". */
  portSetting?: string;
  /** Reload a model when files in its directory change. */
  watch?: boolean;
  /** How long draining may take on shutdown, in ms. */
  shutdownTimeoutMs?: number;
  /**
   * How long close() keeps serving before it drains, in ms (default 0: it drains at once). Meanwhile
   * readiness answers 503, new connections and requests are served as usual, and every answer carries
   * `Connection: close`, so a client holding a kept-alive connection moves to a new one, elsewhere. For
   * runtimes that take a replica out of discovery without waiting for it to go unready (Docker Swarm's DNS:
   * a gateway keeps an address until it resolves again). endShutdownDelay() cuts it short. The drain's
   * deadline (shutdownTimeoutMs) starts after it.
   */
  shutdownDelayMs?: number;
  /** Largest body any route accepts, in bytes. */
  maxBodyBytes?: number;
  logger?: Logger;
  /** Merged over each ferry.yaml's `serving` section (a deployment's serving options). */
  servingOverrides?: Record<string, unknown>;
  /**
   * A replica of the platform: a model that fails to load fails the start (FERRY_MODEL_LOAD_FAILED naming the
   * model and the reason) instead of leaving a server that is never ready.
   */
  failOnLoadError?: boolean;
  /**
   * Tracing (docs/tracing.md): default from the process's OTEL_* variables (core/tracing.ts startTracing; off
   * without an OTLP endpoint, and then no OpenTelemetry module is loaded); null: off.
   */
  tracing?: Tracing | null;
}

export interface RunningServer {
  /** `http://<host>:<port>`, or `unix:<path>` on a socket. */
  url: string;
  /** 0 on a socket. */
  port: number;
  dataPlane: DataPlane;
  repository: ModelRepository;
  logger: Logger;
  /**
   * Waits the shutdown delay (when there is one), drains and stops; true when everything finished within the
   * deadline. Safe to call more than once.
   */
  close(): Promise<boolean>;
  /**
   * Ends the shutdown delay now, so that the drain starts (a second SIGTERM in entry.ts). True when close() was
   * in its delay; false otherwise (not closing, no delay, or draining already), and then it does nothing.
   */
  endShutdownDelay(): boolean;
}

export function createLogger(level = process.env.FERRY_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'ferry-server' }, timestamp: pino.stdTimeFunctions.isoTime });
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const logger = options.logger ?? createLogger();
  // Before any worker starts: workers copy the environment when they are made.
  const secretsDir = process.env[SECRETS_DIR_ENV];
  if (secretsDir) {
    const names = loadSecretFiles(secretsDir);
    delete process.env[SECRETS_DIR_ENV];
    logger.info({ secrets: names }, `secrets read from files: ${names.join(', ') || 'none'}`);
  }
  // Bad OTEL_* values stop the start before anything else happens (FERRY_BAD_REQUEST naming the variable).
  const tracingWanted = options.tracing === undefined && tracingConfig(process.env, 'ferry-server') !== null;
  const metrics = new ServerMetrics();
  const repository = new ModelRepository(
    options.paths,
    metrics,
    logger,
    options.servingOverrides ? { serving: options.servingOverrides } : {},
  );
  const dataPlane = new DataPlane(repository);

  // Listen first so liveness answers while models load; readiness stays false until they are loaded.
  // Paths and specs are checked before listening: a typo fails fast, with every problem listed.
  const sources = await repository.readAll();
  // Loading starts before the app is made and the port opens: the workers' thread start and model load
  // overlap that work (about 50 ms less to ready on two cores). Readiness still waits for it below.
  const loading = repository.loadAll(sources);
  loading.catch(() => undefined); // awaited below; a failure must not be unhandled meanwhile
  // The OpenTelemetry SDK loads (tracing on) while the model does.
  const tracing = tracingWanted ? await startTracing(process.env, 'ferry-server') : (options.tracing ?? null);
  if (tracing !== null) {
    for (const warning of tracing.config.warnings) logger.warn(warning);
    logger.info(
      {
        url: tracing.config.url,
        serviceName: tracing.config.serviceName,
        sampler: tracing.config.sampler.kind,
      },
      'tracing: exporting spans over OTLP/HTTP',
    );
  }
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024 * 1024;
  const app = createHttpApp({ dataPlane, metrics, logger, maxBodyBytes, tracing });
  const socketPath = options.socketPath;
  try {
    if (socketPath === undefined) await app.listen({ host: options.host, port: options.port });
    else
      await listenOnSocket(socketPath, options.socketMode ?? 0o600, () => app.listen({ path: socketPath }));
  } catch (error) {
    await app.close();
    await loading.catch(() => undefined);
    await repository.unloadAll().catch(() => undefined);
    await tracing?.shutdown().catch(() => undefined);
    if (socketPath === undefined && (error as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw portInUse(options);
    throw error;
  }
  dataPlane.markListening();
  const port = socketPath === undefined ? (app.server.address() as AddressInfo).port : 0;
  const url =
    socketPath === undefined
      ? `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`
      : unixUrl(socketPath);

  try {
    await loading;
    if (options.failOnLoadError) {
      const failed = repository.index().filter((e) => e.state === 'FAILED');
      if (failed.length > 0)
        throw new FerryError(
          'FERRY_MODEL_LOAD_FAILED',
          failed
            .map(
              (e) =>
                `model ${e.name}${e.version ? ` version ${e.version}` : ''} failed to load: ${e.reason ?? 'unknown reason'}`,
            )
            .join('; '),
          { hint: 'The replica stops so that the platform reports it; fix the model and deploy again.' },
        );
    }
  } catch (error) {
    await repository.unloadAll().catch(() => undefined);
    await app.close();
    if (socketPath !== undefined) await removeSocket(socketPath);
    await tracing?.shutdown().catch(() => undefined);
    throw error;
  }
  const maxLimit = Math.max(0, ...repository.all().map((v) => v.spec.serving.limits.maxBodyBytes));
  if (maxLimit > maxBodyBytes) {
    logger.warn(
      { maxBodyBytes, modelLimit: maxLimit },
      'a model allows larger bodies than the server limit; the server limit applies',
    );
  }
  dataPlane.markStartupDone();
  discardPreloaded(); // a worker started for a model that turned out not to need it
  logger.info(
    { url, models: repository.index() },
    dataPlane.ready() ? 'server ready' : 'server started, but no model is ready',
  );

  const watchers = options.watch ? watchModelDirs(repository, logger) : [];

  let closing: Promise<boolean> | null = null;
  let endDelay: (() => void) | null = null;
  const close = () => {
    closing ??= (async () => {
      const delayMs = options.shutdownDelayMs ?? 0;
      if (delayMs > 0) {
        dataPlane.startShutdownDelay();
        logger.info(
          { delayMs },
          'shutdown delay: readiness is now false; still serving, each connection closed after its answer',
        );
        const cut = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), delayMs);
          endDelay = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        endDelay = null;
        if (cut) logger.info({ delayMs }, 'shutdown delay cut short');
      }
      const timeoutMs = options.shutdownTimeoutMs ?? 30_000;
      logger.info({ timeoutMs }, 'draining: readiness is now false; finishing in-flight requests');
      dataPlane.startDraining();
      for (const w of watchers) w.close();
      // Close the listener first (in-flight requests finish, new ones get 503), then stop the workers.
      const drained = app
        .close()
        .then(() => (socketPath === undefined ? undefined : removeSocket(socketPath)))
        .then(() => repository.unloadAll())
        // What was recorded goes out before the process ends (bounded by the exporter's timeout).
        .then(() => tracing?.shutdown().catch(() => undefined))
        .then(() => true);
      const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
      const clean = await Promise.race([drained, timedOut]);
      logger[clean ? 'info' : 'warn'](
        { clean },
        clean ? 'stopped' : 'shutdown deadline passed; stopping with requests unfinished',
      );
      return clean;
    })();
    return closing;
  };

  const endShutdownDelay = () => {
    if (endDelay === null) return false;
    endDelay();
    return true;
  };

  return { url, port, dataPlane, repository, logger, close, endShutdownDelay };
}

function portInUse({ host, port, portSetting = '--port' }: ServerOptions): FerryError {
  return new FerryError('FERRY_PORT_IN_USE', `port ${port} on ${host} is already in use by another program`, {
    hint: `Choose another port with ${portSetting} (0 picks a free one), or stop the program that holds ${port}.`,
  });
}

/** Watches each model directory and reloads that model (load new, then swap, then unload old) on change. */
function watchModelDirs(repository: ModelRepository, logger: Logger) {
  return repository.modelDirs.map((dir) => {
    let timer: NodeJS.Timeout | undefined;
    let running = Promise.resolve();
    return watch(dir, { recursive: true }, (_event, file) => {
      if (file && /(^|\/)(node_modules|\.git)(\/|$)/.test(file)) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        running = running.then(async () => {
          logger.info({ dir, file }, 'model files changed; reloading');
          const loaded = await repository.reloadDir(dir);
          if (loaded)
            logger.info(
              { model: loaded.name, version: loaded.version, state: loaded.state },
              'reload finished',
            );
        });
      }, 200);
    });
  });
}
