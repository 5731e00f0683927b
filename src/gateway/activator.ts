/**
 * The activator (issue 11, scale from zero): a request to a deployment whose table entry has `activator`, whose
 * revision (chosen by the split or the pin, as for any request) has no ready replica, waits here instead of
 * getting 503 at once; the platform hears of it at once (`onHeld(deployment key)`, on every held request: it
 * nudges the control loop, which coalesces), and the request goes out through the normal path (an Exchange) as
 * soon as a route table brings a ready replica of its revision.
 *
 * Per deployment a FIFO queue, bounded twice: past `maxHeld` waiting requests a new one gets 503
 * FERRY_NO_READY_REPLICA with Retry-After at once; a request that waited `maxWaitMs` gets the same 503 (one timer
 * per queue, set for the earliest deadline). The body is read while the request waits and kept, as the Exchange
 * keeps it for retries (up to maxRetryBodyBytes; a larger body cannot wait: 503). A client that goes away while
 * held is dropped from the queue and never sent. Held requests are in flight for their revision's load samples
 * (the autoscaler sees the demand at zero) from the moment they are held until their response closes.
 *
 * On a new route table, the queue is walked in order:
 *
 * | the held request's revision in the new table              | what happens                               |
 * |-----------------------------------------------------------|--------------------------------------------|
 * | has a ready replica                                        | released: an Exchange sends it             |
 * | has one, but replicas start and the pick is at capacity    | stays held (burst capacity: waitForStarting)|
 * | has one, but the pick carries the replicas' limit          | stays held (atReplicaLimit)                 |
 * | not ready yet, and the table says it cannot start one      | 503 naming why (reason unavailable)        |
 * | not ready yet, deployment still has `activator`            | stays held (same deadline)                 |
 * | not ready yet, `activator` gone from the deployment        | 503 (reason removed)                       |
 * | gone, or at 0 percent, request not pinned                  | a new split draw, then as above            |
 * | gone, request pinned (x-ferry-revision)                    | 404 FERRY_NOT_FOUND, as a new request gets |
 * | every revision at 0 percent                                | 503 (reason removed)                       |
 * | the deployment left the table                              | 404 FERRY_MODEL_NOT_FOUND, as a new request|
 *
 * A request is also held, with a ready replica, when replicas of its revision are starting and the balancer's
 * pick already carries the deployment's `replicaCapacity` (burst capacity), when the pick carries the revision's
 * `replicaLimit` (a replica sheds past it: the request waits for room instead of getting 503 FERRY_QUEUE_FULL),
 * or when requests of its revision are held already (first come, first out). A held request goes out only to a
 * pick below the limit, and below `replicaCapacity` while replicas start or while the limit is not known yet.
 * Held requests are walked again whenever a replica finishes one (RouteState.onSlotFree, one pass per microtask)
 * as well as on a new table.
 *
 * close(): every held request gets 503 at once (Connection: close).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { FerryError } from '../core/errors.ts';
import type { HeldSample } from '../core/route-table.ts';
import type { ForwardedRequest } from './headers.ts';
import type { ActivatorRejectReason, GatewayMetrics } from './metrics.ts';
import { Exchange, type ProxyContext, pickReplica } from './proxy.ts';
import type { Random } from './random.ts';
import { sendError } from './reply.ts';
import type { DeploymentState, ReplicaState, RevisionState, RouteState } from './state.ts';
import { type PickOptions, pickRevision, shadowTargets } from './traffic.ts';

/** setTimeout's longest delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;
const EMPTY_PICK: PickOptions = {};

interface Held {
  req: IncomingMessage;
  res: ServerResponse;
  /** Where it will go (its load counts it in flight); may change when its revision leaves the split. */
  revision: RevisionState;
  pinned: boolean;
  path: { before: string; after: string };
  fwd: ForwardedRequest;
  startedAt: number;
  /** ctx.now() when held: the deadline is heldAt + maxWaitMs. */
  heldAt: number;
  chunks: Buffer[];
  bytes: number;
  ended: boolean;
  onData: (chunk: Buffer) => void;
  onEnd: () => void;
  onClose: () => void;
}

interface Queue {
  key: string;
  entries: Held[];
  maxWaitMs: number;
  timer: NodeJS.Timeout | undefined;
}

export interface ActivatorOptions {
  ctx: ProxyContext;
  state: RouteState;
  metrics: GatewayMetrics;
  /** The traffic split's draws (a held request whose revision left the split is drawn again). */
  splitRandom: Random;
  /** Shadow draws of a released request. */
  random: Random;
  onHeld: ((deployment: string) => void) | undefined;
  logger: Logger | undefined;
  /** A 404 for a deployment that left the table, as a new request would get it. */
  notFound: (tenant: string, name: string) => FerryError;
}

/** True when some replica of the revision is ready (ejected or not): the activator's business ends there. */
export function hasReadyReplica(revision: RevisionState): boolean {
  for (const r of revision.replicas) if (r.ready) return true;
  return false;
}

/**
 * Burst capacity: true when a request for `revision` whose best ready replica is `best` should wait for a
 * replica being started rather than go to `best` now: the deployment sets a replicaCapacity, replicas of the
 * revision are starting, and `best` (the balancer's pick: the least loaded, or the lesser of two) already carries
 * that many. Pure.
 */
export function waitForStarting(dep: DeploymentState, revision: RevisionState, best: ReplicaState): boolean {
  const capacity = dep.activator?.replicaCapacity ?? null;
  return capacity !== null && revision.starting > 0 && best.outstanding >= capacity;
}

/**
 * True when `best` (the balancer's pick) already carries as many requests as a replica of the revision takes
 * before it sheds them (the table's replicaLimit): one more would get 503 FERRY_QUEUE_FULL, so it waits here for
 * room instead. For a request already held while the limit is not known (a revision's first replicas, before
 * their first load report), the deployment's replicaCapacity stands in: what waited at zero goes out at that pace
 * rather than all at once onto replicas whose bound is not known. Pure.
 */
export function atReplicaLimit(
  dep: DeploymentState,
  revision: RevisionState,
  best: ReplicaState,
  held: boolean,
): boolean {
  const limit = revision.replicaLimit ?? (held ? (dep.activator?.replicaCapacity ?? null) : null);
  return limit !== null && best.outstanding >= limit;
}

export class Activator {
  readonly #o: ActivatorOptions;
  /** By deployment key; a queue is dropped when it empties. */
  readonly #queues = new Map<string, Queue>();

  /** A pass over the queues is scheduled (a slot came free on some replica). */
  #pumpScheduled = false;

  constructor(options: ActivatorOptions) {
    this.#o = options;
    options.metrics.setHeldSource(() => this.#heldPairs());
    options.state.onSlotFree = () => {
      if (this.#queues.size === 0 || this.#pumpScheduled) return;
      // After the attempt that freed it has finished its bookkeeping; one pass for any number of frees.
      this.#pumpScheduled = true;
      queueMicrotask(() => {
        this.#pumpScheduled = false;
        this.routesChanged();
      });
    };
  }

  /**
   * True when a request routed to `revision` must queue behind requests of that revision already held (they go
   * first), should wait for capacity being started (waitForStarting), or for room below the replicas' limit
   * (atReplicaLimit). The caller found `best` ready.
   */
  mustWait(dep: DeploymentState, revision: RevisionState, best: ReplicaState): boolean {
    if (dep.activator === null) return false;
    if (waitForStarting(dep, revision, best) || atReplicaLimit(dep, revision, best, false)) return true;
    const q = this.#queues.get(dep.name);
    if (q === undefined) return false;
    for (const h of q.entries) if (h.revision === revision) return true;
    return false;
  }

  *#heldPairs(): Iterable<readonly [string, number]> {
    for (const q of this.#queues.values()) yield [q.key, q.entries.length] as const;
    for (const dep of this.#o.state.deployments.values())
      if (dep.activator !== null && !this.#queues.has(dep.name)) yield [dep.name, 0] as const;
  }

  /** Every deployment with an activator in the table, and every one with requests held. */
  heldSamples(): HeldSample[] {
    const out: HeldSample[] = [];
    for (const [deployment, held] of this.#heldPairs()) out.push({ deployment, held });
    return out;
  }

  /**
   * Holds a request whose revision has no ready replica (the caller checked `dep.activator` and the access
   * rules), or answers 503 at once when the deployment's queue is full.
   */
  hold(
    dep: DeploymentState,
    revision: RevisionState,
    pinned: boolean,
    req: IncomingMessage,
    res: ServerResponse,
    path: { before: string; after: string },
    fwd: ForwardedRequest,
    startedAt: number,
  ): void {
    const o = this.#o;
    const limits = dep.activator!;
    let queue = this.#queues.get(dep.name);
    const waiting = queue?.entries.length ?? 0;
    if (waiting >= limits.maxHeld) {
      revision.load.arriveAndLeave();
      this.#answer(
        dep.name,
        revision,
        res,
        fwd.requestId,
        startedAt,
        'full',
        hasReadyReplica(revision)
          ? new FerryError(
              'FERRY_NO_READY_REPLICA',
              `deployment '${dep.name}' has no room on a ready replica and ${waiting} request(s) already wait for it (its limit)`,
              {
                hint: 'Its replicas are full and more are starting, or it is at its maximum; retry after the Retry-After delay.',
                retryAfterSeconds: 1,
              },
            )
          : new FerryError(
              'FERRY_NO_READY_REPLICA',
              `deployment '${dep.name}' has no ready replica yet and ${waiting} request(s) already wait for one (its limit)`,
              {
                hint: 'A replica is starting (scale from zero); retry after the Retry-After delay.',
                retryAfterSeconds: 1,
              },
            ),
      );
      req.resume();
      return;
    }
    if (queue === undefined) {
      queue = { key: dep.name, entries: [], maxWaitMs: limits.maxWaitMs, timer: undefined };
      this.#queues.set(dep.name, queue);
    }
    const now = o.ctx.now();
    revision.load.arrive(now);
    const q = queue;
    const h: Held = {
      req,
      res,
      revision,
      pinned,
      path,
      fwd,
      startedAt,
      heldAt: now,
      chunks: [],
      bytes: 0,
      ended: false,
      onData: (chunk) => {
        h.bytes += chunk.length;
        if (h.bytes > o.ctx.maxRetryBodyBytes) {
          this.#reject(
            q,
            h,
            'body_too_large',
            new FerryError(
              'FERRY_NO_READY_REPLICA',
              `deployment '${dep.name}' has no ready replica yet, and a body over ${o.ctx.maxRetryBodyBytes} bytes cannot wait for one`,
              {
                hint: 'A replica is starting (scale from zero); retry after the Retry-After delay.',
                retryAfterSeconds: 1,
              },
            ),
          );
          return;
        }
        h.chunks.push(chunk);
      },
      onEnd: () => {
        h.ended = true;
      },
      onClose: () => this.#gone(q, h),
    };
    req.on('data', h.onData);
    req.on('end', h.onEnd);
    req.on('error', noop);
    res.once('close', h.onClose);
    q.entries.push(h);
    if (q.timer === undefined) this.#arm(q, now);
    // Held behind others or for burst capacity: room may have come meanwhile (in order, the oldest first).
    if (hasReadyReplica(revision)) for (const e of [...q.entries]) this.#route(q, dep, e);
    if (o.onHeld !== undefined) {
      try {
        o.onHeld(dep.name);
      } catch (e) {
        o.logger?.error({ err: e, deployment: dep.name }, 'gateway: onHeld failed');
      }
    }
  }

  /** A new route table is in effect: release what can go, re-draw or refuse what lost its revision. */
  routesChanged(): void {
    const o = this.#o;
    for (const q of [...this.#queues.values()]) {
      const dep = o.state.deployments.get(q.key);
      if (dep === undefined) {
        for (const h of [...q.entries])
          this.#reject(
            q,
            h,
            'removed',
            o.notFound(h.revision.deployment.tenant, h.revision.deployment.plainName),
          );
        continue;
      }
      if (dep.activator !== null && dep.activator.maxWaitMs !== q.maxWaitMs) {
        q.maxWaitMs = dep.activator.maxWaitMs;
        this.#rearm(q);
      }
      for (const h of [...q.entries]) this.#route(q, dep, h);
    }
  }

  #route(q: Queue, dep: DeploymentState, h: Held): void {
    const o = this.#o;
    let rev = dep.revisions.get(h.revision.key);
    if (!h.pinned && (rev === undefined || rev.percent <= 0)) {
      const pick = pickRevision(dep.targets, EMPTY_PICK, o.splitRandom);
      rev = 'error' in pick ? undefined : dep.revisions.get(pick.revision);
      if (rev === undefined) {
        this.#reject(
          q,
          h,
          'removed',
          new FerryError(
            'FERRY_NO_READY_REPLICA',
            `deployment '${dep.name}' has no revision taking traffic`,
            {
              hint: 'Every revision is at 0 percent now; retry after the Retry-After delay.',
              retryAfterSeconds: 1,
            },
          ),
        );
        return;
      }
    } else if (rev === undefined) {
      this.#reject(
        q,
        h,
        'removed',
        new FerryError(
          'FERRY_NOT_FOUND',
          `deployment '${dep.name}' has no revision '${h.revision.key}' any more (header x-ferry-revision)`,
          { hint: `Revisions of '${dep.name}': ${dep.targets.map((t) => t.revision).join(', ') || 'none'}.` },
        ),
      );
      return;
    }
    if (rev.load !== h.revision.load) {
      const now = o.ctx.now();
      h.revision.load.leave(now);
      rev.load.enter(now);
    }
    h.revision = rev;
    if (hasReadyReplica(rev)) {
      const replica = pickReplica(o.ctx, rev);
      if (replica !== null) {
        if (!waitForStarting(dep, rev, replica) && !atReplicaLimit(dep, rev, replica, true))
          this.#release(q, dep, h, replica);
        return;
      }
      this.#reject(q, h, 'removed', noReplica(dep, rev, 'has no ready replica that is not ejected'));
      return;
    }
    if (rev.unavailable !== null) this.#reject(q, h, 'unavailable', cannotStart(dep, rev, rev.unavailable));
    else if (dep.activator === null)
      this.#reject(
        q,
        h,
        'removed',
        noReplica(dep, rev, 'has no ready replica, and the deployment no longer holds requests'),
      );
  }

  #release(q: Queue, dep: DeploymentState, h: Held, replica: ReturnType<typeof pickReplica> & object): void {
    const o = this.#o;
    const sock = h.res.socket;
    if (sock === null || sock.destroyed || !sock.writable) {
      // The client is going away (its close event is on the way): never send it.
      this.#gone(q, h);
      h.res.destroy();
      return;
    }
    this.#unhook(q, h);
    o.metrics.activatorReleased(dep.name);
    const shadows = dep.hasShadow ? shadowTargets(dep.targets, o.random) : null;
    try {
      new Exchange(
        o.ctx,
        h.req,
        h.res,
        h.revision,
        h.path,
        h.fwd,
        h.startedAt,
        shadows !== null && shadows.length > 0 ? shadows : null,
      ).start(replica, { chunks: h.chunks, bytes: h.bytes, ended: h.ended });
    } catch (e) {
      // Never out of setRoutes: this request's connection is cut (its close handler lowers the load).
      o.logger?.error({ err: e, deployment: dep.name }, 'gateway: releasing a held request failed');
      h.res.destroy();
    }
  }

  /** Gateway closing: every held request gets 503 now. */
  closeAll(): void {
    for (const q of [...this.#queues.values()])
      for (const h of [...q.entries])
        this.#reject(
          q,
          h,
          'closing',
          new FerryError('FERRY_NO_READY_REPLICA', 'the gateway is shutting down', {
            hint: 'Retry after the Retry-After delay (another gateway instance, or this one once restarted).',
            retryAfterSeconds: 1,
          }),
        );
  }

  /** Takes the request out of its queue and off its streams (not its load: see callers). */
  #unhook(q: Queue, h: Held): void {
    const i = q.entries.indexOf(h);
    if (i < 0) return;
    q.entries.splice(i, 1);
    h.req.removeListener('data', h.onData);
    h.req.removeListener('end', h.onEnd);
    h.res.removeListener('close', h.onClose);
    if (q.entries.length === 0) {
      clearTimeout(q.timer);
      q.timer = undefined;
      this.#queues.delete(q.key);
    }
  }

  /** The client went away while held: dropped, never sent; counted as 499 like any abandoned request. */
  #gone(q: Queue, h: Held): void {
    if (!q.entries.includes(h)) return;
    this.#unhook(q, h);
    h.revision.load.leave(this.#o.ctx.now());
    h.revision.metrics.request(499, (performance.now() - h.startedAt) / 1000);
  }

  #reject(q: Queue, h: Held, reason: ActivatorRejectReason, error: FerryError): void {
    if (!q.entries.includes(h)) return;
    this.#unhook(q, h);
    h.revision.load.leave(this.#o.ctx.now());
    this.#answer(q.key, h.revision, h.res, h.fwd.requestId, h.startedAt, reason, error);
    // Whatever of the body is still coming is read and dropped.
    h.req.resume();
  }

  #answer(
    deployment: string,
    revision: RevisionState,
    res: ServerResponse,
    requestId: string,
    startedAt: number,
    reason: ActivatorRejectReason,
    error: FerryError,
  ): void {
    this.#o.metrics.activatorRejected(deployment, reason);
    revision.metrics.request(error.status, (performance.now() - startedAt) / 1000);
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    sendError(res, error, requestId, [
      'x-ferry-revision',
      revision.key,
      ...(this.#o.ctx.closing ? ['connection', 'close'] : []),
    ]);
  }

  /** Sets the queue's one timer for its earliest deadline. */
  #arm(q: Queue, now: number): void {
    let due = Number.POSITIVE_INFINITY;
    for (const h of q.entries) if (h.heldAt < due) due = h.heldAt;
    if (due === Number.POSITIVE_INFINITY) return;
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, due + q.maxWaitMs - now));
    q.timer = setTimeout(() => this.#expire(q), delay);
    q.timer.unref();
  }

  #rearm(q: Queue): void {
    clearTimeout(q.timer);
    q.timer = undefined;
    this.#arm(q, this.#o.ctx.now());
  }

  #expire(q: Queue): void {
    q.timer = undefined;
    if (this.#queues.get(q.key) !== q) return;
    const now = this.#o.ctx.now();
    for (const h of [...q.entries]) {
      if (h.heldAt + q.maxWaitMs > now) continue;
      this.#reject(
        q,
        h,
        'timeout',
        noReplica(
          h.revision.deployment,
          h.revision,
          hasReadyReplica(h.revision)
            ? `got no room on a replica within ${q.maxWaitMs} ms (the deployment's longest wait for one to start)`
            : `got no ready replica within ${q.maxWaitMs} ms (the deployment's longest wait for one to start)`,
        ),
      );
    }
    if (this.#queues.get(q.key) === q) this.#arm(q, now);
  }
}

/** 503 for a revision with no ready replica that cannot start one now (the route table's `unavailable`). */
export function cannotStart(dep: DeploymentState, rev: RevisionState, why: string): FerryError {
  return new FerryError(
    'FERRY_NO_READY_REPLICA',
    `revision ${rev.key} of deployment '${dep.plainName}' has no ready replica and cannot start one: ${why}`,
    {
      hint: `ferry describe ${dep.plainName} shows the revision's problem; fix it (or roll back with ferry rollout undo) and retry.`,
      retryAfterSeconds: 1,
    },
  );
}

function noReplica(dep: DeploymentState, rev: RevisionState, why: string): FerryError {
  return new FerryError('FERRY_NO_READY_REPLICA', `revision ${rev.key} of deployment '${dep.name}' ${why}`, {
    hint: 'A replica is starting (scale from zero) or cannot start; retry after the Retry-After delay.',
    retryAfterSeconds: 1,
  });
}

function noop(): void {}
