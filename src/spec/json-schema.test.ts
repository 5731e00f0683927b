import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderJsonSchema, SCHEMA_PATH } from '../../tools/gen-json-schema.ts';

describe('schema/ferry.schema.json', () => {
  it('is up to date with the zod schema', () => {
    let committed = '';
    try {
      committed = readFileSync(SCHEMA_PATH, 'utf8');
    } catch {}
    assert.ok(
      committed === renderJsonSchema(),
      'schema/ferry.schema.json is stale: run "npm run schema" and commit it',
    );
  });

  it('describes the fields and shows defaults in the written form', () => {
    const schema = JSON.parse(renderJsonSchema());
    const serving = schema.properties.serving.properties;
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(schema.required, ['apiVersion', 'kind', 'model']);
    assert.equal(serving.timeout.default, '30s');
    assert.equal(serving.limits.properties.maxBodySize.default, '64Mi');
    assert.equal(serving.threads.default, 'auto');
    assert.equal(schema.properties.model.properties.version.default, '1');
    assert.match(schema.properties.model.properties.name.description, /DNS label/);
    assert.ok(schema.properties.model.properties.name.pattern);
  });
});

describe('schema/ferry.schema.json agrees with the loader', async () => {
  // ajv comes with fastify; it is the validator editors' YAML plugins resemble.
  const { Ajv } = await import('ajv');
  const { parse } = await import('yaml');
  const { renderInitialSpec } = await import('../../src/spec/init.ts');
  const validate = new Ajv({ strict: false }).compile(JSON.parse(renderJsonSchema()));

  const documents: [string, string, boolean][] = [
    ['the output of ferry init', renderInitialSpec({ name: 'iris', file: 'model.onnx' }), true],
    [
      'a full document',
      `apiVersion: ferry.dev/v1alpha1
kind: Model
model: { name: iris, version: 2, format: onnx, file: m.onnx, inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }] }
serving: { batching: { maxQueueDelay: 500us, preferredBatchSizes: [8] }, timeout: 1.5s, threads: auto, limits: { maxBodySize: 64Mi } }
resources: { cpu: 500m, memory: 1Gi, gpu: 0 }
build: { base: null, dependencies: { sharp: ^0.33.0 } }
examples: [{ name: a, requestFile: a.json, tolerance: 1e-4 }]
env: { LOG_LEVEL: info }
secrets: [HF_TOKEN]
`,
      true,
    ],
    [
      'an unknown key',
      'apiVersion: ferry.dev/v1alpha1\nkind: Model\nmodel: { name: a, format: onnx, file: a.onnx, fiel: x }\n',
      false,
    ],
    [
      'a scaling block',
      'apiVersion: ferry.dev/v1alpha1\nkind: Model\nmodel: { name: a, format: onnx, file: a.onnx }\nscaling: { minReplicas: 0, maxReplicas: 4, metric: rps, target: auto, stableWindow: 30s, panicThreshold: 150%, initialScale: 0 }\n',
      true,
    ],
    [
      'an unknown scaling key',
      'apiVersion: ferry.dev/v1alpha1\nkind: Model\nmodel: { name: a, format: onnx, file: a.onnx }\nscaling: { min: 0 }\n',
      false,
    ],
    [
      'a bad datatype',
      'apiVersion: ferry.dev/v1alpha1\nkind: Model\nmodel: { name: a, format: onnx, file: a.onnx, inputs: [{ name: x, datatype: F32, shape: [] }] }\n',
      false,
    ],
  ];
  for (const [what, text, ok] of documents) {
    it(`${ok ? 'accepts' : 'rejects'} ${what}`, () => {
      assert.equal(validate(parse(text)), ok, JSON.stringify(validate.errors));
    });
  }
});

describe('docs/spec.md', () => {
  it('documents every field of the schema', () => {
    const docs = readFileSync(new URL('../../docs/spec.md', import.meta.url), 'utf8');
    const missing: string[] = [];
    type Json = { properties?: Record<string, Json>; items?: Json; anyOf?: Json[] };
    const walk = (node: Json, path: string) => {
      for (const option of node.anyOf ?? []) walk(option, path);
      if (node.items !== undefined) walk(node.items, `${path}[]`);
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        const full = path === '' ? key : `${path}.${key}`;
        // Tensor fields are documented once, in the tensor table; request/response bodies are OIP's.
        const shown = /^model\.(inputs|outputs)\[\]\./.test(full) ? key : full;
        if (/^examples\[\]\.(request|response)\./.test(full)) continue;
        if (!new RegExp(`\\|\\s*\`${shown.replace(/[.[\]]/g, '\\$&')}\`\\s*\\|`).test(docs))
          missing.push(full);
        walk(child, full);
      }
    };
    walk(JSON.parse(renderJsonSchema()), '');
    assert.deepEqual(missing, [], 'add these fields to docs/spec.md');
  });
});
