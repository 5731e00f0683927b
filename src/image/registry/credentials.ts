/**
 * Where registry credentials come from, in order: FERRY_REGISTRY_USERNAME + FERRY_REGISTRY_PASSWORD (or
 * FERRY_REGISTRY_TOKEN, sent as a bearer token) in the environment; then the `auths` section of the Docker
 * config ($DOCKER_CONFIG/config.json, else ~/.docker/config.json). Credential helpers (credsStore,
 * credHelpers) are not run; when one is configured for the registry, the result says so for error hints.
 * Nothing here ever puts a secret into an error message.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../../core/errors.ts';
import { DOCKER_HUB, DOCKER_HUB_API } from './ref.ts';

export type Credentials = { username: string; password: string } | { token: string };

export interface ResolvedCredentials {
  credentials: Credentials | undefined;
  /** Where they came from, for messages ("environment", "/root/.docker/config.json", "none"). */
  source: string;
  /** Set when the Docker config names a credential helper Ferry does not run; use it as an error hint. */
  hint?: string;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG
    ? join(env.DOCKER_CONFIG, 'config.json')
    : join(homedir(), '.docker', 'config.json');
}

/** "https://host:port/v1/" -> "host:port"; Docker Hub aliases -> "docker.io". */
export function normalizeRegistryKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  k = k.toLowerCase();
  if (k === 'index.docker.io' || k === DOCKER_HUB_API) return DOCKER_HUB;
  return k;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export function resolveCredentials(
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
  configPath: string = dockerConfigPath(env),
): ResolvedCredentials {
  const user = env.FERRY_REGISTRY_USERNAME;
  const pass = env.FERRY_REGISTRY_PASSWORD;
  const token = env.FERRY_REGISTRY_TOKEN;
  if (user || pass) {
    if (!user || !pass) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `${user ? 'FERRY_REGISTRY_USERNAME' : 'FERRY_REGISTRY_PASSWORD'} is set but ${user ? 'FERRY_REGISTRY_PASSWORD' : 'FERRY_REGISTRY_USERNAME'} is not.`,
        { hint: 'Set both, or FERRY_REGISTRY_TOKEN alone, or neither (then the Docker config is used).' },
      );
    }
    return { credentials: { username: user, password: pass }, source: 'environment' };
  }
  if (token) return { credentials: { token }, source: 'environment' };

  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch {
    return { credentials: undefined, source: 'none' };
  }
  let config: DockerConfig;
  try {
    config = JSON.parse(text) as DockerConfig;
  } catch {
    throw new FerryError('FERRY_BAD_REQUEST', `The Docker config ${configPath} is not valid JSON.`, {
      hint: 'Fix or remove it, or set FERRY_REGISTRY_USERNAME / FERRY_REGISTRY_PASSWORD.',
    });
  }
  const want = normalizeRegistryKey(registry);
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (normalizeRegistryKey(key) !== want || !entry) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        return {
          credentials: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
          source: configPath,
        };
      }
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `The "auth" entry for ${key} in ${configPath} is malformed.`,
        {
          hint: 'It must be base64 of "username:password"; run `docker login` again.',
        },
      );
    }
    if (entry.username && entry.password) {
      return { credentials: { username: entry.username, password: entry.password }, source: configPath };
    }
    if (entry.identitytoken) {
      return {
        credentials: undefined,
        source: 'none',
        hint: `${configPath} holds an identity token for ${registry}, which Ferry does not use; set FERRY_REGISTRY_USERNAME / FERRY_REGISTRY_PASSWORD or FERRY_REGISTRY_TOKEN.`,
      };
    }
  }
  const helper =
    Object.entries(config.credHelpers ?? {}).find(([k]) => normalizeRegistryKey(k) === want)?.[1] ??
    config.credsStore;
  if (helper) {
    return {
      credentials: undefined,
      source: 'none',
      hint: `${configPath} uses the credential helper "docker-credential-${helper}", which Ferry does not run; set FERRY_REGISTRY_USERNAME / FERRY_REGISTRY_PASSWORD (or FERRY_REGISTRY_TOKEN).`,
    };
  }
  return { credentials: undefined, source: 'none' };
}
