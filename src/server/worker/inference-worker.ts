/**
 * Runs inside a worker thread: loads one backend and answers infer messages. onnxruntime-node's
 * run() blocks the thread that calls it, so it must never run on the server's event loop.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { Tensor } from '../../protocol/types.ts';
import type { Backend } from '../backends/types.ts';
import {
  type FromWorker,
  monoMs,
  type RequestTimings,
  type SerializedError,
  serializeError,
  type ToWorker,
  transferables,
  type WorkerInit,
  type WorkerTimings,
  wallClockMs,
} from './messages.ts';
import type { WorkerPreload } from './preload.ts';

const port = parentPort!;
const data = workerData as WorkerInit | WorkerPreload;

/**
 * False once a transfer failed: onnxruntime-node's output buffers are external memory that cannot be
 * detached, and a failed postMessage (an exception, then a second call that copies) cost a fifth of this
 * thread's time on small models. From then on outputs are copied, which is what the fallback did anyway.
 */
let canTransfer = true;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  if (canTransfer && transfer.length > 0) {
    try {
      port.postMessage(message, transfer);
      return;
    } catch {
      canTransfer = false;
    }
  }
  port.postMessage(message);
}

async function loadBackend(): Promise<Backend> {
  if (init.format === 'onnx') {
    // Imported at the thread's first priority (a preloaded worker has done it already); lowered before the
    // session opens, so that onnxruntime's pool threads inherit it.
    const { loadOnnxBackend } = await import('../backends/onnx.ts');
    lowerThreadPriority(init.nice);
    return loadOnnxBackend(init.options);
  }
  lowerThreadPriority(init.nice);
  const { loadHandlerBackend } = await import('../backends/handler.ts');
  return loadHandlerBackend(init.options);
}

/**
 * Inference threads run at a lower CPU priority than the server's event loop (Linux nice values apply
 * per thread), so when cores are contended, health checks and request I/O go first. ONNX Runtime's
 * own pool threads, created when the session loads, inherit it. Best effort: other systems skip it.
 */
function lowerThreadPriority(nice: number): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // not Linux, or not permitted: inference simply runs at normal priority
  }
}

/**
 * A preloaded worker (preload.ts) imports the ONNX backend and pays onnxruntime's setup while the server boots,
 * then waits for the WorkerInit of the model it is for. A failure here is left for loadBackend to meet again.
 * This runs at the process's priority, as the main thread's start does: at the inference threads' nice 10, on a
 * busy machine it came last and the server waited for it.
 */
async function preloaded(preload: WorkerPreload): Promise<WorkerInit> {
  const init = new Promise<WorkerInit>((resolve) => {
    port.once('message', (message: ToWorker) => {
      if (message.type === 'init') resolve(message.init);
    });
  });
  if (preload.preload === 'onnx') {
    try {
      const { warmOnnxRuntime } = await import('../backends/onnx-tensors.ts');
      await warmOnnxRuntime();
    } catch {
      // the real load reports it
    }
  }
  // Until now, a process exit would stop this thread inside onnxruntime's native setup, which aborts the
  // process ('terminate called after throwing Napi::Error'): preload.ts holds exits until this message.
  send({ type: 'warmed' });
  return init;
}

const init: WorkerInit = 'preload' in data ? await preloaded(data) : data;

let backend: Backend;
try {
  backend = await loadBackend();
  send({
    type: 'loaded',
    inputs: backend.inputs,
    outputs: backend.outputs,
    ...(backend.executionProvider ? { executionProvider: backend.executionProvider } : {}),
  });
} catch (error) {
  send({ type: 'load-failed', error: serializeError(error, 'FERRY_MODEL_LOAD_FAILED') });
  process.exit(0);
}

/**
 * Messages run one at a time, in order: the pool may send a worker its next batch while one runs (so the
 * worker never waits for the main thread between batches), and a handler's predict may await; two must not
 * overlap in one worker.
 */
let queue: Promise<void> = Promise.resolve();

port.on('message', (message: ToWorker) => {
  queue = queue.then(() => handle(message));
});

async function handle(message: ToWorker): Promise<void> {
  if (message.type === 'init') return; // taken by preloaded() already
  if (message.type === 'unload') {
    await backend.unload().catch(() => undefined);
    send({ type: 'unloaded' });
    port.close();
    return;
  }
  if (wallClockMs() > message.notAfter) {
    // Every request in it has been answered 504 while it waited here: running it would be wasted.
    send({
      type: 'failed',
      id: message.id,
      error: {
        code: 'FERRY_DEADLINE_EXCEEDED',
        message: 'the deadline passed before the worker reached this batch',
      },
    });
    return;
  }
  try {
    if (message.type === 'run') {
      if (message.trace !== undefined) {
        const start = monoMs();
        const outputs = await backend.runBatch!(message.inputs);
        const timings: WorkerTimings = { kind: 'batch', start, end: monoMs() };
        send({ type: 'ran', id: message.id, outputs, timings }, transferables(outputs));
        return;
      }
      const outputs = await backend.runBatch!(message.inputs);
      send({ type: 'ran', id: message.id, outputs }, transferables(outputs));
    } else {
      // One request's failure (a handler refusing its input, say) is its own, not its group's.
      const results: ({ outputs: Tensor[] } | { error: SerializedError })[] = [];
      const outputs: Tensor[] = [];
      const trace = message.trace;
      const timed: RequestTimings[] | null = trace === undefined ? null : [];
      for (let i = 0; i < message.requests.length; i++) {
        const request = message.requests[i]!;
        const timings: RequestTimings | null = timed === null ? null : { start: monoMs(), end: 0 };
        try {
          const own =
            timings === null
              ? await backend.infer(request)
              : await backend.infer(request, { traceparent: trace?.traceparents?.[i], timings });
          results.push({ outputs: own });
          outputs.push(...own);
        } catch (error) {
          const serialized = serializeError(error, 'FERRY_INFERENCE_FAILED');
          results.push({ error: serialized });
          if (timings !== null) timings.error = serialized.code;
        }
        if (timings !== null) {
          timings.end = monoMs();
          timed!.push(timings);
        }
      }
      if (timed !== null) {
        const timings: WorkerTimings = { kind: 'group', requests: timed };
        send({ type: 'result', id: message.id, results, timings }, transferables(outputs));
        return;
      }
      send({ type: 'result', id: message.id, results }, transferables(outputs));
    }
  } catch (error) {
    send({ type: 'failed', id: message.id, error: serializeError(error, 'FERRY_INFERENCE_FAILED') });
  }
}
