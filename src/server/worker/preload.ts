/**
 * Starting the model's first inference worker while the server process boots (issue 11, cold starts).
 *
 * A worker's start is its own: a V8 isolate, the worker's code, onnxruntime-node (about 15 ms to import) and the
 * first InferenceSession of the process (40-100 ms, whatever the model: onnxruntime's one-time setup; a second
 * session takes about 1 ms). The server used to start it only once its own modules were loaded and every
 * ferry.yaml was read, so all of that came after the main thread's ~200 ms of module loading. `preloadWorker`
 * starts it first thing, as `{ preload: 'onnx' }`: the worker imports the ONNX backend and opens a tiny embedded
 * model (paying onnxruntime's setup), then waits for its WorkerInit; the pool's first worker for an ONNX model
 * takes it (`takePreloaded`) instead of starting one. Whether the model is ONNX is guessed from its ferry.yaml's
 * text (`format: onnx`), before any module that could parse it is loaded: a wrong guess costs a worker that is
 * stopped unused (`discardPreloaded`, once startup is over) or nothing gained, never a wrong answer (the worker
 * loads what its WorkerInit says).
 *
 * Only node: modules, cpu.ts and worker-url.ts here (and types): this module is loaded before the server's own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cpuQuota } from '../cpu.ts';
import type { FromWorker } from './messages.ts';
import { WORKER_URL } from './worker-url.ts';

/** workerData of a preloaded worker (inference-worker.ts); a normal worker gets a WorkerInit. */
export interface WorkerPreload {
  preload: 'onnx';
  /** Nice value for the thread (as WorkerInit.nice). */
  nice: number;
}

interface Preloaded {
  worker: Worker;
  /** False once taken, discarded or gone. */
  alive: boolean;
  /**
   * Resolves when the worker is out of onnxruntime's native setup (it said 'warmed', or it is gone). Until
   * then the worker is ref'd and exits wait for it (`preloadSettled`): a process that exits, or a terminate(),
   * while a thread is inside that setup aborts in native code instead of exiting with its own code.
   */
  settled: Promise<void>;
}

let preloaded: Preloaded | undefined;

/** The inference threads' nice value (model-version.ts passes it to every worker). */
export const WORKER_NICE = 10;

/** True when the directory's ferry.yaml says `format: onnx` (a guess from the text; false when unreadable). */
export function looksOnnx(modelDir: string): boolean {
  try {
    return /(^|[\s{,])format:\s*["']?onnx["']?\s*([,}#]|$)/m.test(
      readFileSync(join(modelDir, 'ferry.yaml'), 'utf8'),
    );
  } catch {
    return false;
  }
}

/**
 * Starts the worker a model in `modelDir` will need, when it looks like an ONNX model and the process can run on
 * more than one core (`cores`, default: the machine's cores within the cgroup's quota, cpu.ts; FERRY_CPU_LIMIT is
 * left out, as the process runtime only advises it): on one core the worker's start and the main thread's take
 * turns, and the overlap gains nothing (bench/cold-start.ts on docker, 1 CPU per replica: boot + load the same
 * within noise). At most one per process, for the first worker of the first ONNX model loaded. Never throws.
 */
export function preloadWorker(modelDir: string, cores: number = cpuQuota(undefined, {})): void {
  if (preloaded !== undefined || cores <= 1 || !looksOnnx(modelDir)) return;
  try {
    const worker = new Worker(WORKER_URL, {
      workerData: { preload: 'onnx', nice: WORKER_NICE } satisfies WorkerPreload,
      stdout: false,
      stderr: false,
    });
    let settle = () => {};
    const entry: Preloaded = { worker, alive: true, settled: new Promise((resolve) => (settle = resolve)) };
    const onWarmed = (message: FromWorker) => {
      if (message.type !== 'warmed') return;
      worker.off('message', onWarmed);
      // An idle preloaded worker must not keep a process alive that has nothing else to do.
      if (entry.alive) worker.unref();
      settle();
    };
    worker.on('message', onWarmed);
    worker.once('exit', () => {
      entry.alive = false;
      settle();
    });
    worker.on('error', () => {
      entry.alive = false;
      settle();
    });
    preloaded = entry;
  } catch {
    // no worker: the pool starts one as before
  }
}

/** The preloaded worker for a model of this format, once (it is ref'd again: it is the pool's now). */
export function takePreloaded(format: string): Worker | undefined {
  const entry = preloaded;
  if (entry === undefined || !entry.alive || format !== 'onnx') return undefined;
  entry.alive = false;
  entry.worker.ref();
  return entry.worker;
}

/** True while a preloaded worker waits to be taken. */
export function preloadPending(): boolean {
  return preloaded?.alive === true;
}

/** Stops a preloaded worker nothing took (startup is over; a wrong guess), once it is out of native setup. */
export function discardPreloaded(): void {
  const entry = preloaded;
  if (entry?.alive) {
    entry.alive = false;
    void entry.settled.then(() => entry.worker.terminate());
  }
}

/**
 * Resolves when no preloaded worker is inside onnxruntime's setup (at once when there is none). Await it before
 * `process.exit`; a process that ends by itself waits anyway (the worker is ref'd until then).
 */
export function preloadSettled(): Promise<void> {
  return preloaded?.settled ?? Promise.resolve();
}
