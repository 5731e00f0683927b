/**
 * Tenants: every model, version, alias, deployment, revision, secret, token and event belongs to one, and names
 * are unique per tenant. Inside the platform (store rows, the controller's loop, replica labels, log archive) an
 * object is known by its *key*: its plain name in the default tenant (so a single-user Ferry, and everything it
 * stored before tenants existed, is unchanged) and `tenant/name` in any other. No name or tenant may contain
 * '/', so a key reads back unambiguously. Only the API (tenant from the caller's token) and the gateway (tenant
 * from the path or Host) turn names into keys; users never type one.
 */

export const DEFAULT_TENANT = 'default';
export const KEY_SEPARATOR = '/';

/** The key of `name` in `tenant`. */
export function qualify(tenant: string, name: string): string {
  return tenant === DEFAULT_TENANT ? name : `${tenant}${KEY_SEPARATOR}${name}`;
}

/** The tenant and plain name of a key. */
export function splitKey(key: string): { tenant: string; name: string } {
  const at = key.indexOf(KEY_SEPARATOR);
  return at === -1
    ? { tenant: DEFAULT_TENANT, name: key }
    : { tenant: key.slice(0, at), name: key.slice(at + KEY_SEPARATOR.length) };
}

export function tenantOf(key: string): string {
  return splitKey(key).tenant;
}

export function plainName(key: string): string {
  return splitKey(key).name;
}

/** A key made safe for a file or container name ('/' is the one character names cannot hold; '_' neither). */
export function keyForFiles(key: string): string {
  return key.replace(KEY_SEPARATOR, '_');
}
