/**
 * Calls to the control-plane API with the signed-in token (`Authorization: Bearer`, never in a URL), and the two
 * streaming shapes it answers with: Server-Sent Events (read with fetch + eventsource-parser, since EventSource
 * cannot send a header) and NDJSON (followed logs). Errors keep the API's {error, code, hint}.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

const TOKEN_KEY = 'ferry.token';

/** The token of this tab (sessionStorage: gone when the tab closes, never shared with other tabs). */
export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/**
 * A `#token=...` fragment (ferry ui --with-token, ferry up on its first start): moved into sessionStorage and
 * removed from the address bar and the history entry. Fragments never reach a server or its logs.
 */
export function takeTokenFromFragment(): boolean {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  session.set(decodeURIComponent(match[1]!));
  history.replaceState(null, '', location.pathname + location.search);
  return true;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = session.token;
  return { ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
}

async function toError(res: Response): Promise<ApiError> {
  let body: { error?: string; code?: string; hint?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON
  }
  return new ApiError(
    res.status,
    body.code ?? `HTTP_${res.status}`,
    body.error ?? `${res.status} ${res.statusText}`,
    body.hint,
  );
}

/** Listeners told when the API refuses the token (401): the app goes back to the sign-in page. */
const unauthorized = new Set<() => void>();
export function onUnauthorized(listener: () => void): () => void {
  unauthorized.add(listener);
  return () => unauthorized.delete(listener);
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    cache: 'no-store',
  });
  if (!res.ok) {
    const error = await toError(res);
    if (res.status === 401) for (const l of unauthorized) l();
    throw error;
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

/**
 * Follows a `text/event-stream` answer until `signal` aborts; each event goes to `onEvent`. Resolves when the
 * stream ends (the server closed it), rejects with an ApiError when the answer is not a stream (404 when the
 * route does not exist on this control plane, 401, 403).
 */
export async function followEvents(
  path: string,
  signal: AbortSignal,
  onEvent: (event: EventSourceMessage) => void,
): Promise<void> {
  const res = await fetch(path, {
    headers: headers({ accept: 'text/event-stream' }),
    signal,
    cache: 'no-store',
  });
  if (!res.ok || !res.body) {
    const error = await toError(res);
    if (res.status === 401) for (const l of unauthorized) l();
    throw error;
  }
  const parser = createParser({ onEvent });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.feed(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/** Follows an NDJSON answer (one JSON value a line; empty lines are heartbeats) until `signal` aborts. */
export async function followNdjson<T>(
  path: string,
  signal: AbortSignal,
  onItem: (item: T) => void,
): Promise<void> {
  const res = await fetch(path, { headers: headers(), signal, cache: 'no-store' });
  if (!res.ok || !res.body) {
    const error = await toError(res);
    if (res.status === 401) for (const l of unauthorized) l();
    throw error;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line !== '') {
        const item = JSON.parse(line) as T & { error?: string; code?: string; hint?: string };
        if (item.error !== undefined && item.code !== undefined)
          throw new ApiError(500, item.code, item.error, item.hint);
        onItem(item);
      }
      newline = buffered.indexOf('\n');
    }
  }
}

/** A message for people: the API's own words, its hint, and the code. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError)
    return `${error.message}${error.hint ? ` ${error.hint}` : ''} (${error.status} ${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}
