/**
 * A minimal HandlerContext over onnxruntime-node, for running the handler outside the server
 * (make-sample.ts, ocr.test.ts). The server has its own; this one only does what the OCR handler needs:
 * numeric tensors in and out, one session per loadOnnx call, explicit thread counts.
 */
import { isAbsolute, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../../src/protocol/types.ts';
import type { HandlerContext, HandlerOnnxSession, NamedTensors } from '../../src/server/backends/types.ts';

const ORT_TYPES = { FP32: 'float32', INT32: 'int32', INT64: 'int64', UINT8: 'uint8' } as const;

export interface LocalContext extends HandlerContext {
  /** Releases every session opened through this context. */
  close(): Promise<void>;
}

export function localContext(dir: string, env: Record<string, string> = {}, threads = 1): LocalContext {
  const sessions: ort.InferenceSession[] = [];
  return {
    dir,
    threads,
    env,
    log() {},
    async loadOnnx(path: string): Promise<HandlerOnnxSession> {
      const session = await ort.InferenceSession.create(isAbsolute(path) ? path : resolve(dir, path), {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
      });
      sessions.push(session);
      return {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        async run(feeds: NamedTensors): Promise<NamedTensors> {
          const ortFeeds: Record<string, ort.Tensor> = {};
          for (const [name, t] of Object.entries(feeds)) {
            const type = ORT_TYPES[t.datatype as keyof typeof ORT_TYPES];
            if (type === undefined)
              throw new TypeError(`local context: datatype ${t.datatype} is not supported`);
            ortFeeds[name] = new ort.Tensor(type, t.data as Float32Array, t.shape);
          }
          const results = await session.run(ortFeeds);
          const out: NamedTensors = {};
          for (const [name, value] of Object.entries(results)) {
            const datatype = (Object.keys(ORT_TYPES) as (keyof typeof ORT_TYPES)[]).find(
              (k) => ORT_TYPES[k] === value.type,
            );
            if (datatype === undefined)
              throw new TypeError(`local context: output type ${value.type} is not supported`);
            out[name] = { name, datatype, shape: [...value.dims], data: value.data as Tensor['data'] };
          }
          return out;
        },
      };
    },
    async close() {
      for (const session of sessions.splice(0)) await session.release();
    },
  };
}
