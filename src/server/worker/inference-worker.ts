/**
 * Runs inside a worker thread: loads one backend and answers infer messages. onnxruntime-node's
 * run() blocks the thread that calls it, so it must never run on the server's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Backend } from '../backends/types.ts';
import {
  type FromWorker,
  serializeError,
  type ToWorker,
  transferables,
  type WorkerInit,
} from './messages.ts';

const port = parentPort!;
const init = workerData as WorkerInit;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  try {
    port.postMessage(message, transfer);
  } catch {
    // Some runtime-owned buffers cannot be transferred; fall back to a copy.
    port.postMessage(message);
  }
}

async function loadBackend(): Promise<Backend> {
  if (init.format === 'onnx') {
    const { loadOnnxBackend } = await import('../backends/onnx.ts');
    return loadOnnxBackend(init.options);
  }
  const { loadHandlerBackend } = await import('../backends/handler.ts');
  return loadHandlerBackend(init.options);
}

let backend: Backend;
try {
  backend = await loadBackend();
  send({ type: 'loaded', inputs: backend.inputs, outputs: backend.outputs });
} catch (error) {
  send({ type: 'load-failed', error: serializeError(error, 'FERRY_MODEL_LOAD_FAILED') });
  process.exit(0);
}

port.on('message', async (message: ToWorker) => {
  if (message.type === 'unload') {
    await backend.unload().catch(() => undefined);
    send({ type: 'unloaded' });
    port.close();
    return;
  }
  try {
    if (message.type === 'run') {
      const outputs = await backend.runConcatenated!(message.inputs);
      send({ type: 'ran', id: message.id, outputs }, transferables(outputs));
    } else {
      const outputs = await backend.infer(message.requests);
      send({ type: 'result', id: message.id, outputs }, transferables(outputs.flat()));
    }
  } catch (error) {
    send({ type: 'failed', id: message.id, error: serializeError(error, 'FERRY_INFERENCE_FAILED') });
  }
});
