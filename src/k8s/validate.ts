/**
 * Offline validation of rendered Kubernetes objects (issue 12): no API server, yet every object is checked
 * against the official OpenAPI schemas and against what the API server, the Pod Security admission and Ferry's
 * own rules would reject and those schemas do not express. objectProblems returns every problem as a sentence
 * naming the object and the field (`Deployment/ml/iris-r3: spec.replcas: unknown field (did you mean
 * replicas?)`); an empty list means valid.
 *
 * ## The official schemas, and unknown fields
 * kubernetes-models 4.5.1 carries the OpenAPI schemas of Kubernetes 1.32 (the API its models have: e.g.
 * PodSecurityContext.seLinuxChangePolicy, new in 1.32, is there; Container.stopSignal, new in 1.33, is not;
 * its README's "1.27.1" badge is stale). It ships them compiled: each type's schema is AJV "standalone" code, a
 * validation function per type (kubernetes-models/_schemas/*.js, not exported; reached through each model
 * class's `validate()`), run by @kubernetes-models/validate 4.0.0, which kubernetes-models nests as its own
 * dependency. (The separate @kubernetes-models/validate 3.x package is an AJV instance to which JSON schemas
 * must be `register`ed; kubernetes-models 4.5.1 does not use it, and no JSON form of the schemas is installed to
 * register, so Ferry does not depend on it.)
 *
 * Those compiled schemas do not set `additionalProperties: false` (the OpenAPI documents of Kubernetes never
 * do: the API server prunes or rejects unknown fields itself, by its fieldValidation setting). So a typo such
 * as `replcas` passes `new Deployment(...).validate()`. The options weighed:
 * - a stricter AJV (3.1.2's, or a new one with additionalProperties forced false): needs the schemas as JSON,
 *   which are not installed (the compiled code cannot be recompiled), so it would mean vendoring Kubernetes'
 *   swagger.json (several megabytes) and keeping it in step with kubernetes-models by hand;
 * - reading the field lists from kubernetes-models' .d.ts files: the same source, but a TypeScript parse at
 *   run time (slow) or a regex over declaration files (fragile), and a second definition of what a type is;
 * - what was chosen (check-schema.ts): run the official compiled validator on the object through a Proxy that
 *   records, per object inside it, which keys the validator reads and whether it enumerates them. The
 *   generated code reads every property its schema declares, present or not (`void 0 === data.replicas || ...`
 *   for each), and enumerates with `for...in` only maps (additionalProperties: labels, resources.limits). So a
 *   key present in a non-map object that the validator never read is, by the very schema that checked the
 *   types, a field that does not exist. "Did you mean" comes from the keys it did read. An object it read
 *   nothing from is free-form (or unreached, its parent already wrong) and is not judged.
 *   One schema, one pass, no extra data; the cost is reliance on how AJV's standalone code reads properties.
 *   That is guarded twice: validation throws if a validator reads no field of the top object (the generated
 *   code changed), and validate.test.ts compares the fields read for several types with the fields
 *   kubernetes-models' own .d.ts declares for them.
 *
 * ## Ferry's own checks (each a pure function, in check-*.ts)
 * - names (check-names.ts): metadata.name per kind (DNS-1123 label for a Namespace, DNS-1035 label for a
 *   Service, DNS-1123 subdomain otherwise), namespace, label keys and values, annotation keys, container,
 *   volume and port names, ConfigMap and Secret keys;
 * - pods (check-pods.ts): a Deployment's selector selects its own pod template; every probe's (and lifecycle
 *   hook's) port, by number or name, is a declared port of its container; the Pod Security Standard
 *   "restricted" in full; Ferry's extras: readOnlyRootFilesystem, automountServiceAccountToken false;
 * - references (check-refs.ts): no two objects with the same kind and name; an HPA's or ScaledObject's target
 *   is a rendered Deployment of its namespace, which then has no spec.replicas; every Deployment's pods are
 *   selected by a NetworkPolicy of their namespace for Ingress and for Egress; a Service with a selector
 *   selects some rendered Deployment's pods and targets ports they declare; a PodDisruptionBudget selects some;
 *   every pod runs as a rendered ServiceAccount, not `default`;
 * - KEDA's ScaledObject (check-keda.ts): no official schema exists; its known structure only.
 * Not checked here: anything only a cluster knows (admission webhooks, quotas, existing objects, immutable
 * fields on update), and what the renderer's own tests cover (that allow rules allow the right traffic).
 */

import { FerryError } from '../core/errors.ts';
import { problem, record } from './check-common.ts';
import { scaledObjectProblems } from './check-keda.ts';
import { nameProblems } from './check-names.ts';
import { ferryPodProblems, podSecurityProblems, probePortProblems, selectorProblems } from './check-pods.ts';
import {
  autoscalerProblems,
  duplicateProblems,
  networkPolicyCoverageProblems,
  selectionProblems,
  serviceAccountProblems,
} from './check-refs.ts';
import { schemaProblems } from './check-schema.ts';
import type { KubernetesObject } from './types.ts';

export { KNOWN_KINDS } from './check-schema.ts';

/** Checks of one object, in the order their problems are listed. */
const PER_OBJECT: readonly ((obj: KubernetesObject) => string[])[] = [
  schemaProblems,
  scaledObjectProblems,
  nameProblems,
  selectorProblems,
  probePortProblems,
  podSecurityProblems,
  ferryPodProblems,
];

/** Checks across the objects, after every object's own. */
const ACROSS: readonly ((objects: readonly KubernetesObject[]) => string[])[] = [
  duplicateProblems,
  autoscalerProblems,
  selectionProblems,
  networkPolicyCoverageProblems,
  serviceAccountProblems,
];

/**
 * Every problem of a set of rendered objects (see the module comment); [] when they are valid. Pure apart from
 * the schemas it loads; never throws on a malformed object (a value that is not an object at all is a problem
 * too, named by its index).
 */
export function objectProblems(objects: readonly KubernetesObject[]): string[] {
  const out: string[] = [];
  const valid: KubernetesObject[] = [];
  objects.forEach((obj, i) => {
    if (!record(obj) || !record(obj.metadata)) {
      out.push(
        record(obj)
          ? problem(obj, 'metadata', 'must be an object')
          : `object ${i}: is not a Kubernetes object (${JSON.stringify(obj)})`,
      );
      if (!record(obj)) return;
    }
    valid.push(obj);
    for (const check of PER_OBJECT) out.push(...check(obj));
  });
  for (const check of ACROSS) out.push(...check(valid));
  return [...new Set(out)];
}

/** The rendered objects, or a FerryError listing every problem: Ferry never writes or applies an invalid object. */
export function assertRenderedValid(objects: readonly KubernetesObject[]): void {
  const problems = objectProblems(objects);
  if (problems.length > 0)
    throw new FerryError(
      'FERRY_INTERNAL',
      `the rendered objects are not valid:\n  ${problems.join('\n  ')}`,
      {
        hint: 'This is a bug in the renderer: please report it with the ferry.yaml.',
      },
    );
}
