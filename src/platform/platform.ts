/**
 * Ferry on one machine, assembled: the SQLite store, a runtime (Docker when an engine answers, else local
 * processes), the gateway (one port for every model), the controller (reconcile loop, rollouts) and the
 * control-plane API. `ferry up` runs this in a background process; tests run it in-process.
 *
 *   API (fastify, bearer tokens) -> controller.commands -> store (desired state), nudges the loop
 *   controller.loop -> runtime (replicas) + gateway.setRoutes (what serves, by revision)
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import {
  ArtifactStore,
  buildControlApi,
  Controller,
  type GatewayLoadReport,
  GatewayLoads,
  LogArchive,
  openStore,
  RouteFile,
  SecretBox,
  Secrets,
  type Store,
} from '../control/index.ts';
import { platformLabels } from '../control/labels.ts';
import { MetricsHistory } from '../control/metrics-history/index.ts';
import { FerryError } from '../core/errors.ts';
import { OTLP_SOCKET_ENV, otelEnv, otlpTraceHeaders, startTracing, tracingConfig } from '../core/tracing.ts';
import { FERRY_VERSION } from '../core/version.ts';
import { createGateway, type Gateway } from '../gateway/index.ts';
import { onnxRuntimePackageDirs } from '../image/bundle.ts';
import { createEngine, type Engine } from '../image/engine/index.ts';
import { ensureEngineImage, pinImage } from '../image/provision.ts';
import {
  CONTAINER_SOCKET_DIR,
  DockerRuntime,
  OTLP_RELAY_FILE,
  type OtlpRelayTarget,
  ProcessRuntime,
  type RevisionRuntime,
  type Runtime,
} from '../runtime/index.ts';
import { DEFAULT_API_PORT, DEFAULT_GATEWAY_PORT } from './defaults.ts';

export type RuntimeChoice = 'auto' | 'process' | 'docker' | 'swarm';

export interface PlatformOptions {
  /** State: store.db, replica records, logs. */
  home: string;
  runtime?: RuntimeChoice;
  host?: string;
  /** Control-plane API port (0 = any free port). */
  apiPort?: number;
  /** Gateway port (0 = any free port). */
  gatewayPort?: number;
  logger?: Logger;
  /**
   * 'if-missing' (default): create the `admin` token on the first start only. 'rotate': replace it (the CLI
   * lost the token it was shown once).
   */
  adminToken?: 'if-missing' | 'rotate';
  /**
   * Registries image versions may be pinned from (host[:port] or *.domain). Default: FERRY_ALLOWED_REGISTRIES
   * (comma-separated), else any registry on an address the SSRF guard allows (src/core/ssrf.ts).
   */
  allowedRegistries?: string[];
  /** Host-based tenants at the gateway: `Host: <tenant><suffix>` addresses that tenant (e.g. `.models.example.com`). */
  tenantHostSuffix?: string;
  /**
   * The swarm runtime's settings (required with runtime 'swarm'): the manager, the registry, and how the nodes
   * reach this control plane (`advertiseAddress`, default `host`).
   */
  swarm?: { dockerHost?: string; registry: string; insecureRegistry?: boolean; advertiseAddress?: string };
  /** Where progress lines of a long start go (the swarm runtime's image pushes). */
  onProgress?: (line: string) => void;
  /** The metrics history's step (docs/metrics.md, Metrics history). Default 5000; tests shorten it. */
  metricsStepMs?: number;
  /** Passed to the controller (tests shorten them). */
  drainTimeoutMs?: number;
  stopGraceMs?: number;
  resyncMs?: number;
  /** The built dashboard served at /ui/ (default: dist/web of this checkout, scripts/build-web.mjs). */
  uiDir?: string;
}

/** dist/web beside src/ (import.meta.url is the source file's URL in the compiled CLI too). */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../dist/web', import.meta.url));

export interface Platform {
  apiUrl: string;
  gatewayUrl: string;
  runtime: Runtime | RevisionRuntime;
  store: Store;
  controller: Controller;
  /** The gateway in this process; null with the swarm runtime (its gateways are a Swarm service). */
  gateway: Gateway | null;
  /** The admin token when this start created it (the first start on this home); null afterwards. */
  adminToken: string | null;
  /** Per-revision points every few seconds (GET /v1/deployments/{name}/metrics). */
  metricsHistory: MetricsHistory;
  /**
   * Stops the API, the controller and the gateway. `removeReplicas` (ferry down) drains and removes every
   * replica; without it they keep running for the next start to adopt.
   */
  stop(opts: { removeReplicas: boolean }): Promise<void>;
}

export { DEFAULT_API_PORT, DEFAULT_GATEWAY_PORT };

export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  if (opts.runtime === 'swarm') return startSwarmPlatform(opts);
  const host = opts.host ?? '127.0.0.1';
  mkdirSync(opts.home, { recursive: true, mode: 0o700 });
  // Tracing (docs/tracing.md): docker replicas export through a relay to the gateway's endpoint.
  const otlpRelay = relayTarget(process.env);
  const { runtime, engine } = await chooseRuntime(opts.runtime ?? 'auto', opts.home, {
    ...(otlpRelay === undefined ? {} : { otlpRelay }),
    ...(opts.logger ? { logger: opts.logger.child({ component: 'runtime' }) } : {}),
  });
  const store = openStore(join(opts.home, 'state.db'));
  if (runtime.kind === 'process' && process.getuid?.() === 0) letReplicasThrough(opts.home);
  const closeRelays = async () => {
    if (runtime instanceof DockerRuntime) await runtime.closeRelays();
  };
  const cleanups: Array<() => Promise<void> | void> = [() => store.close(), closeRelays];
  try {
    // A request held at zero replicas wakes the controller at once (the autoscaler starts one); bound late, as
    // the controller is made after the gateway it routes to.
    let wake = () => {};
    // Tracing (docs/tracing.md): on when the OTEL_* variables say so; the gateway owns it (shut down on close).
    const tracing = await startTracing(process.env, 'ferry-gateway');
    const gateway = createGateway({
      tracing,
      ...(opts.logger ? { logger: opts.logger.child({ component: 'gateway' }) } : {}),
      ...(opts.tenantHostSuffix ? { tenantHostSuffix: opts.tenantHostSuffix } : {}),
      onHeld: () => wake(),
    });
    const gatewayPort = opts.gatewayPort ?? DEFAULT_GATEWAY_PORT;
    const gatewayUrl = await gateway
      .listen(gatewayPort, host)
      .catch((e: unknown) => throwListenError(e, 'gateway', host, gatewayPort, '--gateway-port'));
    cleanups.unshift(() => gateway.close());
    const controller = await startController(opts, store, cleanups, {
      runtime,
      // Process replicas export their own spans; sealed docker replicas through their relay (docs/tracing.md).
      replicaEnv:
        runtime.kind === 'process'
          ? replicaTracingEnv(process.env)
          : otlpRelay === undefined
            ? {}
            : sealedReplicaTracingEnv(process.env),
      routes: gateway,
      load: gateway,
      gatewayUrl,
      ...(runtime.kind === 'docker' && engine
        ? { images: { ensure: (request, onProgress) => ensureEngineImage(engine, request, onProgress) } }
        : {}),
    });
    wake = () => controller.nudge();
    const metricsHistory = startMetricsHistory(opts, store, controller, cleanups, {
      gatewayText: () => gateway.metrics.metrics(),
    });
    const { apiUrl, adminToken, close } = await startApi(opts, host, store, controller, {
      engine,
      runtimeKind: runtime.kind,
      gatewayUrl,
      metricsHistory,
    });
    return {
      apiUrl,
      gatewayUrl,
      runtime,
      store,
      controller,
      gateway,
      adminToken,
      metricsHistory,
      async stop({ removeReplicas }) {
        await close();
        await metricsHistory.stop();
        await controller.stop({ removeReplicas });
        await gateway.close();
        await closeRelays();
        store.close();
      },
    };
  } catch (error) {
    for (const c of cleanups) await c();
    throw error;
  }
}

/**
 * The swarm runtime: the control plane here, the data plane on the swarm. The API listens on `host`; the nodes
 * reach it at `advertiseAddress` (default `host`, which must then not be a loopback address) for the route file.
 * Replicas and gateways keep serving while this process is down; a restart adopts them.
 */
async function startSwarmPlatform(opts: PlatformOptions): Promise<Platform> {
  const host = opts.host ?? '127.0.0.1';
  const swarmOpts = opts.swarm;
  if (!swarmOpts)
    throw new FerryError('FERRY_BAD_REQUEST', 'The swarm runtime needs a registry every node pulls from', {
      hint: 'Pass --registry <host:port> (or FERRY_REGISTRY).',
    });
  const advertise = swarmOpts.advertiseAddress ?? host;
  if (/^(127\.|localhost$|::1$)/.test(advertise))
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `The swarm's gateways cannot reach a control plane at ${advertise}: it is this machine's loopback address`,
      {
        hint: 'Pass --advertise-address <an address of this machine the nodes reach> (and --host to listen on it).',
      },
    );
  const gatewayEnv = swarmGatewayTracingEnv(process.env);
  mkdirSync(opts.home, { recursive: true, mode: 0o700 });
  const store = openStore(join(opts.home, 'state.db'));
  const cleanups: Array<() => Promise<void> | void> = [() => store.close()];
  try {
    const apiPort = opts.apiPort ?? DEFAULT_API_PORT;
    const gatewayPort = opts.gatewayPort ?? DEFAULT_GATEWAY_PORT;
    const { startSwarmRuntime } = await import('./swarm.ts');
    const { runtime, images } = await startSwarmRuntime(
      {
        ...swarmOpts,
        apiUrl: `http://${advertise.includes(':') ? `[${advertise}]` : advertise}:${apiPort}`,
        gatewayPort,
        home: opts.home,
        store,
        platformLabels: platformLabels(platformId(opts.home)),
        ...(gatewayEnv === undefined ? {} : { gatewayEnv }),
      },
      opts.onProgress ?? (() => {}),
    );
    const gatewayUrl = `http://${advertise.includes(':') ? `[${advertise}]` : advertise}:${gatewayPort}`;
    const routeFile = new RouteFile();
    // The gateways are elsewhere: they pull the route file and post their load (the autoscaler's input).
    const loads = new GatewayLoads();
    const controller = await startController(opts, store, cleanups, {
      runtime,
      routes: { setRoutes: () => {}, waitIdle: async () => true },
      discovery: routeFile,
      load: loads,
      gatewayUrl,
      images,
    });
    // The gateways and replicas are on the swarm's overlay network: the history has the gateways' reports.
    const metricsHistory = startMetricsHistory(opts, store, controller, cleanups, {
      gatewayArrivals: () => loads.arrivals((d) => store.getDeployment(d) !== undefined),
    });
    const { apiUrl, adminToken, close } = await startApi(opts, host, store, controller, {
      engine: undefined,
      runtimeKind: runtime.kind,
      gatewayUrl,
      gatewayRoutes: routeFile,
      gatewayLoad: { report: (r) => loads.report(r), wake: () => controller.nudge() },
      metricsHistory,
    });
    return {
      apiUrl,
      gatewayUrl,
      runtime,
      store,
      controller,
      gateway: null,
      adminToken,
      metricsHistory,
      async stop({ removeReplicas }) {
        await close();
        await metricsHistory.stop();
        await controller.stop({ removeReplicas });
        store.close();
      },
    };
  } catch (error) {
    for (const c of cleanups) await c();
    throw error;
  }
}

const secretsByStore = new WeakMap<Store, Secrets>();
/** One Secrets per store: the controller and the API share it. */
function secretsOf(home: string, store: Store): Secrets {
  let secrets = secretsByStore.get(store);
  if (!secrets) {
    secrets = new Secrets(store, SecretBox.open(join(home, 'secret.key')));
    secretsByStore.set(store, secrets);
  }
  return secrets;
}

type ControllerParts = Pick<
  ConstructorParameters<typeof Controller>[0],
  'runtime' | 'routes' | 'load' | 'discovery' | 'images' | 'gatewayUrl' | 'replicaEnv'
>;

/**
 * The platform's OTEL_* variables for its replicas, but OTEL_SERVICE_NAME: that names the gateway; a replica is
 * `ferry-server` (or what its deployment's env says), with ferry.deployment and ferry.revision as resource
 * attributes (control/replica-spec.ts).
 */
function replicaTracingEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const { OTEL_SERVICE_NAME: _gateway, ...rest } = otelEnv(env);
  return rest;
}

/**
 * Where docker replicas' relays forward (docs/tracing.md): the endpoint the platform's own gateway exports to,
 * with the headers it sends (OTEL_EXPORTER_OTLP_HEADERS, _TRACES_HEADERS) and, for https, the certificates it
 * uses (OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY); undefined when tracing is off.
 */
function relayTarget(env: NodeJS.ProcessEnv): OtlpRelayTarget | undefined {
  const config = tracingConfig(env, 'ferry-gateway');
  if (config === null) return undefined;
  // As the exporter reads them (the traces variable first): PEM files for an https endpoint.
  const file = (what: string): Buffer | undefined => {
    const name = [`OTEL_EXPORTER_OTLP_TRACES_${what}`, `OTEL_EXPORTER_OTLP_${what}`].find((n) =>
      env[n]?.trim(),
    );
    if (name === undefined) return undefined;
    try {
      return readFileSync(env[name]!.trim());
    } catch (error) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `${name} names a file that cannot be read: ${String(error)}`,
        {
          hint: 'Point it at a PEM file this user can read, or unset it.',
        },
      );
    }
  };
  const ca = file('CERTIFICATE');
  const cert = file('CLIENT_CERTIFICATE');
  const key = file('CLIENT_KEY');
  const tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  return {
    url: config.url,
    headers: otlpTraceHeaders(env),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
  };
}

/** The exporter's variables a sealed replica may have: none that names a place or carries a credential. */
const SEALED_EXPORTER_VARIABLES = /^OTEL_EXPORTER_OTLP_(TRACES_)?(TIMEOUT|COMPRESSION|PROTOCOL)$/;

/**
 * A docker replica's tracing variables: the process replicas' (replicaTracingEnv) without any
 * OTEL_EXPORTER_OTLP_* but the timeout, compression and protocol (no endpoint, no headers: the credentials stay
 * here, the relay adds them; no certificate paths of this machine), and instead the relay's socket
 * (FERRY_OTLP_SOCKET, /run/ferry/otlp.sock) with a nominal endpoint that gives the request's path.
 */
export function sealedReplicaTracingEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(replicaTracingEnv(env)))
    if (!key.startsWith('OTEL_EXPORTER_OTLP_') || SEALED_EXPORTER_VARIABLES.test(key)) out[key] = value;
  out.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = 'http://localhost/v1/traces';
  out[OTLP_SOCKET_ENV] = `${CONTAINER_SOCKET_DIR}/${OTLP_RELAY_FILE}`;
  return out;
}

/**
 * The swarm gateway service's tracing variables: all of the platform's OTEL_* (the gateway exports from the
 * nodes, over its egress network), or undefined when tracing is off. An endpoint on a loopback address names
 * each gateway container itself there: refused, as an API address on loopback is.
 */
export function swarmGatewayTracingEnv(env: NodeJS.ProcessEnv): Record<string, string> | undefined {
  const config = tracingConfig(env, 'ferry-gateway');
  if (config === null) return undefined;
  otlpTraceHeaders(env); // malformed headers: an error now, not a gateway that cannot export
  const host = new URL(config.url).hostname;
  if (/^(127\.|localhost$|\[::1\]$)/.test(host))
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `The swarm's gateways cannot export spans to ${config.url}: on the nodes, ${host} is each gateway's own loopback`,
      {
        hint: 'Set OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) to a collector address the nodes reach, or unset it.',
      },
    );
  return otelEnv(env);
}

/** The controller on this store, started (the first pass adopts what runs). */
async function startController(
  opts: PlatformOptions,
  store: Store,
  cleanups: Array<() => Promise<void> | void>,
  parts: ControllerParts,
): Promise<Controller> {
  const secrets = secretsOf(opts.home, store);
  const controller = new Controller({
    ...parts,
    store,
    secrets,
    logs: new LogArchive(join(opts.home, 'logs')),
    platformId: platformId(opts.home),
    ...(opts.logger ? { logger: opts.logger.child({ component: 'controller' }) } : {}),
    ...(opts.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: opts.drainTimeoutMs }),
    ...(opts.stopGraceMs === undefined ? {} : { stopGraceMs: opts.stopGraceMs }),
    ...(opts.resyncMs === undefined ? {} : { resyncMs: opts.resyncMs }),
  });
  await controller.start();
  cleanups.unshift(() => controller.stop({ removeReplicas: false }));
  return controller;
}

/**
 * The metrics history, started: the gateway's counters (`gatewayText`, in this process) or the swarm gateways'
 * reports (`gatewayArrivals`), the ready replicas' /metrics where they are reachable (not on Swarm), the control
 * plane's cold starts. Its size shows in the control plane's registry.
 */
function startMetricsHistory(
  opts: PlatformOptions,
  store: Store,
  controller: Controller,
  cleanups: Array<() => Promise<void> | void>,
  gateway:
    | { gatewayText: () => Promise<string> }
    | { gatewayArrivals: () => Array<{ deployment: string; revision: number; arrivals: number }> },
): MetricsHistory {
  const reachable = 'gatewayText' in gateway;
  const log = opts.logger?.child({ component: 'metrics-history' });
  const history = new MetricsHistory({
    ...(opts.metricsStepMs === undefined ? {} : { stepMs: opts.metricsStepMs }),
    sources: {
      ...gateway,
      replicas: () => (reachable ? controller.loop.readyReplicas() : []),
      readyCounts: () => {
        const counts = new Map<string, { deployment: string; revision: number; ready: number }>();
        for (const r of controller.loop.readyReplicas()) {
          const key = `${r.deployment}\u0000${r.revision}`;
          const c = counts.get(key);
          if (c) c.ready++;
          else counts.set(key, { deployment: r.deployment, revision: r.revision, ready: 1 });
        }
        return counts.values();
      },
      controlText: () => controller.metrics.registry.metrics(),
      deploymentExists: (d) => store.getDeployment(d) !== undefined,
    },
    onError: (what, error) => log?.debug({ err: error }, `metrics history: cannot read the ${what}`),
  });
  controller.metrics.setHistorySource(() => ({ ...history.store.stats(), failures: history.failures }));
  history.start();
  cleanups.unshift(() => history.stop());
  return history;
}

/** The control-plane API, listening; the admin token made on a first start. */
async function startApi(
  opts: PlatformOptions,
  host: string,
  store: Store,
  controller: Controller,
  parts: {
    engine: Engine | undefined;
    runtimeKind: Platform['runtime']['kind'];
    gatewayUrl: string;
    gatewayRoutes?: RouteFile;
    gatewayLoad?: { report(r: GatewayLoadReport): boolean; wake(): void };
    metricsHistory: MetricsHistory;
  },
): Promise<{ apiUrl: string; adminToken: string | null; close(): Promise<void> }> {
  const secrets = secretsOf(opts.home, store);
  const artifacts = new ArtifactStore(join(opts.home, 'artifacts'));
  // Handlers in an artifact find the packages the server provides (onnxruntime-node) as they do in an
  // image (/app/node_modules): by Node's resolution, walking up from the artifact to the store's root.
  await artifacts.linkPackages(onnxRuntimePackageDirs());
  if (opts.adminToken === 'rotate') store.deleteToken('admin');
  const allowedRegistries =
    opts.allowedRegistries ??
    (process.env.FERRY_ALLOWED_REGISTRIES ?? '')
      .split(',')
      .map((r) => r.trim())
      .filter((r) => r !== '');
  const adminToken = store.listTokens().some((t) => t.name === 'admin')
    ? null
    : store.createToken('admin', 'platform-admin').token;
  const { engine } = parts;
  const api = buildControlApi({
    store,
    control: controller.commands,
    secrets,
    versions: { store, artifacts, pinImage: (ref) => pinImage(ref, engine, allowedRegistries) },
    info: { version: FERRY_VERSION, runtime: parts.runtimeKind, gatewayUrl: parts.gatewayUrl },
    metrics: controller.metrics,
    metricsHistory: parts.metricsHistory,
    ...(parts.gatewayRoutes ? { gatewayRoutes: parts.gatewayRoutes } : {}),
    ...(parts.gatewayLoad ? { gatewayLoad: parts.gatewayLoad } : {}),
    logger: opts.logger ? opts.logger.child({ component: 'api' }) : false,
    ui: { dir: opts.uiDir ?? DEFAULT_UI_DIR },
  });
  const apiPort = opts.apiPort ?? DEFAULT_API_PORT;
  const apiUrl = await api
    .listen({ port: apiPort, host })
    .catch((e: unknown) => throwListenError(e, 'control-plane API', host, apiPort, '--api-port'));
  return { apiUrl: apiUrl.replace('[::1]', '127.0.0.1'), adminToken, close: () => api.close() };
}

/**
 * Ferry runs as root with the process runtime: replicas run as an unprivileged user (process-runtime.ts) that must
 * reach its model (artifacts/, files 0444) and its socket directory (replicas/sockets/). The state directory lets
 * everyone through (0711, not listable); what is Ferry's alone is made unreadable to others: the store, the log
 * archive (the runtime keeps its own records and logs 0700; secret.key and platform-id are 0600 already).
 */
function letReplicasThrough(home: string): void {
  chmodSync(home, 0o711);
  for (const file of ['state.db', 'state.db-wal', 'state.db-shm'])
    if (existsSync(join(home, file))) chmodSync(join(home, file), 0o600);
  mkdirSync(join(home, 'logs'), { recursive: true, mode: 0o700 });
  chmodSync(join(home, 'logs'), 0o700);
}

/** A listen failure as a FerryError; a taken port names the flag that picks another. */
function throwListenError(error: unknown, what: string, host: string, port: number, flag: string): never {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE')
    throw new FerryError(
      'FERRY_PORT_IN_USE',
      `The ${what} cannot listen on ${host}:${port}: the port is in use`,
      {
        hint: `Stop what uses it, or pick another port with ${flag} (0 picks a free one).`,
        cause: error,
      },
    );
  throw new FerryError('FERRY_INTERNAL', `The ${what} cannot listen on ${host}:${port}: ${String(error)}`, {
    cause: error,
  });
}

/**
 * Docker when asked, or (auto) when an engine answers within 2 s; else processes. The engine, when one
 * answers, also pins image references of versions (and, for docker, gets their images).
 */
export async function chooseRuntime(
  choice: RuntimeChoice,
  home: string,
  docker: { otlpRelay?: OtlpRelayTarget; logger?: Logger } = {},
): Promise<{ runtime: Runtime; engine: Engine | undefined }> {
  const engine = createEngine();
  const answered = await Promise.race([
    engine.ping().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref()),
  ]);
  const processRuntime = () => ({
    runtime: new ProcessRuntime({ stateDir: join(home, 'replicas') }) as Runtime,
    engine: answered ? engine : undefined,
  });
  if (choice === 'process') return processRuntime();
  if (answered) {
    const { otlpRelay, logger } = docker;
    const runtime = new DockerRuntime(engine, {
      socketDir: join(home, 'sockets'),
      ...(otlpRelay === undefined ? {} : { otlpRelay }),
      onRelayError: (dir, error) =>
        logger?.warn(
          { err: error, dir },
          'cannot open the OTLP relay of a replica: its spans are not exported',
        ),
    });
    return { runtime, engine };
  }
  if (choice === 'docker') {
    throw new FerryError(
      'FERRY_ENGINE_FAILED',
      'No Docker engine answers (checked DOCKER_HOST or /var/run/docker.sock)',
      {
        hint: 'Start dockerd, or run ferry up --runtime process.',
      },
    );
  }
  return processRuntime();
}

/** The id in every replica's `ferry.dev/platform` label: made once per state directory, kept in `platform-id`. */
export function platformId(home: string): string {
  const path = join(home, 'platform-id');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const id = randomBytes(6).toString('hex');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(path, `${id}\n`, { mode: 0o600 });
  return id;
}
