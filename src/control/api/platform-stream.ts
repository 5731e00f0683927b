/**
 * GET /v1/stream: the tenant's deployments and events, live, as server-sent events (text/event-stream), so a
 * dashboard follows the platform without polling:
 *
 *   event: deployments   data: the body of GET /v1/deployments (every deployment of the tenant), on connect and
 *                        whenever its JSON changed (looked at after a change, at most every `minCheckMs`)
 *   event: event         data: one record as GET /v1/events returns it, for each event recorded after connect
 *   : ping               a comment every `pingMs`, so proxies and clients see the connection alive
 *
 * What is noticed, and when: the control plane's `watch` (changes.ts) calls here with each event as it is
 * recorded and after each pass of the loop (every change of the views comes from a command, which records an
 * event and asks for a pass, or from a pass). Nothing runs while nobody is connected: the first stream watches,
 * the last one to go stops watching. A change makes one look per tenant with a stream (one list, one JSON),
 * whatever the number of its streams, and no more often than every `minCheckMs`.
 *
 * A slow client: a `deployments` body is never queued behind another; while the socket has not drained, the
 * stream only remembers that it is behind and sends the newest on `drain`. Events cannot be merged: past
 * `maxBufferedBytes` waiting in the socket's buffer the stream is dropped (closed); the client reconnects and
 * starts again from a fresh `deployments`. A stream ends when the client goes away, and cleanly (the chunked
 * body's end) when the API closes (`close()`, from app.ts's preClose hook, before Fastify cuts connections).
 * Its timers (the ping, the tenant's look) go with it; they are not unref'd, so that one left behind would
 * show (a test counts them) rather than hide.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { DEFAULT_TENANT } from '../../core/tenant.ts';
import type { PlatformChange } from '../changes.ts';
import type { ControlPlane } from '../views.ts';
import { unscope } from './tenant-scope.ts';

export interface PlatformStreamOptions {
  control: Pick<ControlPlane, 'list' | 'watch'>;
  /** Milliseconds between `: ping` comments (default 15000). */
  pingMs?: number;
  /** Looks at the deployments at most this often, ms (default 500). */
  minCheckMs?: number;
  /** A stream whose socket holds more than this many bytes unsent is dropped (default 4 MiB). */
  maxBufferedBytes?: number;
  log?: FastifyBaseLogger;
  now?: () => number;
}

/** The response headers of a stream. */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  'x-accel-buffering': 'no',
};

interface Client {
  readonly res: ServerResponse;
  readonly group: Group;
  /** The `deployments` JSON this client has last been sent. */
  sent: string | undefined;
  ping: NodeJS.Timeout;
  onDrain: () => void;
  onClose: () => void;
}

interface Group {
  readonly tenant: string;
  readonly clients: Set<Client>;
  /** The newest `deployments` JSON looked at. */
  json: string | undefined;
  lastCheckAt: number;
  timer: NodeJS.Timeout | null;
}

export class PlatformStreams {
  readonly #control: Pick<ControlPlane, 'list' | 'watch'>;
  readonly #pingMs: number;
  readonly #minCheckMs: number;
  readonly #maxBuffered: number;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #now: () => number;
  readonly #groups = new Map<string, Group>();
  #unwatch: (() => void) | null = null;
  #closed = false;

  constructor(opts: PlatformStreamOptions) {
    this.#control = opts.control;
    this.#pingMs = opts.pingMs ?? 15_000;
    this.#minCheckMs = opts.minCheckMs ?? 500;
    this.#maxBuffered = opts.maxBufferedBytes ?? 4 * 1024 * 1024;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
  }

  /** Open streams, and whether the hub watches the control plane (false once all have gone). */
  get stats(): { streams: number; tenants: number; watching: boolean; timers: number } {
    let streams = 0;
    let timers = 0;
    for (const g of this.#groups.values()) {
      streams += g.clients.size;
      timers += g.clients.size + (g.timer ? 1 : 0);
    }
    return { streams, tenants: this.#groups.size, watching: this.#unwatch !== null, timers };
  }

  /**
   * Serves a stream of `tenant` on `res`, whose status and headers (STREAM_HEADERS) the caller has written:
   * the first `deployments` now, the rest as they change, until the client goes or `close()`.
   */
  open(tenant: string, res: ServerResponse): void {
    if (this.#closed || res.destroyed) {
      res.end();
      return;
    }
    // Watch before the first look, so that no change between the two is missed.
    this.#unwatch ??= this.#control.watch((change) => this.#changed(change));
    let group = this.#groups.get(tenant);
    if (!group) {
      group = { tenant, clients: new Set(), json: undefined, lastCheckAt: 0, timer: null };
      this.#groups.set(tenant, group);
    }
    const client: Client = {
      res,
      group,
      sent: undefined,
      ping: setInterval(() => {
        // A client that has not read the last ping needs no other.
        if (!res.writableNeedDrain) this.#write(client, ': ping\n\n');
      }, this.#pingMs),
      onDrain: () => this.#catchUp(client),
      onClose: () => this.#remove(client),
    };
    group.clients.add(client);
    res.on('drain', client.onDrain);
    res.on('close', client.onClose);
    // The first body is looked at now (what the group last saw may be up to minCheckMs old).
    const json = this.#look(group);
    if (json !== undefined) this.#sendDeployments(client, json);
    else this.#drop(client, 'the deployments could not be listed');
  }

  /** Ends every stream (the API closes); new ones end at once. */
  close(): void {
    this.#closed = true;
    for (const group of [...this.#groups.values()])
      for (const client of [...group.clients]) {
        this.#remove(client);
        if (!client.res.writableEnded) client.res.end();
      }
  }

  #changed(change: PlatformChange): void {
    if (change.kind === 'event') {
      const event = change.event;
      const group = this.#groups.get(event.tenant ?? DEFAULT_TENANT);
      if (!group) return;
      const frame = `event: event\ndata: ${JSON.stringify(unscope.event(event))}\n\n`;
      for (const client of [...group.clients]) {
        this.#write(client, frame);
        if (client.res.writableLength > this.#maxBuffered)
          this.#drop(client, `more than ${this.#maxBuffered} bytes wait for a client that does not read`);
      }
      this.#schedule(group);
    } else {
      for (const group of this.#groups.values()) this.#schedule(group);
    }
  }

  /** A look at the group's deployments soon: at once (after the current task), or when minCheckMs has passed. */
  #schedule(group: Group): void {
    if (group.timer) return;
    const delay = Math.max(0, group.lastCheckAt + this.#minCheckMs - this.#now());
    group.timer = setTimeout(() => {
      group.timer = null;
      if (group.clients.size === 0) return;
      const json = this.#look(group);
      if (json === undefined) return;
      for (const client of [...group.clients]) this.#catchUp(client);
    }, delay);
  }

  /** The tenant's deployments as GET /v1/deployments answers them, as JSON; undefined when listing failed. */
  #look(group: Group): string | undefined {
    group.lastCheckAt = this.#now();
    try {
      group.json = JSON.stringify(this.#control.list(group.tenant).map(unscope.deployment));
    } catch (error) {
      this.#log?.error({ err: error, tenant: group.tenant }, 'stream: listing the deployments failed');
      return undefined;
    }
    return group.json;
  }

  /** Sends the group's newest deployments when this client has not had them and its socket has room. */
  #catchUp(client: Client): void {
    const json = client.group.json;
    if (json === undefined || json === client.sent || client.res.writableNeedDrain) return;
    this.#sendDeployments(client, json);
  }

  #sendDeployments(client: Client, json: string): void {
    client.sent = json;
    this.#write(client, `event: deployments\ndata: ${json}\n\n`);
  }

  #write(client: Client, frame: string): void {
    const { res } = client;
    if (res.destroyed || res.writableEnded) return;
    res.write(frame);
  }

  #drop(client: Client, why: string): void {
    this.#log?.warn({ tenant: client.group.tenant }, `stream closed: ${why}`);
    this.#remove(client);
    client.res.destroy();
  }

  /** Forgets a client; the last one of a tenant takes its timer along, the last of all stops the watch. */
  #remove(client: Client): void {
    const { group, res } = client;
    if (!group.clients.delete(client)) return;
    clearInterval(client.ping);
    res.off('drain', client.onDrain);
    res.off('close', client.onClose);
    if (group.clients.size === 0) {
      if (group.timer) clearTimeout(group.timer);
      group.timer = null;
      if (this.#groups.get(group.tenant) === group) this.#groups.delete(group.tenant);
    }
    if (this.#groups.size === 0 && this.#unwatch) {
      this.#unwatch();
      this.#unwatch = null;
    }
  }
}
