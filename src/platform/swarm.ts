/**
 * The platform's Swarm parts (issue 13): `ferry up --runtime swarm` keeps the control plane on this machine (store,
 * API, controller) and runs the data plane on the swarm. What this module sets up:
 *
 *   engine     a manager of the swarm (DOCKER_HOST or --docker-host); not a manager: a clear error
 *   images     versions are built here (daemonless) and pushed to the registry every node pulls from, pinned by
 *              digest (src/image/registry-provision.ts); the gateway's image too
 *   gateway    the `ferry-gateway` service (one task per node, host-mode port) pulling the route file from this
 *              control plane's API (`GET /v1/gateway/routes`) with a token of role `gateway`, kept in the state
 *              directory (0600) so a restart reuses it and the gateway service is not rolled for nothing
 *   routes     the controller writes the route file (RouteFile); the API serves it
 *   tracing    the gateway service gets the platform's OTEL_* variables (it exports from the nodes); the
 *              replicas do not (docs/tracing.md: a deployment's env may give them some)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { ImageProvisioner, Store } from '../control/index.ts';
import { FerryError, isFerryError } from '../core/errors.ts';
import { DEFAULT_TENANT } from '../core/tenant.ts';
import { ensureRegistryImage, pushGatewayImage } from '../image/registry-provision.ts';
import { DockerSwarmEngine } from '../runtime/swarm-engine.ts';
import { SwarmRuntime } from '../runtime/swarm-runtime.ts';

export interface SwarmOptions {
  /** A manager's engine: `unix:///path` or `tcp://host:port`; default DOCKER_HOST, else the local socket. */
  dockerHost?: string;
  /** `host[:port]` of the registry every node pulls from (e.g. Debian's docker-registry on the manager). */
  registry: string;
  /** The registry speaks plain HTTP (Docker's "insecure registry"; the nodes' daemons must allow it too). */
  insecureRegistry?: boolean;
  /** How the nodes reach this control plane's API: `http://<address>:<port>`. */
  apiUrl: string;
  /** The port every node's gateway publishes. */
  gatewayPort: number;
  /** The gateway service's environment: the platform's OTEL_* variables (docs/tracing.md). */
  gatewayEnv?: Record<string, string>;
}

const GATEWAY_TOKEN_NAME = 'swarm-gateway';

/** Dockerode for a DOCKER_HOST-style address. */
export function dockerFor(host: string | undefined): Dockerode {
  const address = host ?? process.env.DOCKER_HOST;
  if (address === undefined || address === '') return new Dockerode();
  if (address.startsWith('unix://')) return new Dockerode({ socketPath: address.slice('unix://'.length) });
  const url = new URL(address.replace(/^tcp:/, 'http:'));
  return new Dockerode({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
}

/**
 * The gateway's token: the one kept in the state directory while the store still has it, else a new one (the
 * store keeps only its hash; the file is how a restart gives the same token to the same gateway service).
 */
export function gatewayToken(home: string, store: Store): string {
  const file = join(home, 'gateway-token');
  const known = store.listTokens().some((t) => t.name === GATEWAY_TOKEN_NAME);
  if (known && existsSync(file)) return readFileSync(file, 'utf8').trim();
  if (known) store.deleteToken(GATEWAY_TOKEN_NAME);
  const created = store.createToken(GATEWAY_TOKEN_NAME, 'gateway');
  writeFileSync(file, `${created.token}\n`, { mode: 0o600 });
  return created.token;
}

export async function startSwarmRuntime(
  opts: SwarmOptions & { home: string; store: Store; platformLabels: Record<string, string> },
  onProgress: (line: string) => void,
): Promise<{ runtime: SwarmRuntime; images: ImageProvisioner }> {
  const engine = new DockerSwarmEngine(dockerFor(opts.dockerHost));
  const swarmId = await engine.swarmId().catch((error: unknown) => {
    throw new FerryError(
      'FERRY_ENGINE_FAILED',
      `No Docker engine answers at ${opts.dockerHost ?? process.env.DOCKER_HOST ?? '/var/run/docker.sock'}: ${error instanceof Error ? error.message : String(error)}`,
      { hint: 'Point --docker-host (or DOCKER_HOST) at a manager of the swarm.' },
    );
  });
  if (swarmId === null)
    throw new FerryError(
      'FERRY_ENGINE_FAILED',
      `The Docker engine at ${opts.dockerHost ?? process.env.DOCKER_HOST ?? '/var/run/docker.sock'} is not a manager of a swarm`,
      {
        hint: 'Run docker swarm init on it (or docker swarm join as a manager), or point --docker-host at a manager.',
      },
    );
  const target = { registry: opts.registry, ...(opts.insecureRegistry ? { insecure: true } : {}) };
  const gatewayImage = await pushGatewayImage(target, onProgress).catch((error: unknown) => {
    if (!isFerryError(error) || error.code !== 'FERRY_CONNECTION_FAILED' || opts.insecureRegistry)
      throw error;
    throw new FerryError(error.code, error.message, {
      hint: `Check that the registry runs and every node reaches it; one that speaks plain HTTP needs --insecure-registry (and "insecure-registries": ["${opts.registry}"] in each node's daemon.json).`,
      cause: error,
    });
  });
  const runtime = new SwarmRuntime(engine, {
    platformLabels: opts.platformLabels,
    gateway: {
      image: gatewayImage,
      publishedPort: opts.gatewayPort,
      routesUrl: `${opts.apiUrl.replace(/\/$/, '')}/v1/gateway/routes`,
      token: gatewayToken(opts.home, opts.store),
      ...(opts.gatewayEnv === undefined ? {} : { env: opts.gatewayEnv }),
    },
  });
  // Every tenant's network from the start: deploying to a tenant the store knows never rolls the gateways.
  await runtime.ensureGateway([...new Set([DEFAULT_TENANT, ...opts.store.listTenants().map((t) => t.name)])]);
  return {
    runtime,
    images: { ensure: (request, progress) => ensureRegistryImage(request, target, progress) },
  };
}
