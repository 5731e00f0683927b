/** Who sent a request, as authentication found it (app.ts sets it; routes and hooks read it). */
import type { FastifyRequest } from 'fastify';

export interface Caller {
  /** The token's id and plain name (never the token). */
  id: string;
  name: string;
  role: string;
  /** The tenant the token belongs to. */
  home: string;
  /** The tenant the request acts in: `home`, or the one a platform admin named. */
  tenant: string;
}

const callers = new WeakMap<FastifyRequest, Caller>();

/** Who sent the request (after authentication); undefined on public routes and before authentication. */
export function callerOf(request: FastifyRequest): Caller | undefined {
  return callers.get(request);
}

export function setCaller(request: FastifyRequest, caller: Caller): void {
  callers.set(request, caller);
}
