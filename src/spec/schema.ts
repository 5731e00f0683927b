/**
 * The ferry.yaml schema: one zod schema for the raw document (also the source of schema/ferry.schema.json),
 * semantic checks that span fields, and the translation of zod issues into located-free problems
 * (`SpecIssue`): a path, a message that says what is wrong, and a hint that says what is allowed.
 * Pure: no I/O.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { settingLabel, settingsIssues } from '../autoscaler/settings.ts';
import type { ScalingSettings } from '../autoscaler/types.ts';
import { DATATYPES } from '../protocol/types.ts';
import { completeScaling } from './complete.ts';
import { DEFAULTS } from './defaults.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { formatBytes, parseBytes, parseCpu } from './quantity.ts';
import { closest } from './suggest.ts';
import { API_VERSION } from './types.ts';
import { SpecValueError, showValue } from './value-error.ts';

export type PathSegment = string | number;

/** A problem before it is located in a file. */
export interface SpecIssue {
  path: PathSegment[];
  message: string;
  hint?: string;
  /** The problem is about a key (an unknown key), not its value: point at the key. */
  atKey?: boolean;
  /** Never echo the value as written (it may be a secret). */
  hideFound?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Hints: a registry that the issue translation reads for the field at the issue's path.

const hints = z.registry<{ hint: string }>();

export const MODEL_NAME_RE = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const SECRET_NAME_RE = /^[A-Z_][A-Z0-9_]*$/;
const NPM_NAME_RE = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

/** What people write for a datatype, from numpy / torch / ONNX names. */
const DATATYPE_ALIASES: Record<string, string> = {
  float: 'FP32',
  float32: 'FP32',
  f32: 'FP32',
  float64: 'FP64',
  double: 'FP64',
  f64: 'FP64',
  float16: 'FP16',
  half: 'FP16',
  f16: 'FP16',
  string: 'BYTES',
  str: 'BYTES',
  bytes: 'BYTES',
  boolean: 'BOOL',
  long: 'INT64',
  int: 'INT32',
};

export const HANDLER_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'] as const;
export const FORMATS = ['onnx', 'handler'] as const;

/** Durations, sizes and CPU: a string with a unit or a number, parsed to ms / bytes / cores. */
function unitValue<T extends number>(
  what: string,
  parse: (value: string | number) => T,
  check: (value: T) => string | undefined,
  hint: string,
) {
  return z
    .union([z.string(), z.number()], { error: `expected ${what}` })
    .transform((value, ctx) => {
      try {
        const parsed = parse(value);
        const wrong = check(parsed);
        if (wrong !== undefined) {
          ctx.addIssue({ code: 'custom', message: `${showValue(value)} ${wrong}`, params: { hint } });
          return z.NEVER;
        }
        return parsed;
      } catch (error) {
        if (!(error instanceof SpecValueError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message, params: { hint: error.hint ?? hint } });
        return z.NEVER;
      }
    })
    .register(hints, { hint });
}

const DURATION_HINT =
  'use a number with a unit (ns, us, ms, s, m, h, d), e.g. "2ms", "1.5s", "1m30s" or "30d"';
const BYTES_HINT =
  'use bytes as an integer, or a number with a unit k, M, G (1000s) or Ki, Mi, Gi (1024s), e.g. "64Mi"';

const durationAtLeast0 = () =>
  unitValue('a duration such as "2ms"', parseDuration, () => undefined, DURATION_HINT);
const durationAbove0 = () =>
  unitValue(
    'a duration such as "30s"',
    parseDuration,
    (ms) => (ms > 0 ? undefined : 'is not more than 0'),
    DURATION_HINT,
  );
const bytesAbove0 = () =>
  unitValue(
    'a size such as "64Mi"',
    parseBytes,
    (b) => (b > 0 ? undefined : 'is not more than 0'),
    BYTES_HINT,
  );

/** A string field; numbers are accepted (the loader replaces them by the text as written, e.g. `1.10`). */
const stringish = (what: string) =>
  z.union([z.string(), z.number()], { error: `expected ${what}` }).transform((value) => String(value));

function pattern(re: RegExp, message: string, hint: string) {
  return z.string().regex(re, { error: message }).register(hints, { hint });
}

const relativePath = (what: string) =>
  z
    .string()
    .min(1, { error: `the ${what} path is empty` })
    .superRefine((path, ctx) => {
      const problem = relativePathProblem(path);
      if (problem !== undefined)
        ctx.addIssue({ code: 'custom', message: problem.message, params: { hint: problem.hint } });
    });

/** Paths in ferry.yaml are relative to its directory and stay inside it (they are packaged into the image). */
export function relativePathProblem(path: string): { message: string; hint: string } | undefined {
  const hint = 'write a path relative to the directory of ferry.yaml, with "/" separators, e.g. "model.onnx"';
  if (path.includes('\\')) return { message: `${showValue(path)} contains "\\"`, hint };
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path))
    return { message: `${showValue(path)} is an absolute path`, hint };
  const normal = posix.normalize(path);
  if (normal === '..' || normal.startsWith('../')) {
    return {
      message: `${showValue(path)} points outside the model directory`,
      hint: 'every file of the model must be inside the directory of ferry.yaml',
    };
  }
  if (normal === '.' || normal.endsWith('/'))
    return { message: `${showValue(path)} is a directory, not a file`, hint };
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// The schema.

const TensorSpecSchema = z
  .strictObject({
    name: z
      .string()
      .min(1, { error: 'the tensor name is empty' })
      .meta({ description: 'Tensor name, as in the model.' }),
    datatype: z
      .enum(DATATYPES)
      .meta({ description: 'Open Inference Protocol datatype.' })
      .register(hints, { hint: `one of ${DATATYPES.join(', ')}` }),
    shape: z
      .array(z.int().min(-1).register(hints, { hint: 'use -1 for a dynamic dimension, e.g. [-1, 4]' }))
      .meta({
        description: 'Dimensions; -1 marks a dynamic dimension (usually the batch).',
        examples: [[-1, 4]],
      }),
  })
  .meta({ description: 'A tensor the model takes or returns.' });

const tensorList = (what: string) =>
  z
    .array(TensorSpecSchema)
    .nullable()
    .optional()
    .meta({
      description: `The model's ${what}. Required for handlers; for onnx, read from the model when omitted.`,
      default: null,
    });

const ModelSchema = z
  .strictObject({
    name: pattern(
      MODEL_NAME_RE,
      'is not a valid model name',
      'use 1 to 63 lowercase letters, digits and "-", starting with a letter and not ending with "-", e.g. "iris"',
    ).meta({
      description: 'Model name (used in URLs and resource names): lowercase DNS label.',
      examples: ['iris'],
    }),
    version: stringish('a version string such as "1"')
      .pipe(
        pattern(
          VERSION_RE,
          'is not a valid version',
          'use letters, digits, ".", "_" and "-" (at most 128, starting with a letter or digit), e.g. "1" or "2024-06"',
        ),
      )
      .optional()
      .meta({ description: 'Model version; a number is taken as written.', default: DEFAULTS.model.version }),
    format: z
      .enum(FORMATS)
      .meta({
        description: 'onnx: an ONNX model run by onnxruntime. handler: a JS/TS module with a handler.',
      })
      .register(hints, { hint: 'one of onnx, handler' }),
    file: relativePath('model file').meta({
      description: 'onnx: the .onnx file. handler: the module (.ts/.mts/.js/.mjs). Relative to ferry.yaml.',
      examples: ['model.onnx'],
    }),
    files: z
      .array(relativePath('file'))
      .optional()
      .meta({ description: 'Other files that belong to the model (weights, vocabularies).', default: [] }),
    inputs: tensorList('inputs'),
    outputs: tensorList('outputs'),
  })
  .meta({ description: 'What the model is and where its files are.' });

const BatchingObjectSchema = z
  .strictObject({
    maxBatchSize: z.int().min(1).max(1_000_000).optional().meta({
      description: 'Largest batch, in samples (sum of the first dimension), not requests.',
      default: DEFAULTS.serving.batchingWhenOn.maxBatchSize,
    }),
    maxQueueDelay: durationAtLeast0()
      .optional()
      .meta({
        description: 'How long the oldest request may wait for a batch to fill. 0 = take what is queued.',
        default: formatDuration(DEFAULTS.serving.batchingWhenOn.maxQueueDelayMs),
        examples: ['500us', '2ms'],
      }),
    preferredBatchSizes: z
      .array(z.int().min(1))
      .optional()
      .meta({
        description: 'Batch sizes to dispatch at when possible (each <= maxBatchSize).',
        default: [],
        examples: [[8, 16]],
      }),
    maxQueueSize: z.int().min(1).optional().meta({
      description: 'Requests waiting beyond this are refused with 503 and Retry-After.',
      default: DEFAULTS.serving.batchingWhenOn.maxQueueSize,
    }),
  })
  .meta({ description: 'Dynamic batching settings.' });

const ServingSchema = z
  .strictObject({
    batching: z
      .union([z.boolean(), z.null(), BatchingObjectSchema], {
        error: 'expected true, false or a mapping of batching settings',
      })
      .optional()
      .meta({
        description:
          'Dynamic batching. Omitted = automatic (on with the defaults when every input and output of an ONNX model has a dynamic first dimension, else off); false or null = off; true or {} = on with defaults.',
      })
      .register(hints, {
        hint: 'e.g. "batching: true" or "batching: { maxBatchSize: 32, maxQueueDelay: 2ms }"',
      }),
    concurrency: z
      .int()
      .min(1)
      .max(1024)
      .optional()
      .meta({ description: 'Number of inference workers.', default: DEFAULTS.serving.concurrency }),
    timeout: durationAbove0()
      .optional()
      .meta({ description: 'Per-request deadline.', default: formatDuration(DEFAULTS.serving.timeoutMs) }),
    threads: z
      .union([z.literal('auto'), z.int().min(1).max(1024)], {
        error: 'expected a positive integer or "auto"',
      })
      .optional()
      .meta({
        description: 'Intra-op threads per worker; auto = the CPU quota divided by concurrency.',
        default: 'auto',
      })
      .register(hints, { hint: 'e.g. "threads: 2" or "threads: auto"' }),
    limits: z
      .strictObject({
        maxBodySize: bytesAbove0()
          .optional()
          .meta({
            description: 'Largest request body accepted.',
            default: formatBytes(DEFAULTS.serving.limits.maxBodyBytes),
          }),
      })
      .optional()
      .meta({ description: 'Request limits.' }),
  })
  .meta({ description: 'How the model server runs the model.' });

const ResourcesSchema = z
  .strictObject({
    cpu: unitValue(
      'a CPU quantity such as "2" or "500m"',
      parseCpu,
      () => undefined,
      'e.g. "2", 0.5 or "500m"',
    )
      .nullable()
      .optional()
      .meta({
        description: 'CPU cores per replica: a number or millicores ("500m"). null = no limit.',
        default: null,
      }),
    memory: bytesAbove0()
      .nullable()
      .optional()
      .meta({ description: 'Memory per replica, e.g. "1Gi". null = no limit.', default: null }),
    gpu: z
      .int()
      .min(0)
      .max(64)
      .optional()
      .meta({ description: 'GPUs per replica.', default: DEFAULTS.resources.gpu }),
  })
  .meta({ description: 'What one replica may use.' });

const NetworkSchema = z
  .strictObject({
    egress: z.boolean().optional().meta({
      description:
        'true: replicas may open connections to other machines (docker: a dedicated bridge network per deployment, never the host network). false: none at all (docker: --network none); the gateway reaches them over a unix socket either way.',
      default: DEFAULTS.network.egress,
    }),
  })
  .meta({ description: 'What a replica may reach over the network.' });

const TolerationSchema = z
  .strictObject({
    key: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'The taint key (e.g. nvidia.com/gpu); left out with Exists: every taint.' }),
    operator: z
      .enum(['Exists', 'Equal'])
      .optional()
      .meta({ description: 'Exists (any value) or Equal (value).', default: 'Equal' }),
    value: z.string().optional().meta({ description: 'The taint value, with Equal.' }),
    effect: z
      .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])
      .optional()
      .meta({ description: 'The taint effect tolerated; left out: all.' }),
  })
  .meta({ description: 'A Kubernetes toleration (pods may run on nodes with this taint).' });

const KubernetesSchema = z
  .strictObject({
    startupTimeout: durationAbove0()
      .optional()
      .meta({
        description:
          "How long a replica may take to load its model before it is restarted (the startup probe's budget).",
        default: formatDuration(DEFAULTS.kubernetes.startupTimeoutMs),
      }),
    nodeSelector: z
      .record(z.string().min(1), z.string())
      .optional()
      .meta({ description: 'Node labels a replica must run on (e.g. GPU nodes).', default: {} }),
    tolerations: z
      .array(TolerationSchema)
      .optional()
      .meta({ description: "Taints replicas tolerate (e.g. the GPU nodes' nvidia.com/gpu).", default: [] }),
  })
  .meta({
    description: 'For the Kubernetes target only (ferry k8s render): scheduling and the startup budget.',
  });

const BuildSchema = z
  .strictObject({
    base: z
      .string()
      .min(1)
      .nullable()
      .optional()
      .meta({ description: "Base image reference; null = Ferry's default.", default: null }),
    dependencies: z
      .record(
        pattern(NPM_NAME_RE, 'is not an npm package name', 'e.g. "sharp" or "@scope/name"'),
        stringish('a version range such as "^1.2.0"').pipe(
          z.string().min(1, { error: 'the version range is empty' }),
        ),
      )
      .optional()
      .meta({ description: 'Extra npm dependencies for handler code: name -> version range.', default: {} }),
  })
  .meta({ description: 'How the image is built.' });

/** The body of an example request: OIP JSON (at least `inputs` with a name each). */
export const ExampleRequestSchema = z
  .looseObject({
    inputs: z
      .array(z.looseObject({ name: z.string().min(1) }))
      .min(1, { error: 'a request needs at least one input' }),
  })
  .meta({ description: 'An inference request in Open Inference Protocol JSON.' });

/** The body of an expected response: OIP JSON (at least `outputs` with a name each). */
export const ExampleResponseSchema = z
  .looseObject({
    outputs: z.array(z.looseObject({ name: z.string().min(1) })),
  })
  .meta({
    description: 'The expected response in Open Inference Protocol JSON (only outputs are compared).',
  });

const ExampleSchema = z
  .strictObject({
    name: z.string().min(1).meta({ description: 'Example name.' }),
    request: ExampleRequestSchema.optional(),
    requestFile: relativePath('request file')
      .optional()
      .meta({ description: 'A JSON file with the request, instead of request.' }),
    response: ExampleResponseSchema.optional(),
    responseFile: relativePath('response file')
      .optional()
      .meta({ description: 'A JSON file with the expected response, instead of response.' }),
    tolerance: z
      .number()
      .min(0)
      .optional()
      .meta({ description: 'Absolute tolerance for numbers.', default: DEFAULTS.example.tolerance }),
  })
  .meta({ description: 'A sample request, checked by `ferry test` and shown in docs.' });

/** `2` or `"200%"`: a ratio, as `ferry autoscale --panic-threshold` takes it. */
function parseRatio(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
  if (m === null) throw new SpecValueError(`${showValue(value)} is not a ratio or a percentage`);
  return Number(m[1]) / 100;
}

const SCALING = DEFAULTS.scalingWhenOn;
const scalingDuration = (description: string, ms: number) =>
  durationAtLeast0()
    .optional()
    .meta({ description, default: formatDuration(ms) });

/**
 * Autoscaling of a deployment made from this version. Only types here: what values are allowed, alone and
 * together, is the autoscaler's one rule set (settingsIssues in src/autoscaler/settings.ts), run in
 * semanticChecks below, the same the API and `ferry autoscale` apply.
 */
const ScalingSchema = z
  .strictObject({
    minReplicas: z.number().optional().meta({
      description:
        'Fewest replicas, 0 to 1000; 0 scales to zero when idle (the gateway holds requests while one starts).',
      default: SCALING.minReplicas,
    }),
    maxReplicas: z
      .number()
      .optional()
      .meta({ description: 'Most replicas, 1 to 1000, at least minReplicas.', default: SCALING.maxReplicas }),
    metric: z
      .enum(['concurrency', 'rps'])
      .optional()
      .meta({
        description: 'What loads a replica: requests in flight (concurrency) or requests per second (rps).',
        default: SCALING.metric,
      })
      .register(hints, { hint: 'concurrency: requests in flight per replica; rps: requests per second' }),
    target: z
      .union([z.literal('auto'), z.number()], { error: 'expected a number or "auto"' })
      .optional()
      .meta({
        description:
          "Per replica, in the metric's unit (> 0); auto = derived from the model's batching and service time.",
        default: 'auto',
      })
      .register(hints, { hint: 'e.g. "target: 8" or "target: auto"' }),
    targetUtilization: z.number().optional().meta({
      description: 'Fraction of target to aim at, in (0, 1]: headroom for bursts.',
      default: SCALING.targetUtilization,
    }),
    stableWindow: scalingDuration(
      'The load averaged over this window decides in normal mode (at least 1s).',
      SCALING.stableWindowMs,
    ),
    panicWindow: scalingDuration(
      'The load averaged over this shorter window decides in panic (at least 1s, at most stableWindow).',
      SCALING.panicWindowMs,
    ),
    panicThreshold: unitValue('a ratio such as 2 or "200%"', parseRatio, () => undefined, 'e.g. 2 or "200%"')
      .optional()
      .meta({
        description: 'Panic when the panic window asks for this many times the ready replicas (above 1).',
        default: SCALING.panicThreshold,
      }),
    maxScaleUpRate: z.number().optional().meta({
      description: 'At most this many times the ready replicas per decision (>= 1).',
      default: SCALING.maxScaleUpRate,
    }),
    maxScaleDownRate: z.number().optional().meta({
      description: 'At least the ready replicas divided by this per decision (>= 1).',
      default: SCALING.maxScaleDownRate,
    }),
    scaleDownDelay: scalingDuration(
      'A scale-down takes effect only when every decision this long agrees (0: at once).',
      SCALING.scaleDownDelayMs,
    ),
    scaleToZeroGrace: scalingDuration(
      'With minReplicas 0: idle this long (after a stable window of zero) before going to zero.',
      SCALING.scaleToZeroGraceMs,
    ),
    initialScale: z.number().optional().meta({
      description:
        'Replicas a new deployment starts with, kept within minReplicas..maxReplicas; 0 (with minReplicas 0) starts at zero.',
      default: SCALING.initialScale,
    }),
    maxHeld: z.number().optional().meta({
      description:
        'Requests the gateway holds for a replica (at zero, or while the ready ones are full and more start); one more gets 503 + Retry-After.',
      default: SCALING.maxHeld,
    }),
    maxHeldWait: scalingDuration(
      'A held request waits at most this long, then gets 503 + Retry-After.',
      SCALING.maxHeldWaitMs,
    ),
  })
  .meta({
    description:
      "Autoscaling for a deployment of this version (docs/autoscaling.md): the fields given over the defaults. Applied when a deployment is created, and on a later deploy when it differs from the previous version's. Omitted: a fixed replica count.",
  })
  .register(hints, {
    hint: 'e.g. "scaling: { minReplicas: 0, maxReplicas: 4 }", or "scaling: {}" for the defaults',
  });

export const RawSpecSchema = z
  .strictObject({
    apiVersion: z
      .literal(API_VERSION)
      .meta({ description: 'Version of this file format.' })
      .register(hints, { hint: `write "apiVersion: ${API_VERSION}"` }),
    kind: z
      .literal('Model')
      .meta({ description: 'Always Model.' })
      .register(hints, { hint: 'write "kind: Model"' }),
    model: ModelSchema,
    serving: ServingSchema.optional(),
    resources: ResourcesSchema.optional(),
    network: NetworkSchema.optional(),
    kubernetes: KubernetesSchema.optional(),
    scaling: ScalingSchema.optional(),
    build: BuildSchema.optional(),
    examples: z.array(ExampleSchema).optional().meta({ description: 'Sample requests.', default: [] }),
    env: z
      .record(
        pattern(
          ENV_NAME_RE,
          'is not a valid environment variable name',
          'use letters, digits and "_", e.g. LOG_LEVEL',
        ),
        stringish('a string'),
      )
      .optional()
      .meta({ description: 'Environment variables for the model process (not secrets).', default: {} }),
    secrets: z
      .array(pattern(SECRET_NAME_RE, 'is not an UPPER_SNAKE_CASE name', 'e.g. HF_TOKEN'))
      .optional()
      .meta({
        description:
          'Names of secrets the model needs at run time. Values go in the secret store, never here.',
        default: [],
        examples: [['HF_TOKEN']],
      }),
  })
  .meta({
    title: 'ferry.yaml',
    description: 'Describes a model for Ferry: what it is, how to serve and build it.',
  });

export type RawSpec = z.output<typeof RawSpecSchema>;

/** Fields that are strings but may be written as YAML numbers (or booleans, for env): kept as written. */
export const STRINGISH_PATHS: readonly (readonly PathSegment[])[] = [
  ['model', 'version'],
  ['env', '*'],
  ['build', 'dependencies', '*'],
];

// ---------------------------------------------------------------------------------------------------------
// Walking the schema: allowed keys and hints at a path.

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  element?: z.ZodType;
  valueType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The schema and every wrapper down to objects/arrays/records/scalars: optional, nullable, pipes, unions. */
function expand(schema: z.ZodType, into: z.ZodType[] = []): z.ZodType[] {
  into.push(schema);
  const def = defOf(schema);
  if (def.innerType !== undefined) expand(def.innerType, into);
  else if (def.type === 'pipe' && def.in !== undefined) expand(def.in, into);
  else if (def.type === 'union' && def.options !== undefined)
    for (const option of def.options) expand(option, into);
  return into;
}

function schemasAt(path: readonly PathSegment[]): z.ZodType[] {
  let current: z.ZodType[] = [RawSpecSchema];
  for (const segment of path) {
    const next: z.ZodType[] = [];
    for (const schema of current.flatMap((s) => expand(s))) {
      const def = defOf(schema);
      if (def.type === 'object' && typeof segment === 'string' && def.shape?.[segment] !== undefined) {
        next.push(def.shape[segment]);
      } else if (def.type === 'array' && typeof segment === 'number' && def.element !== undefined) {
        next.push(def.element);
      } else if (def.type === 'record' && def.valueType !== undefined) next.push(def.valueType);
    }
    current = next;
  }
  return current;
}

/** The keys allowed in the mapping at `path` (empty when there is no mapping there). */
export function allowedKeysAt(path: readonly PathSegment[]): string[] {
  const keys = new Set<string>();
  for (const schema of schemasAt(path).flatMap((s) => expand(s))) {
    const def = defOf(schema);
    if (def.type === 'object' && def.shape !== undefined && schema !== ExampleRequestSchema) {
      for (const key of Object.keys(def.shape)) keys.add(key);
    }
  }
  return [...keys];
}

function hintAt(path: readonly PathSegment[]): string | undefined {
  for (const schema of schemasAt(path).flatMap((s) => expand(s))) {
    const hint = hints.get(schema)?.hint;
    if (hint !== undefined) return hint;
  }
  return undefined;
}

/** Every mapping key the schema knows, with the path of its mapping (arrays as "*"), for "did you mean". */
const ALL_KEYS: { parent: string; key: string }[] = (() => {
  const out: { parent: string; key: string }[] = [];
  const seen = new Set<z.ZodType>();
  const visit = (schema: z.ZodType, parent: string) => {
    for (const s of expand(schema)) {
      if (seen.has(s)) continue;
      seen.add(s);
      const def = defOf(s);
      if (
        def.type === 'object' &&
        def.shape !== undefined &&
        s !== ExampleRequestSchema &&
        s !== ExampleResponseSchema
      ) {
        for (const [key, child] of Object.entries(def.shape)) {
          out.push({ parent, key });
          visit(child, parent === '' ? key : `${parent}.${key}`);
        }
      } else if (def.type === 'array' && def.element !== undefined) visit(def.element, `${parent}[]`);
    }
  };
  visit(RawSpecSchema, '');
  return out;
})();

// ---------------------------------------------------------------------------------------------------------
// Validation: zod issues and semantic checks, translated into SpecIssues.

export function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let current = root;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PathSegment, unknown>)[segment];
  }
  return current;
}

function describeExpected(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping (key: value)';
    case 'array':
      return 'a list';
    case 'null':
      return 'null';
    default:
      return expected;
  }
}

function describeFound(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'a mapping';
  return showValue(value);
}

type Issue = z.core.$ZodIssue;

function translate(issue: Issue, prefix: PathSegment[], raw: unknown, out: SpecIssue[]): void {
  const path = [...prefix, ...(issue.path as PathSegment[])];
  const value = valueAt(raw, path);
  const isSecret = path[0] === 'secrets';
  const push = (message: string, hint = hintAt(path), extra: Partial<SpecIssue> = {}) => {
    const entry: SpecIssue = { path, message, ...extra };
    if (hint !== undefined) entry.hint = hint;
    if (isSecret) entry.hideFound = true;
    out.push(entry);
  };

  if (isSecret && path.length === 1 && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    push('is a mapping with values; secrets lists names only', secretsHint(), { hideFound: true });
    return;
  }
  if (isSecret && path.length === 2 && issue.code !== 'unrecognized_keys') {
    if (typeof value === 'string' && value.includes('=')) {
      push('holds a value; secrets lists names only', secretsHint());
    } else if (value !== null && typeof value === 'object') {
      push('holds a value; secrets lists names only', secretsHint());
    } else {
      push('is not an UPPER_SNAKE_CASE name', 'secret names use A-Z, 0-9 and "_", e.g. HF_TOKEN');
    }
    return;
  }

  if (
    value === undefined &&
    (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union')
  ) {
    push('is required', hintAt(path) ?? exampleHint(path));
    return;
  }

  switch (issue.code) {
    case 'invalid_type': {
      let hint = hintAt(path);
      if ((issue.expected === 'number' || issue.expected === 'int') && typeof value === 'string') {
        const n = Number(value);
        if (value.trim() !== '' && Number.isFinite(n)) hint = `write it without quotes: ${value.trim()}`;
      }
      push(`expected ${describeExpected(issue.expected)}, found ${describeFound(value)}`, hint);
      return;
    }
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(path);
      for (const key of issue.keys) out.push(unknownKeyIssue(path, key, allowed));
      return;
    }
    case 'invalid_union': {
      // A branch that got past the type check (issues deeper down or about keys) is the one the user meant.
      const meant = issue.errors.find(
        (branch) =>
          branch.length > 0 &&
          !branch.some(
            (i) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value'),
          ),
      );
      if (meant !== undefined) {
        for (const inner of meant) translate(inner, path, raw, out);
        return;
      }
      push(`${issue.message}, found ${describeFound(value)}`);
      return;
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => String(v));
      if (values.length === 1) {
        push(`must be ${showValue(issue.values[0])}, found ${describeFound(value)}`);
        return;
      }
      const guess =
        typeof value === 'string'
          ? ((path[path.length - 1] === 'datatype' ? DATATYPE_ALIASES[value.toLowerCase()] : undefined) ??
            closest(value, values))
          : undefined;
      push(
        `${describeFound(value)} is not one of ${values.join(', ')}`,
        guess === undefined ? hintAt(path) : `did you mean ${guess}?`,
      );
      return;
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = small
        ? (issue as { minimum: number | bigint }).minimum
        : (issue as { maximum: number | bigint }).maximum;
      const inclusive = issue.inclusive !== false;
      if (!/^Too (small|big)/.test(issue.message)) {
        push(issue.message); // a message written in the schema
        return;
      }
      if (issue.origin === 'string') {
        push(
          small
            ? Number(limit) <= 1
              ? 'is empty'
              : `is shorter than ${limit} characters`
            : `is longer than ${limit} characters`,
        );
      } else if (issue.origin === 'array') {
        push(
          small
            ? `needs at least ${limit} item${Number(limit) === 1 ? '' : 's'}`
            : `has more than ${limit} items`,
        );
      } else {
        const bound = small ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than';
        push(`${describeFound(value)} is too ${small ? 'small' : 'large'}; it must be ${bound} ${limit}`);
      }
      return;
    }
    case 'invalid_format':
      push(`${describeFound(value)} ${issue.message}`);
      return;
    case 'invalid_key': {
      const key = path[path.length - 1];
      const inner = issue.issues[0];
      const keyPath = path.slice(0, -1);
      const hint = schemasAt(keyPath)
        .flatMap((s) => expand(s))
        .map((s) => defOf(s) as Def & { keyType?: z.ZodType })
        .map((d) => (d.keyType === undefined ? undefined : hints.get(d.keyType)?.hint))
        .find((h) => h !== undefined);
      const entry: SpecIssue = {
        path,
        message: `${showValue(String(key))} ${inner?.message ?? 'is not a valid key'}`,
        atKey: true,
      };
      if (hint !== undefined) entry.hint = hint;
      out.push(entry);
      return;
    }
    case 'custom': {
      const hint = (issue.params as { hint?: string } | undefined)?.hint ?? hintAt(path);
      push(issue.message, hint);
      return;
    }
    default:
      push(issue.message);
  }
}

function secretsHint(): string {
  return 'write the names, e.g. "secrets: [HF_TOKEN]", and put the values in the secret store, never in ferry.yaml';
}

function exampleHint(path: readonly PathSegment[]): string | undefined {
  const last = path[path.length - 1];
  if (last === 'model') return 'e.g. "model: { name: iris, format: onnx, file: model.onnx }"';
  if (last === 'name' && path[0] === 'model') return 'e.g. "name: iris"';
  if (last === 'file') return 'e.g. "file: model.onnx"';
  if (last === 'shape') return 'e.g. "shape: [-1, 4]"';
  return undefined;
}

function unknownKeyIssue(parent: PathSegment[], key: string, allowed: string[]): SpecIssue {
  const path = [...parent, key];
  const where = parent.length === 0 ? 'at the top level' : `in ${joinPath(parent)}`;
  const guess = closest(key, allowed);
  let hint: string;
  if (guess !== undefined) hint = `did you mean "${guess}"? allowed ${where}: ${allowed.join(', ')}`;
  else {
    const parentPattern = joinPath(parent).replace(/\[\d+\]/g, '[]');
    const elsewhere = ALL_KEYS.find(
      (k) => k.parent !== parentPattern && closest(key, [k.key]) !== undefined && k.parent !== '',
    );
    hint =
      elsewhere === undefined
        ? `allowed ${where}: ${allowed.join(', ')}`
        : `did you mean ${elsewhere.parent.replace(/\[\]/g, '[i]')}.${elsewhere.key}? allowed ${where}: ${allowed.join(', ')}`;
  }
  return { path, message: `unknown key ${showValue(key)}`, hint, atKey: true };
}

/** "serving.batching.maxQueueDelay", "model.inputs[0].shape[1]". */
export function joinPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

// --- semantic checks (defensive: the raw document may be wrong anywhere else) ---

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const isPosInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;

function tryParse<T>(parse: (v: string | number) => T, value: unknown): T | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  try {
    return parse(value);
  } catch {
    return undefined;
  }
}

function semanticChecks(raw: Record<string, unknown>, problems: SpecIssue[], warnings: SpecIssue[]): void {
  const model = isRecord(raw.model) ? raw.model : {};
  const format = model.format;

  // Handlers must declare their tensors; onnx may read them from the model.
  if (format === 'handler') {
    for (const key of ['inputs', 'outputs'] as const) {
      if (model[key] === undefined || model[key] === null) {
        problems.push({
          path: ['model', key],
          message: `a handler model must declare its ${key}`,
          hint: `e.g. "${key}: [{ name: ${key === 'inputs' ? 'text' : 'label'}, datatype: BYTES, shape: [-1] }]"`,
        });
      }
    }
  }

  // The model file's extension matches the format.
  if (typeof model.file === 'string' && (format === 'onnx' || format === 'handler')) {
    const ext = posix.extname(model.file).toLowerCase();
    if (format === 'onnx' && ext !== '.onnx') {
      problems.push({
        path: ['model', 'file'],
        message: `${showValue(model.file)} is not an .onnx file, but model.format is onnx`,
        hint: HANDLER_EXTENSIONS.includes(ext as never)
          ? 'for a JS/TS module write "format: handler"'
          : 'name the .onnx file, e.g. "file: model.onnx"',
      });
    } else if (format === 'handler' && !HANDLER_EXTENSIONS.includes(ext as never)) {
      problems.push({
        path: ['model', 'file'],
        message: `${showValue(model.file)} is not a ${HANDLER_EXTENSIONS.join('/')} module, but model.format is handler`,
        hint: ext === '.onnx' ? 'for an ONNX model write "format: onnx"' : 'e.g. "file: handler.ts"',
      });
    }
  }

  // Tensor names are unique within inputs and within outputs.
  for (const key of ['inputs', 'outputs'] as const) {
    const list = model[key];
    if (!Array.isArray(list)) continue;
    const seen = new Map<string, number>();
    list.forEach((tensor, i) => {
      if (!isRecord(tensor) || typeof tensor.name !== 'string') return;
      const first = seen.get(tensor.name);
      if (first === undefined) seen.set(tensor.name, i);
      else {
        problems.push({
          path: ['model', key, i, 'name'],
          message: `${showValue(tensor.name)} is already the name of model.${key}[${first}]`,
          hint: 'tensor names must be unique',
        });
      }
    });
  }

  // Batching: preferred sizes fit in a batch; waiting for a batch does not eat the whole timeout.
  const serving = isRecord(raw.serving) ? raw.serving : {};
  const batching = serving.batching;
  const batchingOn = batching === true || isRecord(batching);
  if (isRecord(batching)) {
    const max =
      batching.maxBatchSize === undefined
        ? DEFAULTS.serving.batchingWhenOn.maxBatchSize
        : batching.maxBatchSize;
    if (isPosInt(max) && Array.isArray(batching.preferredBatchSizes)) {
      batching.preferredBatchSizes.forEach((size, i) => {
        if (isPosInt(size) && size > max) {
          problems.push({
            path: ['serving', 'batching', 'preferredBatchSizes', i],
            message: `${size} is more than maxBatchSize (${max})`,
            hint: 'every preferred batch size must be <= maxBatchSize',
          });
        }
      });
    }
    const delay = tryParse(parseDuration, batching.maxQueueDelay);
    const timeout =
      serving.timeout === undefined ? DEFAULTS.serving.timeoutMs : tryParse(parseDuration, serving.timeout);
    if (delay !== undefined && timeout !== undefined && timeout > 0 && delay >= timeout) {
      warnings.push({
        path: ['serving', 'batching', 'maxQueueDelay'],
        message: `${formatDuration(delay)} is not less than serving.timeout (${formatDuration(timeout)})`,
        hint: 'requests would time out while waiting for a batch; use a delay of a few milliseconds',
      });
    }
  }
  if (batchingOn) {
    const inputs = model.inputs;
    if (Array.isArray(inputs)) {
      inputs.forEach((tensor, i) => {
        if (!isRecord(tensor) || !Array.isArray(tensor.shape)) return;
        if (tensor.shape.length === 0 || (typeof tensor.shape[0] === 'number' && tensor.shape[0] !== -1)) {
          warnings.push({
            path: ['model', 'inputs', i, 'shape'],
            message: `the first dimension is not -1, but batching is on`,
            hint: 'batching stacks requests along the first dimension; declare it as -1, e.g. [-1, 4]',
          });
        }
      });
    }
  }

  // Threads beyond the CPU quota only contend.
  const resources = isRecord(raw.resources) ? raw.resources : {};
  const cpu = tryParse(parseCpu, resources.cpu);
  const concurrency = serving.concurrency === undefined ? DEFAULTS.serving.concurrency : serving.concurrency;
  if (
    cpu !== undefined &&
    isPosInt(serving.threads) &&
    isPosInt(concurrency) &&
    serving.threads * concurrency > Math.ceil(cpu)
  ) {
    warnings.push({
      path: ['serving', 'threads'],
      message: `${concurrency} worker(s) x ${serving.threads} threads is more than resources.cpu (${cpu})`,
      hint: 'use "threads: auto" to divide the CPU quota among the workers',
    });
  }

  // Examples: a request (inline or file), at most one response, unique names, inputs the model declares.
  if (Array.isArray(raw.examples)) {
    const names = new Map<string, number>();
    const declared = Array.isArray(model.inputs)
      ? new Set(model.inputs.filter(isRecord).map((t) => t.name))
      : undefined;
    raw.examples.forEach((example, i) => {
      if (!isRecord(example)) return;
      if (typeof example.name === 'string') {
        const first = names.get(example.name);
        if (first === undefined) names.set(example.name, i);
        else {
          problems.push({
            path: ['examples', i, 'name'],
            message: `${showValue(example.name)} is already the name of examples[${first}]`,
            hint: 'example names must be unique',
          });
        }
      }
      const hasRequest = example.request !== undefined;
      const hasRequestFile = example.requestFile !== undefined;
      if (hasRequest && hasRequestFile) {
        problems.push({
          path: ['examples', i, 'requestFile'],
          message: 'both request and requestFile are given',
          hint: 'keep one of them',
        });
      } else if (!hasRequest && !hasRequestFile) {
        problems.push({
          path: ['examples', i],
          message: 'has neither request nor requestFile',
          hint: 'add "request: { inputs: [...] }" or "requestFile: examples/request.json"',
        });
      }
      if (example.response !== undefined && example.responseFile !== undefined) {
        problems.push({
          path: ['examples', i, 'responseFile'],
          message: 'both response and responseFile are given',
          hint: 'keep one of them',
        });
      }
      if (
        example.tolerance !== undefined &&
        example.response === undefined &&
        example.responseFile === undefined
      ) {
        warnings.push({
          path: ['examples', i, 'tolerance'],
          message: 'is set, but the example has no response to compare',
          hint: 'add "response" or "responseFile", or remove tolerance',
        });
      }
      if (declared !== undefined && isRecord(example.request) && Array.isArray(example.request.inputs)) {
        example.request.inputs.forEach((input, j) => {
          if (isRecord(input) && typeof input.name === 'string' && !declared.has(input.name)) {
            problems.push({
              path: ['examples', i, 'request', 'inputs', j, 'name'],
              message: `${showValue(input.name)} is not one of model.inputs`,
              hint: `the model's inputs are ${[...declared].map((n) => showValue(n)).join(', ')}`,
            });
          }
        });
      }
    });
  }

  // Secrets: unique names, not also set in env.
  if (Array.isArray(raw.secrets)) {
    const seen = new Set<string>();
    const env = isRecord(raw.env) ? raw.env : {};
    raw.secrets.forEach((name, i) => {
      if (typeof name !== 'string' || !SECRET_NAME_RE.test(name)) return;
      if (seen.has(name)) {
        problems.push({
          path: ['secrets', i],
          message: `${name} is listed twice`,
          hint: 'remove the duplicate',
        });
      }
      seen.add(name);
      if (Object.hasOwn(env, name)) {
        problems.push({
          path: ['env', name],
          message: `${name} is also listed in secrets`,
          hint: 'a secret comes from the secret store; remove it from env',
          atKey: true,
          hideFound: true,
        });
      }
    });
  }
}

/**
 * `scaling:` as a whole, by the autoscaler's own rules (the API and `ferry autoscale` apply the same): each
 * problem at the field it names. Run only on a block whose every value has the right type, so a value that
 * could not be read does not pass for its default in a rule that spans fields.
 */
function scalingChecks(raw: Record<string, unknown>, problems: SpecIssue[]): void {
  if (raw.scaling === undefined) return;
  const block = ScalingSchema.safeParse(raw.scaling);
  if (!block.success) return;
  const written = isRecord(raw.scaling) ? raw.scaling : {};
  const settings = completeScaling(block.data) as ScalingSettings;
  for (const issue of settingsIssues(settings)) {
    const key = settingLabel(issue.field);
    const entry: SpecIssue = { path: ['scaling', key], message: issue.message };
    if (!Object.hasOwn(written, key)) {
      const value = settings[issue.field];
      const shown = issue.field.endsWith('Ms') ? formatDuration(value as number) : String(value);
      entry.hint = `${key} is not set, so its default (${shown}) applies: set it too`;
    }
    problems.push(entry);
  }
}

export interface ValidationResult {
  /** Present when there are no problems. */
  value?: RawSpec;
  problems: SpecIssue[];
  warnings: SpecIssue[];
}

/** Validates a raw document (the YAML as plain data): every problem at once, never throws. */
export function validateDocument(raw: unknown): ValidationResult {
  const problems: SpecIssue[] = [];
  const warnings: SpecIssue[] = [];
  if (raw === null || raw === undefined) {
    problems.push({ path: [], message: 'the file is empty', hint: 'run "ferry init" to write one' });
    return { problems, warnings };
  }
  if (!isRecord(raw)) {
    problems.push({
      path: [],
      message: `expected a mapping at the top level, found ${describeFound(raw)}`,
      hint: `start with "apiVersion: ${API_VERSION}", "kind: Model" and "model:"`,
    });
    return { problems, warnings };
  }
  const result = RawSpecSchema.safeParse(raw);
  if (!result.success) for (const issue of result.error.issues) translate(issue, [], raw, problems);
  semanticChecks(raw, problems, warnings);
  scalingChecks(raw, problems);
  if (problems.length > 0) return { problems: dedupe(problems), warnings };
  return { value: result.data, problems, warnings };
}

function dedupe(issues: SpecIssue[]): SpecIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${joinPath(issue.path)}\n${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
