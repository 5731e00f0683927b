/**
 * Docker Swarm services for Ferry (issue 13): a revision -> the service that runs its replicas, and the gateway's
 * service. Pure: no I/O, no clock; the same input gives the same spec (golden-tested, testdata/swarm-services.json). The Engine API is
 * 1.41 (Debian's docker.io 20.10), so only fields that version knows are used.
 *
 * | a revision's service `ferry-<tenant>-<dep>-r<N>` | why |
 * |---|---|
 * | Mode replicated, `Replicas` from the controller | Swarm keeps that many tasks, restarts and reschedules them |
 * | image pinned by digest, `--no-resolve-image` not needed | every node runs the same bytes; a moved tag changes nothing |
 * | EndpointSpec `dnsrr`, no published port | no VIP and no ingress mesh (both need IPVS, absent here and on some hosts); the gateway finds tasks by DNS, `tasks.<service>` |
 * | the deployment's overlay network only | replicas reach nothing but what is on it (the gateway); `internal` unless the version declares egress (ensured by the runtime, not here) |
 * | user 65532:65532, read-only root, tmpfs /tmp, CapabilityDrop ALL | the Docker runtime's hardening, as far as Swarm services can say it (no-new-privileges needs API 1.46) |
 * | limits: NanoCPUs, MemoryBytes, Pids 256; memory reserved as limited | one replica cannot starve a node; the scheduler places by reservation |
 * | GPUs: a `NVIDIA-GPU` discrete generic resource reserved | a node advertising GPUs (its daemon.json `node-generic-resources`) is chosen |
 * | HealthCheck on /v2/health/ready (node -e fetch: the image has no shell or curl) | a task is not running, and not in DNS, until its model is loaded |
 * | secrets as Swarm secrets (encrypted in the raft log), files at /run/secrets/<NAME>, mode 0400, owner 65532 | never an env value, never in `docker service inspect` |
 * | RestartPolicy any, 1 s delay | a crashed replica comes back; node failure: rescheduled elsewhere |
 * | UpdateConfig start-first, one at a time, rollback on failure | an in-place update (a secret rotated) keeps capacity |
 * | FERRY_SHUTDOWN_DELAY_MS (SWARM_SHUTDOWN_DELAY_MS) | a stopping task keeps serving, unready, while gateways still hold its address from DNS |
 * | StopGracePeriod > that delay + the server's drain deadline | a drain is never cut short |
 * | the gateway: the platform's OTEL_* variables, when set | it exports its spans from the nodes (its egress network), as `ferry up`'s own gateway does; replicas get none (docs/tracing.md) |
 * | the gateway: sysctl net.ipv4.tcp_retries2=4 in its namespace | a request to a machine that died mid-way fails in ~6 s and is retried elsewhere, not after minutes |
 */
import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import { SHUTDOWN_DELAY_ENV } from '../core/replica.ts';

/** The port the model server and the gateway listen on inside their containers (as on Kubernetes). */
export const SWARM_SERVER_PORT = 8080;
/** The uid:gid the images run as. */
const RUN_AS = '65532:65532';
const SECOND_NS = 1_000_000_000;
const MS_NS = 1_000_000;
/**
 * A revision's tasks keep serving this long after SIGTERM before they drain (FERRY_SHUTDOWN_DELAY_MS: readiness
 * 503 at once, requests still answered, each with Connection: close). Docker has no preStop hook, and a gateway
 * uses the addresses it resolved for `tasks.<service>` until it resolves again (--resolve-every). So the delay
 * must outlast the gateway's re-resolve interval plus Swarm's DNS removal, counted from that removal. Swarm
 * takes a stopping task out of DNS first and waits 2 s for that to spread (moby's defaultGossipConvergeDelay)
 * before the SIGTERM: 2 s + 3 s = 5 s, against the gateway service's --resolve-every of 1 s (gatewayService):
 * 4 s to spare.
 * A request that still comes later is not lost as a rule: a draining replica answers 503 x-ferry-draining and a
 * closed one refuses the connection, and the gateway retries both on another replica (within its retry budget
 * and retry body limit); the delay keeps that path for the rare case.
 */
export const SWARM_SHUTDOWN_DELAY_MS = 3000;
/** Where Swarm mounts a service's secrets; the server reads them there (FERRY_SECRETS_DIR). */
export const SWARM_SECRETS_DIR = '/run/secrets';

export interface SwarmSecretRef {
  /** The variable the model reads (a file of that name). */
  name: string;
  /** The Swarm secret's ID and name (made by the runtime from Ferry's store: ferry-<tenant>-<dep>-<NAME>-v<version>). */
  secretId: string;
  secretName: string;
}

export interface SwarmRevisionInput {
  tenant: string;
  deployment: string;
  revision: number;
  /** Pinned by digest. */
  image: string;
  replicas: number;
  env: Record<string, string>;
  secrets: SwarmSecretRef[];
  /** Cores and bytes; null = the Docker runtime's defaults (1 core, 1 GiB). */
  cpus: number | null;
  memoryBytes: number | null;
  gpus: number;
  /** Node constraints, e.g. `node.labels.gpu==true`. */
  constraints: string[];
  /** The deployment's overlay network (name or ID). */
  network: string;
  /** A network with a way out of the swarm, for a version that declares egress (name or ID); left out: none. */
  egressNetwork?: string;
  /** How long the model may take to load before the task counts as failing. */
  startupTimeoutMs: number;
  /** The server's drain deadline on SIGTERM (FERRY_SHUTDOWN_TIMEOUT), seconds. */
  shutdownTimeoutS: number;
  /** Ferry's labels (managed-by, deployment, revision, spec hash ...), on the service and its containers. */
  labels: Record<string, string>;
}

/**
 * Swarm names are DNS labels here (a service is found as `tasks.<name>`): at most 63 characters; a longer one keeps
 * its start and ends with a hash of the whole.
 */
export function swarmName(plain: string): string {
  if (plain.length <= 63) return plain;
  return `${plain.slice(0, 50)}-${createHash('sha256').update(plain).digest('hex').slice(0, 12)}`;
}

/** `ferry-<tenant>-<dep>-r<N>`: the service's name, and its DNS name on the overlay. */
export function revisionServiceName(tenant: string, deployment: string, revision: number): string {
  return swarmName(`ferry-${tenant}-${deployment}-r${revision}`);
}

/** A health check the images can run: they have node, no shell and no curl. */
function httpCheck(path: string): string[] {
  return [
    'CMD',
    'node',
    '-e',
    `fetch('http://127.0.0.1:${SWARM_SERVER_PORT}${path}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
  ];
}

function sorted(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const HARDENED = {
  User: RUN_AS,
  ReadOnly: true,
  CapabilityDrop: ['ALL'],
  StopSignal: 'SIGTERM',
  Mounts: [
    {
      Type: 'tmpfs' as const,
      Source: '',
      Target: '/tmp',
      TmpfsOptions: { SizeBytes: 256 * 1024 * 1024, Mode: 0o1777 },
    },
  ],
};

const LOGS = { Name: 'json-file', Options: { 'max-file': '3', 'max-size': '10m' } };

/** The service that runs a revision's replicas. */
export function revisionService(r: SwarmRevisionInput): Dockerode.ServiceSpec {
  const name = revisionServiceName(r.tenant, r.deployment, r.revision);
  const cpus = r.cpus ?? 1;
  const memory = r.memoryBytes ?? 1024 ** 3;
  const env = {
    ...r.env,
    FERRY_HOST: '0.0.0.0',
    FERRY_PORT: String(SWARM_SERVER_PORT),
    FERRY_SHUTDOWN_TIMEOUT: String(r.shutdownTimeoutS),
    [SHUTDOWN_DELAY_ENV]: String(SWARM_SHUTDOWN_DELAY_MS),
    FERRY_FAIL_ON_LOAD_ERROR: '1',
    ...(r.secrets.length > 0 ? { FERRY_SECRETS_DIR: SWARM_SECRETS_DIR } : {}),
  };
  return {
    Name: name,
    Labels: sorted(r.labels),
    TaskTemplate: {
      ContainerSpec: {
        Image: r.image,
        Labels: sorted(r.labels),
        Env: Object.keys(env)
          .sort()
          .map((k) => `${k}=${env[k as keyof typeof env]}`),
        ...HARDENED,
        // Longer than the shutdown delay and the server's drain deadline after it: a drain is never cut short.
        StopGracePeriod: (SWARM_SHUTDOWN_DELAY_MS + (r.shutdownTimeoutS + 10) * 1000) * MS_NS,
        HealthCheck: {
          Test: httpCheck('/v2/health/ready'),
          Interval: 2 * SECOND_NS,
          Timeout: 2 * SECOND_NS,
          Retries: 3,
          // A slow model load is not a failure: the start period is the spec's load budget.
          StartPeriod: Math.round(r.startupTimeoutMs / 1000) * SECOND_NS,
        },
        Secrets: [...r.secrets]
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .map((s) => ({
            File: { Name: s.name, UID: '65532', GID: '65532', Mode: 0o400 },
            SecretID: s.secretId,
            SecretName: s.secretName,
          })),
      },
      Resources: {
        Limits: { NanoCPUs: Math.round(cpus * SECOND_NS), MemoryBytes: memory, Pids: 256 },
        Reservations: {
          MemoryBytes: memory,
          ...(r.gpus > 0
            ? { GenericResources: [{ DiscreteResourceSpec: { Kind: 'NVIDIA-GPU', Value: r.gpus } }] }
            : {}),
        } as Dockerode.Resources,
      },
      RestartPolicy: { Condition: 'any', Delay: SECOND_NS, MaxAttempts: 0 },
      Placement: {
        Constraints: [...r.constraints].sort(),
        Preferences: [{ Spread: { SpreadDescriptor: 'node.id' } }],
      },
      Networks: [r.network, ...(r.egressNetwork === undefined ? [] : [r.egressNetwork])].map((n) => ({
        Target: n,
      })),
      LogDriver: LOGS,
    },
    Mode: { Replicated: { Replicas: r.replicas } },
    UpdateConfig: {
      Parallelism: 1,
      Delay: 0,
      FailureAction: 'rollback',
      Monitor: 5 * SECOND_NS,
      Order: 'start-first',
    },
    RollbackConfig: {
      Parallelism: 1,
      Delay: 0,
      FailureAction: 'pause',
      Monitor: 5 * SECOND_NS,
      Order: 'start-first',
    },
    EndpointSpec: { Mode: 'dnsrr' },
  };
}

export interface SwarmGatewayInput {
  /** Pinned by digest (ferry gateway-image --push). */
  image: string;
  replicas: number;
  /** The port every node running a gateway task publishes (host mode). */
  publishedPort: number;
  /** Where the gateway pulls its route table: the control plane's URL as seen from the nodes. */
  routesUrl: string;
  /** The Swarm secret holding the gateway's token for that URL (a file, never an env value). */
  token: { secretId: string; secretName: string };
  /** Every deployment's overlay network (the gateway reaches every replica); internal ones. */
  networks: string[];
  /** A network with a way out of the swarm (not internal): how the gateway reaches `routesUrl`. */
  egressNetwork: string;
  /** How often the route file is polled; default 1 s (a change reaches every gateway within 2 s). */
  checkEveryMs?: number;
  labels: Record<string, string>;
  /** The gateway's environment: the platform's OTEL_* variables (tracing, docs/tracing.md); none by default. */
  env?: Record<string, string>;
}

/** The gateway: a host-mode published port on the nodes it runs on, at most one task per node. */
export function gatewayService(g: SwarmGatewayInput): Dockerode.ServiceSpec {
  return {
    Name: 'ferry-gateway',
    Labels: sorted(g.labels),
    TaskTemplate: {
      ContainerSpec: {
        Image: g.image,
        Labels: sorted(g.labels),
        Args: [
          'gateway',
          '--routes-url',
          g.routesUrl,
          '--token-file',
          `${SWARM_SECRETS_DIR}/ferry-gateway-token`,
          '--check-every',
          `${g.checkEveryMs ?? 1000}ms`,
          // A task leaving is out of DNS 2 s before its SIGTERM and keeps serving SWARM_SHUTDOWN_DELAY_MS after:
          // a gateway that looks again every second never sends it a request it cannot take.
          '--resolve-every',
          '1s',
          '--host',
          '0.0.0.0',
          '--port',
          String(SWARM_SERVER_PORT),
        ],
        ...(g.env !== undefined && Object.keys(g.env).length > 0
          ? {
              Env: Object.keys(g.env)
                .sort()
                .map((k) => `${k}=${g.env![k]}`),
            }
          : {}),
        ...HARDENED,
        // A replica's machine that dies mid-request answers nothing, not even a reset: the request's bytes go
        // unacknowledged, and by default Linux retransmits for ~15 minutes. 4 retries give up after ~6 s (0.2 s
        // doubling), a connection failure the gateway retries on another replica. Only this container's network
        // namespace is affected.
        Sysctls: { 'net.ipv4.tcp_retries2': '4' },
        StopGracePeriod: 30 * SECOND_NS,
        // Liveness only catches a hung gateway (one that crashes exits, and Swarm restarts it anyway), and the
        // check is a `node` started in the container: on a node short of CPU that alone can take seconds. So it
        // gives a gateway about 30 s of no answer before Swarm replaces it (and drops its connections), not 6 s.
        HealthCheck: {
          Test: httpCheck('/v2/health/live'),
          Interval: 2 * SECOND_NS,
          Timeout: 5 * SECOND_NS,
          Retries: 5,
          StartPeriod: 30 * SECOND_NS,
        },
        Secrets: [
          {
            File: { Name: 'ferry-gateway-token', UID: '65532', GID: '65532', Mode: 0o400 },
            SecretID: g.token.secretId,
            SecretName: g.token.secretName,
          },
        ],
      },
      Resources: {
        Limits: { NanoCPUs: SECOND_NS, MemoryBytes: 512 * 1024 ** 2, Pids: 256 },
        Reservations: { MemoryBytes: 128 * 1024 ** 2 },
      },
      RestartPolicy: { Condition: 'any', Delay: SECOND_NS, MaxAttempts: 0 },
      // One per node: a host port can be bound once per node.
      Placement: { MaxReplicas: 1, Preferences: [{ Spread: { SpreadDescriptor: 'node.id' } }] },
      Networks: [g.egressNetwork, ...[...g.networks].sort()].map((n) => ({ Target: n })),
      LogDriver: LOGS,
    },
    Mode: { Replicated: { Replicas: g.replicas } },
    // stop-first: a fixed host port cannot take a second task on the same node (start-first would hang unless a
    // node is spare); with one task per node and 2 or more replicas, one node still serves during the update.
    UpdateConfig: {
      Parallelism: 1,
      Delay: 0,
      FailureAction: 'rollback',
      Monitor: 5 * SECOND_NS,
      Order: 'stop-first',
    },
    RollbackConfig: {
      Parallelism: 1,
      Delay: 0,
      FailureAction: 'pause',
      Monitor: 5 * SECOND_NS,
      Order: 'stop-first',
    },
    EndpointSpec: {
      Mode: 'dnsrr',
      Ports: [
        {
          Protocol: 'tcp',
          TargetPort: SWARM_SERVER_PORT,
          PublishedPort: g.publishedPort,
          PublishMode: 'host',
        },
      ],
    },
  };
}
