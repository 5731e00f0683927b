/**
 * The official Kubernetes OpenAPI schemas, through kubernetes-models 4.5.1, and the unknown fields they let
 * through. validate.ts's module comment says why unknown fields are found this way; in short: kubernetes-models
 * ships each schema as AJV "standalone" code (a compiled function per type, no JSON schema to read), generated
 * without `additionalProperties: false`, so `replcas` passes. But that code reads every property its schema
 * declares (`if (data.replicas !== undefined) ...`, for each property, present or not), and walks a map
 * (`additionalProperties`, as labels) with `for...in`. So the object is handed to the official validator through
 * a Proxy that records, per object in it, which keys the validator read and whether it walked the keys: a key
 * the object has that the validator never read, in an object whose keys it did not walk, is a field the schema
 * does not declare. An object the validator read nothing from at all is free-form in the schema (or was never
 * reached, its parent being wrong already) and is not judged.
 *
 * Only the models of the kinds Ferry renders are loaded (one module per kind and the types it uses), not the
 * whole package.
 */

import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { child, closest, type Fields, problem, record, shown, text } from './check-common.ts';
import type { KubernetesObject } from './types.ts';

/** A kubernetes-models class: its `validate()` runs the official schema's compiled validator on `this`. */
interface Model {
  apiVersion: string;
  kind: string;
  prototype: { validate(this: unknown): void };
}

/** The kinds Ferry renders that have an official schema, by `apiVersion kind`. */
const MODELS: ReadonlyMap<string, Model> = new Map(
  [
    Namespace,
    ServiceAccount,
    ConfigMap,
    Secret,
    Service,
    Deployment,
    NetworkPolicy,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
  ].map((m): [string, Model] => [`${m.apiVersion} ${m.kind}`, m as unknown as Model]),
);

/** KEDA's ScaledObject: no official schema; check-keda.ts checks what Ferry knows of it. */
export const SCALED_OBJECT = { apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject' } as const;

/** The kinds objectProblems knows, as `apiVersion kind`, for messages and the docs. */
export const KNOWN_KINDS: readonly string[] = [
  ...MODELS.keys(),
  `${SCALED_OBJECT.apiVersion} ${SCALED_OBJECT.kind}`,
];

/** A field problem before it is tied to an object. */
export interface FieldProblem {
  path: string;
  message: string;
}

interface AjvError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

interface Observed {
  value: Fields;
  reads: Set<string>;
  walked: boolean;
}

/** Wraps a value so that every object in it records what the validator reads (see the module comment). */
function observe(value: unknown, path: string, seen: Map<string, Observed>): unknown {
  if (value === null || typeof value !== 'object') return value;
  const isArray = Array.isArray(value);
  let o = seen.get(path);
  if (!o && !isArray) {
    o = { value: value as Fields, reads: new Set(), walked: false };
    seen.set(path, o);
  }
  const wrapped = new Map<string, unknown>();
  // The Proxy stands over a shallow copy: a Proxy's get must return a frozen object's own values unchanged,
  // and a rendered object may well be frozen.
  return new Proxy(isArray ? [...value] : { ...value }, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== 'string') return v;
      if (o) o.reads.add(key);
      if (!Object.hasOwn(target, key)) return v;
      if (!wrapped.has(key))
        wrapped.set(key, observe(v, isArray ? `${path}[${key}]` : child(path, key), seen));
      return wrapped.get(key);
    },
    ownKeys(target) {
      if (o) o.walked = true;
      return Reflect.ownKeys(target);
    },
  });
}

/** A JSON pointer from AJV (`/spec/template/spec/containers/0/name`) as a field path, using the data to tell an
 * array index from a map key that looks like a number. */
function pointerToPath(pointer: string, data: unknown): string {
  let path = '';
  let at: unknown = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(at)) {
      path = child(path, Number(key));
      at = at[Number(key)];
    } else {
      path = child(path, key);
      at = record(at)?.[key];
    }
  }
  return path;
}

function valueAt(pointer: string, data: unknown): unknown {
  let at: unknown = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    at = Array.isArray(at) ? at[Number(key)] : record(at)?.[key];
  }
  return at;
}

const FORMATS: Record<string, string> = {
  int32: 'a 32-bit integer',
  int64: 'a 64-bit integer',
  double: 'a number',
  byte: 'base64',
  'date-time': 'an RFC 3339 date-time',
  quantity: 'a quantity (as 500m, 2, 1.5Gi)',
};

const TYPES: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
};

function formatMessage(format: string): string {
  return `must be ${FORMATS[format] ?? `in format ${format}`}`;
}

/** AJV's errors as field problems, one per field and cause: a Quantity or IntOrString (oneOf a string or a
 * number) is reported once, not once per branch; a wrong type hides the format the right type would have. */
function schemaErrorProblems(errors: readonly AjvError[], data: unknown): FieldProblem[] {
  const oneOfAt = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const typeAt = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const out: FieldProblem[] = [];
  for (const e of errors) {
    const path = pointerToPath(e.instancePath, data);
    const got = `got ${shown(valueAt(e.instancePath, data))}`;
    switch (e.keyword) {
      case 'required':
        out.push({ path: child(path, String(e.params.missingProperty)), message: 'required field missing' });
        break;
      case 'type':
        if (!oneOfAt.has(e.instancePath))
          out.push({ path, message: `must be ${TYPES[String(e.params.type)] ?? e.params.type} (${got})` });
        break;
      case 'format':
        if (!oneOfAt.has(e.instancePath) && !typeAt.has(e.instancePath))
          out.push({ path, message: `${formatMessage(String(e.params.format))} (${got})` });
        break;
      case 'oneOf': {
        // A string in the wrong format (a quantity "1x") says which format; anything else, which types.
        const format = errors.find((f) => f.keyword === 'format' && f.instancePath === e.instancePath);
        const message = format ? formatMessage(String(format.params.format)) : 'must be a string or a number';
        out.push({ path, message: `${message} (${got})` });
        break;
      }
      case 'enum':
        out.push({
          path,
          message: `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')} (${got})`,
        });
        break;
      default:
        out.push({ path, message: `${e.message ?? e.keyword} (${got})` });
    }
  }
  return out;
}

function unknownFieldProblems(seen: ReadonlyMap<string, Observed>): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const [path, o] of seen) {
    if (o.walked || o.reads.size === 0) continue;
    for (const key of Object.keys(o.value)) {
      if (o.reads.has(key)) continue;
      const suggestion = closest(key, o.reads);
      out.push({
        path: child(path, key),
        message: suggestion ? `unknown field (did you mean ${suggestion}?)` : 'unknown field',
      });
    }
  }
  return out;
}

/** Runs a model's official validator on a value: the schema's own problems, then the unknown fields. */
function validateWith(model: Model, value: unknown): FieldProblem[] {
  const seen = new Map<string, Observed>();
  let errors: AjvError[] = [];
  try {
    model.prototype.validate.call(observe(value, '', seen));
  } catch (err) {
    const list = (err as { errors?: unknown }).errors;
    if (!Array.isArray(list)) throw err;
    errors = list as AjvError[];
  }
  if (!seen.get('')?.reads.size)
    throw new Error(
      `the ${model.kind} validator of kubernetes-models read no field: its generated code has changed, and the ` +
        'unknown-field check (src/k8s/check-schema.ts) no longer works',
    );
  return [...schemaErrorProblems(errors, value), ...unknownFieldProblems(seen)];
}

function deduplicated(problems: string[]): string[] {
  return [...new Set(problems)];
}

/**
 * An object against its kind's official schema: wrong types, missing required fields, values outside an enum or
 * a format (int32, quantity), and every field the schema does not declare, at any depth. An apiVersion/kind
 * that is not one of KNOWN_KINDS is a problem; a ScaledObject gets none here (check-keda.ts).
 */
export function schemaProblems(obj: KubernetesObject): string[] {
  const apiVersion = text(obj.apiVersion);
  const kind = text(obj.kind);
  if (apiVersion === SCALED_OBJECT.apiVersion && kind === SCALED_OBJECT.kind) return [];
  const model = MODELS.get(`${apiVersion} ${kind}`);
  if (!model) {
    const sameKind = [...MODELS.values()].find((m) => m.kind === kind);
    if (sameKind)
      return [
        problem(
          obj,
          'apiVersion',
          `${shown(obj.apiVersion)} is not an apiVersion Ferry validates ${kind} in (${sameKind.apiVersion})`,
        ),
      ];
    return [
      problem(
        obj,
        'kind',
        `unknown kind ${shown(obj.kind)} in apiVersion ${shown(obj.apiVersion)} (Ferry validates ${KNOWN_KINDS.join(', ')})`,
      ),
    ];
  }
  return deduplicated(validateWith(model, obj).map((p) => problem(obj, p.path, p.message)));
}

/**
 * Part of an object checked against an official type that is not a kind of its own (a ScaledObject's metadata,
 * its HPA behavior): `shell` is a valid object of a known kind holding the value at `innerPath`; problems under
 * innerPath are reported under `path` instead.
 */
export function schemaProblemsInside(
  shell: KubernetesObject,
  innerPath: string,
  path: string,
): FieldProblem[] {
  const model = MODELS.get(`${shell.apiVersion} ${shell.kind}`);
  if (!model) throw new Error(`no model for ${shell.apiVersion} ${shell.kind}`);
  return validateWith(model, shell)
    .filter(
      (p) => p.path === innerPath || p.path.startsWith(`${innerPath}.`) || p.path.startsWith(`${innerPath}[`),
    )
    .map((p) => ({ path: path + p.path.slice(innerPath.length), message: p.message }));
}
