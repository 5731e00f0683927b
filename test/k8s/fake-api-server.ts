/**
 * An in-process fake Kubernetes API server for tests (issue 12): no API server can run on our machines, so
 * `ferry k8s apply | status | undo` are tested against this one, over real HTTP on 127.0.0.1, with
 * @kubernetes/client-node and with kubectl itself (test/k8s/fake-api-server.test.ts).
 *
 * What it serves, and how far it goes (docs/kubernetes.md, "The fake API server (tests)", says the same):
 * - discovery: /version, /api, /apis (legacy discovery: kubectl 1.32 asks for aggregated discovery first and falls
 *   back to this when the answer is plain JSON), /api/v1 and /apis/<group>/<version> for the kinds Ferry renders
 *   (+ Secret, + KEDA's ScaledObject); and a minimal /openapi/v3 (per group-version: each resource's PATCH with
 *   the `fieldValidation` parameter and its x-kubernetes-group-version-kind) which is what kubectl reads to learn
 *   that the server validates fields itself; it then skips client-side validation (which would need
 *   /openapi/v2 in protobuf) and sends `fieldValidation=Strict`.
 * - server-side apply (PATCH application/apply-patch+yaml, YAML or JSON): field ownership per manager in
 *   managedFields (FieldsV1), 409 Conflict with FieldManagerConflict causes unless `force=true` (ownership then
 *   moves), removal of the fields a manager applied before and no longer applies when nobody else owns them,
 *   shared ownership of equal values. Granularity: every map key down to the leaves; lists are atomic (one field)
 *   except the associative lists of the real schema that Ferry uses: containers, initContainers,
 *   ephemeralContainers and volumes (by name), a container's env (by name), ports (by containerPort and
 *   protocol, TCP by default) and volumeMounts (by mountPath), topologySpreadConstraints (by topologyKey and
 *   whenUnsatisfiable), a Service's ports (by port and protocol). `status` is not applied on the main resource.
 * - also: POST (create), PUT (replace, resourceVersion checked), merge patch (application/merge-patch+json), as
 *   Update operations that take ownership of what they change; `/status` subresource GET/PUT/merge patch for
 *   Deployments and the other kinds with a status. Strategic merge patch and JSON patch are refused (415).
 * - what it receives is checked as the real server would refuse it, with Ferry's offline checks of a single
 *   object: the official schema with the unknown-field check (src/k8s/check-schema.ts), KEDA's structure
 *   (check-keda.ts) and names, labels and keys (check-names.ts); a problem is 422 Invalid with its causes.
 *   A Deployment's spec.selector is immutable. Objects in a namespace that does not exist are refused (404), as
 *   the NamespaceLifecycle admission does, dry run included; default, kube-system, kube-public and
 *   kube-node-lease exist from the start.
 * - GET, LIST (labelSelector: `=`, `==`, `!=`, `in`, `notin`, exists, `!key`; fieldSelector metadata.name and
 *   metadata.namespace; limit/continue), DELETE (a Status; a Namespace takes its objects with it at once), delete
 *   of a collection, WATCH (`?watch=true`: JSON lines of {type, object}; from a resourceVersion, or the current
 *   objects as ADDED first), `dryRun=All` on every write. Items of a LIST have no apiVersion/kind (as a real
 *   server's typed lists), except a CRD's (ScaledObject). Missing objects and kinds: 404 NotFound Status.
 * - server-side state: uid, resourceVersion (one increasing counter), generation (bumped when anything but
 *   metadata and status changes), creationTimestamp; a Deployment's spec.replicas defaults to 1 (the real
 *   defaulting: an apply that stops setting it leaves 1); a Namespace's status.phase Active; a Secret's
 *   stringData goes into data. Nothing else is defaulted.
 * - a test-side controller for Deployments (the `controller` option): after each change of a Deployment's
 *   generation (and of an HPA or ScaledObject targeting it) it scales it into the autoscaler's bounds as the HPA
 *   would (an Update by kube-controller-manager on the scale subresource), writes a "progressing" status
 *   (observedGeneration, Progressing True ReplicaSetUpdated), then, a turn of the event loop later, the outcome:
 *   'ready' (all replicas updated, ready, available; Available True, Progressing True NewReplicaSetAvailable) or
 *   'stuck' (no new replica ready; Progressing False ProgressDeadlineExceeded), or nothing ('none'); zero
 *   counts are left out, as the real status omits them.
 * Not modelled: pods, ReplicaSets, Events, authentication, admission webhooks, aggregated discovery, protobuf,
 * /openapi/v2, other defaulting (a Service's clusterIP, protocols), finalizers and graceful deletion.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { objectRef } from '../../src/k8s/check-common.ts';
import { scaledObjectProblems } from '../../src/k8s/check-keda.ts';
import { nameProblems } from '../../src/k8s/check-names.ts';
import { schemaProblems } from '../../src/k8s/check-schema.ts';
import type { KubernetesObject } from '../../src/k8s/types.ts';

type Fields = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------------
// The kinds served

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  /** Has a /status subresource: `status` is not written through the main resource. */
  status: boolean;
  /** A custom resource (its LIST items keep apiVersion and kind). */
  crd: boolean;
}

const r = (
  group: string,
  version: string,
  kind: string,
  plural: string,
  shortNames: string[],
  more: Partial<ResourceType> = {},
): ResourceType => ({
  group,
  version,
  kind,
  plural,
  singular: kind.toLowerCase(),
  namespaced: true,
  shortNames,
  status: false,
  crd: false,
  ...more,
});

export const RESOURCES: readonly ResourceType[] = [
  r('', 'v1', 'Namespace', 'namespaces', ['ns'], { namespaced: false, status: true }),
  r('', 'v1', 'ServiceAccount', 'serviceaccounts', ['sa']),
  r('', 'v1', 'ConfigMap', 'configmaps', ['cm']),
  r('', 'v1', 'Secret', 'secrets', []),
  r('', 'v1', 'Service', 'services', ['svc'], { status: true }),
  r('apps', 'v1', 'Deployment', 'deployments', ['deploy'], { status: true }),
  r('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', ['netpol']),
  r('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', ['pdb'], { status: true }),
  r('autoscaling', 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', ['hpa'], { status: true }),
  r('keda.sh', 'v1alpha1', 'ScaledObject', 'scaledobjects', ['so'], { status: true, crd: true }),
];

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

/** `deployments.apps`, `configmaps`: how the real server names a resource in messages. */
function qualified(t: ResourceType): string {
  return t.group ? `${t.plural}.${t.group}` : t.plural;
}

/** `Deployment.apps`, `ConfigMap`: how it names a kind in validation messages. */
function qualifiedKind(t: ResourceType): string {
  return t.group ? `${t.kind}.${t.group}` : t.kind;
}

function groupVersions(): { group: string; version: string; types: ResourceType[] }[] {
  const out = new Map<string, { group: string; version: string; types: ResourceType[] }>();
  for (const t of RESOURCES) {
    const key = apiVersionOf(t);
    const gv = out.get(key) ?? { group: t.group, version: t.version, types: [] };
    gv.types.push(t);
    out.set(key, gv);
  }
  return [...out.values()];
}

// ---------------------------------------------------------------------------------------------------------
// Errors as Status objects

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Fields,
  ) {
    super(message);
  }

  status(): Fields {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

function notFound(t: ResourceType, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(t)} "${name}" not found`, {
    name,
    ...(t.group ? { group: t.group } : {}),
    kind: t.plural,
  });
}

const badRequest = (message: string) => new ApiError(400, 'BadRequest', message);

// ---------------------------------------------------------------------------------------------------------
// Values

function isMap(v: unknown): v is Fields {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && equal(a[k], b[k]));
  }
  return false;
}

/** Drops nulls (the typed server drops them: an unset field). */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((x) => x !== null).map(withoutNulls);
  if (isMap(v)) {
    const out: Fields = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x);
    return out;
  }
  return v;
}

function now(): string {
  return `${new Date().toISOString().slice(0, 19)}Z`;
}

// ---------------------------------------------------------------------------------------------------------
// Field sets, as server-side apply's structured-merge-diff has them: a path of segments `f:<field>` (a map key)
// and `k:<json of the key fields>` (an element of an associative list). A set holds the leaves and the list
// elements; in managedFields (FieldsV1) a member that has members under it gets a "." entry.

type Seg = string;

/** Whether a list at this place (field names from the top, list elements skipped) is associative, by which key
 * fields and with which defaults; undefined = atomic (the list is one field). */
function listKeys(kind: string, names: readonly string[]): Fields | undefined {
  const last = names.at(-1);
  const parent = names.at(-2) ?? '';
  const inContainer = ['containers', 'initContainers', 'ephemeralContainers'].includes(parent);
  switch (last) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'volumes':
      return { name: undefined };
    case 'env':
      return inContainer ? { name: undefined } : undefined;
    case 'volumeMounts':
      return inContainer ? { mountPath: undefined } : undefined;
    case 'ports':
      if (inContainer) return { containerPort: undefined, protocol: 'TCP' };
      if (kind === 'Service' && names.length === 2 && names[0] === 'spec')
        return { port: undefined, protocol: 'TCP' };
      return undefined;
    case 'topologySpreadConstraints':
      return { topologyKey: undefined, whenUnsatisfiable: undefined };
    default:
      return undefined;
  }
}

function fieldPath(names: readonly string[]): string {
  return names.map((n) => `.${n}`).join('');
}

/** The `k:` segment of a list element, or an ApiError (422) when it lacks a key field. */
function keySeg(element: unknown, keys: Fields, where: string): Seg {
  if (!isMap(element)) throw invalidList(where, 'an element of this list is not an object');
  const key: Fields = {};
  for (const k of Object.keys(keys).sort()) {
    const v = element[k] ?? keys[k];
    if (v === undefined) throw invalidList(where, `an element has no key field "${k}"`);
    key[k] = v;
  }
  return `k:${JSON.stringify(key)}`;
}

function invalidList(where: string, message: string): ApiError {
  return new ApiError(422, 'Invalid', `${where}: ${message}`, {
    causes: [{ reason: 'FieldValueInvalid', message, field: where.replace(/^\./, '') }],
  });
}

interface Member {
  segs: Seg[];
  value: unknown;
  leaf: boolean;
}

type FieldSet = Map<string, Member>;

const pathKey = (segs: readonly Seg[]) => segs.join('\n');

/** Fields that are the server's, not a manager's. */
const IGNORED_METADATA = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'managedFields',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'selfLink',
]);

/** Which part of an object a write owns: the main resource (without `status` when the kind has a status
 * subresource) or the status subresource (`status` only). */
type Scope = 'main' | 'status';

function inScope(t: ResourceType, scope: Scope, top: string): boolean {
  if (top === 'apiVersion' || top === 'kind') return false;
  if (scope === 'status') return top === 'status';
  return !(t.status && top === 'status');
}

/** The field set of an object: its leaves and associative-list elements. */
function fieldSet(t: ResourceType, obj: Fields, scope: Scope): FieldSet {
  const out: FieldSet = new Map();
  const walk = (value: unknown, segs: Seg[], names: string[]) => {
    if (isMap(value)) {
      const keys = Object.keys(value);
      if (keys.length === 0 && segs.length > 0) {
        out.set(pathKey(segs), { segs, value, leaf: true });
        return;
      }
      for (const key of keys) {
        if (segs.length === 0 && !inScope(t, scope, key)) continue;
        if (segs.length === 1 && segs[0] === 'f:metadata' && IGNORED_METADATA.has(key)) continue;
        walk(value[key], [...segs, `f:${key}`], [...names, key]);
      }
      return;
    }
    if (Array.isArray(value)) {
      const keys = listKeys(t.kind, names);
      if (keys) {
        for (const element of value) {
          const seg = keySeg(element, keys, fieldPath(names));
          const at = [...segs, seg];
          if (out.has(pathKey(at)))
            throw invalidList(fieldPath(names), `duplicate entries for key ${seg.slice(2)}`);
          out.set(pathKey(at), { segs: at, value: element, leaf: false });
          walk(element, at, names);
        }
        return;
      }
    }
    out.set(pathKey(segs), { segs, value, leaf: true });
  };
  walk(obj, [], []);
  return out;
}

/** The field names along a path (list elements skipped), for listKeys. */
function namesOf(segs: readonly Seg[]): string[] {
  return segs.filter((s) => s.startsWith('f:')).map((s) => s.slice(2));
}

function childAt(t: ResourceType, container: unknown, seg: Seg, names: readonly string[]): unknown {
  if (seg.startsWith('f:')) return isMap(container) ? container[seg.slice(2)] : undefined;
  if (!Array.isArray(container)) return undefined;
  const keys = listKeys(t.kind, names);
  if (!keys) return undefined;
  return container.find((e) => {
    try {
      return keySeg(e, keys, '') === seg;
    } catch {
      return false;
    }
  });
}

function valueAt(t: ResourceType, obj: unknown, segs: readonly Seg[]): unknown {
  let at = obj;
  for (let i = 0; i < segs.length && at !== undefined; i++)
    at = childAt(t, at, segs[i]!, namesOf(segs.slice(0, i)));
  return at;
}

/** Removes the field at a path, then the maps and lists left empty above it that nobody owns. */
function removeAt(t: ResourceType, obj: Fields, segs: readonly Seg[], owned: (key: string) => boolean): void {
  const chain: unknown[] = [obj];
  for (let i = 0; i < segs.length - 1; i++) {
    const next = childAt(t, chain[i], segs[i]!, namesOf(segs.slice(0, i)));
    if (next === undefined || next === null || typeof next !== 'object') return;
    chain.push(next);
  }
  for (let i = segs.length - 1; i >= 0; i--) {
    const container = chain[i];
    const seg = segs[i]!;
    if (seg.startsWith('f:') && isMap(container)) delete container[seg.slice(2)];
    else if (Array.isArray(container)) {
      const element = childAt(t, container, seg, namesOf(segs.slice(0, i)));
      const index = container.indexOf(element);
      if (index >= 0) container.splice(index, 1);
    }
    const empty = Array.isArray(container)
      ? container.length === 0
      : Object.keys(container as Fields).length === 0;
    if (i === 0 || !empty || owned(pathKey(segs.slice(0, i)))) return;
  }
}

/** The applied configuration merged into the live object: maps key by key, associative lists element by element
 * (live order, new elements after), anything else replaced. An empty map applied keeps what is under it. */
function merge(t: ResourceType, live: unknown, applied: unknown, names: string[]): unknown {
  if (isMap(applied)) {
    if (!isMap(live)) return clone(applied);
    const out: Fields = { ...live };
    for (const [k, v] of Object.entries(applied)) out[k] = merge(t, live[k], v, [...names, k]);
    return out;
  }
  if (Array.isArray(applied)) {
    const keys = listKeys(t.kind, names);
    if (!keys || !Array.isArray(live)) return clone(applied);
    const where = fieldPath(names);
    const appliedByKey = new Map(applied.map((e) => [keySeg(e, keys, where), e]));
    const out = live.map((e) => {
      const seg = keySeg(e, keys, where);
      const a = appliedByKey.get(seg);
      appliedByKey.delete(seg);
      return a === undefined ? e : merge(t, e, a, names);
    });
    return [...out, ...[...appliedByKey.values()].map(clone)];
  }
  return applied;
}

/** Whether a path is a key field of a list element (`...k:{"name":"a"}`, `f:name`): it stays while the
 * element does, whoever owns it. */
function isKeyField(segs: readonly Seg[]): boolean {
  const last = segs.at(-1);
  const parent = segs.at(-2);
  if (!last?.startsWith('f:') || !parent?.startsWith('k:')) return false;
  return Object.hasOwn(JSON.parse(parent.slice(2)) as Fields, last.slice(2));
}

/** The SMD field path of a member for a conflict message: `.spec.template.spec.containers[name="server"].image`. */
function displayPath(segs: readonly Seg[]): string {
  return segs
    .map((s) => {
      if (s.startsWith('f:')) return `.${s.slice(2)}`;
      const key = JSON.parse(s.slice(2)) as Fields;
      return `[${Object.entries(key)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',')}]`;
    })
    .join('');
}

/** A set as FieldsV1. */
function fieldsV1(set: FieldSet): Fields {
  const root: Fields = {};
  const members: Fields[] = [];
  for (const { segs } of set.values()) {
    let node = root;
    for (const seg of segs) {
      node[seg] ??= {};
      node = node[seg] as Fields;
    }
    members.push(node);
  }
  for (const node of members) if (Object.keys(node).length > 0 && !('.' in node)) node['.'] = {};
  return root;
}

// ---------------------------------------------------------------------------------------------------------
// Stored objects

interface ManagedEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  subresource?: string;
  set: FieldSet;
}

interface Stored {
  type: ResourceType;
  /** The object without managedFields (those are rendered from `managed`). */
  obj: Fields;
  managed: ManagedEntry[];
}

const storeKey = (t: ResourceType, namespace: string | undefined, name: string) =>
  `${apiVersionOf(t)}|${t.plural}|${namespace ?? ''}|${name}`;

function metadataOf(obj: Fields): Fields {
  if (!isMap(obj.metadata)) obj.metadata = {};
  return obj.metadata as Fields;
}

function labelsOf(obj: Fields): Record<string, string> {
  const labels = metadataOf(obj).labels;
  return isMap(labels) ? (labels as Record<string, string>) : {};
}

/** The object as the API returns it: apiVersion, kind, metadata (with managedFields), then the rest. */
function rendered(s: Stored): Fields {
  const { apiVersion: _a, kind: _k, metadata, ...rest } = clone(s.obj);
  const meta = { ...(metadata as Fields) };
  if (s.managed.length > 0)
    meta.managedFields = s.managed.map((e) => ({
      manager: e.manager,
      operation: e.operation,
      apiVersion: e.apiVersion,
      time: e.time,
      fieldsType: 'FieldsV1',
      fieldsV1: fieldsV1(e.set),
      ...(e.subresource ? { subresource: e.subresource } : {}),
    }));
  return { apiVersion: apiVersionOf(s.type), kind: s.type.kind, metadata: meta, ...rest };
}

/** Everything but metadata and status: a change there bumps the generation. */
function generationPart(obj: Fields): Fields {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

// ---------------------------------------------------------------------------------------------------------
// Selectors

type Requirement = (labels: Record<string, string>) => boolean;

/** A label selector as the API takes it in a query: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`,
 * `!a`, joined by commas. */
export function parseLabelSelector(text: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const c of text) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  if (current.trim() !== '' || parts.length > 0) parts.push(current);
  return parts.map((raw): Requirement => {
    const p = raw.trim();
    let m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(p);
    if (m) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p);
    if (m) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(list.split(',').map((v) => v.trim()));
      return op === 'in'
        ? (l) => l[key] !== undefined && values.has(l[key])
        : (l) => l[key] === undefined || !values.has(l[key]);
    }
    m = /^(!?)([\w./-]+)$/.exec(p);
    if (m) {
      const [, not, key] = m as unknown as [string, string, string];
      return not ? (l) => l[key] === undefined : (l) => l[key] !== undefined;
    }
    throw badRequest(
      `unable to parse requirement: ${JSON.stringify(p)} in labelSelector ${JSON.stringify(text)}`,
    );
  });
}

function parseFieldSelector(text: string): ((obj: Fields) => boolean)[] {
  return text
    .split(',')
    .filter((p) => p.trim() !== '')
    .map((p) => {
      const m = /^\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*?)\s*$/.exec(p);
      if (!m)
        throw badRequest(`"${p}" is not a known field selector: only "metadata.name", "metadata.namespace"`);
      const [, field, op, value] = m as unknown as [string, string, string, string];
      const key = field.slice('metadata.'.length);
      return (obj: Fields) => (metadataOf(obj)[key] === value) !== (op === '!=');
    });
}

interface Selection {
  namespace?: string;
  labels: Requirement[];
  fields: ((obj: Fields) => boolean)[];
}

function selects(sel: Selection, t: ResourceType, obj: Fields): boolean {
  if (sel.namespace !== undefined && t.namespaced && metadataOf(obj).namespace !== sel.namespace)
    return false;
  const labels = labelsOf(obj);
  return sel.labels.every((req) => req(labels)) && sel.fields.every((f) => f(obj));
}

// ---------------------------------------------------------------------------------------------------------
// The controller's Deployment status

/** A Deployment's status as the controller writes it (DeploymentStatus). */
export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: DeploymentCondition[];
  [field: string]: unknown;
}

export interface DeploymentCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

/** How the test-side controller ends a rollout: all ready, stuck (ProgressDeadlineExceeded), or no status. */
export type RolloutOutcome = 'ready' | 'stuck' | 'none';

/** The controller: one outcome for every rollout, or per Deployment (it gets the object as stored, and may
 * return a whole status instead). */
export type ControllerOption =
  | RolloutOutcome
  | ((deployment: KubernetesObject) => RolloutOutcome | DeploymentStatus);

/** The real status leaves zero counts out (omitempty). */
function withoutZeros(status: DeploymentStatus): DeploymentStatus {
  const out: DeploymentStatus = {};
  for (const [k, v] of Object.entries(status)) if (v !== 0 && v !== undefined) out[k] = v;
  return out;
}

function condition(
  previous: DeploymentCondition[] | undefined,
  type: string,
  status: 'True' | 'False',
  reason: string,
  message: string,
): DeploymentCondition {
  const before = previous?.find((c) => c.type === type);
  const at = now();
  return {
    type,
    status,
    lastUpdateTime: at,
    lastTransitionTime: before && before.status === status ? (before.lastTransitionTime ?? at) : at,
    reason,
    message,
  };
}

function replicaSetName(dep: Fields): string {
  const template = JSON.stringify((dep.spec as Fields | undefined)?.template ?? {});
  const hash = createHash('sha256').update(template).digest('hex');
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let out = '';
  for (let i = 0; i < 10; i++)
    out += alphabet[Number.parseInt(hash.slice(i * 2, i * 2 + 2), 16) % alphabet.length];
  return `${String(metadataOf(dep).name)}-${out}`;
}

// ---------------------------------------------------------------------------------------------------------
// The server

export interface FakeApiOptions {
  /** The test-side Deployment controller (module comment); default 'ready'. */
  controller?: ControllerOption;
  /** Namespaces that exist from the start; default default, kube-system, kube-public, kube-node-lease. */
  namespaces?: string[];
  /** The namespace of the kubeconfig's context; default 'default'. */
  namespace?: string;
  /** Answers a request before the server does (to inject failures): a status and body, or undefined. */
  intercept?: (request: RecordedRequest) => { status: number; body: unknown } | undefined;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  userAgent: string | undefined;
  /** The HTTP status answered; 0 while a watch is open. */
  status: number;
}

export interface FakeApi {
  /** http://127.0.0.1:<port> */
  url: string;
  /** A kubeconfig (YAML) with one context pointing at this server over plain HTTP, no credentials. */
  kubeconfig(options?: { namespace?: string; context?: string }): string;
  /** Every object held, as GET returns them (managedFields included), in store order; filtered when asked (a
   * namespace given: only objects in it, no cluster-scoped ones). */
  objects(filter?: { kind?: string; namespace?: string; labelSelector?: string }): KubernetesObject[];
  /** One object as GET returns it, or undefined. */
  get(kind: string, namespace: string | undefined, name: string): KubernetesObject | undefined;
  /** Every request answered so far (the newest last). */
  requests: RecordedRequest[];
  /** Errors the server hit itself (answered 500): a test should expect none. */
  errors: Error[];
  /** Replaces a Deployment's status now (an Update by kube-controller-manager on /status; a MODIFIED event). */
  setDeploymentStatus(namespace: string, name: string, status: DeploymentStatus): void;
  /** The outcome of this Deployment's rollouts from now on (over the `controller` option; undefined to clear);
   * when the Deployment exists its status is written again at once with that outcome. */
  setDeploymentOutcome(namespace: string, name: string, outcome: RolloutOutcome | undefined): void;
  /** Resolves once the controller has nothing left to do. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

interface Watcher {
  type: ResourceType;
  sel: Selection;
  res: ServerResponse;
}

interface WatchEvent {
  rv: number;
  type: ResourceType;
  kind: 'ADDED' | 'MODIFIED' | 'DELETED';
  before: Fields | undefined;
  after: Fields;
}

type ControllerStep = 'scale' | 'progressing' | 'final';

class FakeApiServer {
  private readonly store = new Map<string, Stored>();
  private rv = 0;
  private readonly events: WatchEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly pending = new Map<string, ControllerStep>();
  private readonly outcomes = new Map<string, RolloutOutcome>();
  private controllerScheduled = false;
  private idleWaiters: (() => void)[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly errors: Error[] = [];

  constructor(private readonly options: FakeApiOptions) {
    const ns = this.type('v1', 'Namespace')!;
    for (const name of options.namespaces ?? ['default', 'kube-system', 'kube-public', 'kube-node-lease'])
      this.write(ns, undefined, name, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name },
        status: { phase: 'Active' },
      });
  }

  type(apiVersion: string, kind: string): ResourceType | undefined {
    return RESOURCES.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
  }

  // ----- storage and events

  private nextRv(): string {
    this.rv += 1;
    return String(this.rv);
  }

  /** Stores an object (new resourceVersion, its managed fields), emits its event, wakes the controller. */
  private write(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    obj: Fields,
    managed: ManagedEntry[] = [],
  ): Stored {
    const key = storeKey(t, namespace, name);
    const before = this.store.get(key);
    const meta = metadataOf(obj);
    meta.resourceVersion = this.nextRv();
    const stored: Stored = { type: t, obj, managed };
    if (!before) {
      meta.uid ??= randomUUID();
      meta.creationTimestamp ??= now();
      meta.generation ??= 1;
    }
    this.store.set(key, stored);
    this.emit(t, before ? 'MODIFIED' : 'ADDED', before ? rendered(before) : undefined, rendered(stored));
    this.afterWrite(t, before?.obj, obj);
    return stored;
  }

  private remove(t: ResourceType, namespace: string | undefined, name: string): Stored | undefined {
    const key = storeKey(t, namespace, name);
    const s = this.store.get(key);
    if (!s) return undefined;
    this.store.delete(key);
    this.pending.delete(key);
    const last = rendered(s);
    (last.metadata as Fields).resourceVersion = this.nextRv();
    this.emit(t, 'DELETED', last, last);
    if (t.kind === 'Namespace')
      for (const other of [...this.store.values()])
        if (other.type.namespaced && metadataOf(other.obj).namespace === name)
          this.remove(other.type, name, String(metadataOf(other.obj).name));
    return s;
  }

  private emit(t: ResourceType, kind: WatchEvent['kind'], before: Fields | undefined, after: Fields): void {
    const event: WatchEvent = { rv: this.rv, type: t, kind, before, after };
    this.events.push(event);
    for (const w of this.watchers) this.send(w, event);
  }

  /** An event as a watcher with a selector sees it: an object that comes into the selection is ADDED, one that
   * leaves it DELETED (with its content before the change). */
  private send(w: Watcher, e: WatchEvent): void {
    if (w.type !== e.type) return;
    const was = e.before !== undefined && e.kind !== 'DELETED' && selects(w.sel, e.type, e.before);
    const is = selects(w.sel, e.type, e.after);
    let type: string | undefined;
    let object = e.after;
    if (e.kind === 'DELETED') type = is ? 'DELETED' : undefined;
    else if (is) type = was ? 'MODIFIED' : 'ADDED';
    else if (was) {
      // As the watch cache does: the object as it was, at the event's resourceVersion.
      type = 'DELETED';
      const before = clone(e.before!);
      metadataOf(before).resourceVersion = metadataOf(e.after).resourceVersion;
      object = before;
    }
    if (type) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private find(t: ResourceType, namespace: string | undefined, name: string): Stored | undefined {
    return this.store.get(storeKey(t, namespace, name));
  }

  private requireNamespace(t: ResourceType, namespace: string | undefined): void {
    if (!t.namespaced || namespace === undefined) return;
    if (!this.find(this.type('v1', 'Namespace')!, undefined, namespace))
      throw notFound(this.type('v1', 'Namespace')!, namespace);
  }

  objects(filter: { kind?: string; namespace?: string; labelSelector?: string } = {}): KubernetesObject[] {
    const labels = filter.labelSelector ? parseLabelSelector(filter.labelSelector) : [];
    return [...this.store.values()]
      .filter(
        (s) =>
          (filter.kind === undefined || s.type.kind === filter.kind) &&
          (filter.namespace === undefined || s.type.namespaced) &&
          selects({ namespace: filter.namespace, labels, fields: [] }, s.type, s.obj),
      )
      .map((s) => rendered(s) as KubernetesObject);
  }

  getObject(kind: string, namespace: string | undefined, name: string): KubernetesObject | undefined {
    const t = RESOURCES.find((x) => x.kind === kind);
    if (!t) throw new Error(`the fake API server has no kind ${kind}`);
    const s = this.find(t, t.namespaced ? namespace : undefined, name);
    return s ? (rendered(s) as KubernetesObject) : undefined;
  }

  // ----- what the server does to an object it receives

  /** Validation as the API server refuses objects (module comment): 422 Invalid with a cause per problem. */
  private validate(t: ResourceType, obj: Fields, before: Fields | undefined): void {
    const { status: _s, ...withoutStatus } = obj;
    const meta = { ...metadataOf(withoutStatus) };
    for (const k of ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields'])
      delete meta[k];
    const candidate = { ...withoutStatus, metadata: meta } as unknown as KubernetesObject;
    const problems = [
      ...schemaProblems(candidate),
      ...scaledObjectProblems(candidate),
      ...nameProblems(candidate),
    ];
    const prefix = `${objectRef(candidate)}: `;
    const causes = problems.map((p) => {
      const rest = p.startsWith(prefix) ? p.slice(prefix.length) : p;
      const at = rest.indexOf(': ');
      const field = at >= 0 ? rest.slice(0, at) : '';
      const message = at >= 0 ? rest.slice(at + 2) : rest;
      const reason = message.startsWith('required field missing')
        ? 'FieldValueRequired'
        : message.startsWith('must be one of')
          ? 'FieldValueNotSupported'
          : 'FieldValueInvalid';
      return { reason, message, field };
    });
    if (t.kind === 'Deployment' && before) {
      const was = (before.spec as Fields | undefined)?.selector;
      const is = (obj.spec as Fields | undefined)?.selector;
      if (!equal(was, is))
        causes.push({ reason: 'FieldValueInvalid', message: 'field is immutable', field: 'spec.selector' });
    }
    if (causes.length === 0) return;
    const name = String(metadataOf(obj).name);
    const listed = causes.map((c) => `${c.field}: ${c.message}`);
    throw new ApiError(
      422,
      'Invalid',
      `${qualifiedKind(t)} "${name}" is invalid: ${listed.length === 1 ? listed[0] : `[${listed.join(', ')}]`}`,
      { name, ...(t.group ? { group: t.group } : {}), kind: t.kind, causes },
    );
  }

  /** The server's own fields and defaults on an object about to be stored. */
  private finish(
    t: ResourceType,
    obj: Fields,
    before: Fields | undefined,
    namespace: string | undefined,
    name: string,
  ) {
    const meta = metadataOf(obj);
    meta.name = name;
    if (t.namespaced) meta.namespace = namespace;
    else delete meta.namespace;
    delete meta.managedFields;
    const old = before ? metadataOf(before) : undefined;
    for (const k of ['uid', 'creationTimestamp', 'generation', 'resourceVersion']) {
      if (old && old[k] !== undefined) meta[k] = old[k];
      else delete meta[k];
    }
    if (old && !equal(generationPart(obj), generationPart(before!)))
      meta.generation = Number(old.generation ?? 0) + 1;
    if (t.kind === 'Deployment' && isMap(obj.spec) && obj.spec.replicas === undefined) obj.spec.replicas = 1;
    if (t.kind === 'Namespace' && !isMap(obj.status)) obj.status = { phase: 'Active' };
    if (t.kind === 'Secret' && isMap(obj.stringData)) {
      const data = isMap(obj.data) ? obj.data : {};
      for (const [k, v] of Object.entries(obj.stringData))
        data[k] = Buffer.from(String(v)).toString('base64');
      obj.data = data;
      delete obj.stringData;
    }
  }

  /** Checks a received object's apiVersion, kind, name and namespace against the URL. */
  private checkIdentity(
    t: ResourceType,
    body: unknown,
    namespace: string | undefined,
    name: string | undefined,
  ): Fields {
    if (!isMap(body)) throw badRequest('the body is not an object');
    if (body.apiVersion !== apiVersionOf(t) || body.kind !== t.kind)
      throw badRequest(
        `the API version and kind in the data (${String(body.apiVersion)}, ${String(body.kind)}) do not match the ` +
          `expected ones (${apiVersionOf(t)}, ${t.kind})`,
      );
    const meta = isMap(body.metadata) ? body.metadata : {};
    if (name !== undefined && meta.name !== undefined && meta.name !== name)
      throw badRequest(
        `the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`,
      );
    if (t.namespaced && meta.namespace !== undefined && meta.namespace !== namespace)
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    return withoutNulls(body) as Fields;
  }

  /** Server-side apply (module comment). */
  apply(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    manager: string,
    force: boolean,
    dryRun: boolean,
  ): { code: number; obj: Fields } {
    const applied = this.checkIdentity(t, body, namespace, name);
    this.requireNamespace(t, namespace);
    const existing = this.find(t, namespace, name);
    const appliedMeta = metadataOf(applied);
    if (
      existing &&
      appliedMeta.resourceVersion !== undefined &&
      appliedMeta.resourceVersion !== metadataOf(existing.obj).resourceVersion
    )
      throw this.modified(t, name);
    if (t.status) delete applied.status;
    const live: Fields = existing
      ? clone(existing.obj)
      : { apiVersion: apiVersionOf(t), kind: t.kind, metadata: { name } };

    const set = fieldSet(t, applied, 'main');
    const managed = (existing?.managed ?? []).map((e) => ({ ...e, set: new Map(e.set) }));
    const isMine = (e: ManagedEntry) => e.manager === manager && e.operation === 'Apply' && !e.subresource;

    // Conflicts: a field this apply gives another value than it has, that another manager owns.
    const conflicts: { entry: ManagedEntry; member: Member }[] = [];
    for (const [key, member] of set) {
      if (!member.leaf) continue;
      const current = valueAt(t, live, member.segs);
      if (current === undefined) continue;
      if (isMap(member.value) && Object.keys(member.value).length === 0 && isMap(current)) continue;
      if (equal(current, member.value)) continue;
      for (const entry of managed)
        if (!isMine(entry) && entry.set.has(key)) conflicts.push({ entry, member });
    }
    if (conflicts.length > 0 && !force) throw conflictError(conflicts);
    for (const { entry, member } of conflicts) entry.set.delete(pathKey(member.segs));

    let obj = merge(t, live, applied, []) as Fields;
    obj = { ...obj, apiVersion: apiVersionOf(t), kind: t.kind };
    const mine = managed.find(isMine);
    // Fields this manager applied before and applies no more: gone, unless someone else (or this apply, at a
    // deeper level) still owns them or something under them.
    if (mine) {
      const others = managed.filter((e) => e !== mine);
      const ownedBelow = (key: string) =>
        [set, ...others.map((e) => e.set)].some((s) =>
          [...s.keys()].some((k) => k === key || k.startsWith(`${key}\n`)),
        );
      const owned = (key: string) => [set, ...others.map((e) => e.set)].some((s) => s.has(key));
      const gone = [...mine.set.values()].filter(
        (m) => !set.has(pathKey(m.segs)) && !ownedBelow(pathKey(m.segs)) && !isKeyField(m.segs),
      );
      const goneKeys = new Set(gone.map((m) => pathKey(m.segs)));
      // A list element that goes takes its fields with it; the rest from the deepest up, so that what they
      // leave empty goes too.
      const hasGoneAncestor = (segs: Seg[]) =>
        segs.some((_, i) => i > 0 && goneKeys.has(pathKey(segs.slice(0, i))));
      for (const m of gone
        .filter((g) => !hasGoneAncestor(g.segs))
        .sort((a, b) => b.segs.length - a.segs.length))
        removeAt(t, obj, m.segs, owned);
    }
    const entry: ManagedEntry = {
      manager,
      operation: 'Apply',
      apiVersion: String(applied.apiVersion),
      time: now(),
      set,
    };
    const nextManaged = mine ? managed.map((e) => (e === mine ? entry : e)) : [...managed, entry];
    return this.commit(
      t,
      namespace,
      name,
      obj,
      existing,
      nextManaged.filter((e) => e.set.size > 0),
      dryRun,
      'main',
    );
  }

  private modified(t: ResourceType, name: string): ApiError {
    return new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualified(t)} "${name}": the object has been modified; please apply ` +
        'your changes to the latest version and try again',
      { name, ...(t.group ? { group: t.group } : {}), kind: t.plural },
    );
  }

  /** A write that is not an apply (create, replace, merge patch, the controller's): the manager takes every field
   * it changes, from whoever had it (an Update never conflicts). */
  update(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    next: Fields,
    existing: Stored | undefined,
    manager: string,
    scope: Scope,
    dryRun: boolean,
    subresource?: string,
  ): { code: number; obj: Fields } {
    let obj = withoutNulls(next) as Fields;
    if (existing) {
      // The other part of the object stays as it is: status on the main resource, the rest on /status.
      const base = clone(existing.obj);
      const kept: Fields = {};
      for (const [k, v] of Object.entries(base)) if (!inScope(t, scope, k) || k === 'metadata') kept[k] = v;
      const given: Fields = {};
      for (const [k, v] of Object.entries(obj)) if (inScope(t, scope, k)) given[k] = v;
      if (scope === 'main') given.metadata = obj.metadata;
      obj = { ...kept, ...given, apiVersion: apiVersionOf(t), kind: t.kind };
    } else if (t.status) delete obj.status;
    const before = fieldSet(t, existing?.obj ?? {}, scope);
    const after = fieldSet(t, obj, scope);
    const changed = [...after.values()].filter(
      (m) => !before.has(pathKey(m.segs)) || (m.leaf && !equal(before.get(pathKey(m.segs))?.value, m.value)),
    );
    const removed = [...before.keys()].filter((k) => !after.has(k));
    const managed = (existing?.managed ?? []).map((e) => ({ ...e, set: new Map(e.set) }));
    for (const e of managed) {
      for (const m of changed) e.set.delete(pathKey(m.segs));
      for (const k of removed)
        for (const owned of [...e.set.keys()])
          if (owned === k || owned.startsWith(`${k}\n`)) e.set.delete(owned);
    }
    const isMine = (e: ManagedEntry) =>
      e.manager === manager && e.operation === 'Update' && e.subresource === subresource;
    const mine = managed.find(isMine);
    if (changed.length > 0 || mine) {
      const set: FieldSet = new Map(mine?.set ?? []);
      for (const m of changed) set.set(pathKey(m.segs), m);
      const entry: ManagedEntry = {
        manager,
        operation: 'Update',
        apiVersion: apiVersionOf(t),
        time: changed.length > 0 || !mine ? now() : mine.time,
        ...(subresource ? { subresource } : {}),
        set,
      };
      if (mine) managed.splice(managed.indexOf(mine), 1, entry);
      else managed.push(entry);
    }
    return this.commit(
      t,
      namespace,
      name,
      obj,
      existing,
      managed.filter((e) => e.set.size > 0),
      dryRun,
      scope,
    );
  }

  /** Defaults, validation, then (unless a dry run, or nothing changed) the store. */
  private commit(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    obj: Fields,
    existing: Stored | undefined,
    managed: ManagedEntry[],
    dryRun: boolean,
    scope: Scope,
  ): { code: number; obj: Fields } {
    this.finish(t, obj, existing?.obj, namespace, name);
    if (scope === 'main') this.validate(t, obj, existing?.obj);
    const code = existing ? 200 : 201;
    if (
      existing &&
      equal(obj, existing.obj) &&
      equal(
        managed.map((e) => [e.manager, e.operation, e.subresource, [...e.set.keys()]]),
        existing.managed.map((e) => [e.manager, e.operation, e.subresource, [...e.set.keys()]]),
      )
    )
      return { code, obj: rendered(existing) };
    if (dryRun) {
      const meta = metadataOf(obj);
      if (!existing) {
        meta.uid = randomUUID();
        meta.creationTimestamp = now();
        meta.generation = 1;
      }
      return { code, obj: rendered({ type: t, obj, managed }) };
    }
    return { code, obj: rendered(this.write(t, namespace, name, obj, managed)) };
  }

  // ----- the controller

  private afterWrite(t: ResourceType, before: Fields | undefined, after: Fields): void {
    if (t.kind === 'Deployment') {
      const gen = metadataOf(after).generation;
      if (!before || metadataOf(before).generation !== gen)
        this.schedule(
          storeKey(t, String(metadataOf(after).namespace), String(metadataOf(after).name)),
          'scale',
        );
      return;
    }
    if (t.kind === 'HorizontalPodAutoscaler' || t.kind === 'ScaledObject') {
      const target = (after.spec as Fields | undefined)?.scaleTargetRef as Fields | undefined;
      if (target && (target.kind ?? 'Deployment') === 'Deployment' && typeof target.name === 'string') {
        const dep = this.type('apps/v1', 'Deployment')!;
        const key = storeKey(dep, String(metadataOf(after).namespace), target.name);
        if (this.store.has(key) && !this.pending.has(key)) this.schedule(key, 'scale');
      }
    }
  }

  private schedule(key: string, step: ControllerStep): void {
    this.pending.set(key, step);
    if (this.controllerScheduled) return;
    this.controllerScheduled = true;
    setImmediate(() => this.runController());
  }

  private runController(): void {
    this.controllerScheduled = false;
    const work = [...this.pending];
    this.pending.clear();
    for (const [key, step] of work) {
      try {
        const next = this.step(key, step);
        if (next && !this.pending.has(key)) this.schedule(key, next);
      } catch (err) {
        this.errors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    if (this.pending.size === 0 && !this.controllerScheduled) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  idle(): Promise<void> {
    if (this.pending.size === 0 && !this.controllerScheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The autoscaler's bounds for a Deployment, if an HPA or a ScaledObject targets it. */
  private bounds(namespace: string, name: string): { min: number; max: number } | undefined {
    for (const s of this.store.values()) {
      if (metadataOf(s.obj).namespace !== namespace) continue;
      const spec = (s.obj.spec ?? {}) as Fields;
      const target = (spec.scaleTargetRef ?? {}) as Fields;
      if (target.name !== name || (target.kind ?? 'Deployment') !== 'Deployment') continue;
      if (s.type.kind === 'HorizontalPodAutoscaler')
        return {
          min: Number(spec.minReplicas ?? 1),
          max: Number(spec.maxReplicas ?? Number.POSITIVE_INFINITY),
        };
      if (s.type.kind === 'ScaledObject')
        return { min: Number(spec.minReplicaCount ?? 0), max: Number(spec.maxReplicaCount ?? 100) };
    }
    return undefined;
  }

  private outcomeFor(key: string, dep: Stored): RolloutOutcome | DeploymentStatus {
    const forced = this.outcomes.get(key);
    if (forced) return forced;
    const option = this.options.controller ?? 'ready';
    return typeof option === 'function' ? option(rendered(dep) as KubernetesObject) : option;
  }

  private step(key: string, step: ControllerStep): ControllerStep | undefined {
    const dep = this.store.get(key);
    if (!dep) return undefined;
    const meta = metadataOf(dep.obj);
    const namespace = String(meta.namespace);
    const name = String(meta.name);
    const spec = (dep.obj.spec ?? {}) as Fields;
    const generation = Number(meta.generation);
    const desired = Number(spec.replicas ?? 1);
    const previous = (dep.obj.status ?? {}) as DeploymentStatus;
    if (step === 'scale') {
      const b = this.bounds(namespace, name);
      const want = b ? Math.min(Math.max(desired, b.min), b.max) : desired;
      if (want !== desired) {
        const next = clone(dep.obj);
        (next.spec as Fields).replicas = want;
        // A new generation: afterWrite schedules this Deployment from 'scale' again.
        this.update(dep.type, namespace, name, next, dep, 'kube-controller-manager', 'main', false, 'scale');
        return undefined;
      }
    }
    const outcome = this.outcomeFor(key, dep);
    if (outcome === 'none') return undefined;
    if (typeof outcome === 'object') {
      this.writeStatus(key, { observedGeneration: generation, ...outcome });
      return undefined;
    }
    const conditions = previous.conditions;
    const rs = replicaSetName(dep.obj);
    const available = (ok: boolean) =>
      ok
        ? condition(
            conditions,
            'Available',
            'True',
            'MinimumReplicasAvailable',
            'Deployment has minimum availability.',
          )
        : condition(
            conditions,
            'Available',
            'False',
            'MinimumReplicasUnavailable',
            'Deployment does not have minimum availability.',
          );
    // While rolling out (and when stuck): a new Deployment has all its new pods, none ready; one that was
    // running keeps its old pods (maxUnavailable 0) and has one new pod more (maxSurge 1), not ready.
    const old = Math.min(Number(previous.availableReplicas ?? 0), desired);
    const rolling: DeploymentStatus =
      old === 0
        ? { replicas: desired, updatedReplicas: desired, unavailableReplicas: desired }
        : {
            replicas: old + 1,
            updatedReplicas: 1,
            readyReplicas: old,
            availableReplicas: old,
            unavailableReplicas: 1,
          };
    if (step === 'scale' || step === 'progressing') {
      this.writeStatus(
        key,
        withoutZeros({
          observedGeneration: generation,
          ...rolling,
          conditions: [
            available(old >= desired),
            condition(
              conditions,
              'Progressing',
              'True',
              'ReplicaSetUpdated',
              `ReplicaSet "${rs}" is progressing.`,
            ),
          ],
        }),
      );
      return 'final';
    }
    if (outcome === 'ready') {
      this.writeStatus(
        key,
        withoutZeros({
          observedGeneration: generation,
          replicas: desired,
          updatedReplicas: desired,
          readyReplicas: desired,
          availableReplicas: desired,
          conditions: [
            available(true),
            condition(
              conditions,
              'Progressing',
              'True',
              'NewReplicaSetAvailable',
              `ReplicaSet "${rs}" has successfully progressed.`,
            ),
          ],
        }),
      );
      return undefined;
    }
    this.writeStatus(
      key,
      withoutZeros({
        observedGeneration: generation,
        ...rolling,
        conditions: [
          available(old >= desired),
          condition(
            conditions,
            'Progressing',
            'False',
            'ProgressDeadlineExceeded',
            `ReplicaSet "${rs}" has timed out progressing.`,
          ),
        ],
      }),
    );
    return undefined;
  }

  private writeStatus(key: string, status: DeploymentStatus): void {
    const dep = this.store.get(key);
    if (!dep) throw new Error(`no Deployment ${key}`);
    const next = { ...clone(dep.obj), status };
    const meta = metadataOf(dep.obj);
    this.update(
      dep.type,
      meta.namespace as string,
      String(meta.name),
      next,
      dep,
      'kube-controller-manager',
      'status',
      false,
      'status',
    );
  }

  setDeploymentStatus(namespace: string, name: string, status: DeploymentStatus): void {
    const key = storeKey(this.type('apps/v1', 'Deployment')!, namespace, name);
    if (!this.store.has(key)) throw new Error(`no Deployment ${namespace}/${name}`);
    this.pending.delete(key);
    this.writeStatus(key, status);
  }

  setDeploymentOutcome(namespace: string, name: string, outcome: RolloutOutcome | undefined): void {
    const key = storeKey(this.type('apps/v1', 'Deployment')!, namespace, name);
    if (outcome === undefined) this.outcomes.delete(key);
    else this.outcomes.set(key, outcome);
    if (this.store.has(key)) this.schedule(key, 'final');
  }

  // ----- HTTP

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query = Object.fromEntries(url.searchParams);
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      contentType: req.headers['content-type'],
      userAgent: req.headers['user-agent'],
      status: 0,
    };
    this.requests.push(recorded);
    const reply = (status: number, body: unknown) => {
      recorded.status = status;
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
      res.end(text);
    };
    try {
      const body = await readBody(req);
      const injected = this.options.intercept?.(recorded);
      if (injected) {
        reply(injected.status, injected.body);
        return;
      }
      const answer = this.route(req.method ?? 'GET', url, query, req.headers, body, res, recorded);
      if (answer) reply(answer.code, answer.body);
    } catch (err) {
      if (err instanceof ApiError) reply(err.code, err.status());
      else {
        const e = err instanceof Error ? err : new Error(String(err));
        this.errors.push(e);
        reply(500, new ApiError(500, 'InternalError', `the fake API server failed: ${e.message}`).status());
      }
    }
  }

  /** An answer, or undefined when the response is already being written (a watch). */
  private route(
    method: string,
    url: URL,
    query: Record<string, string>,
    headers: IncomingMessage['headers'],
    body: string,
    res: ServerResponse,
    recorded: RecordedRequest,
  ): { code: number; body: unknown } | undefined {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (method === 'GET') {
      const discovery = this.discovery(path);
      if (discovery !== undefined) return { code: 200, body: discovery };
    }
    let gv: { group: string; version: string } | undefined;
    let rest: string[];
    if (parts[0] === 'api' && parts.length >= 2) {
      gv = { group: '', version: parts[1]! };
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 3) {
      gv = { group: parts[1]!, version: parts[2]! };
      rest = parts.slice(3);
    } else throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const types = RESOURCES.filter((t) => t.group === gv.group && t.version === gv.version);
    if (types.length === 0 || rest.length === 0)
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');

    let namespace: string | undefined;
    if (
      rest[0] === 'namespaces' &&
      rest.length >= 3 &&
      types.some((t) => t.namespaced && t.plural === rest[2])
    ) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource, ...extra] = rest;
    const t = types.find((x) => x.plural === plural);
    if (!t || extra.length > 0 || (namespace !== undefined && !t.namespaced))
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (subresource !== undefined && !(subresource === 'status' && t.status))
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (t.namespaced && name !== undefined && namespace === undefined)
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');

    const dryRun = query.dryRun !== undefined;
    if (dryRun && query.dryRun !== 'All')
      throw badRequest(`dryRun: Unsupported value: "${query.dryRun}": supported values: "All"`);
    const manager = query.fieldManager ?? defaultManager(headers['user-agent']);

    if (name === undefined) {
      if (method === 'GET') {
        const sel: Selection = {
          labels: query.labelSelector ? parseLabelSelector(query.labelSelector) : [],
          fields: query.fieldSelector ? parseFieldSelector(query.fieldSelector) : [],
          ...(namespace !== undefined ? { namespace } : {}),
        };
        if (query.watch === 'true' || query.watch === '1') {
          this.watch(t, sel, query, res, recorded);
          return undefined;
        }
        return { code: 200, body: this.list(t, sel, query, headers.accept) };
      }
      if (method === 'POST') {
        const obj = this.checkIdentity(t, parseBody(body, headers['content-type']), namespace, undefined);
        const objName = metadataOf(obj).name;
        if (typeof objName !== 'string' || objName === '')
          throw new ApiError(
            422,
            'Invalid',
            `${qualifiedKind(t)} "" is invalid: metadata.name: Required value`,
            {
              causes: [{ reason: 'FieldValueRequired', message: 'Required value', field: 'metadata.name' }],
            },
          );
        this.requireNamespace(t, namespace);
        if (this.find(t, namespace, objName))
          throw new ApiError(409, 'AlreadyExists', `${qualified(t)} "${objName}" already exists`, {
            name: objName,
            ...(t.group ? { group: t.group } : {}),
            kind: t.plural,
          });
        const out = this.update(t, namespace, objName, obj, undefined, manager, 'main', dryRun);
        return { code: out.code, body: out.obj };
      }
      if (method === 'DELETE') {
        const sel: Selection = {
          labels: query.labelSelector ? parseLabelSelector(query.labelSelector) : [],
          fields: query.fieldSelector ? parseFieldSelector(query.fieldSelector) : [],
          ...(namespace !== undefined ? { namespace } : {}),
        };
        const doomed = [...this.store.values()].filter((s) => s.type === t && selects(sel, t, s.obj));
        const items = doomed.map((s) => rendered(s));
        if (!dryRun)
          for (const s of doomed)
            this.remove(t, metadataOf(s.obj).namespace as string | undefined, String(metadataOf(s.obj).name));
        return { code: 200, body: listOf(t, items, String(this.rv)) };
      }
      throw new ApiError(
        405,
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      );
    }

    const existing = this.find(t, namespace, name);
    const scope: Scope = subresource === 'status' ? 'status' : 'main';
    switch (method) {
      case 'GET':
        if (!existing) throw notFound(t, name);
        return { code: 200, body: rendered(existing) };
      case 'DELETE': {
        if (!existing) throw notFound(t, name);
        if (subresource) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method');
        if (!dryRun) this.remove(t, namespace, name);
        return {
          code: 200,
          body: {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Success',
            details: {
              name,
              ...(t.group ? { group: t.group } : {}),
              kind: t.plural,
              uid: metadataOf(existing.obj).uid,
            },
          },
        };
      }
      case 'PUT': {
        if (!existing) throw notFound(t, name);
        const obj = this.checkIdentity(t, parseBody(body, headers['content-type']), namespace, name);
        const rv = metadataOf(obj).resourceVersion;
        if (rv !== undefined && rv !== metadataOf(existing.obj).resourceVersion) throw this.modified(t, name);
        const out = this.update(t, namespace, name, obj, existing, manager, scope, dryRun, subresource);
        return { code: 200, body: out.obj };
      }
      case 'PATCH': {
        const type = (headers['content-type'] ?? '').split(';')[0]!.trim();
        if (type === 'application/apply-patch+yaml') {
          if (subresource)
            throw new ApiError(
              415,
              'UnsupportedMediaType',
              'apply to a subresource is not served by the fake',
            );
          if (!query.fieldManager)
            throw new ApiError(
              422,
              'Invalid',
              'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
              {
                causes: [
                  {
                    reason: 'FieldValueRequired',
                    message: 'Required value: is required for apply patch',
                    field: 'fieldManager',
                  },
                ],
              },
            );
          if (query.force !== undefined && !['true', 'false'].includes(query.force))
            throw badRequest(`force: invalid value ${JSON.stringify(query.force)}`);
          const out = this.apply(
            t,
            namespace,
            name,
            parseBody(body, type),
            query.fieldManager,
            query.force === 'true',
            dryRun,
          );
          return { code: out.code, body: out.obj };
        }
        if (type === 'application/merge-patch+json') {
          if (query.force !== undefined)
            throw badRequest('force: Forbidden: may not be specified for non-apply patch');
          if (!existing) throw notFound(t, name);
          const patch = parseBody(body, type);
          const next = mergePatch(rendered(existing), patch) as Fields;
          if (isMap(next.metadata)) delete next.metadata.managedFields;
          const out = this.update(t, namespace, name, next, existing, manager, scope, dryRun, subresource);
          return { code: 200, body: out.obj };
        }
        throw new ApiError(
          415,
          'UnsupportedMediaType',
          `the fake API server takes application/apply-patch+yaml and application/merge-patch+json, not ${JSON.stringify(type)}`,
        );
      }
      default:
        throw new ApiError(
          405,
          'MethodNotAllowed',
          'the server does not allow this method on the requested resource',
        );
    }
  }

  private list(
    t: ResourceType,
    sel: Selection,
    query: Record<string, string>,
    accept: string | undefined,
  ): Fields {
    const all = [...this.store.values()].filter((s) => s.type === t && selects(sel, t, s.obj));
    const start = query.continue ? Number(Buffer.from(query.continue, 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0)
      throw new ApiError(410, 'Expired', 'the continue token is not valid');
    const limit = query.limit ? Number(query.limit) : 0;
    const page = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const more = limit > 0 && start + limit < all.length;
    const items = page.map((s) => {
      const o = rendered(s);
      if (t.crd) return o;
      const { apiVersion: _a, kind: _k, ...rest } = o;
      return rest;
    });
    if (accept?.includes('as=Table')) return table(t, page.map(rendered), String(this.rv));
    const list = listOf(t, items, String(this.rv));
    if (more) (list.metadata as Fields).continue = Buffer.from(String(start + limit)).toString('base64url');
    return list;
  }

  private watch(
    t: ResourceType,
    sel: Selection,
    query: Record<string, string>,
    res: ServerResponse,
    recorded: RecordedRequest,
  ): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders(); // a client waits for the headers before it reads events
    recorded.status = 200;
    const w: Watcher = { type: t, sel, res };
    const from = query.resourceVersion;
    if (from === undefined || from === '' || from === '0') {
      for (const s of this.store.values())
        if (s.type === t && selects(sel, t, s.obj))
          res.write(`${JSON.stringify({ type: 'ADDED', object: rendered(s) })}\n`);
    } else {
      const after = Number(from);
      if (!Number.isInteger(after))
        throw badRequest(`resourceVersion: invalid value ${JSON.stringify(from)}`);
      for (const e of this.events) if (e.rv > after) this.send(w, e);
    }
    this.watchers.add(w);
    const end = () => {
      this.watchers.delete(w);
      if (!res.writableEnded) res.end();
    };
    res.on('close', end);
    const timeout = Number(query.timeoutSeconds);
    if (timeout > 0) setTimeout(end, timeout * 1000).unref();
  }

  closeWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  private discovery(path: string): unknown {
    if (path === '/version')
      return {
        major: '1',
        minor: '32',
        gitVersion: 'v1.32.0-ferry-fake',
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2025-01-01T00:00:00Z',
        goVersion: 'go1.23.0',
        compiler: 'gc',
        platform: 'linux/amd64',
      };
    if (path === '/healthz' || path === '/readyz' || path === '/livez') return 'ok';
    if (path === '/api')
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
      };
    const groups = groupVersions().filter((gv) => gv.group !== '');
    const group = (gv: (typeof groups)[number]) => ({
      name: gv.group,
      versions: [{ groupVersion: `${gv.group}/${gv.version}`, version: gv.version }],
      preferredVersion: { groupVersion: `${gv.group}/${gv.version}`, version: gv.version },
    });
    if (path === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(group) };
    for (const gv of groupVersions()) {
      const base = gv.group ? `/apis/${gv.group}/${gv.version}` : `/api/${gv.version}`;
      if (gv.group && path === `/apis/${gv.group}`)
        return { kind: 'APIGroup', apiVersion: 'v1', ...group(gv) };
      if (path === base) return resourceList(gv.group, gv.version, gv.types);
      const openapi = `/openapi/v3${base}`;
      if (path === openapi) return openApiV3(gv.group, gv.version, gv.types);
    }
    if (path === '/openapi/v3')
      return {
        paths: Object.fromEntries(
          groupVersions().map((gv) => {
            const base = gv.group ? `apis/${gv.group}/${gv.version}` : `api/${gv.version}`;
            return [base, { serverRelativeURL: `/openapi/v3/${base}?hash=${OPENAPI_HASH}` }];
          }),
        ),
      };
    return undefined;
  }
}

const OPENAPI_HASH = 'F0E1D2C3B4A5968778695A4B3C2D1E0F';

function resourceList(group: string, version: string, types: ResourceType[]): Fields {
  const resources: Fields[] = [];
  for (const t of types) {
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
      ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
      ...(t.crd ? { categories: ['keda'] } : {}),
    });
    if (t.status)
      resources.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['get', 'patch', 'update'],
      });
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}

/** Just what kubectl reads from OpenAPI v3 to learn that the server validates fields itself: each resource's
 * PATCH, its group-version-kind and its `fieldValidation` parameter (no schemas). */
function openApiV3(group: string, version: string, types: ResourceType[]): Fields {
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const param = (name: string) => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });
  const paths: Fields = {};
  for (const t of types) {
    const path = t.namespaced
      ? `${base}/namespaces/{namespace}/${t.plural}/{name}`
      : `${base}/${t.plural}/{name}`;
    paths[path] = {
      patch: {
        description: `partially update the specified ${t.kind}`,
        operationId: `patch${t.kind}`,
        parameters: [param('dryRun'), param('fieldManager'), param('fieldValidation'), param('force')],
        responses: { '200': { description: 'OK' }, '201': { description: 'Created' } },
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group, version, kind: t.kind },
      },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (Ferry fake API server)', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}

function listOf(t: ResourceType, items: unknown[], rv: string): Fields {
  return { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata: { resourceVersion: rv }, items };
}

/** A meta.k8s.io Table (what `kubectl get` asks for to print): NAME and AGE, READY for Deployments. */
function table(t: ResourceType, objects: Fields[], rv: string): Fields {
  const columns = [
    { name: 'Name', type: 'string', format: 'name', description: 'Name', priority: 0 },
    ...(t.kind === 'Deployment'
      ? [
          { name: 'Ready', type: 'string', format: '', description: 'ready/desired', priority: 0 },
          { name: 'Up-to-date', type: 'integer', format: '', description: 'updated', priority: 0 },
          { name: 'Available', type: 'integer', format: '', description: 'available', priority: 0 },
        ]
      : []),
    { name: 'Age', type: 'string', format: '', description: 'creation', priority: 0 },
  ];
  const rows = objects.map((o) => {
    const meta = metadataOf(o);
    const status = (o.status ?? {}) as DeploymentStatus;
    const replicas = Number(((o.spec ?? {}) as Fields).replicas ?? 0);
    const age = `${Math.max(0, Math.round((Date.now() - Date.parse(String(meta.creationTimestamp))) / 1000))}s`;
    return {
      cells: [
        meta.name,
        ...(t.kind === 'Deployment'
          ? [
              `${status.readyReplicas ?? 0}/${replicas}`,
              status.updatedReplicas ?? 0,
              status.availableReplicas ?? 0,
            ]
          : []),
        age,
      ],
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: meta },
    };
  });
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: rv },
    columnDefinitions: columns,
    rows,
  };
}

function conflictError(conflicts: { entry: ManagedEntry; member: Member }[]): ApiError {
  const who = (e: ManagedEntry) =>
    `conflict with "${e.manager}"${e.subresource ? ` with subresource "${e.subresource}"` : ''} using ${e.apiVersion}`;
  const causes = conflicts.map((c) => ({
    type: 'FieldManagerConflict',
    message: who(c.entry),
    field: displayPath(c.member.segs),
  }));
  const lines = causes.map((c) => `${c.message}: ${c.field}`);
  const message =
    conflicts.length === 1
      ? `Apply failed with 1 conflict: ${lines[0]}`
      : `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  return new ApiError(409, 'Conflict', message, { causes });
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return clone(patch);
  const out: Fields = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The field manager of a write that names none: the user agent's program name, as the real server does. */
function defaultManager(userAgent: string | undefined): string {
  return (userAgent ?? 'unknown').split('/')[0]!.slice(0, 128) || 'unknown';
}

function parseBody(body: string, contentType: string | undefined): unknown {
  if (body.trim() === '') throw badRequest('the request has no body');
  try {
    if ((contentType ?? '').includes('yaml')) return parseYaml(body);
    return JSON.parse(body);
  } catch (err) {
    throw badRequest(
      `the body is not ${(contentType ?? '').includes('yaml') ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
    );
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts the fake API server on a free port of 127.0.0.1 (module comment). */
export async function startFakeApiServer(options: FakeApiOptions = {}): Promise<FakeApi> {
  const api = new FakeApiServer(options);
  const server = createServer((req, res) => {
    void api.handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests: api.requests,
    errors: api.errors,
    kubeconfig: (o = {}) =>
      stringifyYaml({
        apiVersion: 'v1',
        kind: 'Config',
        // Plain HTTP: @kubernetes/client-node refuses it unless the cluster skips TLS verification.
        clusters: [{ name: 'ferry-fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        contexts: [
          {
            name: o.context ?? 'ferry-fake',
            context: {
              cluster: 'ferry-fake',
              user: 'ferry-fake',
              namespace: o.namespace ?? options.namespace ?? 'default',
            },
          },
        ],
        'current-context': o.context ?? 'ferry-fake',
        users: [{ name: 'ferry-fake', user: {} }],
        preferences: {},
      }),
    objects: (filter) => api.objects(filter),
    get: (kind, namespace, name) => api.getObject(kind, namespace, name),
    setDeploymentStatus: (ns, name, status) => api.setDeploymentStatus(ns, name, status),
    setDeploymentOutcome: (ns, name, outcome) => api.setDeploymentOutcome(ns, name, outcome),
    idle: () => api.idle(),
    close: async () => {
      api.closeWatches();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await api.idle();
    },
  };
}
