/**
 * The API's side of tenants: a request acts in one tenant (its token's, or the one a platform admin names),
 * turns the plain names in its URL and body into keys (src/core/tenant.ts) for the store and the controller,
 * and turns the keys in what it answers back into plain names. In the default tenant both are the identity.
 * The answer also says which tenant (`tenant` on deployments, events and tokens).
 */
import { FerryError } from '../../core/errors.ts';
import { DEFAULT_TENANT, KEY_SEPARATOR, plainName, qualify } from '../../core/tenant.ts';
import type {
  EventRecord,
  ModelRecord,
  ModelVersion,
  SecretRecord,
  StoredRevision,
  TokenRecord,
} from '../store/store.ts';
import type { DeploymentView, RolloutView } from '../views.ts';

export interface Scope {
  readonly tenant: string;
  /** The key of a plain name in this tenant. */
  key(name: string): string;
}

/**
 * The one place a name from a request becomes a key. A name holding the key separator is refused: in the
 * default tenant, `team-a%2Firis` would otherwise be the key of team-a's `iris`.
 */
export function scopeOf(tenant: string): Scope {
  return {
    tenant,
    key: (name) => {
      if (name.includes(KEY_SEPARATOR))
        throw new FerryError(
          'FERRY_BAD_REQUEST',
          `${JSON.stringify(name)} is not a name: names cannot contain "/"`,
        );
      return qualify(tenant, name);
    },
  };
}

export const unscope = {
  version: (v: ModelVersion): ModelVersion => ({ ...v, model: plainName(v.model) }),
  model: (m: ModelRecord): ModelRecord => ({
    ...m,
    name: plainName(m.name),
    versions: m.versions.map(unscope.version),
  }),
  rollout: (r: RolloutView): RolloutView => ({ ...r, deployment: plainName(r.deployment) }),
  deployment: <T extends DeploymentView>(d: T): T => ({
    ...d,
    name: plainName(d.name),
    model: plainName(d.model),
    rollout: d.rollout === null ? null : unscope.rollout(d.rollout),
  }),
  revision: (r: StoredRevision): StoredRevision => ({
    ...r,
    deployment: plainName(r.deployment),
    spec: { ...r.spec, model: plainName(r.spec.model) },
  }),
  event: (e: EventRecord): EventRecord => ({
    ...e,
    ...(e.deployment === undefined ? {} : { deployment: plainName(e.deployment) }),
    message: unscopeText(e.message, e.tenant ?? DEFAULT_TENANT),
  }),
  secret: (s: SecretRecord): SecretRecord => ({ ...s, name: plainName(s.name) }),
  token: <T extends TokenRecord>(t: T): T => ({ ...t, name: plainName(t.name) }),
  aliasUpdates: (updated: Array<{ deployment: string; revision: number }>) =>
    updated.map((u) => ({ ...u, deployment: plainName(u.deployment) })),
};

/**
 * A message written below the API names objects by key (`team-a/iris`); the tenant reading it knows them by
 * plain name. A key stands where a name would: at the start, or after a space, quote, bracket or comma; so an
 * image reference such as `registry:5000/team-a/iris` (a `/` before the tenant) is left alone.
 */
export function unscopeText(text: string, tenant: string): string {
  if (tenant === DEFAULT_TENANT || !text.includes(`${tenant}${KEY_SEPARATOR}`)) return text;
  const escaped = tenant.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`(^|[\\s"'(\\[,])${escaped}${KEY_SEPARATOR}`, 'g'), '$1');
}
