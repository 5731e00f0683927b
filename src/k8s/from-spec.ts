/**
 * A model directory's ferry.yaml as the renderer's input (issue 12, `ferry k8s render <dir>`): one deployment
 * named as the model (or `--name`), one revision at 100%, the image given (pinned), resources, env, secret names,
 * egress and `scaling:` from the spec. Pure: the caller loads the spec.
 */
import type { ModelSpec } from '../spec/types.ts';
import type { RenderInput } from './render.ts';

export interface FromSpecOptions {
  /** The deployment's name; default the model's name. */
  name?: string;
  tenant?: string;
  /** The image the cluster pulls (a registry reference, by digest preferably). */
  image: string;
  /** Replicas when the spec does not autoscale; default 1. */
  replicas?: number;
  public?: boolean;
  /** Default: ferry.yaml's kubernetes.startupTimeout (5 minutes). */
  startupTimeoutMs?: number;
}

export function inputFromSpec(spec: ModelSpec, o: FromSpecOptions): RenderInput {
  const name = o.name ?? spec.model.name;
  return {
    name,
    tenant: o.tenant ?? 'default',
    public: o.public ?? false,
    replicas: o.replicas ?? 1,
    scaling:
      spec.scaling === null
        ? null
        : {
            minReplicas: spec.scaling.minReplicas,
            maxReplicas: spec.scaling.maxReplicas,
            target: spec.scaling.metric === 'concurrency' ? spec.scaling.target : null,
            maxHeld: spec.scaling.maxHeld,
            maxHeldWaitMs: spec.scaling.maxHeldWaitMs,
            scaleToZeroGraceMs: spec.scaling.scaleToZeroGraceMs,
          },
    revisions: [
      {
        revision: 1,
        image: o.image,
        version: spec.model.version,
        servedName: spec.model.name,
        resources: {
          cpu: spec.resources.cpu,
          memoryBytes: spec.resources.memoryBytes,
          gpu: spec.resources.gpu,
        },
        env: spec.env,
        secretRefs: spec.secrets,
        egress: spec.network.egress,
        startupTimeoutMs: o.startupTimeoutMs ?? spec.kubernetes.startupTimeoutMs,
        nodeSelector: spec.kubernetes.nodeSelector,
        tolerations: spec.kubernetes.tolerations,
      },
    ],
    traffic: [{ revision: 1, percent: 100 }],
  };
}
