/**
 * Names the API server would reject, which the OpenAPI schemas leave as plain strings. The rules are those of
 * k8s.io/apimachinery/pkg/util/validation and each kind's ValidateXxxName:
 * - metadata.name: a Namespace's is a DNS-1123 label; a Service's a DNS-1035 label (a letter first: it becomes
 *   a DNS name and an environment variable); every other kind Ferry renders takes a DNS-1123 subdomain.
 * - metadata.namespace: a DNS-1123 label.
 * - label keys and annotation keys: qualified names (an optional DNS subdomain prefix and `/`, then 1-63
 *   alphanumerics, `-`, `_`, `.`); label values: 0-63 of the same, alphanumeric at both ends. The same for the
 *   labels in selectors (matchLabels, matchExpressions, a Service's selector).
 * - in a pod: container and volume names are DNS-1123 labels; port names are IANA service names (1-15 lowercase
 *   alphanumerics and `-`, a letter among them, no `--`, no `-` at either end), as is a Service's named
 *   targetPort; a Service port's name is a DNS-1123 label.
 * - ConfigMap and Secret keys: 1-253 of alphanumerics, `-`, `_`, `.`.
 */
import {
  child,
  containersOf,
  type Fields,
  list,
  podTemplateOf,
  problem,
  record,
  shown,
  text,
} from './check-common.ts';
import type { KubernetesObject } from './types.ts';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** Why a name is not a DNS-1123 label, or undefined when it is one. */
export function dns1123LabelError(name: string): string | undefined {
  if (name.length > 63) return `${shown(name)} is not a DNS-1123 label: longer than 63 characters`;
  if (!LABEL.test(name))
    return `${shown(name)} is not a DNS-1123 label: lowercase letters, digits and '-', alphanumeric at both ends`;
  return undefined;
}

export function dns1123SubdomainError(name: string): string | undefined {
  if (name.length > 253) return `${shown(name)} is not a DNS-1123 subdomain: longer than 253 characters`;
  if (!SUBDOMAIN.test(name))
    return `${shown(name)} is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', alphanumeric at both ends`;
  return undefined;
}

export function dns1035LabelError(name: string): string | undefined {
  if (name.length > 63) return `${shown(name)} is not a DNS-1035 label: longer than 63 characters`;
  if (!DNS1035.test(name))
    return `${shown(name)} is not a DNS-1035 label: lowercase letters, digits and '-', a letter first, alphanumeric last`;
  return undefined;
}

/** A label or annotation key: `[prefix/]name`. */
export function qualifiedNameError(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    const e =
      prefix === '' ? 'is empty' : dns1123SubdomainError(prefix) ? 'is not a DNS-1123 subdomain' : undefined;
    if (e) return `${shown(key)} is not a qualified name: its prefix ${e}`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name))
    return `${shown(key)} is not a qualified name: 1-63 letters, digits, '-', '_' or '.' after any prefix/, alphanumeric at both ends`;
  return undefined;
}

export function labelValueError(value: string): string | undefined {
  if (value.length > 63 || !LABEL_VALUE.test(value))
    return `${shown(value)} is not a label value: at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends`;
  return undefined;
}

/** A port name (IANA_SVC_NAME), as a container port's name or a named targetPort / probe port. */
export function portNameError(name: string): string | undefined {
  const ok =
    name.length >= 1 &&
    name.length <= 15 &&
    /^[-a-z0-9]+$/.test(name) &&
    /[a-z]/.test(name) &&
    !name.includes('--') &&
    !name.startsWith('-') &&
    !name.endsWith('-');
  return ok
    ? undefined
    : `${shown(name)} is not a port name: 1-15 lowercase letters, digits and '-', with a letter, no '--', alphanumeric at both ends`;
}

function metadataNameRule(kind: unknown): (name: string) => string | undefined {
  if (kind === 'Namespace') return dns1123LabelError;
  if (kind === 'Service') return dns1035LabelError;
  return dns1123SubdomainError;
}

/** Label keys and values of a map of labels (metadata.labels, matchLabels, a Service's selector). */
function labelMapProblems(obj: KubernetesObject, path: string, labels: unknown): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(record(labels) ?? {})) {
    const keyError = qualifiedNameError(key);
    if (keyError) out.push(problem(obj, child(path, key), `label key ${keyError}`));
    if (typeof value === 'string') {
      const valueError = labelValueError(value);
      if (valueError) out.push(problem(obj, child(path, key), valueError));
    }
  }
  return out;
}

/** The labels in a metav1.LabelSelector. */
function selectorNameProblems(obj: KubernetesObject, path: string, selector: unknown): string[] {
  const s = record(selector);
  if (!s) return [];
  const out = labelMapProblems(obj, child(path, 'matchLabels'), s.matchLabels);
  list(s.matchExpressions).forEach((e, i) => {
    const expr = record(e);
    const at = child(child(path, 'matchExpressions'), i);
    const key = text(expr?.key);
    const keyError = key === undefined ? undefined : qualifiedNameError(key);
    if (keyError) out.push(problem(obj, child(at, 'key'), `label key ${keyError}`));
    list(expr?.values).forEach((v, j) => {
      const valueError = typeof v === 'string' ? labelValueError(v) : undefined;
      if (valueError) out.push(problem(obj, child(child(at, 'values'), j), valueError));
    });
  });
  return out;
}

function podNameProblems(obj: KubernetesObject, specPath: string, spec: Fields): string[] {
  const out: string[] = [];
  for (const { path, container } of containersOf(spec, specPath)) {
    const name = text(container.name);
    const nameError = name === undefined ? undefined : dns1123LabelError(name);
    if (nameError) out.push(problem(obj, child(path, 'name'), nameError));
    list(container.ports).forEach((p, i) => {
      const portName = text(record(p)?.name);
      const e = portName === undefined ? undefined : portNameError(portName);
      if (e) out.push(problem(obj, child(child(child(path, 'ports'), i), 'name'), e));
    });
  }
  list(spec.volumes).forEach((v, i) => {
    const name = text(record(v)?.name);
    const e = name === undefined ? undefined : dns1123LabelError(name);
    if (e) out.push(problem(obj, child(child(child(specPath, 'volumes'), i), 'name'), e));
  });
  const sa = text(spec.serviceAccountName);
  const saError = sa === undefined ? undefined : dns1123SubdomainError(sa);
  if (saError) out.push(problem(obj, child(specPath, 'serviceAccountName'), saError));
  return out;
}

/** Selectors in the kinds Ferry renders, with their paths. */
function selectorsOf(obj: KubernetesObject): { path: string; selector: unknown }[] {
  const spec = record(obj.spec);
  if (!spec) return [];
  switch (obj.kind) {
    case 'Deployment':
    case 'PodDisruptionBudget':
      return [{ path: 'spec.selector', selector: spec.selector }];
    case 'NetworkPolicy': {
      const out = [{ path: 'spec.podSelector', selector: spec.podSelector }];
      for (const [rules, peers] of [
        ['ingress', 'from'],
        ['egress', 'to'],
      ] as const) {
        list(spec[rules]).forEach((rule, i) => {
          list(record(rule)?.[peers]).forEach((peer, j) => {
            const at = child(child(child(child('spec', rules), i), peers), j);
            for (const field of ['podSelector', 'namespaceSelector'])
              if (record(peer)?.[field] !== undefined)
                out.push({ path: child(at, field), selector: record(peer)?.[field] });
          });
        });
      }
      return out;
    }
    default:
      return [];
  }
}

/** Every name, label and key in an object that the API server checks beyond its schema. */
export function nameProblems(obj: KubernetesObject): string[] {
  const out: string[] = [];
  const meta = record(obj.metadata);
  const name = text(meta?.name);
  if (name === undefined) out.push(problem(obj, 'metadata.name', 'required field missing'));
  else {
    const e = metadataNameRule(obj.kind)(name);
    if (e) out.push(problem(obj, 'metadata.name', e));
  }
  const namespace = text(meta?.namespace);
  const nsError = namespace === undefined ? undefined : dns1123LabelError(namespace);
  if (nsError) out.push(problem(obj, 'metadata.namespace', nsError));
  out.push(...labelMapProblems(obj, 'metadata.labels', meta?.labels));
  for (const key of Object.keys(record(meta?.annotations) ?? {})) {
    const e = qualifiedNameError(key.toLowerCase());
    if (e) out.push(problem(obj, child('metadata.annotations', key), `annotation key ${e}`));
  }

  const template = podTemplateOf(obj);
  if (template) {
    out.push(...labelMapProblems(obj, `${template.path}.metadata.labels`, template.labels));
    out.push(...podNameProblems(obj, `${template.path}.spec`, template.spec));
  }
  for (const { path, selector } of selectorsOf(obj)) out.push(...selectorNameProblems(obj, path, selector));

  if (obj.kind === 'Service') {
    const spec = record(obj.spec);
    out.push(...labelMapProblems(obj, 'spec.selector', spec?.selector));
    list(spec?.ports).forEach((p, i) => {
      const port = record(p);
      const at = child(child('spec', 'ports'), i);
      const portName = text(port?.name);
      const nameError = portName === undefined ? undefined : dns1123LabelError(portName);
      if (nameError) out.push(problem(obj, child(at, 'name'), nameError));
      const target = text(port?.targetPort);
      const targetError = target === undefined ? undefined : portNameError(target);
      if (targetError) out.push(problem(obj, child(at, 'targetPort'), targetError));
    });
  }
  if (obj.kind === 'ConfigMap' || obj.kind === 'Secret') {
    for (const field of ['data', 'binaryData', 'stringData'])
      for (const key of Object.keys(record(obj[field]) ?? {}))
        if (key.length > 253 || !CONFIG_KEY.test(key))
          out.push(
            problem(
              obj,
              child(field, key),
              `${shown(key)} is not a key: 1-253 letters, digits, '-', '_' or '.'`,
            ),
          );
  }
  return out;
}
