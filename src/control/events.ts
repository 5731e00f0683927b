/**
 * Events: what happened to a deployment (or the platform), for `ferry describe` and the API. The loop and the
 * command service record them the same way: in the store, and as a log line (warn for a Warning).
 */
import type { ChangeFeed } from './changes.ts';
import type { Store } from './store/store.ts';

export interface ControllerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Records one event; `deployment` undefined for one that names no deployment that exists (replicas adopted, a
 * deployment deleted), which is the default tenant's unless `tenant` says whose it is.
 */
export type RecordEvent = (
  deployment: string | undefined,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  tenant?: string,
) => void;

/**
 * An event recorder on the store; a store that cannot take the event costs the record, not the caller. Each
 * record stored goes to `changes` too (the live stream, changes.ts).
 */
export function eventRecorder(
  store: Pick<Store, 'addEvent'>,
  now: () => number,
  log: ControllerLogger | undefined,
  changes?: ChangeFeed,
): RecordEvent {
  return (deployment, type, reason, message, tenant) => {
    try {
      const event = store.addEvent({
        ...(deployment === undefined ? (tenant === undefined ? {} : { tenant }) : { deployment }),
        type,
        reason,
        message,
        at: now(),
      });
      changes?.emit({ kind: 'event', event });
    } catch (error) {
      log?.warn({ err: error }, 'could not record an event');
    }
    (type === 'Warning' ? log?.warn : log?.info)?.call(log, { deployment, reason }, message);
  };
}
