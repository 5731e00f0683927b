/**
 * The control plane's schema, as numbered migrations. Each runs once, in a transaction, at open; the ones
 * applied are recorded in `schema_migrations`. Never edit a migration that has shipped: add a new one.
 * Migration n is MIGRATIONS[n - 1].
 */
export const MIGRATIONS: readonly string[] = [
  // 1: models, versions, aliases, deployments with immutable revisions, traffic, events, tokens.
  `
  CREATE TABLE models (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE model_versions (
    model         TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
    version       TEXT NOT NULL,
    image         TEXT,
    artifact_dir  TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (model, version),
    CHECK (image IS NOT NULL OR artifact_dir IS NOT NULL)
  ) STRICT;

  CREATE TABLE model_aliases (
    model       TEXT NOT NULL,
    alias       TEXT NOT NULL,
    version     TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE
  ) STRICT;

  CREATE TABLE deployments (
    name              TEXT PRIMARY KEY,
    model             TEXT NOT NULL REFERENCES models(name),
    version_ref       TEXT NOT NULL,
    replicas          INTEGER NOT NULL,
    spec              TEXT NOT NULL,
    current_revision  INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE revisions (
    deployment  TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    spec_hash   TEXT NOT NULL,
    spec        TEXT NOT NULL,
    image       TEXT NOT NULL,
    replicas    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (deployment, number)
  ) STRICT;

  -- Revisions are immutable: the store only inserts them (they go with their deployment).
  CREATE TRIGGER revisions_immutable BEFORE UPDATE ON revisions
  BEGIN
    SELECT RAISE(ABORT, 'revisions are immutable');
  END;

  CREATE TABLE traffic (
    deployment  TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    percent     INTEGER NOT NULL CHECK (percent BETWEEN 0 AND 100),
    shadow      INTEGER NOT NULL DEFAULT 0 CHECK (shadow BETWEEN 0 AND 100),
    PRIMARY KEY (deployment, revision),
    FOREIGN KEY (deployment, revision) REFERENCES revisions(deployment, number) ON DELETE CASCADE
  ) STRICT;

  CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment  TEXT,
    type        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    message     TEXT NOT NULL,
    at          INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX events_by_deployment ON events (deployment, id);

  CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    hash        BLOB NOT NULL,
    created_at  INTEGER NOT NULL
  ) STRICT;
  `,
  // 2: each deployment's rollout strategy, and its rollout (the state stepRollout works on), kept across restarts.
  `
  ALTER TABLE deployments ADD COLUMN strategy TEXT NOT NULL DEFAULT '{"kind":"rolling"}';

  CREATE TABLE rollouts (
    deployment  TEXT PRIMARY KEY REFERENCES deployments(name) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
  ) STRICT;
  `,
  // 3: secrets, sealed (AES-256-GCM) by the control plane before they reach the store; never returned by the API.
  `
  CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    sealed      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
  ) STRICT;
  `,
  // 4: versions pin content: the digest of the artifact a version was made from (its directory in the artifact
  //    store is artifact_dir), and what its ferry.yaml says about running it (served name, resources, env,
  //    secret names), which a deployment's own settings override. traffic_targets: a split asked for by hand
  //    that waits until the revisions it gives traffic to have ready replicas.
  `
  ALTER TABLE model_versions ADD COLUMN artifact TEXT;
  ALTER TABLE model_versions ADD COLUMN spec TEXT NOT NULL DEFAULT '{}';

  CREATE TABLE traffic_targets (
    deployment    TEXT PRIMARY KEY REFERENCES deployments(name) ON DELETE CASCADE,
    entries       TEXT NOT NULL,
    requested_at  INTEGER NOT NULL
  ) STRICT;
  `,
  // 5: tenants. Objects stay keyed by one text column each: an object's key is its plain name in the default
  //    tenant and `tenant/name` in any other (src/core/tenant.ts), so every row written before tenants existed
  //    is the default tenant's, unchanged. Tenants carry quotas; tokens carry their tenant, an optional expiry,
  //    an optional deployment (a per-deployment key) and an optional rate limit (invokers, at the gateway).
  //    Before tenants an admin token administered everything: it becomes a platform admin. Deployments made
  //    before private endpoints existed stay public (new ones are private unless asked otherwise); events carry
  //    their tenant so a tenant's list can be read newest first with a limit.
  `
  CREATE TABLE tenants (
    name        TEXT PRIMARY KEY,
    quotas      TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
  ) STRICT;
  INSERT INTO tenants (name, quotas, created_at) VALUES ('default', '{}', 0);

  ALTER TABLE api_tokens ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
  ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
  ALTER TABLE api_tokens ADD COLUMN deployment TEXT;
  ALTER TABLE api_tokens ADD COLUMN rate_limit TEXT;
  UPDATE api_tokens SET role = 'platform-admin' WHERE role = 'admin';

  ALTER TABLE deployments ADD COLUMN public INTEGER NOT NULL DEFAULT 1;

  ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
  CREATE INDEX events_by_tenant ON events (tenant, id);
  `,
  // 6: the audit log (issue 10; store/audit-log.ts): one row per API mutation and per denied request, each
  //    chained to the one before by hash (control/audit-chain.ts). The triggers make it append-only against
  //    accidents (a stray UPDATE or DELETE fails); a deliberate edit past them breaks the chain instead.
  `
  CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT,
    tenant      TEXT NOT NULL,
    action      TEXT NOT NULL,
    object      TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
    status      INTEGER,
    code        TEXT,
    source      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
  ) STRICT;

  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
  END;

  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
  END;
  `,
  // 7: artifacts are stored once by content, but a tenant sees only those it uploaded itself (or, from before
  //    tenants, those its versions use): another tenant's digest answers 404, as one nobody uploaded, and must
  //    be uploaded (proving the bytes) before a version can name it.
  `
  CREATE TABLE artifact_owners (
    digest  TEXT NOT NULL,
    tenant  TEXT NOT NULL,
    PRIMARY KEY (digest, tenant)
  ) STRICT;
  INSERT INTO artifact_owners (digest, tenant)
    SELECT DISTINCT artifact, 'default' FROM model_versions WHERE artifact IS NOT NULL;
  `,
  // 8: secrets are versioned: each set makes a new version (its sealed value in secret_versions); a revision
  //    pins the versions it was made with. A value set before is its secret's version 1; `secrets.sealed` is no
  //    longer read (emptied, so a value lives in one place).
  `
  ALTER TABLE secrets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
  CREATE TABLE secret_versions (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (name, version)
  ) STRICT;
  INSERT INTO secret_versions (name, version, sealed, created_at) SELECT name, 1, sealed, updated_at FROM secrets;
  UPDATE secrets SET sealed = x'';
  `,
  // 9: a deployment's scaling settings (issue 11): null = a fixed replica count (deployments.replicas); else the
  //    autoscaler's settings as JSON (src/autoscaler/types.ts ScalingSettings), and `replicas` is what it last
  //    decided.
  `
  ALTER TABLE deployments ADD COLUMN scaling TEXT;
  `,
];
