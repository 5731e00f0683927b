/**
 * The Kubernetes target (issue 12): what the renderer produces and the checks read. A plain object per
 * Kubernetes object, as `kubectl apply -f` takes it; the renderer (render.ts) builds them, validate.ts checks
 * them offline (the official schemas through kubernetes-models, plus what those schemas miss).
 */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Set by the cluster (never rendered): what status and apply read back. */
  generation?: number;
  resourceVersion?: string;
  uid?: string;
}

export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}
