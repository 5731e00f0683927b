/** Inputs the Kubernetes tests share (src/k8s, test/k8s): a revision of the iris model as the renderer takes it. */
import type { RenderInput, RenderRevision } from '../render.ts';

/** Revision `n` of iris: its image pinned by a digest of n's digit, 1 CPU, 1 GiB, sealed, no secrets. */
export function irisRevision(n: number, over: Partial<RenderRevision> = {}): RenderRevision {
  return {
    revision: n,
    image: `registry.example.com/ml/iris@sha256:${String(n).repeat(64).slice(0, 64)}`,
    version: String(n),
    servedName: 'iris',
    resources: { cpu: 1, memoryBytes: 1024 ** 3, gpu: 0 },
    env: {},
    secretRefs: [],
    egress: false,
    startupTimeoutMs: 300_000,
    nodeSelector: {},
    tolerations: [],
    ...over,
  };
}

/** Deployment iris of the default tenant, public, one replica, revision 1 at 100% (or as given). */
export function irisInput(over: Partial<RenderInput> = {}): RenderInput {
  return {
    name: 'iris',
    tenant: 'default',
    public: true,
    replicas: 1,
    scaling: null,
    revisions: [irisRevision(1)],
    traffic: [{ revision: 1, percent: 100 }],
    ...over,
  };
}
