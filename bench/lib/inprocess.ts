/**
 * The in-process baseline: onnxruntime-node session.run() in a loop, no HTTP, no codec. It is the
 * ceiling the server is compared with (S2: added latency; S4: batched rows/s).
 */
import * as ort from 'onnxruntime-node';
import { type PercentileCurve, percentile, percentileCurve } from './latency.mjs';

export interface InProcessOptions {
  bytes: Uint8Array;
  /** Input name -> FP32 data and shape. */
  feeds: Record<string, { data: Float32Array; shape: number[] }>;
  durationS: number;
  warmupS?: number;
  /** Intra-op threads (inter-op is always 1). Default 1. */
  threads?: number;
}

export interface InProcessResult {
  calls: number;
  wallS: number;
  callsPerS: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  /** The distribution of the call times: [percent, ms] pairs (latency.mjs percentileCurve). */
  percentiles: PercentileCurve;
  /** The outputs of the last call, for correctness checks. */
  outputs: Record<string, Float32Array>;
}

/** Open a session with the same options the benchmarks give Ferry (threads explicit, sequential). */
export function openSession(bytes: Uint8Array, threads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

/** Run session.run() back to back for durationS (after warmupS) and time every call. */
export async function runInProcess(o: InProcessOptions): Promise<InProcessResult> {
  const session = await openSession(o.bytes, o.threads ?? 1);
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(o.feeds)) feeds[name] = new ort.Tensor('float32', t.data, t.shape);
    let last = await session.run(feeds);
    const warmEnd = performance.now() + (o.warmupS ?? 1) * 1000;
    while (performance.now() < warmEnd) last = await session.run(feeds);
    const times: number[] = [];
    const start = performance.now();
    const end = start + o.durationS * 1000;
    let t = start;
    while (t < end) {
      last = await session.run(feeds);
      const now = performance.now();
      times.push(now - t);
      t = now;
    }
    const wallS = (t - start) / 1000;
    times.sort((a, b) => a - b);
    const pct = (q: number) => percentile(times, q);
    const outputs: Record<string, Float32Array> = {};
    for (const [name, v] of Object.entries(last)) outputs[name] = v.data as Float32Array;
    return {
      calls: times.length,
      wallS,
      callsPerS: times.length / wallS,
      meanMs: times.reduce((a, b) => a + b, 0) / times.length,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      percentiles: percentileCurve(times),
      outputs,
    };
  } finally {
    await session.release();
  }
}

/** One run() of the model on the given feeds, for expected outputs. */
export async function inferOnce(
  bytes: Uint8Array,
  feeds: InProcessOptions['feeds'],
  threads = 1,
): Promise<Record<string, Float32Array>> {
  const session = await openSession(bytes, threads);
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) f[name] = new ort.Tensor('float32', t.data, t.shape);
    const out = await session.run(f);
    const res: Record<string, Float32Array> = {};
    for (const [name, v] of Object.entries(out)) res[name] = v.data as Float32Array;
    return res;
  } finally {
    await session.release();
  }
}
