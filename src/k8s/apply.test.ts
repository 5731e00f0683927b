import assert from 'node:assert/strict';
import { test } from 'node:test';
import { objectRef, refusal, toPrune } from './apply.ts';
import type { KubernetesObject } from './types.ts';

const obj = (kind: string, name: string, namespace?: string): KubernetesObject => ({
  apiVersion: 'v1',
  kind,
  metadata: { name, ...(namespace === undefined ? {} : { namespace }) },
});

test('prune: what Ferry listed and no longer renders, never a Namespace', () => {
  const rendered = [obj('Deployment', 'iris-r3', 'ml'), obj('Service', 'iris-r3', 'ml')];
  const listed = [
    obj('Deployment', 'iris-r3', 'ml'),
    obj('Deployment', 'iris-r2', 'ml'),
    obj('Service', 'iris-r2', 'ml'),
    obj('Service', 'iris-r3', 'ml'),
    obj('Namespace', 'ml'),
  ];
  assert.deepEqual(toPrune(listed, rendered).map(objectRef), ['Deployment/ml/iris-r2', 'Service/ml/iris-r2']);
  assert.deepEqual(toPrune([obj('Deployment', 'iris-r3', 'other')], rendered).map(objectRef), [
    'Deployment/other/iris-r3',
  ]);
});

test("the cluster's refusal: its status and the Status message, from a body as JSON text or object", () => {
  const status = {
    kind: 'Status',
    status: 'Failure',
    message: 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas',
    reason: 'Conflict',
    code: 409,
  };
  assert.deepEqual(refusal({ code: 409, body: JSON.stringify(status) }), {
    status: 409,
    message: status.message,
  });
  assert.deepEqual(refusal({ code: 422, body: status }), { status: 422, message: status.message });
  assert.deepEqual(refusal({ code: 500, body: 'upstream exploded' }), {
    status: 500,
    message: 'upstream exploded',
  });
  assert.deepEqual(refusal(new Error('connect ECONNREFUSED 127.0.0.1:6443')), {
    status: null,
    message: 'connect ECONNREFUSED 127.0.0.1:6443',
  });
});
