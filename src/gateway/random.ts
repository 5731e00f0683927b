/**
 * The random source every gateway decision takes as an argument, so that tests and simulations
 * are reproducible. Production wiring passes `Math.random`.
 */

/** Returns a number in [0, 1), like `Math.random`. */
export type Random = () => number;

/**
 * A small, fast, seeded generator (mulberry32: 32-bit state, period 2^32). Good enough to spread
 * traffic and to sample replicas; not for anything secret. The same seed gives the same sequence.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
