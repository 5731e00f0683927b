/**
 * `ferry init` helpers (pure): a commented ferry.yaml for a model file, a sample request for its inputs,
 * and a valid model name derived from a file name. The CLI reads the model's tensors and writes the files.
 */
import { basename, extname } from 'node:path';
import { FerryError } from '../core/errors.ts';
import type { Datatype, TensorSpec } from '../protocol/types.ts';
import { DEFAULTS } from './defaults.ts';
import { formatDuration } from './duration.ts';
import { formatBytes } from './quantity.ts';
import { HANDLER_EXTENSIONS, MODEL_NAME_RE } from './schema.ts';
import { API_VERSION } from './types.ts';

export interface InitialSpecOptions {
  /** Model name; must be a valid name (see modelNameFromFile). */
  name: string;
  /** The model file, relative to the directory of ferry.yaml: .onnx, or a .ts/.mts/.js/.mjs handler. */
  file: string;
  /** The model's tensors; for onnx they are written as comments (the server reads them from the model). */
  inputs?: TensorSpec[] | null;
  outputs?: TensorSpec[] | null;
  /** A sample request file (relative) to list as the first example. */
  requestFile?: string;
}

/** A commented ferry.yaml for a new model. It loads cleanly through parseSpec. */
export function renderInitialSpec(options: InitialSpecOptions): string {
  const { name, file } = options;
  if (!MODEL_NAME_RE.test(name)) {
    throw new FerryError('FERRY_SPEC_INVALID', `${JSON.stringify(name)} is not a valid model name`, {
      hint: `use 1 to 63 lowercase letters, digits and "-", starting with a letter, e.g. "${modelNameFromFile(name)}"`,
    });
  }
  const ext = extname(file).toLowerCase();
  const format = ext === '.onnx' ? 'onnx' : HANDLER_EXTENSIONS.includes(ext as never) ? 'handler' : undefined;
  if (format === undefined) {
    throw new FerryError(
      'FERRY_SPEC_INVALID',
      `${JSON.stringify(file)} is neither an .onnx file nor a JS/TS module`,
      {
        hint: `give a .onnx file or a handler module (${HANDLER_EXTENSIONS.join(', ')})`,
      },
    );
  }
  const inputs = options.inputs ?? null;
  const outputs = options.outputs ?? null;
  const on = DEFAULTS.serving.batchingWhenOn;
  const lines: string[] = [
    '# ferry.yaml: describes this model for Ferry. Reference: docs/spec.md',
    `apiVersion: ${API_VERSION}`,
    'kind: Model',
    'model:',
    c(`  name: ${scalar(name)}`, 'lowercase letters, digits and "-"'),
    `  version: "${DEFAULTS.model.version}"`,
    c(`  format: ${format}`, 'onnx | handler'),
    `  file: ${scalar(file)}`,
    c('  # files: []', 'other files the model needs (weights, vocabularies)'),
  ];
  const tensors = (key: 'inputs' | 'outputs', list: TensorSpec[] | null) => {
    if (list === null) {
      lines.push(
        format === 'onnx'
          ? `  # ${key}: read from the model`
          : `  ${key}: []   # declare the ${key}, e.g. - { name: x, datatype: FP32, shape: [-1, 4] }`,
      );
      return;
    }
    const prefix = format === 'onnx' ? '  # ' : '  ';
    if (format === 'onnx') lines.push(`  # ${key} (read from the model; declare them to pin them):`);
    lines.push(`${prefix}${key}:${list.length === 0 ? ' []' : ''}`);
    for (const t of list) {
      lines.push(
        `${prefix}  - { name: ${scalar(t.name)}, datatype: ${t.datatype}, shape: [${t.shape.join(', ')}] }`,
      );
    }
  };
  tensors('inputs', inputs);
  tensors('outputs', outputs);
  lines.push(
    'serving:',
    '  # Dynamic batching stacks concurrent requests into one model call. Left out, it is automatic: on',
    '  # (with the values below) when the first dimension of every input and output is dynamic (the batch;',
    '  # Ferry concatenates and splits along it), off otherwise. "batching: false" turns it off.',
    '  # batching:',
    c(`  #   maxBatchSize: ${on.maxBatchSize}`, 'samples per batch'),
    c('  #   maxQueueDelay: 2ms', 'how long the oldest request may wait for a batch to fill'),
    c(`  #   maxQueueSize: ${on.maxQueueSize}`, 'beyond this, requests get 503 + Retry-After'),
    c(`  concurrency: ${DEFAULTS.serving.concurrency}`, 'inference workers'),
    c(`  timeout: ${formatDuration(DEFAULTS.serving.timeoutMs)}`, 'per request'),
    c('  threads: auto', 'threads per worker: a number, or auto (CPU quota / concurrency)'),
    '  limits:',
    `    maxBodySize: ${formatBytes(DEFAULTS.serving.limits.maxBodyBytes)}`,
    'resources:',
    c('  # cpu: "2"', 'cores, or millicores like "500m"; unset: none for ferry serve, 1 on the platform'),
    c('  # memory: 1Gi', 'unset: none for ferry serve, 1Gi on the platform'),
    `  gpu: ${DEFAULTS.resources.gpu}`,
  );
  if (options.requestFile !== undefined) {
    lines.push('examples:', '  - name: sample', `    requestFile: ${scalar(options.requestFile)}`);
  } else {
    lines.push('# examples:', '#   - name: sample', '#     requestFile: examples/sample.json');
  }
  lines.push(
    '# env: { LOG_LEVEL: info }',
    c('# secrets: [HF_TOKEN]', 'names only; values go in the secret store'),
    '',
  );
  return lines.join('\n');
}

/** A line with a comment aligned at column 28. */
function c(content: string, comment: string): string {
  return `${content.padEnd(26)} # ${comment}`;
}

/** A YAML scalar: plain when that reads back as the same string, else double-quoted (JSON). */
function scalar(text: string): string {
  const plain =
    /^[A-Za-z_/][A-Za-z0-9_./-]*$/.test(text) &&
    !/^(true|false|null|yes|no|on|off|~)$/i.test(text) &&
    !text.startsWith('-');
  return plain ? text : JSON.stringify(text);
}

/**
 * An OIP JSON request for `inputs` with batch 1 (every -1 becomes 1). `pattern` (what `ferry init` writes, so
 * the first predict shows a real answer): floats cycle 0.1, 0.2, ... 1.0 (inside the usual normalised range),
 * integers are 1 (a valid token id, mask or type id), BOOL true, BYTES "hello". `zeros`: the same request
 * zero-filled (the server's warm-up, when a model has no example: the safest input for any model).
 */
export function sampleRequest(
  inputs: readonly TensorSpec[],
  fill: 'pattern' | 'zeros' = 'pattern',
): {
  inputs: { name: string; datatype: Datatype; shape: number[]; data: (number | boolean | string)[] }[];
} {
  return {
    inputs: inputs.map((t) => {
      const shape = t.shape.map((d) => (d < 0 ? 1 : d));
      const count = shape.reduce((a, b) => a * b, 1);
      const value = fill === 'zeros' ? zeroOf(t.datatype) : patternOf(t.datatype);
      return {
        name: t.name,
        datatype: t.datatype,
        shape,
        data: Array.from({ length: count }, (_, i) => value(i)),
      };
    }),
  };
}

function zeroOf(datatype: Datatype): (i: number) => number | boolean | string {
  const zero = datatype === 'BOOL' ? false : datatype === 'BYTES' ? '' : 0;
  return () => zero;
}

function patternOf(datatype: Datatype): (i: number) => number | boolean | string {
  if (datatype === 'BOOL') return () => true;
  if (datatype === 'BYTES') return () => 'hello';
  if (datatype.startsWith('FP')) return (i) => ((i % 10) + 1) / 10;
  return () => 1;
}

/** A valid model name from any text ("My Model_v2" -> "my-model-v2"); undefined when nothing usable is left. */
function toModelName(text: string): string | undefined {
  let name = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (name === '') return undefined;
  if (!/^[a-z]/.test(name)) name = `model-${name}`;
  return name.slice(0, 63).replace(/-+$/, '');
}

/** A valid model name from a file name: "models/ResNet50_v2.onnx" -> "resnet50-v2". */
export function modelNameFromFile(path: string): string {
  return toModelName(basename(path, extname(path))) ?? 'model';
}

/**
 * The name `ferry init <dir> --from <file>` gives the model: the directory's (the user chose it, as in
 * `ferry init my-model`), else the model file's when the directory's name has no letters or digits.
 */
export function initModelName(dir: string, modelFile: string): string {
  return toModelName(basename(dir)) ?? modelNameFromFile(modelFile);
}
