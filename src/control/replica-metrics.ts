/**
 * The replicas as Prometheus sees them (docs/prometheus.md): replicas listen on unix sockets only, so Prometheus
 * cannot scrape them; the control plane lists them as scrape targets on its own address
 * (GET /v1/prometheus/targets, Prometheus http_sd) and relays each one's /metrics
 * (GET /v1/replicas/{replica}/metrics). Only replicas the controller knows are ever reached: a replica is named
 * by its name (or the runtime's id for it), looked up among those the loop observed, and fetched at the url the
 * runtime reported; no address ever comes from a caller.
 */
import { FerryError } from '../core/errors.ts';
import { plainName, splitKey } from '../core/tenant.ts';
import { replicaGetText } from '../runtime/index.ts';
import type { StoredRevision } from './store/store.ts';
import type { ReplicaView, ScrapeTargetView } from './views.ts';

/** A replica as the loop last observed it, with its deployment's key. */
export interface KnownReplica {
  deployment: string;
  replica: ReplicaView;
  /** Being drained or removed. */
  leaving: boolean;
}

/** The replica's metrics path, on its server. */
export const REPLICA_METRICS_PATH = '/metrics';
/** A replica's answer is refused past this size (its /metrics is a few KiB per model version). */
export const MAX_REPLICA_METRICS_BYTES = 8 * 1024 * 1024;
/** The most a relayed scrape waits for the replica (Prometheus's default scrape timeout is 10 s). */
export const REPLICA_METRICS_TIMEOUT_MS = 5000;

/**
 * The scrape targets among the known replicas: the ready ones not on their way out, with labels from the store
 * (tenant, plain deployment name, revision, the revision's model by its plain name), sorted by name. Pure.
 */
export function scrapeTargets(
  known: readonly KnownReplica[],
  revisionOf: (deployment: string, revision: number) => StoredRevision | undefined,
): ScrapeTargetView[] {
  const out: ScrapeTargetView[] = [];
  for (const { deployment, replica, leaving } of known) {
    if (leaving || replica.state !== 'ready') continue;
    const { tenant, name } = splitKey(deployment);
    const model = plainName(revisionOf(deployment, replica.revision)?.spec.model ?? '');
    out.push({ tenant, deployment: name, revision: replica.revision, replica: replica.name, model });
  }
  return out.sort((a, b) => (a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : 0));
}

/**
 * A known replica's /metrics, with its content type. FERRY_NOT_FOUND for a name the loop does not know (or no
 * longer: a replica removed since), FERRY_REPLICA_UNAVAILABLE for one not ready or out of this process's reach,
 * FERRY_UPSTREAM_FAILED when it does not answer 200 in time.
 */
export async function replicaMetrics(
  known: readonly KnownReplica[],
  replica: string,
  opts: {
    /** This process reaches the replicas at their urls (not on an orchestrator's overlay network). */
    reachable: boolean;
    get?: typeof replicaGetText;
    timeoutMs?: number;
  },
): Promise<{ contentType: string; body: string }> {
  const found = known.find((k) => k.replica.name === replica) ?? known.find((k) => k.replica.id === replica);
  if (!found)
    throw new FerryError('FERRY_NOT_FOUND', `No replica named ${JSON.stringify(replica)}`, {
      hint: "GET /v1/prometheus/targets lists the replicas to scrape; ferry get replicas <deployment> shows a deployment's.",
    });
  const { name } = found.replica;
  if (!opts.reachable)
    throw new FerryError(
      'FERRY_REPLICA_UNAVAILABLE',
      `Replica ${name} runs on the swarm's network, which the control plane does not reach`,
      { hint: 'Scrape the replicas from inside the swarm (docs/prometheus.md, Docker Swarm).' },
    );
  if (found.replica.state !== 'ready' || found.leaving)
    throw new FerryError(
      'FERRY_REPLICA_UNAVAILABLE',
      `Replica ${name} is ${found.leaving ? 'being removed' : found.replica.state}, not ready`,
      { hint: 'Ready replicas answer; GET /v1/prometheus/targets lists them.', retryAfterSeconds: 1 },
    );
  const get = opts.get ?? replicaGetText;
  try {
    return await get(
      found.replica.url,
      REPLICA_METRICS_PATH,
      opts.timeoutMs ?? REPLICA_METRICS_TIMEOUT_MS,
      MAX_REPLICA_METRICS_BYTES,
    );
  } catch (error) {
    throw new FerryError(
      'FERRY_UPSTREAM_FAILED',
      `Replica ${name} did not answer GET ${REPLICA_METRICS_PATH}: ${(error as Error).message}`,
      {
        hint: 'The replica may be overloaded or stopping; ferry logs <deployment> shows its log.',
        cause: error,
      },
    );
  }
}
