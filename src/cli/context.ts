/**
 * The CLI's context: where the control-plane API is and the token to call it with. `ferry up` writes it to
 * $FERRY_HOME/context.json (default ~/.ferry; file mode 0600, directory 0700) and `ferry down` clears the pid.
 * Every platform command connects with `connect()`: flags first, then FERRY_API_URL / FERRY_TOKEN, then
 * the context file. The token is never printed.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ControlClient } from '../control/api/client.ts';
import { FerryError } from '../core/errors.ts';
import { httpFetch } from './http-fetch.ts';
import { cliCommand } from './output.ts';

export interface FerryContext {
  apiUrl: string;
  gatewayUrl: string;
  token: string;
  runtime: 'process' | 'docker' | 'swarm';
  /** The background `ferry up` process, while it runs. */
  pid?: number | undefined;
}

/** $FERRY_HOME, default ~/.ferry. */
export function ferryHomeDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.FERRY_HOME ?? join(homedir(), '.ferry'));
}

/** <home>/context.json; home defaults to $FERRY_HOME (~/.ferry). */
export function contextPath(home: string = ferryHomeDir()): string {
  return join(home, 'context.json');
}

/**
 * Saves the context (directory 0700, file 0600, written atomically). A directory the platform made traversable
 * (0711: Ferry runs as root with the process runtime, whose replicas run as another user) keeps that.
 */
export function writeContext(home: string, ctx: FerryContext): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  chmodSync(home, (statSync(home).mode & 0o777) === 0o711 ? 0o711 : 0o700);
  const file = contextPath(home);
  const tmp = `${file}.${process.pid}.tmp`;
  const body: FerryContext = {
    apiUrl: ctx.apiUrl,
    gatewayUrl: ctx.gatewayUrl,
    token: ctx.token,
    runtime: ctx.runtime,
    ...(ctx.pid === undefined ? {} : { pid: ctx.pid }),
  };
  writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The saved context, or undefined when there is none. A damaged file is a FerryError naming it. */
export function readContext(home: string = ferryHomeDir()): FerryContext | undefined {
  const file = contextPath(home);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError(
      'FERRY_CONNECTION_FAILED',
      `Cannot read the Ferry context ${file}: ${String(error)}`,
      {
        hint: `Check its permissions, or run '${cliCommand()} up' again.`,
        cause: error,
      },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const v = value as Partial<FerryContext> | undefined;
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof v.apiUrl !== 'string' ||
    typeof v.token !== 'string' ||
    typeof v.gatewayUrl !== 'string' ||
    (v.runtime !== 'process' && v.runtime !== 'docker' && v.runtime !== 'swarm') ||
    (v.pid !== undefined && !Number.isInteger(v.pid))
  ) {
    throw new FerryError(
      'FERRY_CONNECTION_FAILED',
      `The Ferry context ${file} is damaged: it needs apiUrl, gatewayUrl, token and runtime`,
      { hint: `Remove it and run '${cliCommand()} up', or pass --api and --token.` },
    );
  }
  return {
    apiUrl: v.apiUrl,
    gatewayUrl: v.gatewayUrl,
    token: v.token,
    runtime: v.runtime,
    ...(v.pid === undefined ? {} : { pid: v.pid }),
  };
}

export function removeContext(home: string = ferryHomeDir()): void {
  rmSync(contextPath(home), { force: true });
}

export interface ConnectOptions {
  /** --api <url> */
  api?: string;
  /** --token <t> */
  token?: string;
  /** --tenant <t> (else FERRY_TENANT): act in this tenant (a platform admin's token may name any). */
  tenant?: string;
}

export interface Connection {
  apiUrl: string;
  /** Where the URL came from, for messages. */
  source: 'flag' | 'env' | 'context';
  token?: string;
  /** From the context file, when it was used. */
  gatewayUrl?: string;
}

/**
 * Resolves the API URL and token: `--api`, then FERRY_API_URL, then the context; `--token`, then
 * FERRY_TOKEN, then the context's token, which is only sent to the context's own API URL (never to another
 * server named by a flag or the environment). Pure but for reading the context file.
 */
export function resolveConnection(
  opts: ConnectOptions,
  env: NodeJS.ProcessEnv = process.env,
  home: string = ferryHomeDir(env),
): Connection {
  const flagUrl = nonEmpty(opts.api);
  const envUrl = nonEmpty(env.FERRY_API_URL);
  const explicitToken = nonEmpty(opts.token) ?? nonEmpty(env.FERRY_TOKEN);
  const needContext = flagUrl === undefined && envUrl === undefined;
  const ctx = needContext || explicitToken === undefined ? readContext(home) : undefined;
  const apiUrl = flagUrl ?? envUrl ?? ctx?.apiUrl;
  if (apiUrl === undefined) {
    throw new FerryError(
      'FERRY_CONNECTION_FAILED',
      `No Ferry control plane is known: no --api flag, no FERRY_API_URL, and no context at ${contextPath(home)}`,
      {
        hint: `Run '${cliCommand()} up' to start Ferry on this machine, or pass --api <url> --token <token> (or set FERRY_API_URL and FERRY_TOKEN).`,
      },
    );
  }
  if (!/^https?:\/\/[^/\s]+/.test(apiUrl)) {
    throw new FerryError(
      'FERRY_CONNECTION_FAILED',
      `The control-plane URL "${apiUrl}" (${flagUrl ? '--api' : envUrl ? 'FERRY_API_URL' : contextPath(home)}) is not an http(s) URL`,
      { hint: 'Write it like http://127.0.0.1:7070.' },
    );
  }
  const sameServer = ctx !== undefined && trimSlash(ctx.apiUrl) === trimSlash(apiUrl);
  const token = explicitToken ?? (sameServer ? ctx.token : undefined);
  return {
    apiUrl,
    source: flagUrl ? 'flag' : envUrl ? 'env' : 'context',
    ...(token === undefined ? {} : { token }),
    ...(ctx && sameServer ? { gatewayUrl: ctx.gatewayUrl } : {}),
  };
}

/** A client of the control-plane API resolved as `resolveConnection` says. */
export function connect(opts: ConnectOptions, env: NodeJS.ProcessEnv = process.env): ControlClient {
  const c = resolveConnection(opts, env);
  const tenant = nonEmpty(opts.tenant) ?? nonEmpty(env.FERRY_TENANT);
  return new ControlClient({
    url: c.apiUrl,
    ...(c.token === undefined ? {} : { token: c.token }),
    ...(tenant === undefined ? {} : { tenant }),
    // node:http instead of undici: a platform command starts and exits faster (see http-fetch.ts).
    fetch: httpFetch,
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
