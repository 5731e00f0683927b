/**
 * Checks across the rendered objects: what refers to what. An object refers only to objects in its own
 * namespace (namespaceOf), as Kubernetes resolves these references. Each is a pure function of the whole set.
 */
import {
  child,
  containersOf,
  list,
  mapSelectorMatches,
  nameOf,
  namespaceOf,
  objectRef,
  type PodTemplate,
  podTemplateOf,
  problem,
  record,
  selectorMatches,
  shown,
  stringMap,
  text,
} from './check-common.ts';
import type { KubernetesObject } from './types.ts';

interface Workload {
  obj: KubernetesObject;
  template: PodTemplate;
}

function workloads(objects: readonly KubernetesObject[]): Workload[] {
  return objects.flatMap((obj) => {
    const template = podTemplateOf(obj);
    return template ? [{ obj, template }] : [];
  });
}

function namespaceWords(obj: KubernetesObject): string {
  const ns = namespaceOf(obj);
  return ns ? `in namespace ${ns}` : 'without a namespace';
}

/** Two objects of the same kind, namespace and name: the second would overwrite the first when applied. */
export function duplicateProblems(objects: readonly KubernetesObject[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const obj of objects) {
    const key = `${String(obj.apiVersion)} ${objectRef(obj)}`;
    if (seen.has(key))
      out.push(problem(obj, 'metadata.name', 'another rendered object has the same kind and name'));
    seen.add(key);
  }
  return out;
}

/**
 * Autoscalers (autoscaling/v2 HorizontalPodAutoscaler, KEDA ScaledObject, which makes one) and the Deployments
 * they scale: the target is a rendered Deployment in the same namespace; a scaled Deployment has no
 * spec.replicas (applying it would reset the autoscaler's count on every apply) and only one autoscaler; an
 * HPA's minReplicas is at most its maxReplicas.
 */
export function autoscalerProblems(objects: readonly KubernetesObject[]): string[] {
  const out: string[] = [];
  const scaledBy = new Map<KubernetesObject, KubernetesObject[]>();
  for (const scaler of objects) {
    const isHpa = scaler.kind === 'HorizontalPodAutoscaler';
    if (!isHpa && scaler.kind !== 'ScaledObject') continue;
    const spec = record(scaler.spec);
    const ref = record(spec?.scaleTargetRef);
    if (!ref) continue; // a required field: the schema (or check-keda.ts) reports it
    const kind = text(ref.kind) ?? (isHpa ? undefined : 'Deployment');
    const name = text(ref.name);
    if (kind !== 'Deployment') {
      out.push(problem(scaler, 'spec.scaleTargetRef.kind', `must be Deployment (is ${shown(ref.kind)})`));
      continue;
    }
    const target = objects.find(
      (o) => o.kind === 'Deployment' && nameOf(o) === name && namespaceOf(o) === namespaceOf(scaler),
    );
    if (!target) {
      out.push(
        problem(
          scaler,
          'spec.scaleTargetRef.name',
          `no rendered Deployment ${shown(name)} ${namespaceWords(scaler)} to scale`,
        ),
      );
      continue;
    }
    scaledBy.set(target, [...(scaledBy.get(target) ?? []), scaler]);
    if (isHpa && typeof spec?.minReplicas === 'number' && typeof spec.maxReplicas === 'number')
      if (spec.minReplicas > spec.maxReplicas)
        out.push(
          problem(
            scaler,
            'spec.minReplicas',
            `${spec.minReplicas} is more than maxReplicas (${spec.maxReplicas})`,
          ),
        );
  }
  for (const [deployment, scalers] of scaledBy) {
    const names = scalers.map(objectRef).join(' and ');
    const replicas = record(deployment.spec)?.replicas;
    if (replicas !== undefined)
      out.push(
        problem(
          deployment,
          'spec.replicas',
          `must be absent (is ${shown(replicas)}): ${names} scales this Deployment, and an applied replicas overrides it`,
        ),
      );
    if (scalers.length > 1) out.push(problem(deployment, 'metadata.name', `is scaled by both ${names}`));
  }
  return out;
}

/** The directions a NetworkPolicy isolates its pods in: spec.policyTypes, or by default Ingress, plus Egress
 * when it has egress rules (as the API server defaults it). */
function policyTypes(policy: KubernetesObject): string[] {
  const spec = record(policy.spec);
  const declared = list(spec?.policyTypes).filter((t) => typeof t === 'string');
  if (declared.length > 0) return declared;
  return spec?.egress !== undefined ? ['Ingress', 'Egress'] : ['Ingress'];
}

/**
 * Every Deployment's pods are selected by a NetworkPolicy of their namespace (an empty podSelector selects all)
 * for Ingress and for Egress: a pod no policy selects in a direction is open in that direction, whatever the
 * other policies say. (Whether the allow rules are right is for the renderer's tests; this is the guarantee
 * that nothing is left open by default.)
 */
export function networkPolicyCoverageProblems(objects: readonly KubernetesObject[]): string[] {
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  const out: string[] = [];
  for (const { obj, template } of workloads(objects)) {
    for (const direction of ['Ingress', 'Egress']) {
      const covered = policies.some(
        (p) =>
          namespaceOf(p) === namespaceOf(obj) &&
          policyTypes(p).includes(direction) &&
          selectorMatches(record(p.spec)?.podSelector, template.labels),
      );
      if (!covered)
        out.push(
          problem(
            obj,
            `${template.path}.metadata.labels`,
            `no NetworkPolicy ${namespaceWords(obj)} selects these pods for ${direction}: they are open to all ${direction.toLowerCase()} traffic`,
          ),
        );
    }
  }
  return out;
}

/** Whether a container of the pod template declares this port (a number: containerPort; a string: a name). */
function declaresPort(template: PodTemplate, port: unknown): boolean {
  return containersOf(template.spec, '').some(({ container }) =>
    list(container.ports).some((p) => {
      const r = record(p);
      return typeof port === 'number' ? r?.containerPort === port : r?.name === port;
    }),
  );
}

/**
 * A Service with a selector selects the pods of at least one rendered Deployment in its namespace, and each of
 * its ports' target (targetPort, or port when unset) is a port those pods declare; a PodDisruptionBudget
 * selects the pods of at least one. A Service without a selector (endpoints managed elsewhere) is not checked.
 */
export function selectionProblems(objects: readonly KubernetesObject[]): string[] {
  const all = workloads(objects);
  const out: string[] = [];
  for (const obj of objects) {
    const spec = record(obj.spec);
    const inNamespace = all.filter((w) => namespaceOf(w.obj) === namespaceOf(obj));
    if (obj.kind === 'Service') {
      const selector = stringMap(spec?.selector) ?? {};
      if (Object.keys(selector).length === 0) continue;
      const selected = inNamespace.filter((w) => mapSelectorMatches(selector, w.template.labels));
      if (selected.length === 0) {
        out.push(
          problem(obj, 'spec.selector', `selects no pods of a rendered Deployment ${namespaceWords(obj)}`),
        );
        continue;
      }
      list(spec?.ports).forEach((p, i) => {
        const port = record(p);
        const target = port?.targetPort ?? port?.port;
        const field = port?.targetPort !== undefined ? 'targetPort' : 'port';
        for (const w of selected)
          if (target !== undefined && !declaresPort(w.template, target))
            out.push(
              problem(
                obj,
                child(child(child('spec', 'ports'), i), field),
                `${shown(target)} is not a port the pods of ${objectRef(w.obj)} declare`,
              ),
            );
      });
    }
    if (obj.kind === 'PodDisruptionBudget') {
      if (spec?.selector === undefined) continue; // the schema reports a missing one
      if (!inNamespace.some((w) => selectorMatches(spec.selector, w.template.labels)))
        out.push(
          problem(obj, 'spec.selector', `selects no pods of a rendered Deployment ${namespaceWords(obj)}`),
        );
    }
  }
  return out;
}

/** Every pod runs as a ServiceAccount Ferry renders in its namespace, not the namespace's `default` one (which
 * other workloads share and cluster tooling may grant rights to). */
export function serviceAccountProblems(objects: readonly KubernetesObject[]): string[] {
  const out: string[] = [];
  for (const { obj, template } of workloads(objects)) {
    const path = `${template.path}.spec.serviceAccountName`;
    const name = text(template.spec.serviceAccountName);
    if (name === undefined) {
      out.push(problem(obj, path, "is unset: the pods would run as the namespace's default ServiceAccount"));
      continue;
    }
    const found = objects.some(
      (o) => o.kind === 'ServiceAccount' && nameOf(o) === name && namespaceOf(o) === namespaceOf(obj),
    );
    if (!found)
      out.push(problem(obj, path, `no rendered ServiceAccount ${shown(name)} ${namespaceWords(obj)}`));
  }
  return out;
}
