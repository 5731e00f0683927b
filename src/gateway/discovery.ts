/**
 * Route source + DNS discovery (issue 12, 13): keeps a gateway's route table current from a route file
 * (discovery-table.ts) and DNS, with no cluster API. Where the file comes from is a RouteSource: a file (the
 * Kubernetes target mounts a ConfigMap) or a URL polled with a bearer token (the Swarm target: the control plane,
 * as Swarm configs cannot change under a running task).
 *
 * | event                                   | what happens                                                    |
 * |-----------------------------------------|-----------------------------------------------------------------|
 * | start                                   | the file is read (a bad or missing file fails start: nothing    |
 * |                                         | to serve), its services resolved, the table set                 |
 * | the file changes (checked every         | read again; a bad file, or a source that cannot be read, is     |
 * | checkMs, by content)                    | logged and the last good table kept (a ConfigMap update swaps a |
 * |                                         | symlink: content is what counts; a URL answers 304 unchanged)   |
 * | every resolveMs                         | each service resolved again                                     |
 * | a name does not exist, or has no record | no replicas for it (they drain out)                             |
 * | any other DNS failure (timeout, SERVFAIL)| its last endpoints kept, and logged: a DNS blip drops nothing   |
 * | the resolved table differs from the last| setRoutes                                                       |
 * | a request is held (a deployment at zero)| soon(): a lookup round within 250 ms, not at the next interval  |
 *
 * DNS goes through node:dns's Resolver (the system's servers, or `servers` such as ['10.96.0.10']); tests inject
 * `resolve`. Nothing here throws once started; stop() ends the timers.
 */

import { Resolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { FerryError } from '../core/errors.ts';
import type { RouteTable } from '../core/route-table.ts';
import {
  type DiscoveryService,
  type DiscoveryTable,
  type Endpoint,
  parseDiscoveryFile,
  resolvedTable,
  servicesOf,
} from './discovery-table.ts';

/** Looks up one service's endpoints; rejects with the DNS error (its `code`) when the lookup failed. */
export type ServiceResolver = (service: DiscoveryService) => Promise<Endpoint[]>;

/** soon(): at most one lookup round this often. */
const SOON_MS = 250;

/** DNS answers that mean "no such replicas now" rather than "DNS failed". */
const NONE = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME']);

/** A ServiceResolver on node:dns (A and AAAA; SRV then each target's addresses). */
export function dnsResolver(servers?: string[]): ServiceResolver {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  if (servers !== undefined && servers.length > 0) resolver.setServers(servers);
  const addresses = async (host: string): Promise<string[]> => {
    if (isIP(host) !== 0) return [host]; // an address given as such (a fixed replica, a test)
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const out = [
      ...(v4.status === 'fulfilled' ? v4.value : []),
      ...(v6.status === 'fulfilled' ? v6.value : []),
    ];
    if (out.length > 0) return out;
    // Neither answered: the name has no address (empty), or DNS failed (the first failure that is not "none").
    for (const r of [v4, v6])
      if (r.status === 'rejected' && !NONE.has((r.reason as { code?: string }).code ?? '')) throw r.reason;
    return [];
  };
  return async (service) => {
    if ('host' in service)
      return (await addresses(service.host)).map((address) => ({ address, port: service.port }));
    let records: { name: string; port: number }[];
    try {
      records = await resolver.resolveSrv(service.srv);
    } catch (e) {
      if (NONE.has((e as { code?: string }).code ?? '')) return [];
      throw e;
    }
    const out: Endpoint[] = [];
    for (const r of records)
      for (const address of await addresses(r.name)) out.push({ address, port: r.port });
    return out;
  };
}

/** Where the route file comes from. */
export interface RouteSource {
  /** The file's path or the URL, for messages. */
  readonly name: string;
  /** The current text; rejects when it cannot be read (missing file, refused or unreachable URL). */
  read(): Promise<string>;
}

/** A route file on disk (a mounted ConfigMap). */
export function fileSource(path: string): RouteSource {
  return { name: path, read: () => readFile(path, 'utf8') };
}

/**
 * A route file served over HTTP (the control plane's `GET /v1/gateway/routes`), asked with a bearer token and
 * the last ETag: a 304 keeps the text, so a poll every second costs a header or two. A non-2xx answer or no answer
 * within `timeoutMs` rejects, naming the status and the start of the body.
 */
export function urlSource(url: string, token: string | undefined, timeoutMs = 2000): RouteSource {
  let etag: string | undefined;
  let text: string | undefined;
  return {
    name: url,
    async read() {
      const res = await fetch(url, {
        headers: {
          accept: 'application/json',
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(etag !== undefined && text !== undefined ? { 'if-none-match': etag } : {}),
        },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status === 304 && text !== undefined) return text;
      const body = await res.text();
      if (!res.ok) throw new Error(`${url} answered ${res.status}: ${body.slice(0, 200)}`);
      etag = res.headers.get('etag') ?? undefined;
      text = body;
      return body;
    },
  };
}

export interface DiscoveryOptions {
  source: RouteSource;
  setRoutes: (table: RouteTable) => void;
  resolve: ServiceResolver;
  /** Default 5000. */
  resolveMs?: number;
  /** How often the source is read for changes; default 2000. */
  checkMs?: number;
  /** start() waits for a source that cannot be read yet instead of failing (a URL: the control plane). */
  waitForSource?: boolean;
  logger?: Logger | undefined;
}

export class DnsDiscovery {
  readonly #o: DiscoveryOptions;
  #text = '';
  #table: DiscoveryTable = { deployments: [] };
  /** Last endpoints by service key (kept through DNS failures). */
  readonly #endpoints = new Map<string, Endpoint[]>();
  #lastSet = '';
  /** When the last lookup round started (Date.now ms): soon() waits this long between rounds. */
  #lastRound = 0;
  #soon: NodeJS.Timeout | undefined;
  #timers: NodeJS.Timeout[] = [];
  #round: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: DiscoveryOptions) {
    this.#o = options;
  }

  /**
   * Reads the file (a bad one: FerryError naming the problems), resolves, sets the table, starts the timers. A
   * source that cannot be read fails too, unless `waitForSource`: then it is read again every checkMs until it
   * answers (a control plane not up yet), logged at the first failure and every 30th after.
   */
  async start(): Promise<void> {
    let text: string;
    for (let attempt = 0; ; attempt++) {
      try {
        text = await this.#read();
        break;
      } catch (e) {
        if (this.#o.waitForSource && !this.#stopped) {
          if (attempt % 30 === 0)
            this.#o.logger?.warn(
              { err: e, source: this.#o.source.name },
              'route file not readable yet: reading it again until it is',
            );
          await new Promise((r) => setTimeout(r, this.#o.checkMs ?? 2000));
          continue;
        }
        throw this.#unreadable(e);
      }
    }
    const parsed = parseDiscoveryFile(text, this.#o.source.name);
    if ('problems' in parsed)
      throw new FerryError(
        'FERRY_SPEC_INVALID',
        `the route file is not valid:\n  ${parsed.problems.join('\n  ')}`,
        {
          hint: 'fix the fields named above; docs/kubernetes.md describes the route file',
          details: parsed.problems,
        },
      );
    this.#text = text;
    this.#table = parsed.table;
    await this.refresh();
    const every = (ms: number, run: () => Promise<void>) => {
      const t = setInterval(() => {
        this.#round = this.#round.then(run);
      }, ms);
      t.unref();
      this.#timers.push(t);
    };
    every(this.#o.checkMs ?? 2000, () => this.checkFile());
    every(this.#o.resolveMs ?? 5000, () => this.refresh());
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    clearTimeout(this.#soon);
  }

  /**
   * Looks the services up again soon (a request is held for a deployment at zero: its first replica is coming,
   * and waiting for the next round would add up to resolveMs to its cold start). At most one round per
   * SOON_MS; never rejects.
   */
  soon(): void {
    if (this.#soon !== undefined || this.#timers.length === 0) return;
    const wait = Math.max(0, this.#lastRound + SOON_MS - Date.now());
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      this.#round = this.#round.then(() => this.refresh());
    }, wait);
    this.#soon.unref();
  }

  /** The table now, as last set. */
  get table(): DiscoveryTable {
    return this.#table;
  }

  /** Reads the file again; a changed, valid one replaces the table (then resolves). Never rejects. */
  async checkFile(): Promise<void> {
    let text: string;
    try {
      text = await this.#read();
    } catch (e) {
      this.#o.logger?.error(
        { err: e, source: this.#o.source.name },
        'route file unreadable: the last good table stays',
      );
      return;
    }
    if (text === this.#text) return;
    this.#text = text;
    const parsed = parseDiscoveryFile(text, this.#o.source.name);
    if ('problems' in parsed) {
      this.#o.logger?.error({ problems: parsed.problems }, 'route file invalid: the last good table stays');
      return;
    }
    this.#table = parsed.table;
    this.#o.logger?.info({ source: this.#o.source.name }, 'route file changed');
    await this.refresh();
  }

  /** Resolves every service of the table and sets the table when it changed. Never rejects. */
  async refresh(): Promise<void> {
    this.#lastRound = Date.now();
    const services = servicesOf(this.#table);
    await Promise.all(
      [...services].map(async ([key, service]) => {
        try {
          this.#endpoints.set(key, await this.#o.resolve(service));
        } catch (e) {
          this.#o.logger?.warn(
            { err: e, service: key },
            'service lookup failed: its last endpoints are kept',
          );
        }
      }),
    );
    for (const key of [...this.#endpoints.keys()]) if (!services.has(key)) this.#endpoints.delete(key);
    const table = resolvedTable(this.#table, this.#endpoints);
    const text = JSON.stringify(table);
    if (text === this.#lastSet) return;
    try {
      this.#o.setRoutes(table);
      this.#lastSet = text;
    } catch (e) {
      this.#o.logger?.error({ err: e }, 'resolved route table refused: the last one stays');
    }
  }

  #read(): Promise<string> {
    return this.#o.source.read();
  }

  #unreadable(e: unknown): FerryError {
    return new FerryError(
      'FERRY_FILE_NOT_FOUND',
      `route file ${this.#o.source.name}: ${(e as Error).message}`,
      {
        hint: 'Give the route file the gateway serves (--routes, e.g. a ConfigMap mounted as a file, or --routes-url with --token-file).',
      },
    );
  }
}
