/**
 * KEDA's ScaledObject (keda.sh/v1alpha1), the scale-to-zero option. It is a custom resource: no official
 * Kubernetes schema covers it, and KEDA's CRD schema is not on this machine. So only the structure Ferry knows is
 * checked, written down here from KEDA's ScaledObjectSpec (apis/keda/v1alpha1/scaledobject_types.go, KEDA 2.x):
 * the fields of spec, scaleTargetRef, triggers, advanced and fallback (an unknown one is a problem, as for the
 * official kinds), their types (counts are non-negative int32), KEDA's own bounds (minReplicaCount <=
 * maxReplicaCount, idleReplicaCount < minReplicaCount), and, through the official schemas, metadata (ObjectMeta)
 * and advanced.horizontalPodAutoscalerConfig.behavior (autoscaling/v2's HorizontalPodAutoscalerBehavior). That
 * the target is a rendered Deployment without replicas is checked with the HPAs (check-refs.ts).
 */
import { child, closest, problem, record, shown } from './check-common.ts';
import { type FieldProblem, schemaProblemsInside } from './check-schema.ts';
import type { KubernetesObject } from './types.ts';

type Shape =
  | { type: 'object'; fields: Record<string, Shape>; required?: readonly string[] }
  | { type: 'array'; items: Shape; nonEmpty?: boolean }
  | { type: 'count' }
  | { type: 'string'; values?: readonly string[] }
  | { type: 'boolean' }
  | { type: 'stringMap' }
  | { type: 'hpaBehavior' };

const COUNT: Shape = { type: 'count' };
const STRING: Shape = { type: 'string' };

const SPEC: Shape = {
  type: 'object',
  required: ['scaleTargetRef', 'triggers'],
  fields: {
    scaleTargetRef: {
      type: 'object',
      required: ['name'],
      fields: { name: STRING, apiVersion: STRING, kind: STRING, envSourceContainerName: STRING },
    },
    pollingInterval: COUNT,
    initialCooldownPeriod: COUNT,
    cooldownPeriod: COUNT,
    idleReplicaCount: COUNT,
    minReplicaCount: COUNT,
    maxReplicaCount: COUNT,
    advanced: {
      type: 'object',
      fields: {
        horizontalPodAutoscalerConfig: {
          type: 'object',
          fields: { behavior: { type: 'hpaBehavior' }, name: STRING },
        },
        restoreToOriginalReplicaCount: { type: 'boolean' },
        scalingModifiers: {
          type: 'object',
          fields: {
            formula: STRING,
            target: STRING,
            activationTarget: STRING,
            metricType: { type: 'string', values: ['AverageValue', 'Value'] },
          },
        },
      },
    },
    triggers: {
      type: 'array',
      nonEmpty: true,
      items: {
        type: 'object',
        required: ['type', 'metadata'],
        fields: {
          type: STRING,
          name: STRING,
          useCachedMetrics: { type: 'boolean' },
          metadata: { type: 'stringMap' },
          authenticationRef: { type: 'object', required: ['name'], fields: { name: STRING, kind: STRING } },
          metricType: { type: 'string', values: ['AverageValue', 'Value', 'Utilization'] },
        },
      },
    },
    fallback: {
      type: 'object',
      required: ['failureThreshold', 'replicas'],
      fields: {
        failureThreshold: COUNT,
        replicas: COUNT,
        behavior: {
          type: 'string',
          values: ['static', 'currentReplicas', 'currentReplicasIfHigher', 'currentReplicasIfLower'],
        },
      },
    },
  },
};

function shapeProblems(value: unknown, shape: Shape, path: string): FieldProblem[] {
  const got = `got ${shown(value)}`;
  switch (shape.type) {
    case 'count':
      return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 2 ** 31 - 1
        ? []
        : [{ path, message: `must be a non-negative 32-bit integer (${got})` }];
    case 'string':
      if (typeof value !== 'string') return [{ path, message: `must be a string (${got})` }];
      return shape.values && !shape.values.includes(value)
        ? [
            {
              path,
              message: `must be one of ${shape.values.map((v) => JSON.stringify(v)).join(', ')} (${got})`,
            },
          ]
        : [];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [{ path, message: `must be a boolean (${got})` }];
    case 'stringMap': {
      const r = record(value);
      if (!r) return [{ path, message: `must be an object of strings (${got})` }];
      return Object.entries(r)
        .filter(([, v]) => typeof v !== 'string')
        .map(([k, v]) => ({ path: child(path, k), message: `must be a string (got ${shown(v)})` }));
    }
    case 'array': {
      if (!Array.isArray(value)) return [{ path, message: `must be an array (${got})` }];
      if (shape.nonEmpty && value.length === 0) return [{ path, message: 'must not be empty' }];
      return value.flatMap((item, i) => shapeProblems(item, shape.items, child(path, i)));
    }
    case 'hpaBehavior':
      return schemaProblemsInside(
        {
          apiVersion: 'autoscaling/v2',
          kind: 'HorizontalPodAutoscaler',
          metadata: { name: 'shell' },
          spec: { scaleTargetRef: { kind: 'Deployment', name: 'shell' }, maxReplicas: 1, behavior: value },
        },
        'spec.behavior',
        path,
      );
    case 'object': {
      const r = record(value);
      if (!r) return [{ path, message: `must be an object (${got})` }];
      const out: FieldProblem[] = [];
      for (const field of shape.required ?? [])
        if (r[field] === undefined) out.push({ path: child(path, field), message: 'required field missing' });
      for (const [key, v] of Object.entries(r)) {
        const fieldShape = shape.fields[key];
        if (!fieldShape) {
          const suggestion = closest(key, Object.keys(shape.fields));
          out.push({
            path: child(path, key),
            message: suggestion ? `unknown field (did you mean ${suggestion}?)` : 'unknown field',
          });
        } else if (v !== undefined && v !== null) out.push(...shapeProblems(v, fieldShape, child(path, key)));
      }
      return out;
    }
  }
}

/** KEDA's replica bounds, as its CheckReplicaCountBoundsAreValid computes them (a minReplicaCount of 0 counts
 * as 1 there, and an unset one as 0; maxReplicaCount defaults to 100). */
function boundsProblems(spec: Record<string, unknown>): FieldProblem[] {
  const { minReplicaCount: min, maxReplicaCount: max, idleReplicaCount: idle } = spec;
  if (![min, max, idle].every((v) => v === undefined || Number.isInteger(v))) return [];
  const minimum = min === undefined ? 0 : Math.max(min as number, 1);
  const maximum = max === undefined ? 100 : (max as number);
  const out: FieldProblem[] = [];
  if (minimum > maximum)
    out.push({
      path: 'spec.minReplicaCount',
      message: `${minimum} is more than maxReplicaCount (${maximum})`,
    });
  if (idle !== undefined && (idle as number) >= minimum)
    out.push({
      path: 'spec.idleReplicaCount',
      message: `must be less than minReplicaCount (${idle} is not less than ${minimum})`,
    });
  return out;
}

/** A ScaledObject's structure (see the module comment); nothing for other kinds. */
export function scaledObjectProblems(obj: KubernetesObject): string[] {
  if (obj.kind !== 'ScaledObject') return [];
  const metadata = schemaProblemsInside(
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: obj.metadata },
    'metadata',
    'metadata',
  );
  const top: FieldProblem[] = [];
  for (const key of Object.keys(obj))
    if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(key))
      top.push({ path: key, message: 'unknown field' });
  const spec = record(obj.spec);
  const body =
    obj.spec === undefined
      ? [{ path: 'spec', message: 'required field missing' }]
      : [...shapeProblems(obj.spec, SPEC, 'spec'), ...(spec ? boundsProblems(spec) : [])];
  return [...metadata, ...top, ...body].map((p) => problem(obj, p.path, p.message));
}
