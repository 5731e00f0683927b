/**
 * What one replica of a revision is, as a runtime gets it: a pure function of the revision and the
 * platform's settings, in the manner of knative's MakeDeployment. No I/O: the port, the name's random suffix,
 * the secrets' values and the image the docker runtime runs are looked up by the caller and passed in.
 *
 * A replica gets, besides the revision's env and the platform's replicaEnv:
 *   FERRY_SERVING_OVERRIDES   the deployment's serving options (when any)
 *   FERRY_FAIL_ON_LOAD_ERROR  1: a model that cannot load ends the server (exit 3) so the failure is seen
 *   FERRY_CPU_LIMIT           the effective CPU limit, which the server sizes its threads by on every runtime
 *   OTEL_RESOURCE_ATTRIBUTES  with tracing on (an OTEL_EXPORTER_OTLP_*ENDPOINT in its env): ferry.deployment and
 *                             ferry.revision added to what it says (docs/tracing.md); a deployment whose env
 *                             names its own OTLP endpoint loses the platform's relay variables (FERRY_OTLP_SOCKET)
 * and its secrets (one variable per secret, secrets.ts envName) as `secrets`, which runtimes deliver as files,
 * never in the replica's environment.
 */
import { createHash } from 'node:crypto';
import { CPU_LIMIT_ENV, FAIL_ON_LOAD_ERROR_ENV } from '../core/replica.ts';
import { keyForFiles } from '../core/tenant.ts';
import { OTLP_SOCKET_ENV } from '../core/tracing.ts';
import type { ReplicaSpec } from '../runtime/index.ts';
import { SERVING_OVERRIDES_ENV } from '../spec/index.ts';
import { makeReplicaLabels } from './labels.ts';
import type { StoredRevision } from './store/store.ts';

export interface ReplicaSpecInput {
  revision: StoredRevision;
  index: number;
  /** swarm: as docker (an image), and GPUs are asked of the orchestrator (a generic resource). */
  runtime: 'process' | 'docker' | 'swarm';
  /** Makes the name unique among replicas ever made for this slot (a random string). */
  nameSuffix: string;
  /** Labels every replica of this platform carries (managed-by, platform). */
  platformLabels: Record<string, string>;
  /** Environment for every replica (e.g. FERRY_LOG_LEVEL). */
  replicaEnv: Record<string, string>;
  /** The revision's secrets as environment variables, and the names that are not set. */
  secrets: { env: Record<string, string>; missing: string[] };
  /** docker: the image to run (the version's pinned image, or one built from its artifact). */
  image?: string;
}

/** Why a replica cannot be made now, for the revision's status. */
export interface Blocked {
  reason: 'SecretMissing' | 'NoArtifact' | 'NoImage' | 'NoGpu';
  message: string;
}

/**
 * The bridge network of a deployment whose replicas may reach other machines (one per deployment and
 * installation; the docker runtime creates and removes it): `ferry-egress-<platform>-<deployment>`, the
 * deployment's key made safe for a network name, or hashed when too long.
 */
export function egressNetworkName(platform: string, deployment: string): string {
  const plain = `ferry-egress-${platform}-${deployment.replace(/[^a-zA-Z0-9_.-]/g, '_')}`;
  if (plain.length <= 64) return plain;
  return `ferry-egress-${platform.slice(0, 12)}-${createHash('sha256').update(deployment).digest('hex').slice(0, 24)}`;
}

export function makeReplicaSpec(input: ReplicaSpecInput): { spec: ReplicaSpec } | { blocked: Blocked } {
  const { revision, runtime } = input;
  const { spec: rs } = revision;
  const what = `Revision ${revision.number} (${rs.model}:${rs.version})`;
  if (rs.resources.gpu > 0 && runtime !== 'swarm')
    return {
      blocked: {
        reason: 'NoGpu',
        message: `${what} asks for ${rs.resources.gpu} GPU(s) per replica; Ferry's runtimes do not give replicas GPUs yet, and running it without would not be what was asked. Set resources.gpu to 0 (ferry.yaml or the deployment) to run it on CPUs.`,
      },
    };
  if (input.secrets.missing.length > 0)
    return {
      blocked: {
        reason: 'SecretMissing',
        message: `${what} needs secret(s) ${input.secrets.missing.join(', ')}, which are not set; its replicas start once they are (ferry secrets set <name>).`,
      },
    };
  const env: Record<string, string> = {
    ...input.replicaEnv,
    ...rs.env,
    ...(Object.keys(rs.serving).length > 0 ? { [SERVING_OVERRIDES_ENV]: JSON.stringify(rs.serving) } : {}),
    [FAIL_ON_LOAD_ERROR_ENV]: '1',
    ...(rs.resources.cpu === null ? {} : { [CPU_LIMIT_ENV]: String(rs.resources.cpu) }),
  };
  // A deployment that names its own collector (an egress deployment) exports there, not through the relay the
  // platform's variables point a docker replica to (FERRY_OTLP_SOCKET with a nominal traces endpoint).
  if (
    (rs.env.OTEL_EXPORTER_OTLP_ENDPOINT || rs.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) &&
    rs.env[OTLP_SOCKET_ENV] === undefined &&
    env[OTLP_SOCKET_ENV] !== undefined
  ) {
    delete env[OTLP_SOCKET_ENV];
    if (!rs.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) delete env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  }
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    const own = `ferry.deployment=${encodeURIComponent(revision.deployment)},ferry.revision=${revision.number}`;
    const given = env.OTEL_RESOURCE_ATTRIBUTES;
    env.OTEL_RESOURCE_ATTRIBUTES = given ? `${given},${own}` : own;
  }
  const spec: ReplicaSpec = {
    ...(Object.keys(input.secrets.env).length > 0 ? { secrets: input.secrets.env } : {}),
    ...(rs.network?.egress === true
      ? {
          egressNetwork: egressNetworkName(
            input.platformLabels['ferry.dev/platform'] ?? 'local',
            revision.deployment,
          ),
        }
      : {}),
    name: `ferry-${keyForFiles(revision.deployment)}-r${revision.number}-${input.index}-${input.nameSuffix}`,
    labels: { ...makeReplicaLabels(revision, input.index), ...input.platformLabels },
    env,
    ...(rs.resources.cpu === null ? {} : { cpus: rs.resources.cpu }),
    ...(rs.resources.memoryBytes === null ? {} : { memoryBytes: rs.resources.memoryBytes }),
  };
  if (runtime === 'process') {
    if (rs.artifactDir === null)
      return {
        blocked: {
          reason: 'NoArtifact',
          message: `${what} is an image only; the process runtime serves model directories. Deploy the model's directory (ferry deploy <dir>), or run Ferry with the docker runtime (ferry up --runtime docker).`,
        },
      };
    return { spec: { ...spec, modelDir: rs.artifactDir } };
  }
  const image = input.image ?? rs.image ?? undefined;
  if (image === undefined)
    return {
      blocked: {
        reason: 'NoImage',
        message: `${what} has no image yet; the runtime builds one from its artifact first.`,
      },
    };
  return { spec: { ...spec, image } };
}
