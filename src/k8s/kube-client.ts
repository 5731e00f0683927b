/**
 * The cluster as kubectl finds it (issue 12): the kubeconfig of `--kubeconfig`, else $KUBECONFIG, else
 * ~/.kube/config, else the in-cluster service account; its current context unless `--context` names another.
 * Errors name the file, the context and the server.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObjectApi } from '@kubernetes/client-node';
import { FerryError } from '../core/errors.ts';

export interface KubeOptions {
  kubeconfig?: string;
  context?: string;
}

export interface Kube {
  api: KubernetesObjectApi;
  /** The API server's URL, for messages. */
  server: string;
  context: string;
}

export async function kubeClient(options: KubeOptions): Promise<Kube> {
  const { KubeConfig, KubernetesObjectApi } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  const fromEnv = process.env.KUBECONFIG;
  const fallback = join(homedir(), '.kube', 'config');
  const file = options.kubeconfig ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
  try {
    if (options.kubeconfig !== undefined) kc.loadFromFile(options.kubeconfig);
    // client-node's own search, as kubectl's: $KUBECONFIG (several files merged), ~/.kube/config, in-cluster.
    else if (file !== undefined || existsSync(fallback) || process.env.KUBERNETES_SERVICE_HOST !== undefined)
      kc.loadFromDefault();
    else
      throw new FerryError(
        'FERRY_FILE_NOT_FOUND',
        'no kubeconfig: neither --kubeconfig, $KUBECONFIG nor ~/.kube/config',
        {
          hint: 'Point Ferry at a cluster as you would kubectl (kind and k3d write ~/.kube/config; see docs/kubernetes.md).',
        },
      );
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `cannot read the kubeconfig ${file ?? fallback}: ${(error as Error).message}`,
    );
  }
  if (options.context !== undefined) {
    if (!kc.getContexts().some((c) => c.name === options.context))
      throw new FerryError(
        'FERRY_NOT_FOUND',
        `the kubeconfig has no context ${options.context} (it has: ${kc
          .getContexts()
          .map((c) => c.name)
          .join(', ')})`,
      );
    kc.setCurrentContext(options.context);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null)
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `the kubeconfig's context ${kc.getCurrentContext()} names no cluster`,
    );
  return {
    api: KubernetesObjectApi.makeApiClient(kc),
    server: cluster.server,
    context: kc.getCurrentContext(),
  };
}

/** A failure to reach the API server as a FerryError naming it; anything else as it is. */
export function reachError(error: unknown, kube: Kube): unknown {
  const e = error as { code?: unknown; cause?: { code?: unknown }; message?: string };
  const code =
    typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  if (
    code !== undefined &&
    /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|EAI_AGAIN)$/.test(code)
  )
    return new FerryError(
      'FERRY_CONNECTION_FAILED',
      `cannot reach the Kubernetes API server ${kube.server} (context ${kube.context}): ${code}`,
      { hint: 'Is the cluster up? `kubectl cluster-info` checks the same kubeconfig.' },
    );
  return error;
}
