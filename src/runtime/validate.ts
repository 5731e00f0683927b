/** Checks every runtime makes on a ReplicaSpec before it starts anything. */
import { FerryError } from '../core/errors.ts';
import type { ReplicaSpec } from './types.ts';

/** Replica names: usable as a container name and a file name. */
export const REPLICA_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** Names of the egress networks the docker runtime makes. */
export const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

export function validateReplicaSpec(spec: ReplicaSpec): void {
  if (!REPLICA_NAME_RE.test(spec.name)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `Replica name '${spec.name}' is not allowed: use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit).`,
    );
  }
  if (spec.egressNetwork !== undefined && !NETWORK_NAME_RE.test(spec.egressNetwork)) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `Replica '${spec.name}': egress network name '${spec.egressNetwork}' is not allowed: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit).`,
    );
  }
}
