/**
 * Arrival times of a Trace: Poisson (thinning, seeded PRNG) or evenly spaced (1 ms resolution). The one generator
 * the simulator (sim.ts) and the live replay (live.ts) share, so both see the same arrivals for the same seed.
 */
import { seededRandom } from '../../../src/gateway/random.ts';
import type { Trace } from './traces.ts';

export type ArrivalMode = 'poisson' | 'even';

/** The next arrival (ms from the trace's start) each call, null once past the trace's end. */
export function arrivalGenerator(trace: Trace, seed: number, mode: ArrivalMode): () => number | null {
  const end = trace.durationMs;
  const rand = seededRandom(seed ^ 0x9e3779b9);
  let evenT = 0;
  let evenAcc = 0;
  let poissonT = 0;
  return () => {
    if (mode === 'even') {
      while (evenT < end) {
        evenT += 1;
        evenAcc += trace.rate(evenT) / 1000;
        if (evenAcc >= 1) {
          evenAcc -= 1;
          return evenT;
        }
      }
      return null;
    }
    if (!(trace.maxRps > 0)) return null;
    for (;;) {
      poissonT += (-Math.log(1 - rand()) / trace.maxRps) * 1000;
      if (poissonT >= end) return null;
      if (rand() * trace.maxRps < trace.rate(poissonT)) return poissonT;
    }
  };
}

/** Every arrival of the trace, in order. */
export function arrivalTimes(trace: Trace, seed: number, mode: ArrivalMode): number[] {
  const next = arrivalGenerator(trace, seed, mode);
  const out: number[] = [];
  for (let t = next(); t !== null; t = next()) out.push(t);
  return out;
}

/** The expected number of arrivals (the rate's integral, 10 ms steps). */
export function expectedArrivals(trace: Trace): number {
  let n = 0;
  for (let t = 0; t < trace.durationMs; t += 10) n += trace.rate(t) / 100;
  return n;
}
