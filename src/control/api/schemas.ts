/**
 * Zod schemas of the control-plane API: one per request body (strict: unknown fields are refused, so a typo
 * never passes silently), the path parameters and query strings, and the response shapes. The same schemas
 * validate requests (app.ts), generate /openapi.json (openapi.ts) and type the client (client.ts).
 *
 * Every schema that appears in the OpenAPI document is registered in `COMPONENTS` under its component name.
 * The name patterns mirror the store's checks (store.ts), which stay the last word.
 */
import { z } from 'zod';
import type { JsonValue } from '../store/store.ts';

/** Schemas shown under `#/components/schemas/<id>` in /openapi.json. */
export const COMPONENTS = z.registry<{ id: string }>();

function component<T extends z.ZodType>(id: string, schema: T): T {
  COMPONENTS.add(schema, { id });
  return schema;
}

// ---------------------------------------------------------------------------------------------- atoms

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

const nameField = (what: string) =>
  z
    .string()
    .regex(NAME_RE, {
      message: `${what}: use 1-63 lowercase letters, digits and "-", starting and ending with a letter or digit`,
    })
    .describe(`${what} (1-63 of a-z, 0-9, "-")`);

const versionField = (what: string) =>
  z
    .string()
    .regex(VERSION_RE, {
      message: `${what}: use 1-128 letters, digits, ".", "_" and "-", starting with a letter or digit`,
    })
    .describe(what);

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const JsonValueSchema: z.ZodType<JsonValue> = component(
  'JsonValue',
  z.lazy(() =>
    z.union([
      z.string(),
      z.number(),
      z.boolean(),
      z.null(),
      z.array(JsonValueSchema),
      z.record(z.string(), JsonValueSchema),
    ]),
  ),
);
const JsonObject = z.record(z.string(), JsonValueSchema);

// ---------------------------------------------------------------------------------------------- bodies

export const CreateModelBody = component(
  'CreateModelBody',
  z.strictObject({ name: nameField('Model name') }),
);

export const ARTIFACT_DIGEST = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, { message: 'an artifact digest is sha256: and 64 lowercase hex digits' })
  .describe('sha256 of the artifact tar stream');

export const AddVersionBody = component(
  'AddVersionBody',
  z.strictObject({
    version: versionField('Version'),
    image: z
      .string()
      .min(1)
      .optional()
      .describe('Image reference; a tag is pinned to its digest when the version is added'),
    artifact: ARTIFACT_DIGEST.optional().describe(
      'An artifact uploaded with PUT /v1/artifacts/{digest} (what ferry deploy <dir> sends)',
    ),
    metadata: JsonObject.optional(),
  }),
);

export const SetAliasBody = component('SetAliasBody', z.strictObject({ version: versionField('Version') }));

export const ResourcesInput = component(
  'ResourcesInput',
  z.strictObject({
    cpu: z.number().positive().nullable().optional().describe('CPU cores; null = no limit'),
    memoryBytes: z.number().int().positive().nullable().optional().describe('Bytes; null = no limit'),
    gpu: z.number().int().min(0).optional(),
  }),
);

export const StrategySchema = component(
  'Strategy',
  z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('rolling'), maxSurge: int(1, 1000).optional() }),
    z.strictObject({
      kind: z.literal('canary'),
      steps: z
        .array(z.strictObject({ percent: int(1, 100), pauseMs: z.number().int().min(0).optional() }))
        .min(1),
    }),
  ]),
);

const envField = z.record(
  z.string().regex(ENV_RE, { message: 'env keys must match [A-Za-z_][A-Za-z0-9_]*' }),
  z.string(),
);
const secretRefsField = z
  .array(z.string().regex(SECRET_RE, { message: 'use letters, digits, ".", "_" and "-"' }))
  .describe('Names of secrets the replicas get');

const scalingFields = {
  minReplicas: int(0, 1000).describe('0 allows scale to zero'),
  maxReplicas: int(1, 1000),
  metric: z.enum(['concurrency', 'rps']).describe('requests in flight (default) or requests per second'),
  target: z.number().positive().nullable().describe("per replica; null: derived from the model's capacity"),
  targetUtilization: z.number().positive().max(1),
  stableWindowMs: z.number().int().min(1000),
  panicWindowMs: z.number().int().min(1000),
  panicThreshold: z.number().gt(1).describe('2 = 200%'),
  maxScaleUpRate: z.number().min(1),
  maxScaleDownRate: z.number().min(1),
  scaleDownDelayMs: z.number().int().min(0),
  scaleToZeroGraceMs: z.number().int().min(0),
  initialScale: int(0, 1000),
  maxHeld: int(1, 100_000).describe('requests the gateway holds for a replica, per deployment'),
  maxHeldWaitMs: z.number().int().min(100).max(3_600_000).describe('longest wait of a held request'),
};
/** Some scaling settings (the defaults under them), or null: a fixed replica count. */
const scalingChange = () =>
  z
    .strictObject(Object.fromEntries(Object.entries(scalingFields).map(([k, v]) => [k, v.optional()])))
    .nullable();

const deploymentFields = {
  model: nameField('Model name'),
  version: versionField('Version or alias of the model'),
  replicas: int(0, 1000).optional().describe('Default 1'),
  resources: ResourcesInput.optional(),
  env: envField.optional(),
  secretRefs: secretRefsField.optional(),
  serving: JsonObject.optional().describe('Serving overrides (batching, concurrency, timeouts)'),
  strategy: StrategySchema.optional(),
  public: z
    .boolean()
    .optional()
    .describe('Callable at the gateway without a token. Default false: an invoker token or key is needed'),
};

export const DeployBody = component(
  'DeployBody',
  z.strictObject({
    name: nameField('Deployment name'),
    ...deploymentFields,
    replicas: int(0, 1000)
      .optional()
      .describe(
        'Default 1; autoscaled: initialScale (kept within minReplicas..maxReplicas), and a count given must lie in that range',
      ),
    scaling: scalingChange()
      .optional()
      .describe(
        "autoscaling settings over the defaults, over the version's ferry.yaml scaling: block; null: a fixed replica count whatever the file says; left out: the file's block, if any (docs/autoscaling.md)",
      ),
  }),
);

export const UpdateBody = component(
  'UpdateBody',
  z.strictObject({
    model: deploymentFields.model.optional(),
    version: deploymentFields.version.optional(),
    replicas: deploymentFields.replicas,
    resources: deploymentFields.resources,
    env: deploymentFields.env,
    secretRefs: deploymentFields.secretRefs,
    serving: deploymentFields.serving,
    strategy: deploymentFields.strategy,
    public: deploymentFields.public,
  }),
);

export const ScaleBody = component('ScaleBody', z.strictObject({ replicas: int(0, 1000) }));

export const TrafficEntrySchema = component(
  'TrafficEntry',
  z.strictObject({
    revision: z.number().int().min(1),
    percent: int(0, 100).describe('Share of live traffic; all entries sum to 100'),
    shadow: int(0, 100).optional().describe('Percent of requests mirrored, answers discarded'),
  }),
);

export const TrafficBody = component(
  'TrafficBody',
  z.strictObject({ traffic: z.array(TrafficEntrySchema).min(1) }),
);

export const UndoBody = component(
  'UndoBody',
  z.strictObject({
    revision: z.number().int().min(1).optional().describe('Default: the one before the serving one'),
  }),
);

export const TOKEN_ROLES = [
  'viewer',
  'deployer',
  'admin',
  'platform-admin',
  'invoker',
  'gateway',
  'metrics',
] as const;
const RateLimitSchema = component(
  'RateLimit',
  z.strictObject({
    perSecond: z.number().positive().max(1e6).describe('Sustained requests per second'),
    burst: int(1, 1e6).describe('Requests allowed at once after a quiet spell'),
  }),
);
export const CreateTokenBody = component(
  'CreateTokenBody',
  z.strictObject({
    name: nameField('Token name'),
    role: z.enum(TOKEN_ROLES),
    expiresInSeconds: int(1, 10 * 365 * 86400)
      .optional()
      .describe('Default: never expires'),
    deployment: nameField('Deployment (invoker only): a key for this one deployment').optional(),
    rateLimit: RateLimitSchema.optional().describe('invoker only: the gateway limits requests made with it'),
  }),
);

const QuotasSchema = component(
  'Quotas',
  z.strictObject({
    deployments: int(0, 1e6).optional(),
    replicas: int(0, 1e6).optional().describe('Desired replicas over all deployments'),
    cpu: z.number().min(0).max(1e6).optional().describe('CPU cores over all replicas'),
    memoryBytes: z.number().int().min(0).optional().describe('Memory over all replicas, bytes'),
  }),
);
export const CreateTenantBody = component(
  'CreateTenantBody',
  z.strictObject({ name: nameField('Tenant name'), quotas: QuotasSchema.optional() }),
);
export const SetQuotasBody = component('SetQuotasBody', z.strictObject({ quotas: QuotasSchema }));

export const SetSecretBody = component(
  'SetSecretBody',
  z.strictObject({ value: z.string().min(1).max(65536).describe('The secret value; never shown again') }),
);

export type CreateModelInput = z.infer<typeof CreateModelBody>;
export type AddVersionBodyInput = z.infer<typeof AddVersionBody>;
export type SetAliasInput = z.infer<typeof SetAliasBody>;
export type ResourcesBodyInput = z.infer<typeof ResourcesInput>;
export type DeployInput = z.infer<typeof DeployBody>;
export type MetricsHistory = z.infer<typeof MetricsHistorySchema>;
export type MetricsPoint = z.infer<typeof MetricsPointSchema>;
export type UpdateInput = z.infer<typeof UpdateBody>;
export type ScaleInput = z.infer<typeof ScaleBody>;
export type TrafficInput = z.infer<typeof TrafficBody>;
export type UndoInput = z.infer<typeof UndoBody>;
export type TokenRole = (typeof TOKEN_ROLES)[number];
export type CreateTokenInput = z.infer<typeof CreateTokenBody>;
export type CreateTenantInput = z.infer<typeof CreateTenantBody>;
export type TenantView = z.infer<typeof TenantSchema>;
export type SetSecretInput = z.infer<typeof SetSecretBody>;

// ---------------------------------------------------------------------------------------------- params, queries

export const ModelParams = z.strictObject({ model: z.string() });
export const ArtifactParams = z.strictObject({ digest: ARTIFACT_DIGEST });
export const AliasParams = z.strictObject({ model: z.string(), alias: z.string() });
export const DeploymentParams = z.strictObject({ name: z.string() });
export const TokenParams = z.strictObject({ name: z.string() });
export const SecretParams = z.strictObject({ name: z.string() });
export const TenantParams = z.strictObject({ tenant: z.string() });
export const ReplicaParams = z.strictObject({
  replica: z.string().min(1).max(253).describe("The replica's name (GET /v1/prometheus/targets lists them)"),
});

/** Query values arrive as strings. */
const queryInt = (min: number, max: number) =>
  z.string().regex(/^\d+$/, { message: 'must be a whole number' }).transform(Number).pipe(int(min, max));

export const LogsQuery = z.strictObject({
  revision: queryInt(1, Number.MAX_SAFE_INTEGER).optional(),
  tail: queryInt(0, 100_000).optional(),
  follow: z.enum(['true', 'false']).optional(),
});
export const EventsQuery = z.strictObject({
  deployment: z.string().optional(),
  limit: queryInt(1, 1000).optional(),
  before: queryInt(1, Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('only events older than this id (paging back)'),
});

/** Every list of named objects pages: at most `limit` (default and most 1000) after the name `after`. */
export const MAX_PAGE = 1000;
export const ListQuery = z.strictObject({
  limit: queryInt(1, MAX_PAGE).optional().describe(`at most this many (default ${MAX_PAGE})`),
  after: z
    .string()
    .max(253)
    .optional()
    .describe('only those after this name (the x-ferry-next-after of the last page)'),
});
export const RevisionsQuery = z.strictObject({
  limit: queryInt(1, MAX_PAGE).optional().describe(`at most this many (default ${MAX_PAGE})`),
  after: queryInt(0, Number.MAX_SAFE_INTEGER).optional().describe('only revisions numbered after this'),
});

const HEX64 = /^[0-9a-f]{64}$/;

export const AuditQuery = z.strictObject({
  limit: queryInt(1, 1000).optional().describe('at most this many (default 100)'),
  before: queryInt(1, Number.MAX_SAFE_INTEGER).optional().describe('only records older than this seq'),
  after: queryInt(0, Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('only records newer than this seq; the answer is then oldest first'),
  actor: z.string().min(1).optional().describe("a token's name, or anonymous"),
  action: z.string().min(1).optional().describe('an operationId of this document, e.g. deleteToken'),
  outcome: z.enum(['allowed', 'denied', 'failed']).optional(),
});
export const AuditVerifyQuery = z.strictObject({
  head: z
    .string()
    .regex(HEX64, { message: 'a head is the 64 hex digits of a record hash' })
    .optional()
    .describe('a head hash kept elsewhere (from an earlier verify): the log must end there'),
});

export interface AuditQueryInput {
  limit?: number;
  before?: number;
  after?: number;
  actor?: string;
  action?: string;
  outcome?: 'allowed' | 'denied' | 'failed';
}

export interface LogsQueryInput {
  revision?: number;
  tail?: number;
}
export interface EventsQueryInput {
  deployment?: string;
  limit?: number;
}

// ---------------------------------------------------------------------------------------------- responses

export const ErrorBodySchema = component(
  'Error',
  z.object({
    error: z.string().describe('What went wrong, naming the field or resource'),
    code: z.string().describe('FERRY_... code (docs/errors.md)'),
    hint: z.string().optional(),
    details: z.unknown().optional(),
  }),
);

export const OpenApiDocumentSchema = component(
  'OpenApiDocument',
  z.record(z.string(), z.unknown()).describe('An OpenAPI 3.1 document'),
);

export const HealthSchema = component('Health', z.object({ ok: z.literal(true), version: z.string() }));

export const InfoSchema = component(
  'Info',
  z.object({
    version: z.string(),
    runtime: z.enum(['process', 'docker', 'swarm']),
    gatewayUrl: z.string(),
    apiUrl: z.string().optional(),
  }),
);

export const WhoAmISchema = component(
  'WhoAmI',
  z.object({
    name: z.string().describe("the token's name (never the token)"),
    role: z.string(),
    home: z.string().describe('the tenant the token belongs to'),
    tenant: z.string().describe('the tenant this request acts in (X-Ferry-Tenant for a platform admin)'),
    access: z
      .array(z.enum(['read', 'write', 'admin', 'platform']))
      .describe('the access levels the role has (ROLES_FOR): what a client such as the dashboard offers'),
  }),
);
export type WhoAmI = z.infer<typeof WhoAmISchema>;

export const VersionSpecSchema = component(
  'VersionSpec',
  z.object({
    servedName: z.string().optional().describe('model.name in its ferry.yaml'),
    modelVersion: z.string().optional().describe('model.version in its ferry.yaml'),
    resources: z
      .object({ cpu: z.number().nullable(), memoryBytes: z.number().nullable(), gpu: z.number() })
      .optional(),
    env: z.record(z.string(), z.string()).optional(),
    secrets: z.array(z.string()).optional(),
    network: z
      .object({ egress: z.literal(true) })
      .optional()
      .describe('network.egress in its ferry.yaml (left out: sealed, no network)'),
  }),
);

export const ArtifactSchema = component(
  'Artifact',
  z.object({
    digest: z.string(),
    files: z.number().optional(),
    bytes: z.number().optional(),
    created: z.boolean().optional().describe('false when the platform had it already'),
  }),
);

export const ModelVersionSchema = component(
  'ModelVersion',
  z.object({
    model: z.string(),
    version: z.string(),
    image: z.string().nullable(),
    artifact: z.string().nullable(),
    artifactDir: z.string().nullable(),
    spec: VersionSpecSchema,
    metadata: JsonObject,
    createdAt: z.number(),
  }),
);

export const ModelSchema = component(
  'Model',
  z.object({
    name: z.string(),
    createdAt: z.number(),
    versions: z.array(ModelVersionSchema),
    aliases: z.record(z.string(), z.string()).describe('alias -> version'),
  }),
);

export const AliasResultSchema = component(
  'AliasResult',
  z.object({
    model: z.string(),
    alias: z.string(),
    version: z.string(),
    updated: z
      .array(z.object({ deployment: z.string(), revision: z.number() }))
      .describe('Deployments following the alias that got a new revision'),
  }),
);

export const ResourcesSchema = component(
  'Resources',
  z.object({ cpu: z.number().nullable(), memoryBytes: z.number().nullable(), gpu: z.number() }),
);

const StoredTrafficEntry = z.object({
  revision: z.number(),
  percent: z.number(),
  shadow: z.number().optional(),
});

export const TrafficSchema = component('Traffic', z.object({ traffic: z.array(StoredTrafficEntry) }));

export const RolloutSchema = component(
  'Rollout',
  z.object({
    deployment: z.string(),
    from: z.number(),
    to: z.number(),
    phase: z.enum(['progressing', 'paused', 'aborting', 'succeeded', 'aborted']),
    percent: z.number(),
    strategy: StrategySchema,
    step: z.number(),
    startedAt: z.number(),
    updatedAt: z.number(),
    message: z.string(),
  }),
);

export const MetricsQuery = z.strictObject({
  since: queryInt(0, Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('only points after this time (ms since the epoch)'),
});

export const MetricsPointSchema = component(
  'MetricsPoint',
  z.object({
    t: z.number().describe('end of the step, ms since the epoch'),
    rps: z.number().describe('requests/s answered at the gateway in the step'),
    p50: z.number().nullable().describe('seconds; null when no request ended in the step or not known'),
    p99: z.number().nullable(),
    codes: z.record(z.string(), z.number()).describe('requests/s by HTTP status code'),
    replicas: z.number().describe('ready replicas at t'),
    batchSize: z.number().nullable().describe('mean samples per model call in the step; null when no call'),
    queueDepth: z.number().nullable().describe("sum of the replicas' queue depths at t; null when not read"),
    coldStarts: z.number().describe('cold starts completed in the step'),
  }),
);

export const MetricsHistorySchema = component(
  'MetricsHistory',
  z.object({
    deployment: z.string(),
    stepMs: z.number(),
    windowMs: z.number(),
    source: z
      .enum(['scraped', 'gateway-reports'])
      .describe("gateway-reports (Docker Swarm): rps and replicas only, from the gateways' load reports"),
    revisions: z.array(z.object({ revision: z.number(), points: z.array(MetricsPointSchema) })),
  }),
);

export const RolloutEnvelopeSchema = component(
  'RolloutEnvelope',
  z.object({ rollout: RolloutSchema.nullable().describe('null when no rollout is in progress') }),
);

export const ReplicaSchema = component(
  'Replica',
  z.object({
    id: z.string(),
    name: z.string(),
    revision: z.number(),
    index: z.number(),
    state: z.enum(['starting', 'ready', 'failed', 'exited']),
    url: z.string(),
    startedAt: z.number(),
    exitCode: z.number().optional(),
    restarts: z.number(),
    node: z.string().optional().describe('the machine it runs on (swarm: the node hostname)'),
  }),
);

export const ConditionSchema = component(
  'Condition',
  z.object({
    type: z.string(),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string(),
    message: z.string(),
    since: z.number(),
  }),
);

export const CrashSchema = component(
  'Crash',
  z
    .object({
      replica: z.string(),
      revision: z.number(),
      exitCode: z.number().optional(),
      at: z.number(),
      logTail: z.array(z.string()).describe('Its last log lines (at most 10)'),
    })
    .describe("The newest crash of one of the deployment's replicas"),
);

export const ColdStartSchema = component(
  'ColdStart',
  z
    .object({
      revision: z.number(),
      replica: z.string(),
      at: z.number().describe('When the autoscaler decided to start it from zero (ms since the epoch)'),
      totalMs: z.number().describe('Decision to the held requests released to the ready replica'),
      phases: z
        .object({
          image: z
            .number()
            .nullable()
            .describe('waiting for its image (docker), when it was still being built or pulled; else null'),
          start: z.number().nullable(),
          boot: z.number().nullable(),
          load: z.number().nullable(),
          warmup: z.number().nullable(),
          ready: z.number().nullable(),
          release: z.number().nullable(),
        })
        .describe('ms per phase (docs/autoscaling.md, Cold starts); null: not reported by the replica'),
      held: z.number().describe('Requests held at zero when the replica took traffic'),
    })
    .describe('The newest start of the deployment from zero replicas, in phases'),
);

export const ScalingSchema = component(
  'Scaling',
  z.object(scalingFields).describe('autoscaling settings (docs/autoscaling.md)'),
);
export const ScalingBody = component(
  'ScalingBody',
  z.strictObject({
    scaling: scalingChange().describe(
      'the settings to change (the defaults under them); null: back to a fixed replica count',
    ),
  }),
);

const deploymentShape = {
  name: z.string(),
  model: z.string(),
  versionRef: z.string(),
  replicas: z.number(),
  resources: ResourcesSchema,
  env: z.record(z.string(), z.string()),
  secretRefs: z.array(z.string()),
  serving: JsonObject,
  public: z.boolean().describe('callable at the gateway without a token'),
  scaling: ScalingSchema.nullable().describe('autoscaling settings; null: a fixed replica count'),
  revision: z.number(),
  createdAt: z.number(),
  updatedAt: z.number(),
};

export const RevisionProblemSchema = component(
  'RevisionProblem',
  z.object({
    reason: z.string().describe('ModelLoadFailed, CrashLoop, SecretMissing, NoArtifact, NoImage, ...'),
    message: z.string(),
    fatal: z.boolean().describe('it will not fix itself: a rollout to the revision aborts'),
    since: z.number(),
  }),
);

export const RevisionStatusSchema = component(
  'RevisionStatus',
  z.object({
    revision: z.number(),
    desired: z.number(),
    ready: z.number(),
    percent: z.number(),
    problem: RevisionProblemSchema.nullable(),
    replicaLimit: z
      .number()
      .nullable()
      .describe(
        'requests one replica takes before it sheds them (503 FERRY_QUEUE_FULL), as its replicas report; the gateway holds the rest (autoscaled deployments; null: not known)',
      ),
  }),
);

const deploymentViewShape = {
  ...deploymentShape,
  tenant: z.string(),
  strategy: StrategySchema,
  traffic: z.array(StoredTrafficEntry),
  trafficTarget: z
    .object({ entries: z.array(StoredTrafficEntry), requestedAt: z.number() })
    .nullable()
    .describe('a split asked for that waits for its revisions to be ready'),
  revisionStatus: z.array(RevisionStatusSchema),
  runtime: z.enum(['process', 'docker', 'swarm']),
  rollout: RolloutSchema.nullable(),
  replicaStatus: z.array(ReplicaSchema),
  conditions: z.array(ConditionSchema),
  lastCrash: CrashSchema.nullable(),
  lastColdStart: ColdStartSchema.nullable(),
  endpoint: z.string(),
};

export const DeploymentViewSchema = component('DeploymentView', z.object(deploymentViewShape));

export const RevisionSpecSchema = component(
  'RevisionSpec',
  z.object({
    model: z.string(),
    version: z.string(),
    image: z.string().nullable(),
    artifactDir: z.string().nullable(),
    resources: ResourcesSchema,
    env: z.record(z.string(), z.string()),
    secretRefs: z.array(z.string()),
    secretVersions: z
      .record(z.string(), z.number())
      .optional()
      .describe('the version of each secret the revision was made with (its replicas get those values)'),
    network: z
      .object({ egress: z.literal(true) })
      .optional()
      .describe('egress: true gives replicas a network'),
    serving: JsonObject,
  }),
);

export const RevisionSchema = component(
  'Revision',
  z.object({
    deployment: z.string(),
    number: z.number(),
    specHash: z.string(),
    image: z.string(),
    replicas: z.number(),
    createdAt: z.number(),
    versionRef: z.string(),
    spec: RevisionSpecSchema,
    settings: z
      .object({
        resources: ResourcesSchema,
        env: z.record(z.string(), z.string()),
        secretRefs: z.array(z.string()),
        serving: JsonObject,
      })
      .describe("the deployment's own settings when the revision was made (undo puts them back)"),
  }),
);

export const EventSchema = component(
  'Event',
  z.object({
    id: z.number(),
    deployment: z.string().optional(),
    tenant: z.string().optional(),
    type: z.enum(['Normal', 'Warning']),
    reason: z.string(),
    message: z.string(),
    at: z.number(),
  }),
);

export const DescribeViewSchema = component(
  'DescribeView',
  z.object({ ...deploymentViewShape, revisions: z.array(RevisionSchema), events: z.array(EventSchema) }),
);

export const LogLineSchema = component(
  'LogLine',
  z.object({
    at: z.number(),
    replica: z.string(),
    revision: z.number(),
    stream: z.enum(['stdout', 'stderr']),
    line: z.string(),
  }),
);

const secretShape = {
  name: z.string(),
  version: z.number().describe('1, 2, ...: each set makes a new version'),
  createdAt: z.number(),
  updatedAt: z.number(),
};
export const SecretSchema = component('Secret', z.object(secretShape));

export const SecretSetSchema = component(
  'SecretSet',
  z.object({
    ...secretShape,
    rolledOut: z
      .array(z.object({ deployment: z.string(), revision: z.number() }))
      .describe('deployments that used an older version: each rolls out a new revision with this one'),
  }),
);
export type SecretSetResult = z.infer<typeof SecretSetSchema>;

export const KeyRotationSchema = component(
  'KeyRotation',
  z.object({
    keyId: z.string().describe("the new key's id (never the key)"),
    resealed: z.number().describe('sealed values (secret versions) sealed again under it'),
  }),
);
export type KeyRotation = z.infer<typeof KeyRotationSchema>;

const tokenShape = {
  id: z.string(),
  name: z.string(),
  tenant: z.string(),
  role: z.string(),
  createdAt: z.number(),
  expiresAt: z.number().nullable(),
  deployment: z.string().nullable(),
  rateLimit: z.object({ perSecond: z.number(), burst: z.number() }).nullable(),
};
export const TokenSchema = component('Token', z.object(tokenShape));

export const CreatedTokenSchema = component(
  'CreatedToken',
  z.object({
    ...tokenShape,
    token: z.string().describe('The plain token; shown once, only its hash is stored'),
  }),
);

export const TenantSchema = component(
  'Tenant',
  z.object({
    name: z.string(),
    createdAt: z.number(),
    quotas: z.object({
      deployments: z.number().optional(),
      replicas: z.number().optional(),
      cpu: z.number().optional(),
      memoryBytes: z.number().optional(),
    }),
    usage: z
      .object({ deployments: z.number(), replicas: z.number(), cpu: z.number(), memoryBytes: z.number() })
      .describe("what the tenant's deployments use now"),
  }),
);

export const AuditEntrySchema = component(
  'AuditEntry',
  z.object({
    seq: z.number().describe('1, 2, 3, ... in the order written'),
    at: z.string().describe('ISO 8601 time of the answer'),
    actor: z.string().describe("the token's name (never the token), or anonymous"),
    role: z.string().optional().describe("the token's role"),
    tenant: z.string(),
    action: z.string().describe('the operationId of the route'),
    object: z.string().describe('what it was asked of, from the path (names only), e.g. deployments/iris'),
    outcome: z.enum(['allowed', 'denied', 'failed']).describe('denied: 401 or 403; failed: any other error'),
    status: z.number().optional().describe('the HTTP status answered'),
    code: z.string().optional().describe('the FERRY_... code of an error answer'),
    source: z.string().describe("the client's address"),
    requestId: z.string().describe('the x-request-id the client sent (when usable) or the one the API gave'),
    prevHash: z.string().describe("the previous record's hash (64 zeros for the first)"),
    hash: z.string().describe('sha256 of prevHash, seq and the record as canonical JSON'),
  }),
);

const AuditHeadSchema = z.object({ seq: z.number(), hash: z.string() });

const DiscoveryServiceSchema = z
  .union([
    z.object({ host: z.string(), port: z.number() }).describe('A and AAAA records of host, at port'),
    z.object({ srv: z.string() }).describe('SRV records, then their targets'),
  ])
  .describe("where the revision's replicas are found (Swarm: tasks.<service>)");

/** GET /v1/prometheus/targets: one target group of Prometheus's HTTP service discovery (http_sd_configs). */
export const PrometheusTargetGroupSchema = component(
  'PrometheusTargetGroup',
  z.object({
    targets: z.array(z.string()).describe('host:port to scrape'),
    labels: z
      .record(z.string(), z.string())
      .describe(
        '__metrics_path__, ferry_component (gateway, control-plane, replica); replicas: tenant, deployment, revision, replica, model, instance',
      ),
  }),
);

export const RouteFileSchema = component(
  'RouteFile',
  z
    .object({
      deployments: z.array(
        z.object({
          name: z.string().describe("the deployment's plain name"),
          tenant: z.string().optional().describe('left out: the default tenant'),
          public: z.boolean().optional().describe('true: callable without a token'),
          activator: z
            .object({ maxHeld: z.number(), maxWaitMs: z.number(), replicaCapacity: z.number().optional() })
            .optional(),
          revisions: z.array(
            z.object({
              revision: z.number(),
              percent: z.number().describe('share of live traffic, 0-100'),
              shadow: z.number().describe('percent of requests mirrored to it'),
              servedName: z.string().describe('the model name its replicas serve'),
              starting: z.number().optional(),
              unavailable: z.string().optional(),
              replicaLimit: z.number().optional(),
              idle: z
                .boolean()
                .optional()
                .describe(
                  'true: no replica runs now (scaled to zero); its requests are held, its service not looked up',
                ),
              service: DiscoveryServiceSchema,
            }),
          ),
        }),
      ),
      callers: z
        .array(
          z.object({
            id: z.string().describe("the token's id"),
            hash: z.string().describe('sha256 of the token, lowercase hex (never the token)'),
            tenant: z.string(),
            deployment: z.string().optional().describe("a deployment key's deployment"),
            rateLimit: z.object({ perSecond: z.number(), burst: z.number() }).optional(),
            expiresAt: z.number().optional().describe('ms since the epoch'),
          }),
        )
        .optional()
        .describe('who may call private deployments'),
    })
    .describe(
      "The gateways' route file (a discovery table, src/core/route-table.ts): every tenant's routes, each revision naming a DNS service",
    ),
);

export const AuditVerificationSchema = component(
  'AuditVerification',
  z.object({
    ok: z.boolean(),
    checked: z.number().describe('records checked and found intact'),
    head: AuditHeadSchema.describe('the newest record (seq 0 when the log is empty)'),
    kept: AuditHeadSchema.nullable().describe('the head kept beside the database, if any'),
    brokenAt: z
      .object({ seq: z.number(), reason: z.string() })
      .optional()
      .describe('where the chain breaks and why'),
    warning: z.string().optional(),
  }),
);

export type Health = z.infer<typeof HealthSchema>;
export type Info = z.infer<typeof InfoSchema>;
export type AliasResult = z.infer<typeof AliasResultSchema>;
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** POST /v1/gateway/load: what one gateway counted since its last report (src/control/gateway-load.ts). */
export const GatewayLoadBody = component(
  'GatewayLoadBody',
  z.strictObject({
    gateway: z.string().min(1).max(200).describe('which gateway (its task or host name)'),
    samples: z
      .array(
        z.strictObject({
          deployment: z.string().min(1).max(300),
          revision: z.number().int().min(1),
          at: z.number(),
          periodMs: z.number().positive(),
          concurrency: z.number().min(0),
          arrivals: z.number().int().min(0),
        }),
      )
      .max(10_000),
    held: z
      .array(z.strictObject({ deployment: z.string().min(1).max(300), held: z.number().int().min(0) }))
      .max(10_000),
  }),
);
