/**
 * The gateways' route file on Docker Swarm, as the control plane serves it at GET /v1/gateway/routes: a discovery
 * table (src/core/route-table.ts: revisions name a DNS service, the gateway finds the replicas) kept as the JSON
 * text a gateway downloads and a strong ETag of that text, so a gateway that already has it gets a 304 and the
 * control plane serializes and hashes once per change, not once per poll. Pure: no clock, no I/O.
 *
 * The ETag is `"` + the first 32 hex digits (128 bits) of sha256(text) + `"`: the same text has the same ETag
 * across restarts of the control plane, so a gateway polling through one does not download again; any change of
 * the text (even of key order) changes it, and the gateways take the new file.
 */
import { createHash } from 'node:crypto';
import type { DiscoveryTable } from '../core/route-table.ts';

/** The current route file: its JSON text and its ETag (quoted, strong). */
export interface RouteFileVersion {
  readonly body: string;
  readonly etag: string;
}

/** What GET /v1/gateway/routes answers from (ApiDeps.gatewayRoutes). */
export interface GatewayRoutes {
  current(): RouteFileVersion;
}

/** The ETag of a route file's text: `"` + 32 hex of its sha256 + `"`. */
export function routeFileEtag(text: string): string {
  return `"${createHash('sha256').update(text).digest('hex').slice(0, 32)}"`;
}

export class RouteFile implements GatewayRoutes {
  #current: RouteFileVersion;

  /** Starts with `table`, by default an empty one (no deployments, no callers). */
  constructor(table: DiscoveryTable = { deployments: [], callers: [] }) {
    this.#current = RouteFile.#version(table);
  }

  static #version(table: DiscoveryTable): RouteFileVersion {
    const body = JSON.stringify(table);
    return Object.freeze({ body, etag: routeFileEtag(body) });
  }

  /** Makes `table` the current file; true when its text differs from the one before. */
  set(table: DiscoveryTable): boolean {
    const next = RouteFile.#version(table);
    if (next.etag === this.#current.etag && next.body === this.#current.body) return false;
    this.#current = next;
    return true;
  }

  current(): RouteFileVersion {
    return this.#current;
  }
}
