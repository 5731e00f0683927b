/**
 * A fetch for requests an API caller caused (pinning an image reference it named): every address it connects to
 * passes the SSRF guard (src/core/ssrf.ts checkAddress: never link-local, cloud metadata, unspecified or
 * multicast). Names are checked where they are resolved, at connect time (undici's connect `lookup`), so a name
 * that re-resolves to a forbidden address between two requests is caught too; an address written literally in a
 * URL is checked before the request. Redirects are followed here, hop by hop, each hop checked the same way.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { FerryError } from '../../core/errors.ts';
import { checkAddress } from '../../core/ssrf.ts';

const MAX_REDIRECTS = 5;

function refused(host: string, address: string, reason: string): FerryError {
  return new FerryError(
    'FERRY_FORBIDDEN',
    `Ferry does not connect to ${host}${host === address ? '' : ` (${address})`}: ${reason}`,
    {
      hint: 'Registries are reached on ordinary addresses only (never link-local or cloud metadata addresses).',
    },
  );
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

function guardedLookup(hostname: string, options: { all?: boolean }, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    for (const a of addresses) {
      const verdict = checkAddress(a.address);
      if (!verdict.allowed)
        return callback(refused(hostname, a.address, verdict.reason) as NodeJS.ErrnoException, []);
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0]!;
    callback(null, first.address, first.family);
  });
}

const agent = new Agent({ connect: { lookup: guardedLookup as never } });

function checkLiteral(url: URL): void {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(host) === 0) return;
  const verdict = checkAddress(host);
  if (!verdict.allowed) throw refused(host, host, verdict.reason);
}

/** Same contract as fetch, redirects followed here (at most 5), every hop's address checked. */
export async function guardedFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  let url = new URL(input instanceof Request ? input.url : String(input));
  for (let hop = 0; ; hop++) {
    checkLiteral(url);
    let res: Response;
    try {
      res = (await undiciFetch(url, {
        ...(init as object),
        redirect: 'manual',
        dispatcher: agent,
      } as never)) as unknown as Response;
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      if (cause instanceof FerryError) throw cause;
      throw error;
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || location === null || init.redirect === 'manual') return res;
    if (hop >= MAX_REDIRECTS)
      throw new FerryError('FERRY_REGISTRY_ERROR', `More than ${MAX_REDIRECTS} redirects from ${url.host}`);
    await res.body?.cancel();
    url = new URL(location, url);
  }
}
