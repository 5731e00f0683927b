import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { DEFAULTS } from './defaults.ts';
import { formatSpecProblems, parseSpec } from './load.ts';
import type { ModelSpec, SpecProblem } from './types.ts';

const FULL = `apiVersion: ferry.dev/v1alpha1
kind: Model
model:
  name: iris
  version: "1"
  format: onnx
  file: model.onnx
  files: [labels.txt]
  inputs:
    - { name: input, datatype: FP32, shape: [-1, 4] }
  outputs:
    - { name: label, datatype: INT64, shape: [-1] }
serving:
  batching:
    maxBatchSize: 32
    maxQueueDelay: 500us
    preferredBatchSizes: [16, 8, 16]
    maxQueueSize: 256
  concurrency: 2
  timeout: 1m30s
  threads: 1
  limits:
    maxBodySize: 8Mi
resources:
  cpu: 1500m
  memory: 1Gi
  gpu: 1
network:
  egress: true
kubernetes:
  startupTimeout: 10m
  nodeSelector: { nvidia.com/gpu.present: "true" }
  tolerations:
    - { key: nvidia.com/gpu, operator: Exists, effect: NoSchedule }
scaling:
  minReplicas: 0
  maxReplicas: 4
  metric: rps
  target: 20
  targetUtilization: 0.8
  stableWindow: 30s
  panicWindow: 2.5s
  panicThreshold: 150%
  maxScaleUpRate: 10
  maxScaleDownRate: 4
  scaleDownDelay: 1m
  scaleToZeroGrace: 10s
  initialScale: 0
build:
  base: node:20-slim
  dependencies: { sharp: ^0.33.0 }
examples:
  - name: setosa
    request: { inputs: [ { name: input, datatype: FP32, shape: [1,4], data: [5.1,3.5,1.4,0.2] } ] }
    response: { outputs: [ { name: label, datatype: INT64, shape: [1], data: [0] } ] }
    tolerance: 1e-4
  - name: from-file
    requestFile: examples/setosa.json
env: { LOG_LEVEL: info }
secrets: [HF_TOKEN]
`;

const MINIMAL = `apiVersion: ferry.dev/v1alpha1
kind: Model
model: { name: iris, format: onnx, file: model.onnx }
`;

function parse(text: string) {
  return parseSpec(text, 'ferry.yaml', '/models/iris');
}

function valid(text: string): ModelSpec {
  const result = parse(text);
  assert.deepEqual(result.problems, [], formatSpecProblems(result.problems));
  assert.ok(result.spec);
  return result.spec;
}

function problemAt(problems: SpecProblem[], path: string): SpecProblem {
  const found = problems.find((p) => p.path === path);
  assert.ok(found, `no problem at ${path}; got:\n${formatSpecProblems(problems)}`);
  return found;
}

describe('parseSpec: valid documents', () => {
  it('completes a full document, converting units', () => {
    const result = parse(FULL);
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(result.exampleFiles, [{ example: 1, field: 'request', file: 'examples/setosa.json' }]);
    assert.deepEqual(result.spec, {
      apiVersion: 'ferry.dev/v1alpha1',
      kind: 'Model',
      model: {
        name: 'iris',
        version: '1',
        format: 'onnx',
        file: 'model.onnx',
        files: ['labels.txt'],
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }],
      },
      serving: {
        batching: { maxBatchSize: 32, maxQueueDelayMs: 0.5, preferredBatchSizes: [8, 16], maxQueueSize: 256 },
        concurrency: 2,
        timeoutMs: 90_000,
        threads: 1,
        limits: { maxBodyBytes: 8 * 1024 * 1024 },
      },
      resources: { cpu: 1.5, memoryBytes: 1024 ** 3, gpu: 1 },
      network: { egress: true },
      kubernetes: {
        startupTimeoutMs: 600_000,
        nodeSelector: { 'nvidia.com/gpu.present': 'true' },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      },
      build: { base: 'node:20-slim', dependencies: { sharp: '^0.33.0' } },
      examples: [
        {
          name: 'setosa',
          request: {
            inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
          },
          response: { outputs: [{ name: 'label', datatype: 'INT64', shape: [1], data: [0] }] },
          tolerance: 1e-4,
        },
        { name: 'from-file', request: null, tolerance: 1e-5 },
      ],
      env: { LOG_LEVEL: 'info' },
      secrets: ['HF_TOKEN'],
      scaling: {
        minReplicas: 0,
        maxReplicas: 4,
        metric: 'rps',
        target: 20,
        targetUtilization: 0.8,
        stableWindowMs: 30_000,
        panicWindowMs: 2_500,
        panicThreshold: 1.5,
        maxScaleUpRate: 10,
        maxScaleDownRate: 4,
        scaleDownDelayMs: 60_000,
        scaleToZeroGraceMs: 10_000,
        initialScale: 0,
        maxHeld: 1000,
        maxHeldWaitMs: 30_000,
      },
    } satisfies ModelSpec);
  });

  it('fills every default into a minimal document', () => {
    assert.deepEqual(valid(MINIMAL), {
      apiVersion: 'ferry.dev/v1alpha1',
      kind: 'Model',
      model: {
        name: 'iris',
        version: '1',
        format: 'onnx',
        file: 'model.onnx',
        files: [],
        inputs: null,
        outputs: null,
      },
      serving: {
        batching: {
          maxBatchSize: 32,
          maxQueueDelayMs: 0,
          preferredBatchSizes: [],
          maxQueueSize: 1024,
          auto: true,
        },
        concurrency: 1,
        timeoutMs: 30_000,
        threads: null,
        limits: { maxBodyBytes: 64 * 1024 * 1024 },
      },
      resources: { cpu: null, memoryBytes: null, gpu: 0 },
      network: { egress: false },
      kubernetes: { startupTimeoutMs: 300_000, nodeSelector: {}, tolerations: [] },
      build: { base: null, dependencies: {} },
      examples: [],
      env: {},
      secrets: [],
      scaling: null,
    } satisfies ModelSpec);
  });

  it('turns batching on with defaults for true and {}, and off for false and null', () => {
    const withBatching = (value: string) =>
      valid(`${MINIMAL}serving: { batching: ${value} }\n`).serving.batching;
    const on = { ...DEFAULTS.serving.batchingWhenOn, preferredBatchSizes: [] };
    assert.deepEqual(withBatching('true'), on);
    assert.deepEqual(withBatching('{}'), on);
    assert.equal(withBatching('false'), null);
    assert.equal(withBatching('null'), null);
    assert.deepEqual(withBatching('{ maxQueueDelay: 2ms }'), { ...on, maxQueueDelayMs: 2 });
  });

  it('keeps numbers written where strings are expected as written', () => {
    const spec = valid(
      `${MINIMAL.replace('file: model.onnx', 'file: model.onnx, version: 1.10')}env: { PORT: 0800, DEBUG: true }\nbuild: { dependencies: { lodash: 4 } }\n`,
    );
    assert.equal(spec.model.version, '1.10');
    assert.deepEqual(spec.env, { PORT: '0800', DEBUG: 'true' });
    assert.deepEqual(spec.build.dependencies, { lodash: '4' });
  });

  it('accepts a handler with declared tensors', () => {
    const spec = valid(`apiVersion: ferry.dev/v1alpha1
kind: Model
model:
  name: sentiment
  format: handler
  file: handler.ts
  inputs: [{ name: text, datatype: BYTES, shape: [-1] }]
  outputs: [{ name: score, datatype: FP32, shape: [-1, 2] }]
`);
    assert.equal(spec.model.format, 'handler');
    assert.deepEqual(spec.model.inputs, [{ name: 'text', datatype: 'BYTES', shape: [-1] }]);
  });

  it('reads a byte-order mark, anchors and merge keys', () => {
    const spec = valid(`\uFEFF${MINIMAL}examples:
  - &first { name: a, request: { inputs: [{ name: x }] }, tolerance: 0.5 }
  - { <<: *first, name: b }
`);
    assert.deepEqual(
      spec.examples.map((e) => [e.name, e.tolerance]),
      [
        ['a', 0.5],
        ['b', 0.5],
      ],
    );
  });
});

describe('parseSpec: problems', () => {
  const BAD = `apiVersion: ferry.dev/v1
kind: Model
model:
  name: Iris_Model
  format: handler
  file: model.onnx
  inputs:
    - { name: x, datatype: float32, shape: [-2, 4.5] }
    - { name: x, datatype: FP32, shape: [1] }
serving:
  batchng: true
  batching: { maxBatchSize: 4, maxQueueDelay: 5 parsecs, preferredBatchSizes: [8], max_queue_size: 3 }
  timeout: 30
  threads: fast
  limits: { maxBodySize: 64K }
resources: { cpu: 0, memory: "-1Gi", gpus: 1 }
examples:
  - name: a
  - name: a
    request: { inputs: [{ name: y }] }
    requestFile: x.json
env: { "bad-name": x, OK: [1] }
secrets: { HF_TOKEN: hf_abcdefgh }
name: foo
`;
  const result = parse(BAD);
  const expected: [string, RegExp, RegExp | undefined, string | undefined][] = [
    ['apiVersion', /must be "ferry\.dev\/v1alpha1"/, /apiVersion: ferry\.dev\/v1alpha1/, '"ferry.dev/v1"'],
    ['model.outputs', /a handler model must declare its outputs/, /datatype/, undefined],
    ['model.name', /"Iris_Model" is not a valid model name/, /lowercase/, '"Iris_Model"'],
    [
      'model.file',
      /not a \.ts\/\.mts\/\.js\/\.mjs module, but model\.format is handler/,
      /format: onnx/,
      '"model.onnx"',
    ],
    ['model.inputs[0].datatype', /"float32" is not one of BOOL/, /did you mean FP32\?/, '"float32"'],
    [
      'model.inputs[0].shape[0]',
      /-2 is too small; it must be at least -1/,
      /-1 for a dynamic dimension/,
      '-2',
    ],
    ['model.inputs[0].shape[1]', /expected an integer, found 4\.5/, undefined, '4.5'],
    ['model.inputs[1].name', /"x" is already the name of model\.inputs\[0\]/, /unique/, '"x"'],
    [
      'serving.batchng',
      /unknown key "batchng"/,
      /did you mean "batching"\? allowed in serving: batching, concurrency/,
      '"batchng"',
    ],
    ['serving.batching.maxQueueDelay', /"5 parsecs" is not a duration/, /e\.g\. "2ms"/, '"5 parsecs"'],
    ['serving.batching.preferredBatchSizes[0]', /8 is more than maxBatchSize \(4\)/, /<= maxBatchSize/, '8'],
    ['serving.batching.max_queue_size', /unknown key/, /did you mean "maxQueueSize"\?/, '"max_queue_size"'],
    ['serving.timeout', /30 has no unit/, /"30s"/, '30'],
    ['serving.threads', /expected a positive integer or "auto", found "fast"/, /threads: auto/, '"fast"'],
    ['serving.limits.maxBodySize', /unknown size unit "K"/, /"64Ki"/, '"64K"'],
    ['resources.cpu', /less than 1 millicore/, /no limit/, '0'],
    ['resources.memory', /"-1Gi" is negative/, /64Mi/, '"-1Gi"'],
    ['resources.gpus', /unknown key "gpus"/, /did you mean "gpu"\?/, '"gpus"'],
    ['examples[0]', /has neither request nor requestFile/, /requestFile/, 'name: a'],
    ['examples[1].name', /"a" is already the name of examples\[0\]/, /unique/, '"a"'],
    ['examples[1].request.inputs[0].name', /"y" is not one of model\.inputs/, /"x"/, '"y"'],
    ['examples[1].requestFile', /both request and requestFile/, /keep one/, '"x.json"'],
    ['env.bad-name', /not a valid environment variable name/, /LOG_LEVEL/, '"bad-name"'],
    ['env.OK', /expected a string, found a list/, undefined, '[1]'],
    ['secrets', /secrets lists names only/, /secret store/, undefined],
    ['name', /unknown key "name"/, /did you mean model\.name\?/, '"name"'],
  ];

  it('reports every problem at once, in file order, with positions', () => {
    const paths = result.problems.map((p) => p.path);
    assert.deepEqual(
      paths,
      expected.map(([path]) => path),
      formatSpecProblems(result.problems),
    );
    assert.equal(result.spec, undefined);
    for (let i = 1; i < result.problems.length; i++) {
      const [a, b] = [result.problems[i - 1]!, result.problems[i]!];
      assert.ok(
        a.line! < b.line! || (a.line === b.line && a.column! <= b.column!),
        `${a.path} before ${b.path}`,
      );
    }
  });

  for (const [path, message, hint, found] of expected) {
    it(`${path}: message, hint, found and position`, () => {
      const problem = problemAt(result.problems, path);
      assert.equal(problem.file, 'ferry.yaml');
      assert.match(problem.message, message);
      if (hint !== undefined) assert.match(problem.hint ?? '', hint);
      assert.equal(problem.found, found);
      assert.ok(problem.line !== undefined && problem.line >= 1 && problem.column !== undefined);
    });
  }

  it('points at the value or key concerned', () => {
    const at = (path: string) => {
      const p = problemAt(result.problems, path);
      return `${p.line}:${p.column}`;
    };
    assert.equal(at('model.name'), '4:9');
    assert.equal(at('serving.batchng'), '11:3');
    assert.equal(at('serving.batching.maxQueueDelay'), '12:47');
    assert.equal(at('name'), '24:1');
  });

  it('never echoes secret values', () => {
    const text = formatSpecProblems(result.problems);
    assert.doesNotMatch(text, /hf_abcdefgh/);
    const list = parse(`${MINIMAL}secrets: [HF_TOKEN=hf_abcdefgh, hf_abcdefgh, { X: hf_abcdefgh }]\n`);
    assert.equal(list.problems.length, 3, formatSpecProblems(list.problems));
    assert.doesNotMatch(formatSpecProblems(list.problems) + JSON.stringify(list.problems), /hf_abcdefgh/);
    assert.match(problemAt(list.problems, 'secrets[0]').message, /holds a value/);
    assert.match(problemAt(list.problems, 'secrets[1]').message, /not an UPPER_SNAKE_CASE name/);
  });

  it('renders problems as file:line:column path: message; hint', () => {
    const text = formatSpecProblems(result.problems);
    assert.match(
      text,
      /^ferry\.yaml:12:47 serving\.batching\.maxQueueDelay: "5 parsecs" is not a duration; use a number with a unit/m,
    );
    assert.equal(text.split('\n').length, expected.length);
  });

  it('requires apiVersion, kind and model fields', () => {
    const { problems } = parse('model: { format: onnx }\n');
    assert.deepEqual(
      problems.map((p) => `${p.path}: ${p.message}`),
      ['apiVersion: is required', 'kind: is required', 'model.name: is required', 'model.file: is required'],
    );
    assert.match(problemAt(problems, 'model.name').hint ?? '', /e\.g\. "iris"/);
  });

  it('checks the other semantic rules', () => {
    const { problems } = parse(`apiVersion: ferry.dev/v1alpha1
kind: Model
model: { name: a, format: onnx, file: ../model.onnx, files: [/etc/passwd, "a\\\\b"], outputs: [{ name: o, datatype: FP32, shape: [] }, { name: o, datatype: FP32, shape: [] }] }
serving: { concurrency: 0, batching: { maxBatchSize: 0 } }
build: { dependencies: { Bad Name: "1" } }
examples: [{ name: e, request: { inputs: [] }, response: { outputs: [] }, responseFile: r.json }]
secrets: [HF_TOKEN, HF_TOKEN]
env: { HF_TOKEN: x }
`);
    const messages = Object.fromEntries(problems.map((p) => [p.path, p.message]));
    assert.deepEqual(Object.keys(messages).sort(), [
      'build.dependencies["Bad Name"]',
      'env.HF_TOKEN',
      'examples[0].request.inputs',
      'examples[0].responseFile',
      'model.file',
      'model.files[0]',
      'model.files[1]',
      'model.outputs[1].name',
      'secrets[1]',
      'serving.batching.maxBatchSize',
      'serving.concurrency',
    ]);
    assert.match(messages['model.file']!, /points outside the model directory/);
    assert.match(messages['model.files[0]']!, /absolute path/);
    assert.match(messages['serving.concurrency']!, /0 is too small; it must be at least 1/);
    assert.match(messages['examples[0].request.inputs']!, /at least one input/);
    assert.match(messages['env.HF_TOKEN']!, /also listed in secrets/);
    assert.match(messages['secrets[1]']!, /listed twice/);
  });

  it('warns about settings that work against each other', () => {
    const result =
      parse(`${MINIMAL.replace('model.onnx }', 'model.onnx, inputs: [{ name: x, datatype: FP32, shape: [1, 4] }] }')}serving:
  timeout: 10ms
  batching: { maxQueueDelay: 20ms }
  threads: 4
  concurrency: 2
resources: { cpu: 2 }
examples: [{ name: e, request: { inputs: [{ name: x }] }, tolerance: 0.1 }]
`);
    assert.deepEqual(result.problems, []);
    assert.ok(result.spec);
    assert.deepEqual(result.warnings.map((w) => w.path).sort(), [
      'examples[0].tolerance',
      'model.inputs[0].shape',
      'serving.batching.maxQueueDelay',
      'serving.threads',
    ]);
  });
});

describe('parseSpec: scaling', () => {
  const scaling = (block: string) => parse(`${MINIMAL}scaling: ${block}\n`);

  it('completes a partial block over the autoscaler defaults; {} is all defaults', () => {
    assert.deepEqual(valid(`${MINIMAL}scaling: {}\n`).scaling, DEFAULTS.scalingWhenOn);
    assert.deepEqual(valid(`${MINIMAL}scaling: { minReplicas: 0, maxReplicas: 3, target: auto }\n`).scaling, {
      ...DEFAULTS.scalingWhenOn,
      minReplicas: 0,
      maxReplicas: 3,
      target: null,
    });
    // Durations complete to whole milliseconds (the API's unit); a ratio may be a percentage.
    const s = valid(
      `${MINIMAL}scaling: { stableWindow: 1m30s, panicWindow: 1500.4ms, panicThreshold: 2 }\n`,
    ).scaling;
    assert.equal(s?.stableWindowMs, 90_000);
    assert.equal(s?.panicWindowMs, 1500);
    assert.equal(s?.panicThreshold, 2);
  });

  it('names the field, the value and what is allowed for a value of the wrong type', () => {
    const { problems } = scaling(
      '{ minReplicas: 1.5, metric: cpu, target: lots, stableWindow: 60, panicThreshold: "2x", max_replicas: 3 }',
    );
    const metric = problemAt(problems, 'scaling.metric');
    assert.match(metric.message, /"cpu" is not one of concurrency, rps/);
    assert.equal(metric.found, '"cpu"');
    assert.match(problemAt(problems, 'scaling.target').message, /expected a number or "auto"/);
    const window = problemAt(problems, 'scaling.stableWindow');
    assert.match(window.message, /60 has no unit/);
    assert.match(window.hint ?? '', /"60s"/);
    assert.match(
      problemAt(problems, 'scaling.panicThreshold').message,
      /"2x" is not a ratio or a percentage/,
    );
    assert.match(
      problemAt(problems, 'scaling.max_replicas').hint ?? '',
      /did you mean "maxReplicas"\? allowed in scaling: minReplicas, maxReplicas, metric/,
    );
    // Values that could not be read are not checked against each other (minReplicas's own rule waits too).
    assert.equal(problems.length, 5, formatSpecProblems(problems));
  });

  it("applies the autoscaler's rules, each problem at its field, with its position", () => {
    assert.match(
      problemAt(scaling('{ minReplicas: 1.5 }').problems, 'scaling.minReplicas').message,
      /1\.5 is not a whole number from 0 to 1000/,
    );
    const { problems } = parse(`${MINIMAL}scaling:
  minReplicas: 5
  maxReplicas: 4
  targetUtilization: 1.5
  stableWindow: 500ms
  panicThreshold: 100%
  maxScaleDownRate: 0.5
  initialScale: 2000
`);
    const messages = Object.fromEntries(problems.map((p) => [p.path, p.message]));
    assert.deepEqual(messages, {
      'scaling.minReplicas': '5 is above maxReplicas 4',
      'scaling.targetUtilization': '1.5 must be in (0, 1]',
      'scaling.stableWindow': '500 ms must be at least 1 s',
      'scaling.panicWindow': '6000 ms must be at least 1 s and at most the stable window',
      'scaling.panicThreshold': '1 must be above 1 (2 = 200%)',
      'scaling.maxScaleDownRate': '0.5 must be >= 1',
      'scaling.initialScale': '2000 is not a whole number from 0 to 1000',
    });
    const min = problemAt(problems, 'scaling.minReplicas');
    assert.equal(min.found, '5');
    assert.equal(min.line, 5);
    // A field left out is blamed with its default, and the hint says so.
    assert.match(
      problemAt(problems, 'scaling.panicWindow').hint ?? '',
      /panicWindow is not set, so its default \(6s\) applies/,
    );
    assert.equal(parse(`${MINIMAL}scaling: { minReplicas: 0, initialScale: 0 }\n`).problems.length, 0);
  });

  it('refuses a block that is not a mapping, saying how to write one', () => {
    const { problems } = parse(`${MINIMAL}scaling:\n`);
    const problem = problemAt(problems, 'scaling');
    assert.match(problem.message, /expected a mapping/);
    assert.match(problem.hint ?? '', /scaling: \{\}/);
  });
});

describe('parseSpec: YAML and top-level problems', () => {
  it('names the line of a YAML syntax error', () => {
    const { problems, spec } = parse(
      'apiVersion: ferry.dev/v1alpha1\nkind: Model\nmodel:\n  name: [iris\n  format: onnx\n',
    );
    assert.equal(spec, undefined);
    assert.ok(problems.length >= 1);
    assert.match(problems[0]!.message, /^YAML: /);
    assert.ok(problems[0]!.line !== undefined && problems[0]!.line >= 4, formatSpecProblems(problems));
    assert.match(formatSpecProblems(problems), /^ferry\.yaml:\d+:\d+ YAML: /);
  });

  it('reports tabs and duplicate keys', () => {
    const dup = parse(`${MINIMAL}kind: Model\n`).problems;
    assert.equal(dup[0]?.line, 4);
    assert.match(dup[0]?.hint ?? '', /once/);
    const tabs = parse('apiVersion: x\nmodel:\n\tname: a\n').problems;
    assert.match(tabs[0]?.hint ?? '', /tabs|indentation/);
  });

  it('says so for an empty file and for a document that is not a mapping', () => {
    assert.match(parse('').problems[0]!.message, /empty/);
    assert.match(parse('# only a comment\n').problems[0]!.hint ?? '', /ferry init/);
    assert.match(
      parse('- a\n- b\n').problems[0]!.message,
      /expected a mapping at the top level, found a list/,
    );
    assert.match(parse('hello\n').problems[0]!.message, /found "hello"/);
  });

  it('refuses alias bombs', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 8; i++) {
      const prev = String.fromCharCode(97 + i);
      const next = String.fromCharCode(98 + i);
      bomb.push(
        `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
      );
    }
    const { problems } = parse(bomb.join('\n'));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /alias/i);
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const result = parse(text);
        assert.ok(Array.isArray(result.problems));
        assert.equal(result.spec === undefined, result.problems.length > 0);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws, whatever the document', () => {
    const leaf = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom(
        '30s',
        '5ms',
        '64Mi',
        '500m',
        'auto',
        'FP32',
        'onnx',
        'handler',
        'model.onnx',
        'x.ts',
        -1,
      ),
    );
    const key = fc.constantFrom(
      'apiVersion',
      'kind',
      'model',
      'serving',
      'batching',
      'name',
      'format',
      'file',
      'files',
      'inputs',
      'outputs',
      'shape',
      'datatype',
      'maxBatchSize',
      'maxQueueDelay',
      'preferredBatchSizes',
      'timeout',
      'threads',
      'limits',
      'resources',
      'cpu',
      'examples',
      'request',
      'requestFile',
      'env',
      'secrets',
      'zzz',
    );
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(key, tie('value'), { maxKeys: 5 }),
      ),
    }));
    const document = fc.record({
      apiVersion: fc.constantFrom('ferry.dev/v1alpha1', 'x'),
      kind: fc.constant('Model'),
      model: value,
      serving: value,
      resources: value,
      examples: value,
      env: value,
      secrets: value,
    });
    fc.assert(
      fc.property(fc.oneof(document, value), (doc) => {
        const result = parse(stringify(doc));
        assert.equal(result.spec === undefined, result.problems.length > 0);
        for (const p of result.problems) assert.equal(typeof p.message, 'string');
      }),
      { numRuns: 500 },
    );
  });
});
