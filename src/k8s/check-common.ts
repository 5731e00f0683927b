/**
 * What the offline checks (validate.ts, check-*.ts) share: reading fields of an object that may be malformed
 * (a check never throws on a broken object, it reports or skips), naming an object and a field in a problem,
 * and matching label selectors as Kubernetes does.
 */
import type { KubernetesObject } from './types.ts';

export type Fields = Record<string, unknown>;

/** The value as a plain object (not an array, not null), or undefined. */
export function record(value: unknown): Fields | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Fields) : undefined;
}

/** The value as an array, or [] when it is anything else. */
export function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A map of strings (labels, a Service's selector), or undefined if the value is not one. */
export function stringMap(value: unknown): Record<string, string> | undefined {
  const r = record(value);
  if (!r) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** `Kind/namespace/name`, or `Kind/name` for an object without a namespace; `?` for a missing name. */
export function objectRef(obj: KubernetesObject): string {
  const meta = record(obj.metadata);
  const name = text(meta?.name) ?? '?';
  const namespace = text(meta?.namespace);
  const kind = text(obj.kind) ?? '?';
  return namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
}

/** One problem, as objectProblems reports it: `Deployment/ml/iris-r3: spec.replicas: message`. */
export function problem(obj: KubernetesObject, path: string, message: string): string {
  return `${objectRef(obj)}: ${path}: ${message}`;
}

/** A field path in the form kubectl explain uses: `spec.template.spec.containers[0].ports[1]`, and
 * `metadata.labels["app.kubernetes.io/name"]` for a key that is not an identifier. */
export function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (!/^[A-Za-z_$][\w$]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** The object's namespace for matching objects with each other ('' when it has none: the same default). */
export function namespaceOf(obj: KubernetesObject): string {
  return text(record(obj.metadata)?.namespace) ?? '';
}

export function nameOf(obj: KubernetesObject): string | undefined {
  return text(record(obj.metadata)?.name);
}

/** A value for a message: strings quoted, others as JSON, long ones cut. */
export function shown(value: unknown): string {
  const s = value === undefined ? 'unset' : JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Whether a metav1.LabelSelector (matchLabels and matchExpressions with In, NotIn, Exists, DoesNotExist)
 * selects these labels. An empty selector selects everything (as a NetworkPolicy's podSelector {} does); a
 * missing or malformed one selects nothing, and so does an unknown operator.
 */
export function selectorMatches(selector: unknown, labels: Record<string, string>): boolean {
  const s = record(selector);
  if (!s) return false;
  const matchLabels = record(s.matchLabels) ?? {};
  for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
  for (const e of list(s.matchExpressions)) {
    const expr = record(e);
    const key = text(expr?.key);
    if (!expr || key === undefined) return false;
    const values = list(expr.values);
    const has = Object.hasOwn(labels, key);
    switch (expr.operator) {
      case 'In':
        if (!has || !values.includes(labels[key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Whether a label selector has no requirement at all (it then selects everything). */
export function selectorIsEmpty(selector: unknown): boolean {
  const s = record(selector);
  return (
    s !== undefined &&
    Object.keys(record(s.matchLabels) ?? {}).length === 0 &&
    list(s.matchExpressions).length === 0
  );
}

/** Whether a Service-style selector (a plain map of labels) selects these labels; an empty map selects nothing. */
export function mapSelectorMatches(
  selector: Record<string, string>,
  labels: Record<string, string>,
): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/** A Deployment's pod template: where it is, its labels and its pod spec. Deployments are the only objects Ferry
 * renders that run pods. */
export interface PodTemplate {
  /** The path of the template in its object, `spec.template`. */
  path: string;
  labels: Record<string, string>;
  spec: Fields;
}

export function podTemplateOf(obj: KubernetesObject): PodTemplate | undefined {
  if (obj.kind !== 'Deployment') return undefined;
  const template = record(record(obj.spec)?.template);
  const spec = record(template?.spec);
  if (!template || !spec) return undefined;
  return { path: 'spec.template', labels: stringMap(record(template.metadata)?.labels) ?? {}, spec };
}

/** The containers of a pod spec with their paths: containers, then initContainers, then ephemeralContainers. */
export function containersOf(spec: Fields, specPath: string): { path: string; container: Fields }[] {
  const out: { path: string; container: Fields }[] = [];
  for (const field of ['containers', 'initContainers', 'ephemeralContainers']) {
    list(spec[field]).forEach((c, i) => {
      const container = record(c);
      if (container) out.push({ path: child(child(specPath, field), i), container });
    });
  }
  return out;
}

/** Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment), for
 * "did you mean" in unknown-field problems: `paht` is one edit from `path`. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  return d[a.length]![b.length]!;
}

/** The closest of the candidates to a misspelt name (at most a third of its letters off), if any. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const c of candidates) {
    const d = c.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
