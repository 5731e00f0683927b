/**
 * Runs at most one `work` per key at a time: a call whose key is already in flight gets that call's promise.
 * Runtimes use it so two concurrent ensure() of one replica name start one replica.
 */
export function singleFlight<A, T>(
  keyOf: (arg: A) => string,
  work: (arg: A) => Promise<T>,
): (arg: A) => Promise<T> {
  const pending = new Map<string, Promise<T>>();
  return (arg) => {
    const key = keyOf(arg);
    const inFlight = pending.get(key);
    if (inFlight) return inFlight;
    const promise = work(arg).finally(() => pending.delete(key));
    pending.set(key, promise);
    return promise;
  };
}
