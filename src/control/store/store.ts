/**
 * The control plane's desired state in SQLite (WAL): models and their versions and aliases, deployments
 * with immutable numbered revisions, traffic weights, events, API tokens. Synchronous (better-sqlite3):
 * every call is a short local transaction, so there is no interleaving to reason about within a process;
 * other processes opening the same file are serialised by SQLite (WAL + busy timeout).
 *
 * A revision is a snapshot of everything that shapes a replica: the resolved model version and its image
 * or artifact directory, resources, env, secret names, serving options. Its spec hash is the sha256 of that
 * snapshot as canonical JSON. The replica count is NOT part of it: scaling keeps the revision (and the
 * replicas already running, whose spec-hash label stays valid); the revision records the count it was
 * created with.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { DEFAULT_SETTINGS, scalingSettings } from '../../autoscaler/settings.ts';
import type { ScalingSettings } from '../../autoscaler/types.ts';
import { FerryError } from '../../core/errors.ts';
import { DEFAULT_TENANT, qualify, splitKey } from '../../core/tenant.ts';
import type { Revision } from '../types.ts';
import { type AuditLog, openAuditLog } from './audit-log.ts';
import { MIGRATIONS } from './migrations.ts';
import { type SealedVersion, type SecretRecord, secretTable } from './secret-versions.ts';
import { type Quotas, type TenantRecord, tenantTable } from './tenants.ts';
import {
  type CreatedToken,
  type InvokerKey,
  type TokenOptions,
  type TokenRecord,
  tokenTable,
  type VerifiedToken,
} from './tokens.ts';

export type {
  CreatedToken,
  InvokerKey,
  Quotas,
  SealedVersion,
  SecretRecord,
  TenantRecord,
  TokenOptions,
  TokenRecord,
  VerifiedToken,
};

// ---------------------------------------------------------------------------------------------- types

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ModelVersion {
  model: string;
  version: string;
  /** Image reference, pinned by digest (`registry/name@sha256:...`) or an engine image ID (`sha256:...`). */
  image: string | null;
  /** The artifact the version was made from (`sha256:<hex>`, see artifacts.ts); null for an image-only version. */
  artifact: string | null;
  /** The artifact's directory, read-only (the process runtime serves it); null for an image-only version. */
  artifactDir: string | null;
  /** What the version's ferry.yaml says about running it; a deployment's own settings override it. */
  spec: VersionSpec;
  metadata: Record<string, JsonValue>;
  createdAt: number;
}

/** The parts of a version's ferry.yaml that shape a replica (all optional: an image may not say). */
export interface VersionSpec {
  /** The model name the version's server serves (model.name), when it differs from the model's name here. */
  servedName?: string;
  /** model.version in ferry.yaml: what the server reports as model_version. */
  modelVersion?: string;
  /** resources of ferry.yaml (null: not set there). */
  resources?: { cpu: number | null; memoryBytes: number | null; gpu: number };
  env?: Record<string, string>;
  /** Secret names (secrets: of ferry.yaml). */
  secrets?: string[];
  /** network: of ferry.yaml, kept only when it asks for egress. */
  network?: { egress: true };
  /**
   * scaling: of ferry.yaml, completed (absent: no block). Not part of any revision: a deployment is created
   * autoscaled on it, and a later deploy applies it when it differs from the previous version's (commands.ts).
   */
  scaling?: ScalingSettings;
}

export interface AddVersionInput {
  version: string;
  image?: string;
  artifact?: string;
  artifactDir?: string;
  spec?: VersionSpec;
  metadata?: Record<string, JsonValue>;
}

export interface ModelRecord {
  name: string;
  createdAt: number;
  versions: ModelVersion[];
  /** alias -> version */
  aliases: Record<string, string>;
}

export interface DeploymentResources {
  /** CPU cores; null = no limit. */
  cpu: number | null;
  /** Memory in bytes; null = no limit. */
  memoryBytes: number | null;
  gpu: number;
}

/** What a user asks for. `versionRef` is a version or an alias the deployment follows. */
export interface DeploymentInput {
  name: string;
  model: string;
  versionRef: string;
  replicas: number;
  resources?: Partial<DeploymentResources>;
  env?: Record<string, string>;
  /** Names of secrets the replicas get; values live elsewhere. Order and duplicates do not matter. */
  secretRefs?: string[];
  /** Serving overrides (batching, concurrency, timeouts), stored as given. */
  serving?: Record<string, JsonValue>;
  /** Callable at the gateway without a token. Default false: private (an invoker token or key is needed). */
  public?: boolean;
}

export type DeploymentPatch = Partial<Omit<DeploymentInput, 'name'>>;

/** Everything that shapes a replica; its canonical JSON's sha256 is the revision's spec hash. */
export interface RevisionSpec {
  model: string;
  /** The concrete version the ref resolved to when the revision was made. */
  version: string;
  image: string | null;
  artifactDir: string | null;
  resources: DeploymentResources;
  env: Record<string, string>;
  secretRefs: string[];
  /**
   * The version of each secret in secretRefs that was set when the revision was made: its replicas get those
   * values (a secret not set then is left out, and its replicas get the newest once it is set). Left out when
   * there are no secretRefs, so revisions without secrets keep the hash they had before versions existed.
   */
  secretVersions?: Record<string, number>;
  serving: Record<string, JsonValue>;
  /** Replicas may connect to other machines (the version's ferry.yaml `network.egress`); absent: sealed. */
  network?: { egress: true };
}

/** A stored revision: the reconciler's `Revision` plus what it was made from. */
export interface StoredRevision extends Revision {
  /** The version or alias the deployment asked for when this revision was made. */
  versionRef: string;
  spec: RevisionSpec;
  /**
   * The deployment's own settings when this revision was made (before the version's ferry.yaml and the
   * defaults filled the gaps): what `undo` puts back, so that it does not pin what the file only suggested.
   */
  settings: DeploymentSettings;
}

/** What a deployment itself asks for (null and empty: let the version's ferry.yaml, then the defaults, say). */
export interface DeploymentSettings {
  resources: DeploymentResources;
  env: Record<string, string>;
  secretRefs: string[];
  serving: Record<string, JsonValue>;
}

export interface Deployment {
  name: string;
  model: string;
  versionRef: string;
  /** Current desired replica count (may differ from the count its revision was created with). */
  replicas: number;
  resources: DeploymentResources;
  env: Record<string, string>;
  secretRefs: string[];
  serving: Record<string, JsonValue>;
  /** Callable at the gateway without a token (not part of any revision: changing it starts no rollout). */
  public: boolean;
  /**
   * Autoscaling settings (issue 11); null: a fixed replica count. When set, `replicas` is what the autoscaler
   * last decided. Not part of any revision: changing it starts no rollout.
   */
  scaling: ScalingSettings | null;
  /** The newest revision number. */
  revision: number;
  createdAt: number;
  updatedAt: number;
}

export interface UpdateResult {
  deployment: Deployment;
  revision: StoredRevision;
  /** True when the effective spec changed and `revision` is new. */
  created: boolean;
}

export interface AliasMoveResult {
  /** Deployments following the alias that got a new revision. */
  updated: Array<{ deployment: string; revision: number }>;
}

export interface TrafficEntry {
  revision: number;
  /** Share of live traffic, integer 0..100; all entries sum to 100. */
  percent: number;
  /** Percent (0..100) of requests mirrored to this revision, answers discarded. */
  shadow?: number;
}

/** A split waiting to be applied (see Store.setTrafficTarget). */
export interface TrafficTarget {
  entries: TrafficEntry[];
  requestedAt: number;
}

export type EventType = 'Normal' | 'Warning';

export interface EventInput {
  /** The deployment's key; its tenant is the event's. */
  deployment?: string;
  /** For an event without a deployment; default: the deployment's tenant, else the default tenant. */
  tenant?: string;
  type: EventType;
  /** CamelCase, machine-readable (e.g. `RevisionCreated`). */
  reason: string;
  message: string;
  /** ms since epoch */
  at: number;
}

export interface EventRecord extends EventInput {
  id: number;
}

/** A deployment's rollout as stored: the pure state machine's state and the strategy it runs with. */
export interface StoredRollout {
  deployment: string;
  /** RolloutState of rollout.ts, stored as given. */
  state: JsonValue;
  strategy: JsonValue;
  startedAt: number;
  updatedAt: number;
}

export interface StoreOptions {
  /** Events kept per deployment (and for events without one); older ones are dropped. Default 1000. */
  eventsPerDeployment?: number;
  /** Clock for created/updated timestamps (ms). Default Date.now. */
  now?: () => number;
  /** How long a write waits for another process's lock, ms. Default 5000. */
  busyTimeoutMs?: number;
}

export interface Store {
  readonly path: string;
  // Every name below is a key (src/core/tenant.ts): the plain name in the default tenant, tenant/name elsewhere.
  // models
  createModel(name: string): ModelRecord;
  getModel(name: string): ModelRecord | undefined;
  /** Every model, or those of one tenant. */
  listModels(tenant?: string): ModelRecord[];
  addVersion(model: string, input: AddVersionInput): ModelVersion;
  /** Points `alias` at `version`; deployments following the alias get a new revision. */
  setAlias(model: string, alias: string, version: string): AliasMoveResult;
  resolveVersion(model: string, versionOrAlias: string): ModelVersion;
  // deployments
  createDeployment(input: DeploymentInput): UpdateResult;
  updateDeployment(name: string, patch: DeploymentPatch): UpdateResult;
  getDeployment(name: string): Deployment | undefined;
  /** Every deployment, or those of one tenant. */
  listDeployments(tenant?: string): Deployment[];
  /** Oldest first. */
  listRevisions(name: string): StoredRevision[];
  getRevision(name: string, number: number): StoredRevision | undefined;
  deleteDeployment(name: string): void;
  // traffic
  setTraffic(deployment: string, entries: TrafficEntry[]): TrafficEntry[];
  getTraffic(deployment: string): TrafficEntry[];
  /**
   * A split asked for by hand that waits until the revisions it gives traffic to have ready replicas (checked
   * like setTraffic); null clears it. The controller applies it with setTraffic when they are ready.
   */
  setTrafficTarget(deployment: string, entries: TrafficEntry[] | null): TrafficTarget | undefined;
  getTrafficTarget(deployment: string): TrafficTarget | undefined;
  /** Makes the waiting split the split in effect and clears it, in one transaction. */
  applyTrafficTarget(deployment: string): TrafficEntry[];
  // rollouts
  /** The strategy new revisions of this deployment roll out with (default `{"kind":"rolling"}`). */
  getStrategy(deployment: string): JsonValue;
  setStrategy(deployment: string, strategy: JsonValue): void;
  getRollout(deployment: string): StoredRollout | undefined;
  /** Starts (replaces) or advances the deployment's rollout; `startedAt` is kept when `state` continues one. */
  saveRollout(
    deployment: string,
    rollout: { state: JsonValue; strategy: JsonValue; startedAt: number },
  ): StoredRollout;
  /** The running rollout's next state; its strategy and start stay. FERRY_NOT_FOUND when there is none. */
  setRolloutState(deployment: string, state: JsonValue): StoredRollout;
  // secrets, versioned (secret-versions.ts; sealed by the caller, the store keeps opaque bytes)
  /** A new version of the secret. */
  putSecret(name: string, sealed: Uint8Array): SecretRecord;
  /** A version's sealed bytes (default: the newest). */
  getSealedSecret(name: string, version?: number): Uint8Array | undefined;
  secretVersion(name: string): number | undefined;
  sealedVersions(): SealedVersion[];
  resealSecret(name: string, version: number, sealed: Uint8Array): boolean;
  /** Every secret, or those of one tenant. */
  listSecrets(tenant?: string): SecretRecord[];
  deleteSecret(name: string): boolean;
  // events
  addEvent(event: EventInput): EventRecord;
  /** Newest first. */
  listEvents(query?: { deployment?: string; tenant?: string; limit?: number }): EventRecord[];
  // tokens (tokens.ts)
  createToken(name: string, role: string, options?: TokenOptions): CreatedToken;
  verifyToken(plain: string): VerifiedToken | null;
  listTokens(tenant?: string): TokenRecord[];
  deleteToken(name: string): boolean;
  /** Revokes the keys made for one deployment (given by its key); how many. */
  deleteDeploymentKeys(deployment: string): number;
  /** Invoker tokens not expired, for the gateway. */
  invokerKeys(): InvokerKey[];
  // tenants (tenants.ts)
  getTenant(name: string): TenantRecord | undefined;
  listTenants(): TenantRecord[];
  createTenant(name: string, quotas?: Quotas): TenantRecord;
  setQuotas(name: string, quotas: Quotas): TenantRecord;
  deleteTenant(name: string): void;
  /** Records that `tenant` uploaded this artifact (it may then see it and name it in versions). */
  ownArtifact(digest: string, tenant: string): void;
  ownsArtifact(digest: string, tenant: string): boolean;
  /**
   * Turns autoscaling on with these settings (the defaults under what is given, checked: FERRY_BAD_REQUEST
   * naming every problem) or off (null). Returns the deployment.
   */
  setScaling(name: string, scaling: Partial<ScalingSettings> | null): Deployment;
  /** The autoscaler's decision for a deployment: its desired replicas (changes no revision). */
  setDesiredReplicas(name: string, replicas: number): void;
  /** Runs `fn` in one write transaction: when it throws, every change it made is undone. */
  transaction<T>(fn: () => T): T;
  // audit log (append-only, hash-chained: audit-log.ts)
  readonly audit: AuditLog;
  // lifecycle
  /** Migration numbers applied by this open (empty when the file was up to date). */
  readonly appliedMigrations: readonly number[];
  close(): void;
}

// ---------------------------------------------------------------------------------------------- errors

const NOT_FOUND = 'FERRY_NOT_FOUND' as const;
const CONFLICT = 'FERRY_CONFLICT' as const;

function badRequest(message: string, hint?: string): FerryError {
  return new FerryError('FERRY_BAD_REQUEST', message, hint === undefined ? {} : { hint });
}

// ---------------------------------------------------------------------------------------------- validation

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const MAX_REPLICAS = 1000;

function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_RE.test(value)) {
    throw badRequest(
      `${what} ${JSON.stringify(value)} is not a valid name`,
      'Use 1-63 lowercase letters, digits and "-", starting and ending with a letter or digit.',
    );
  }
  return value;
}

/** A key: a name, or tenant/name (src/core/tenant.ts), each part a valid name. */
function checkKey(what: string, value: unknown): string {
  if (typeof value !== 'string') return checkName(what, value);
  const { tenant, name } = splitKey(value);
  if (tenant !== DEFAULT_TENANT) checkName('Tenant name', tenant);
  checkName(what, name);
  return value;
}

function checkVersion(what: string, value: unknown): string {
  if (typeof value !== 'string' || !VERSION_RE.test(value)) {
    throw badRequest(
      `${what} ${JSON.stringify(value)} is not valid`,
      'Use 1-128 letters, digits, ".", "_" and "-", starting with a letter or digit.',
    );
  }
  return value;
}

function checkReplicas(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_REPLICAS) {
    throw badRequest(
      `replicas ${JSON.stringify(value)} is not allowed`,
      `Use an integer from 0 to ${MAX_REPLICAS}.`,
    );
  }
  return value;
}

function checkResources(value: Partial<DeploymentResources> | undefined): DeploymentResources {
  const r = value ?? {};
  if (typeof r !== 'object' || r === null) throw badRequest('resources must be an object');
  const cpu = r.cpu ?? null;
  const memoryBytes = r.memoryBytes ?? null;
  const gpu = r.gpu ?? 0;
  if (cpu !== null && (typeof cpu !== 'number' || !Number.isFinite(cpu) || cpu <= 0)) {
    throw badRequest(
      `resources.cpu ${JSON.stringify(cpu)} is not allowed`,
      'Use a positive number of cores or null.',
    );
  }
  if (
    memoryBytes !== null &&
    (typeof memoryBytes !== 'number' || !Number.isSafeInteger(memoryBytes) || memoryBytes <= 0)
  ) {
    throw badRequest(
      `resources.memoryBytes ${JSON.stringify(memoryBytes)} is not allowed`,
      'Use a positive integer number of bytes or null.',
    );
  }
  if (typeof gpu !== 'number' || !Number.isInteger(gpu) || gpu < 0) {
    throw badRequest(`resources.gpu ${JSON.stringify(gpu)} is not allowed`, 'Use an integer >= 0.');
  }
  return { cpu, memoryBytes, gpu };
}

function checkEnv(value: Record<string, string> | undefined): Record<string, string> {
  const env = value ?? {};
  if (typeof env !== 'object' || env === null || Array.isArray(env))
    throw badRequest('env must be an object');
  for (const [key, v] of Object.entries(env)) {
    if (!ENV_RE.test(key)) {
      throw badRequest(
        `env key ${JSON.stringify(key)} is not a valid variable name`,
        'Use [A-Za-z_][A-Za-z0-9_]*.',
      );
    }
    if (typeof v !== 'string') throw badRequest(`env.${key} must be a string, got ${typeof v}`);
  }
  return env;
}

function checkSecretRefs(value: string[] | undefined): string[] {
  const refs = value ?? [];
  if (!Array.isArray(refs)) throw badRequest('secretRefs must be an array of secret names');
  refs.forEach((ref, i) => {
    if (typeof ref !== 'string' || !SECRET_RE.test(ref)) {
      throw badRequest(
        `secretRefs[${i}] ${JSON.stringify(ref)} is not a valid secret name`,
        'Use letters, digits, ".", "_" and "-".',
      );
    }
  });
  return [...new Set(refs)].sort();
}

function checkServing(value: Record<string, JsonValue> | undefined): Record<string, JsonValue> {
  const serving = value ?? {};
  if (typeof serving !== 'object' || serving === null || Array.isArray(serving)) {
    throw badRequest('serving must be an object');
  }
  return serving;
}

/**
 * What a replica gets when neither the deployment nor the version's ferry.yaml sets a limit: containers are
 * never unlimited by default (the same numbers `ferry run` uses).
 */
export const DEFAULT_RESOURCES: DeploymentResources = { cpu: 1, memoryBytes: 1024 ** 3, gpu: 0 };

/** Per field: the deployment's value, else the version's, else the platform default. */
export function effectiveResources(
  deployment: DeploymentResources,
  version: VersionSpec['resources'],
): DeploymentResources {
  return {
    cpu: deployment.cpu ?? version?.cpu ?? DEFAULT_RESOURCES.cpu,
    memoryBytes: deployment.memoryBytes ?? version?.memoryBytes ?? DEFAULT_RESOURCES.memoryBytes,
    gpu: deployment.gpu || version?.gpu || DEFAULT_RESOURCES.gpu,
  };
}

function checkVersionSpec(value: VersionSpec | undefined): VersionSpec {
  const spec = value ?? {};
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    throw badRequest('spec must be an object');
  const out: VersionSpec = {};
  if (spec.servedName !== undefined) {
    if (typeof spec.servedName !== 'string' || spec.servedName === '')
      throw badRequest('spec.servedName must be a non-empty string');
    out.servedName = spec.servedName;
  }
  if (spec.modelVersion !== undefined) {
    if (typeof spec.modelVersion !== 'string') throw badRequest('spec.modelVersion must be a string');
    out.modelVersion = spec.modelVersion;
  }
  if (spec.resources !== undefined) out.resources = checkResources(spec.resources);
  if (spec.env !== undefined) out.env = checkEnv(spec.env);
  if (spec.secrets !== undefined) out.secrets = checkSecretRefs(spec.secrets);
  if (spec.network !== undefined) {
    if (typeof spec.network !== 'object' || spec.network === null || typeof spec.network.egress !== 'boolean')
      throw badRequest('spec.network must be { egress: true | false }');
    if (spec.network.egress) out.network = { egress: true };
  }
  if (spec.scaling !== undefined) {
    if (typeof spec.scaling !== 'object' || spec.scaling === null || Array.isArray(spec.scaling))
      throw badRequest('spec.scaling must be an object of scaling settings');
    out.scaling = scalingSettings(spec.scaling);
  }
  return out;
}

function checkMetadata(value: Record<string, JsonValue> | undefined): Record<string, JsonValue> {
  const metadata = value ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw badRequest('metadata must be an object');
  }
  return metadata;
}

// ---------------------------------------------------------------------------------------------- hashing

/** JSON with object keys sorted at every level and `undefined` members dropped: equal specs, equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export function specHash(spec: RevisionSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

// ---------------------------------------------------------------------------------------------- rows

interface VersionRow {
  model: string;
  version: string;
  image: string | null;
  artifact: string | null;
  artifact_dir: string | null;
  spec: string;
  metadata: string;
  created_at: number;
}

interface DeploymentRow {
  name: string;
  public: number;
  scaling: string | null;
  model: string;
  version_ref: string;
  replicas: number;
  spec: string;
  current_revision: number;
  created_at: number;
  updated_at: number;
}

interface RevisionRow {
  deployment: string;
  number: number;
  spec_hash: string;
  spec: string;
  image: string;
  replicas: number;
  created_at: number;
}

interface EventRow {
  id: number;
  deployment: string | null;
  tenant: string;
  type: EventType;
  reason: string;
  message: string;
  at: number;
}

/** What the deployments table keeps in `spec`: the user's request minus name/model/ref/replicas. */
type DeploymentSpecColumn = DeploymentSettings;

const toVersion = (r: VersionRow): ModelVersion => ({
  model: r.model,
  version: r.version,
  image: r.image,
  artifact: r.artifact,
  artifactDir: r.artifact_dir,
  spec: JSON.parse(r.spec) as VersionSpec,
  metadata: JSON.parse(r.metadata) as Record<string, JsonValue>,
  createdAt: r.created_at,
});

function toDeployment(r: DeploymentRow): Deployment {
  const spec = JSON.parse(r.spec) as DeploymentSpecColumn;
  return {
    name: r.name,
    model: r.model,
    versionRef: r.version_ref,
    replicas: r.replicas,
    resources: spec.resources,
    env: spec.env,
    secretRefs: spec.secretRefs,
    serving: spec.serving,
    public: r.public === 1,
    // Settings stored before a field existed get its default.
    scaling:
      r.scaling === null ? null : { ...DEFAULT_SETTINGS, ...(JSON.parse(r.scaling) as ScalingSettings) },
    revision: r.current_revision,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toRevision(r: RevisionRow): StoredRevision {
  const stored = JSON.parse(r.spec) as {
    versionRef: string;
    spec: RevisionSpec;
    settings?: DeploymentSettings;
  };
  return {
    deployment: r.deployment,
    number: r.number,
    specHash: r.spec_hash,
    image: r.image,
    replicas: r.replicas,
    createdAt: r.created_at,
    versionRef: stored.versionRef,
    spec: stored.spec,
    // Revisions stored before settings were kept: their effective spec is the best there is.
    settings: stored.settings ?? {
      resources: stored.spec.resources,
      env: stored.spec.env,
      secretRefs: stored.spec.secretRefs,
      serving: stored.spec.serving,
    },
  };
}

const toEvent = (r: EventRow): EventRecord => ({
  id: r.id,
  ...(r.deployment === null ? {} : { deployment: r.deployment }),
  tenant: r.tenant,
  type: r.type,
  reason: r.reason,
  message: r.message,
  at: r.at,
});

// ---------------------------------------------------------------------------------------------- open

/** Applies the migrations not yet recorded, each in its own IMMEDIATE transaction; returns their numbers. */
function migrate(db: Database.Database, now: number): number[] {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT',
  );
  const applied: number[] = [];
  const isApplied = db.prepare<[number], { version: number }>(
    'SELECT version FROM schema_migrations WHERE version = ?',
  );
  const record = db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  const latest =
    db.prepare<[], { v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations').get()?.v ?? 0;
  if (latest > MIGRATIONS.length) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `The store was written by a newer Ferry (schema ${latest}, this one knows ${MIGRATIONS.length})`,
      { hint: 'Upgrade Ferry, or point it at another state directory.' },
    );
  }
  MIGRATIONS.forEach((sql, i) => {
    const version = i + 1;
    // Checked again inside the write lock: another process may have applied it meanwhile.
    const apply = db.transaction(() => {
      if (isApplied.get(version)) return;
      db.exec(sql);
      record.run(version, now);
      applied.push(version);
    });
    apply.immediate();
  });
  return applied;
}

export function openStore(path: string, options: StoreOptions = {}): Store {
  const now = options.now ?? Date.now;
  const keepEvents = options.eventsPerDeployment ?? 1000;
  if (!Number.isInteger(keepEvents) || keepEvents < 1) {
    throw badRequest(`eventsPerDeployment ${keepEvents} is not allowed`, 'Use an integer >= 1.');
  }
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw new FerryError(
      'FERRY_FILE_NOT_FOUND',
      `Cannot open the state database ${path}: ${(err as Error).message}`,
      {
        cause: err,
        hint: 'Check that the directory exists and is writable.',
      },
    );
  }
  try {
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    if (path !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    const appliedMigrations = migrate(db, now());
    return createStore(db, path, appliedMigrations, now, keepEvents);
  } catch (err) {
    db.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------- store

function createStore(
  db: Database.Database,
  path: string,
  appliedMigrations: number[],
  now: () => number,
  keepEvents: number,
): Store {
  const q = {
    model: db.prepare<[string], { name: string; created_at: number }>('SELECT * FROM models WHERE name = ?'),
    models: db.prepare<[], { name: string; created_at: number }>('SELECT * FROM models ORDER BY name'),
    insertModel: db.prepare('INSERT INTO models (name, created_at) VALUES (?, ?)'),
    versions: db.prepare<[string], VersionRow>(
      'SELECT * FROM model_versions WHERE model = ? ORDER BY created_at, rowid',
    ),
    version: db.prepare<[string, string], VersionRow>(
      'SELECT * FROM model_versions WHERE model = ? AND version = ?',
    ),
    insertVersion: db.prepare(
      'INSERT INTO model_versions (model, version, image, artifact, artifact_dir, spec, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    aliases: db.prepare<[string], { alias: string; version: string }>(
      'SELECT alias, version FROM model_aliases WHERE model = ? ORDER BY alias',
    ),
    alias: db.prepare<[string, string], { version: string }>(
      'SELECT version FROM model_aliases WHERE model = ? AND alias = ?',
    ),
    upsertAlias: db.prepare(
      `INSERT INTO model_aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`,
    ),
    deployment: db.prepare<[string], DeploymentRow>('SELECT * FROM deployments WHERE name = ?'),
    deployments: db.prepare<[], DeploymentRow>('SELECT * FROM deployments ORDER BY name'),
    following: db.prepare<[string, string], { name: string }>(
      'SELECT name FROM deployments WHERE model = ? AND version_ref = ? ORDER BY name',
    ),
    insertDeployment: db.prepare(
      `INSERT INTO deployments (name, model, version_ref, replicas, spec, current_revision, created_at, updated_at, public)
       VALUES (@name, @model, @version_ref, @replicas, @spec, @current_revision, @created_at, @updated_at, @public)`,
    ),
    updateDeployment: db.prepare(
      `UPDATE deployments SET model = @model, version_ref = @version_ref, replicas = @replicas, spec = @spec,
       current_revision = @current_revision, updated_at = @updated_at, public = @public WHERE name = @name`,
    ),
    deleteDeployment: db.prepare('DELETE FROM deployments WHERE name = ?'),
    revisions: db.prepare<[string], RevisionRow>(
      'SELECT * FROM revisions WHERE deployment = ? ORDER BY number',
    ),
    revision: db.prepare<[string, number], RevisionRow>(
      'SELECT * FROM revisions WHERE deployment = ? AND number = ?',
    ),
    insertRevision: db.prepare(
      `INSERT INTO revisions (deployment, number, spec_hash, spec, image, replicas, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    traffic: db.prepare<[string], { revision: number; percent: number; shadow: number }>(
      'SELECT revision, percent, shadow FROM traffic WHERE deployment = ? ORDER BY revision',
    ),
    clearTraffic: db.prepare('DELETE FROM traffic WHERE deployment = ?'),
    trafficTarget: db.prepare<[string], { entries: string; requested_at: number }>(
      'SELECT entries, requested_at FROM traffic_targets WHERE deployment = ?',
    ),
    upsertTrafficTarget: db.prepare(
      `INSERT INTO traffic_targets (deployment, entries, requested_at) VALUES (?, ?, ?)
       ON CONFLICT (deployment) DO UPDATE SET entries = excluded.entries, requested_at = excluded.requested_at`,
    ),
    clearTrafficTarget: db.prepare('DELETE FROM traffic_targets WHERE deployment = ?'),
    insertTraffic: db.prepare(
      'INSERT INTO traffic (deployment, revision, percent, shadow) VALUES (?, ?, ?, ?)',
    ),
    strategy: db.prepare<[string], { strategy: string }>('SELECT strategy FROM deployments WHERE name = ?'),
    setStrategy: db.prepare('UPDATE deployments SET strategy = ? WHERE name = ?'),
    rollout: db.prepare<
      [string],
      { deployment: string; state: string; strategy: string; started_at: number; updated_at: number }
    >('SELECT * FROM rollouts WHERE deployment = ?'),
    upsertRollout: db.prepare(
      `INSERT INTO rollouts (deployment, state, strategy, started_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (deployment) DO UPDATE SET state = excluded.state, strategy = excluded.strategy,
         started_at = excluded.started_at, updated_at = excluded.updated_at`,
    ),
    insertEvent: db.prepare(
      'INSERT INTO events (deployment, tenant, type, reason, message, at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    event: db.prepare<[number | bigint], EventRow>('SELECT * FROM events WHERE id = ?'),
    pruneEvents: db.prepare(
      `DELETE FROM events WHERE deployment IS @d AND id <= (
         SELECT id FROM events WHERE deployment IS @d ORDER BY id DESC LIMIT 1 OFFSET @keep)`,
    ),
    eventsFor: db.prepare<[string, number], EventRow>(
      'SELECT * FROM events WHERE deployment = ? ORDER BY id DESC LIMIT ?',
    ),
    eventsAll: db.prepare<[number], EventRow>('SELECT * FROM events ORDER BY id DESC LIMIT ?'),
    ownArtifact: db.prepare('INSERT OR IGNORE INTO artifact_owners (digest, tenant) VALUES (?, ?)'),
    ownsArtifact: db.prepare('SELECT 1 FROM artifact_owners WHERE digest = ? AND tenant = ?'),
    setScaling: db.prepare('UPDATE deployments SET scaling = ?, updated_at = ? WHERE name = ?'),
    setReplicas: db.prepare('UPDATE deployments SET replicas = ? WHERE name = ?'),
    eventsOfTenant: db.prepare<[string, number], EventRow>(
      'SELECT * FROM events WHERE tenant = ? ORDER BY id DESC LIMIT ?',
    ),
  };

  // ---- models

  function getModel(name: string): ModelRecord | undefined {
    const row = q.model.get(name);
    if (!row) return undefined;
    const aliases: Record<string, string> = {};
    for (const a of q.aliases.all(name)) aliases[a.alias] = a.version;
    return {
      name: row.name,
      createdAt: row.created_at,
      versions: q.versions.all(name).map(toVersion),
      aliases,
    };
  }

  function requireModel(name: string): void {
    if (!q.model.get(name)) {
      throw new FerryError('FERRY_MODEL_NOT_FOUND', `No model named ${JSON.stringify(name)}`, {
        hint: 'ferry get models lists the models; ferry deploy creates one.',
      });
    }
  }

  function resolveVersion(model: string, ref: string): ModelVersion {
    requireModel(model);
    const direct = q.version.get(model, ref);
    if (direct) return toVersion(direct);
    const alias = q.alias.get(model, ref);
    const row = alias ? q.version.get(model, alias.version) : undefined;
    if (row) return toVersion(row);
    const known = q.versions.all(model).map((v) => v.version);
    const aliases = q.aliases.all(model).map((a) => a.alias);
    throw new FerryError(
      'FERRY_VERSION_NOT_FOUND',
      `Model ${JSON.stringify(model)} has no version or alias ${JSON.stringify(ref)}`,
      { hint: `Versions: ${known.join(', ') || '(none)'}; aliases: ${aliases.join(', ') || '(none)'}.` },
    );
  }

  // ---- deployments

  function requireDeploymentRow(name: string): DeploymentRow {
    const row = q.deployment.get(name);
    if (!row) {
      throw new FerryError(NOT_FOUND, `No deployment named ${JSON.stringify(name)}`, {
        hint: 'ferry get deployments lists them.',
      });
    }
    return row;
  }

  /**
   * The effective spec of a revision: the version's artifact or image, and for resources, env and secrets the
   * deployment's own settings over what the version's ferry.yaml says over the platform's defaults.
   */
  function revisionSpec(model: string, versionRef: string, s: DeploymentSpecColumn): RevisionSpec {
    const v = resolveVersion(model, versionRef);
    const secretRefs = [...new Set([...(v.spec.secrets ?? []), ...s.secretRefs])].sort();
    const secretVersions: Record<string, number> = {};
    for (const ref of secretRefs) {
      const version = secrets.secretVersion(qualify(splitKey(model).tenant, ref));
      if (version !== undefined) secretVersions[ref] = version;
    }
    return {
      model,
      version: v.version,
      image: v.image,
      artifactDir: v.artifactDir,
      resources: effectiveResources(s.resources, v.spec.resources),
      env: { ...(v.spec.env ?? {}), ...s.env },
      secretRefs,
      ...(secretRefs.length > 0 ? { secretVersions } : {}),
      serving: s.serving,
      ...(v.spec.network?.egress === true ? { network: { egress: true as const } } : {}),
    };
  }

  function insertRevision(
    deployment: string,
    number: number,
    versionRef: string,
    spec: RevisionSpec,
    settings: DeploymentSettings,
    replicas: number,
    at: number,
  ): StoredRevision {
    const hash = specHash(spec);
    // Revision.image is a string: the image reference, or the artifact directory when there is no image.
    const image = spec.image ?? spec.artifactDir ?? '';
    const stored = JSON.stringify({ versionRef, spec, settings });
    q.insertRevision.run(deployment, number, hash, stored, image, replicas, at);
    return { deployment, number, specHash: hash, image, replicas, createdAt: at, versionRef, spec, settings };
  }

  const createDeployment = writeTransaction(db, (input: DeploymentInput): UpdateResult => {
    if (typeof input !== 'object' || input === null) throw badRequest('The deployment must be an object');
    const name = checkKey('Deployment name', input.name);
    checkKey('Model name', input.model);
    if (splitKey(input.model).tenant !== splitKey(name).tenant)
      throw badRequest('A deployment serves a model of its own tenant');
    if (input.public !== undefined && typeof input.public !== 'boolean')
      throw badRequest('public must be true or false');
    checkVersion('versionRef', input.versionRef);
    const replicas = checkReplicas(input.replicas);
    const column: DeploymentSpecColumn = {
      resources: checkResources(input.resources),
      env: checkEnv(input.env),
      secretRefs: checkSecretRefs(input.secretRefs),
      serving: checkServing(input.serving),
    };
    if (q.deployment.get(name)) {
      throw new FerryError(CONFLICT, `A deployment named ${JSON.stringify(name)} already exists`, {
        hint: 'ferry deploy updates it (a new revision), or pick another --name.',
      });
    }
    const spec = revisionSpec(input.model, input.versionRef, column);
    const at = now();
    q.insertDeployment.run({
      name,
      model: input.model,
      version_ref: input.versionRef,
      replicas,
      spec: JSON.stringify(column),
      current_revision: 1,
      created_at: at,
      updated_at: at,
      public: input.public === true ? 1 : 0,
    });
    const revision = insertRevision(name, 1, input.versionRef, spec, column, replicas, at);
    q.insertTraffic.run(name, 1, 100, 0);
    return { deployment: toDeployment(requireDeploymentRow(name)), revision, created: true };
  });

  /** Writes the deployment row, and a new revision when the effective spec's hash differs from the newest. */
  function apply(
    row: DeploymentRow,
    next: Omit<DeploymentRow, 'current_revision' | 'created_at' | 'updated_at' | 'scaling'>,
  ) {
    const column = JSON.parse(next.spec) as DeploymentSpecColumn;
    const spec = revisionSpec(next.model, next.version_ref, column);
    const hash = specHash(spec);
    const latestRow = q.revision.get(row.name, row.current_revision);
    if (!latestRow)
      throw new FerryError('FERRY_INTERNAL', `Deployment ${row.name} lost revision ${row.current_revision}`);
    const at = now();
    let revision = toRevision(latestRow);
    let created = false;
    if (hash !== latestRow.spec_hash) {
      revision = insertRevision(
        row.name,
        row.current_revision + 1,
        next.version_ref,
        spec,
        column,
        next.replicas,
        at,
      );
      created = true;
    }
    const changed =
      created ||
      next.model !== row.model ||
      next.version_ref !== row.version_ref ||
      next.replicas !== row.replicas ||
      next.spec !== row.spec ||
      next.public !== row.public;
    if (changed) {
      q.updateDeployment.run({
        ...next,
        current_revision: revision.number,
        updated_at: at,
      });
    }
    return { deployment: toDeployment(requireDeploymentRow(row.name)), revision, created };
  }

  const updateDeployment = writeTransaction(db, (name: string, patch: DeploymentPatch): UpdateResult => {
    const row = requireDeploymentRow(name);
    if (typeof patch !== 'object' || patch === null) throw badRequest('The update must be an object');
    if ('name' in patch)
      throw badRequest('A deployment cannot be renamed', 'Create a new deployment instead.');
    const old = JSON.parse(row.spec) as DeploymentSpecColumn;
    const model = patch.model === undefined ? row.model : checkKey('Model name', patch.model);
    if (splitKey(model).tenant !== splitKey(name).tenant)
      throw badRequest('A deployment serves a model of its own tenant');
    if (patch.public !== undefined && typeof patch.public !== 'boolean')
      throw badRequest('public must be true or false');
    const isPublic = patch.public === undefined ? row.public : patch.public ? 1 : 0;
    const versionRef =
      patch.versionRef === undefined ? row.version_ref : checkVersion('versionRef', patch.versionRef);
    const replicas = patch.replicas === undefined ? row.replicas : checkReplicas(patch.replicas);
    const column: DeploymentSpecColumn = {
      resources: patch.resources === undefined ? old.resources : checkResources(patch.resources),
      env: patch.env === undefined ? old.env : checkEnv(patch.env),
      secretRefs: patch.secretRefs === undefined ? old.secretRefs : checkSecretRefs(patch.secretRefs),
      serving: patch.serving === undefined ? old.serving : checkServing(patch.serving),
    };
    return apply(row, {
      name,
      model,
      version_ref: versionRef,
      replicas,
      spec: JSON.stringify(column),
      public: isPublic,
    });
  });

  // ---- models (writes)

  const createModel = writeTransaction(db, (name: string): ModelRecord => {
    checkKey('Model name', name);
    if (q.model.get(name)) {
      throw new FerryError(CONFLICT, `A model named ${JSON.stringify(name)} already exists`, {
        hint: 'Add a version to it instead.',
      });
    }
    q.insertModel.run(name, now());
    return getModel(name) as ModelRecord;
  });

  const addVersion = writeTransaction(db, (model: string, input: AddVersionInput): ModelVersion => {
    requireModel(model);
    if (typeof input !== 'object' || input === null) throw badRequest('The version must be an object');
    const version = checkVersion('Version', input.version);
    const image = input.image ?? null;
    const artifactDir = input.artifactDir ?? null;
    if (image === null && artifactDir === null) {
      throw badRequest(
        `Version ${version} of ${model} needs an image or an artifactDir`,
        'Give one of them.',
      );
    }
    if (
      (image !== null && (typeof image !== 'string' || image === '')) ||
      (artifactDir !== null && (typeof artifactDir !== 'string' || artifactDir === ''))
    ) {
      throw badRequest(`image and artifactDir of ${model}:${version} must be non-empty strings`);
    }
    const metadata = checkMetadata(input.metadata);
    if (q.version.get(model, version)) {
      throw new FerryError(
        CONFLICT,
        `Model ${model} already has version ${version}; versions are immutable`,
        {
          hint: 'Add a new version instead.',
        },
      );
    }
    if (q.alias.get(model, version)) {
      throw badRequest(`${version} is an alias of model ${model}; a version cannot share its name`);
    }
    const artifact = input.artifact ?? null;
    if (artifact !== null && (typeof artifact !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(artifact)))
      throw badRequest(`artifact of ${model}:${version} must be sha256:<64 hex>`);
    const spec = checkVersionSpec(input.spec);
    q.insertVersion.run(
      model,
      version,
      image,
      artifact,
      artifactDir,
      canonicalJson(spec),
      JSON.stringify(metadata),
      now(),
    );
    return toVersion(q.version.get(model, version) as VersionRow);
  });

  const setAlias = writeTransaction(db, (model: string, alias: string, version: string): AliasMoveResult => {
    requireModel(model);
    checkVersion('Alias', alias);
    if (q.version.get(model, alias)) {
      throw badRequest(`${alias} is a version of model ${model}; an alias cannot share its name`);
    }
    if (!q.version.get(model, version)) {
      throw new FerryError(
        'FERRY_VERSION_NOT_FOUND',
        `Model ${model} has no version ${JSON.stringify(version)}`,
        {
          hint: 'An alias points at a concrete version, not at another alias.',
        },
      );
    }
    q.upsertAlias.run(model, alias, version, now());
    const updated: AliasMoveResult['updated'] = [];
    for (const { name } of q.following.all(model, alias)) {
      const row = requireDeploymentRow(name);
      const result = apply(row, row);
      if (result.created) updated.push({ deployment: name, revision: result.revision.number });
    }
    return { updated };
  });

  // ---- traffic

  /** Checks a split: known revisions, each once, percents and shadows 0..100, live percents summing to 100. */
  function checkTraffic(deployment: string, entries: TrafficEntry[]): TrafficEntry[] {
    requireDeploymentRow(deployment);
    if (!Array.isArray(entries) || entries.length === 0) {
      throw badRequest(
        `Traffic for ${deployment} needs at least one entry`,
        'Give [{ revision, percent }], percents summing to 100.',
      );
    }
    const seen = new Set<number>();
    let sum = 0;
    entries.forEach((e, i) => {
      const where = `traffic[${i}]`;
      if (typeof e !== 'object' || e === null) throw badRequest(`${where} must be an object`);
      if (!Number.isInteger(e.revision) || !q.revision.get(deployment, e.revision)) {
        const known = q.revisions.all(deployment).map((r) => r.number);
        throw badRequest(
          `${where}.revision ${JSON.stringify(e.revision)}: ${deployment} has no such revision`,
          `Revisions: ${known.join(', ')}.`,
        );
      }
      if (seen.has(e.revision)) throw badRequest(`${where}.revision ${e.revision} is listed twice`);
      seen.add(e.revision);
      if (!Number.isInteger(e.percent) || e.percent < 0 || e.percent > 100) {
        throw badRequest(
          `${where}.percent ${JSON.stringify(e.percent)} is not allowed`,
          'Use an integer from 0 to 100.',
        );
      }
      const shadow = e.shadow ?? 0;
      if (!Number.isInteger(shadow) || shadow < 0 || shadow > 100) {
        throw badRequest(
          `${where}.shadow ${JSON.stringify(shadow)} is not allowed`,
          'Use an integer from 0 to 100.',
        );
      }
      sum += e.percent;
    });
    if (sum !== 100) {
      throw badRequest(`Traffic percents for ${deployment} sum to ${sum}`, 'They must sum to exactly 100.');
    }
    return entries.map((e) => ({
      revision: e.revision,
      percent: e.percent,
      ...((e.shadow ?? 0) > 0 ? { shadow: e.shadow as number } : {}),
    }));
  }

  const setTraffic = writeTransaction(db, (deployment: string, entries: TrafficEntry[]): TrafficEntry[] => {
    checkTraffic(deployment, entries);
    q.clearTraffic.run(deployment);
    for (const e of entries) q.insertTraffic.run(deployment, e.revision, e.percent, e.shadow ?? 0);
    return getTraffic(deployment);
  });

  const setTrafficTarget = writeTransaction(
    db,
    (deployment: string, entries: TrafficEntry[] | null): TrafficTarget | undefined => {
      if (entries === null) {
        requireDeploymentRow(deployment);
        q.clearTrafficTarget.run(deployment);
        return undefined;
      }
      const checked = checkTraffic(deployment, entries);
      q.upsertTrafficTarget.run(deployment, JSON.stringify(checked), now());
      return getTrafficTarget(deployment);
    },
  );

  const applyTrafficTarget = writeTransaction(db, (deployment: string): TrafficEntry[] => {
    const target = getTrafficTarget(deployment);
    if (!target) throw new FerryError(NOT_FOUND, `Deployment ${deployment} has no split waiting`);
    const traffic = setTraffic(deployment, target.entries);
    q.clearTrafficTarget.run(deployment);
    return traffic;
  });

  function getTrafficTarget(deployment: string): TrafficTarget | undefined {
    const row = q.trafficTarget.get(deployment);
    return row
      ? { entries: JSON.parse(row.entries) as TrafficEntry[], requestedAt: row.requested_at }
      : undefined;
  }

  function getTraffic(deployment: string): TrafficEntry[] {
    requireDeploymentRow(deployment);
    return q.traffic.all(deployment).map((r) => ({
      revision: r.revision,
      percent: r.percent,
      ...(r.shadow > 0 ? { shadow: r.shadow } : {}),
    }));
  }

  // ---- events

  const addEvent = writeTransaction(db, (event: EventInput): EventRecord => {
    if (typeof event !== 'object' || event === null) throw badRequest('The event must be an object');
    if (event.type !== 'Normal' && event.type !== 'Warning') {
      throw badRequest(
        `event.type ${JSON.stringify(event.type)} is not allowed`,
        'Use "Normal" or "Warning".',
      );
    }
    if (typeof event.reason !== 'string' || !/^[A-Z][A-Za-z0-9]*$/.test(event.reason)) {
      throw badRequest(`event.reason ${JSON.stringify(event.reason)} is not CamelCase`);
    }
    if (typeof event.message !== 'string') throw badRequest('event.message must be a string');
    if (!Number.isFinite(event.at))
      throw badRequest(`event.at ${JSON.stringify(event.at)} is not a time in ms`);
    const deployment = event.deployment ?? null;
    const tenant = event.tenant ?? (deployment === null ? DEFAULT_TENANT : splitKey(deployment).tenant);
    const info = q.insertEvent.run(deployment, tenant, event.type, event.reason, event.message, event.at);
    q.pruneEvents.run({ d: deployment, keep: keepEvents });
    return toEvent(q.event.get(info.lastInsertRowid) as EventRow);
  });

  function listEvents(query: { deployment?: string; tenant?: string; limit?: number } = {}): EventRecord[] {
    const limit = query.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) {
      throw badRequest(`limit ${JSON.stringify(limit)} is not allowed`, 'Use an integer >= 1.');
    }
    const rows =
      query.deployment !== undefined
        ? q.eventsFor.all(query.deployment, limit)
        : query.tenant !== undefined
          ? q.eventsOfTenant.all(query.tenant, limit)
          : q.eventsAll.all(limit);
    return rows.map(toEvent);
  }

  const tokens = tokenTable(db, now, checkKey);
  const secrets = secretTable(db, now);
  const tenants = tenantTable(db, now, checkName);
  const ofTenant = (tenant: string | undefined) => (name: string) =>
    tenant === undefined || splitKey(name).tenant === tenant;

  return {
    path,
    appliedMigrations,
    createModel,
    getModel,
    listModels: (tenant) =>
      q.models
        .all()
        .filter((m) => ofTenant(tenant)(m.name))
        .map((m) => getModel(m.name) as ModelRecord),
    addVersion,
    setAlias,
    resolveVersion,
    createDeployment,
    updateDeployment,
    getDeployment: (name) => {
      const row = q.deployment.get(name);
      return row ? toDeployment(row) : undefined;
    },
    listDeployments: (tenant) =>
      q.deployments
        .all()
        .filter((d) => ofTenant(tenant)(d.name))
        .map(toDeployment),
    listRevisions: (name) => {
      requireDeploymentRow(name);
      return q.revisions.all(name).map(toRevision);
    },
    getRevision: (name, number) => {
      const row = q.revision.get(name, number);
      return row ? toRevision(row) : undefined;
    },
    deleteDeployment: (name) => {
      requireDeploymentRow(name);
      q.deleteDeployment.run(name);
    },
    setTraffic,
    getTraffic,
    setTrafficTarget,
    getTrafficTarget,
    applyTrafficTarget,
    getStrategy: (name) => {
      requireDeploymentRow(name);
      return JSON.parse((q.strategy.get(name) as { strategy: string }).strategy) as JsonValue;
    },
    setStrategy: writeTransaction(db, (name: string, strategy: JsonValue) => {
      requireDeploymentRow(name);
      q.setStrategy.run(JSON.stringify(strategy), name);
    }),
    getRollout: (name) => {
      const row = q.rollout.get(name);
      return row === undefined
        ? undefined
        : {
            deployment: row.deployment,
            state: JSON.parse(row.state) as JsonValue,
            strategy: JSON.parse(row.strategy) as JsonValue,
            startedAt: row.started_at,
            updatedAt: row.updated_at,
          };
    },
    saveRollout: writeTransaction(
      db,
      (name: string, r: { state: JsonValue; strategy: JsonValue; startedAt: number }): StoredRollout => {
        requireDeploymentRow(name);
        const at = now();
        q.upsertRollout.run(name, JSON.stringify(r.state), JSON.stringify(r.strategy), r.startedAt, at);
        return {
          deployment: name,
          state: r.state,
          strategy: r.strategy,
          startedAt: r.startedAt,
          updatedAt: at,
        };
      },
    ),
    setRolloutState: writeTransaction(db, (name: string, state: JsonValue): StoredRollout => {
      const row = q.rollout.get(name);
      if (!row) throw new FerryError(NOT_FOUND, `Deployment ${name} has no rollout`);
      const at = now();
      q.upsertRollout.run(name, JSON.stringify(state), row.strategy, row.started_at, at);
      return {
        deployment: name,
        state,
        strategy: JSON.parse(row.strategy) as JsonValue,
        startedAt: row.started_at,
        updatedAt: at,
      };
    }),
    ...secrets,
    putSecret: writeTransaction(db, secrets.putSecret),
    deleteSecret: writeTransaction(db, secrets.deleteSecret),
    addEvent,
    listEvents,
    ...tokens,
    ...tenants,
    transaction: <T>(fn: () => T): T => writeTransaction(db, fn)(),
    setScaling: writeTransaction(db, (name: string, scaling: Partial<ScalingSettings> | null): Deployment => {
      requireDeploymentRow(name);
      const full = scaling === null ? null : scalingSettings(scaling);
      q.setScaling.run(full === null ? null : JSON.stringify(full), now(), name);
      return toDeployment(requireDeploymentRow(name));
    }),
    setDesiredReplicas: writeTransaction(db, (name: string, replicas: number) => {
      requireDeploymentRow(name);
      checkReplicas(replicas);
      q.setReplicas.run(replicas, name);
    }),
    ownArtifact: (digest, tenant) => {
      q.ownArtifact.run(digest, tenant);
    },
    ownsArtifact: (digest, tenant) => q.ownsArtifact.get(digest, tenant) !== undefined,
    audit: openAuditLog(db, path),
    close: () => db.close(),
  };
}

/**
 * A write transaction that takes the write lock when it starts (BEGIN IMMEDIATE). A deferred one reads first
 * and fails with SQLITE_BUSY_SNAPSHOT when another process wrote in between; an immediate one waits its turn
 * (busy timeout) instead.
 */
function writeTransaction<A extends unknown[], R>(
  db: Database.Database,
  fn: (...args: A) => R,
): (...args: A) => R {
  const transaction = db.transaction(fn);
  return (...args: A) => transaction.immediate(...args);
}
