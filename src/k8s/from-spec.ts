/**
 * A model directory's ferry.yaml as the renderer's input (issue 12, `ferry k8s render <dir>`): one deployment
 * named as the model (or `--name`), one revision at 100%, the image given (pinned), resources, env, secret names,
 * egress and `scaling:` from the spec. Pure: the caller loads the spec.
 */
import type { ModelSpec } from '../spec/types.ts';
import { dns1123LabelError } from './check-names.ts';
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

/** An image reference as a container runtime takes it: [registry[:port]/]path[:tag][@sha256:digest]. */
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST_LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
// A first part is a registry only when it is localhost, has a dot or a port (as docker decides); else it is a path.
const HOST = `(?:localhost(?::[0-9]+)?|${HOST_LABEL}(?:\\.${HOST_LABEL})+(?::[0-9]+)?|${HOST_LABEL}:[0-9]+)`;
const IMAGE_REFERENCE = new RegExp(
  `^(?:${HOST}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`,
);
/** The longest Ferry name: `<name>-r<revision>` and `ferry-deployment-<name>` are object names too (63 at most). */
const MAX_NAME = 40;

/**
 * What is wrong with the names and images given on the command line, each naming the flag (checked before
 * anything is sent to a cluster; empty when all is well). An image not pinned by digest is allowed (a tag may
 * move under a running deployment) but reported by `unpinned`.
 */
export function inputProblems(
  input: { name: string; tenant: string; image: string },
  namespace: string | undefined,
): string[] {
  const problems: string[] = [];
  const name = dns1123LabelError(input.name);
  if (name !== undefined) problems.push(`--name (or model.name): ${name}`);
  else if (input.name.length > MAX_NAME)
    problems.push(
      `--name (or model.name) "${input.name}": at most ${MAX_NAME} characters (its objects' names add to it)`,
    );
  const tenant = dns1123LabelError(`ferry-${input.tenant}`);
  if (namespace === undefined && tenant !== undefined) problems.push(`--tenant "${input.tenant}": ${tenant}`);
  const ns = namespace === undefined ? undefined : dns1123LabelError(namespace);
  if (ns !== undefined) problems.push(`--namespace: ${ns}`);
  if (!IMAGE_REFERENCE.test(input.image))
    problems.push(
      `--image "${input.image}": not an image reference ([registry[:port]/]path[:tag][@sha256:<64 hex>], lower case path)`,
    );
  return problems;
}

/** The image is pinned by digest (what the cluster runs cannot change under it). */
export function pinned(image: string): boolean {
  return /@sha256:[0-9a-f]{64}$/.test(image);
}
