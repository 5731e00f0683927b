/**
 * Changes as they happen, for whoever watches live (the API's GET /v1/stream): each event the moment the
 * recorder (events.ts) has stored it, and `state` after each pass of the loop (what it observed and decided
 * may have changed the deployments' views). A watcher is called synchronously by whoever made the change, so
 * it must be cheap and must not throw (a throw is caught and logged here, the change goes on). With nobody
 * watching, a change costs a look at an empty set.
 */
import type { ControllerLogger } from './events.ts';
import type { EventRecord } from './store/store.ts';

/** `event`: one record as the store keeps it (keys, not names); `state`: something in the views may differ. */
export type PlatformChange = { kind: 'event'; event: EventRecord } | { kind: 'state' };

export type ChangeWatcher = (change: PlatformChange) => void;

export class ChangeFeed {
  readonly #watchers = new Set<ChangeWatcher>();
  readonly #log: ControllerLogger | undefined;

  constructor(log?: ControllerLogger) {
    this.#log = log;
  }

  /** Calls `watcher` for every change from now on, until the function returned is called. */
  watch(watcher: ChangeWatcher): () => void {
    // A function of its own per call, so the same watcher added twice is removed once per unwatch.
    const entry: ChangeWatcher = (change) => watcher(change);
    this.#watchers.add(entry);
    return () => {
      this.#watchers.delete(entry);
    };
  }

  /** How many watch now (0 once every stream has gone). */
  get watchers(): number {
    return this.#watchers.size;
  }

  emit(change: PlatformChange): void {
    if (this.#watchers.size === 0) return;
    for (const watcher of [...this.#watchers]) {
      try {
        watcher(change);
      } catch (error) {
        this.#log?.warn({ err: error, change: change.kind }, 'a change watcher failed');
      }
    }
  }
}
