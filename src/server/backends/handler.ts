/**
 * Handler backend: a user module with load / preprocess / predict / postprocess (see types.ts).
 * TypeScript handlers are loaded through tsx, so users need no build step.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ERROR_CODES, type ErrorCode, FerryError, isFerryError } from '../../core/errors.ts';
import type { InferRequest, Tensor } from '../../protocol/types.ts';
import { monoMs } from '../worker/messages.ts';
import { fromOrtTensor, openSession, toOrtTensor } from './onnx-tensors.ts';
import type {
  Backend,
  BackendLoadOptions,
  HandlerCall,
  HandlerContext,
  HandlerModule,
  HandlerOnnxSession,
  InferCallTrace,
  NamedTensors,
} from './types.ts';

const NO_TRACE: HandlerCall = Object.freeze({ traceparent: undefined });

async function importHandler(file: string): Promise<HandlerModule> {
  let loaded: Record<string, unknown>;
  try {
    if (/\.[cm]?tsx?$/.test(file)) {
      const { tsImport } = await import('tsx/esm/api');
      loaded = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
    } else {
      loaded = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    }
  } catch (error) {
    throw new FerryError(
      'FERRY_MODEL_LOAD_FAILED',
      `cannot import handler ${file}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const candidate = (typeof loaded.predict === 'function' ? loaded : loaded.default) as
    | HandlerModule
    | undefined;
  if (candidate === undefined || typeof candidate.predict !== 'function') {
    throw new FerryError('FERRY_MODEL_LOAD_FAILED', `handler ${file} exports no predict() function`, {
      hint: 'Export `predict` (and optionally load, preprocess, postprocess, unload) as named exports or on a default export object.',
    });
  }
  return candidate;
}

function handlerContext(options: BackendLoadOptions): HandlerContext {
  return {
    dir: options.dir,
    threads: options.threads,
    env: options.env,
    async loadOnnx(path: string): Promise<HandlerOnnxSession> {
      const session = await openSession(
        isAbsolute(path) ? path : resolve(options.dir, path),
        options.threads,
      );
      return {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        async run(feeds: NamedTensors): Promise<NamedTensors> {
          const ortFeeds = Object.fromEntries(
            Object.entries(feeds).map(([name, t]) => [name, toOrtTensor(t)]),
          );
          const results = await session.run(ortFeeds);
          return Object.fromEntries(
            Object.entries(results).map(([name, value]) => [name, fromOrtTensor(name, value as never)]),
          );
        },
      };
    },
    log(message, fields) {
      console.error(JSON.stringify({ level: 'info', source: 'handler', msg: message, ...fields }));
    },
  };
}

export async function loadHandlerBackend(options: BackendLoadOptions): Promise<Backend> {
  if (options.inputs === null || options.outputs === null) {
    throw new FerryError(
      'FERRY_MODEL_LOAD_FAILED',
      'a handler model must declare model.inputs and model.outputs in ferry.yaml',
    );
  }
  const handler = await importHandler(options.file);
  let state: unknown;
  try {
    state = await handler.load?.(handlerContext(options));
  } catch (error) {
    throw new FerryError('FERRY_MODEL_LOAD_FAILED', `handler load() failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const outputs = options.outputs;

  async function runOne(request: InferRequest, trace?: InferCallTrace): Promise<Tensor[]> {
    const named: NamedTensors = {};
    for (const tensor of request.inputs) named[tensor.name] = tensor;
    try {
      if (trace !== undefined) return toTensorList(await traced(request, named, trace), outputNames);
      const call = NO_TRACE;
      const pre = handler.preprocess ? await handler.preprocess(named, state, request, call) : named;
      const raw = await handler.predict(pre, state, request, call);
      const post = handler.postprocess ? await handler.postprocess(raw, state, request, call) : raw;
      return toTensorList(
        post,
        outputs.map((o) => o.name),
      );
    } catch (error) {
      throw fromHandlerError(error);
    }
  }

  const outputNames = outputs.map((o) => o.name);

  /** The same calls, each phase timed (tracing on: server/tracing.ts records them as spans). */
  async function traced(request: InferRequest, named: NamedTensors, trace: InferCallTrace): Promise<unknown> {
    const call: HandlerCall = { traceparent: trace.traceparent };
    const t = trace.timings;
    let pre: NamedTensors = named;
    if (handler.preprocess) {
      const start = monoMs();
      pre = await handler.preprocess(named, state, request, call);
      t.preprocess = [start, monoMs()];
    }
    const start = monoMs();
    let out = await handler.predict(pre, state, request, call);
    t.predict = [start, monoMs()];
    if (handler.postprocess) {
      const start = monoMs();
      out = await handler.postprocess(out, state, request, call);
      t.postprocess = [start, monoMs()];
    }
    return out;
  }

  return {
    inputs: options.inputs,
    outputs,
    infer: runOne,
    async unload() {
      await handler.unload?.(state);
    },
  };
}

function toTensorList(value: unknown, declared: string[]): Tensor[] {
  const list = Array.isArray(value)
    ? (value as Tensor[])
    : value !== null && typeof value === 'object'
      ? Object.entries(value as NamedTensors).map(([name, t]) => ({ ...t, name }))
      : null;
  if (list === null || list.some((t) => !t || typeof t.datatype !== 'string' || !Array.isArray(t.shape))) {
    throw new FerryError(
      'FERRY_INFERENCE_FAILED',
      'handler returned something that is not a list of tensors or an object of tensors by name',
      {
        hint: `Return { ${declared.join(', ')} } with { datatype, shape, data } each, or add a postprocess().`,
      },
    );
  }
  return list;
}

/**
 * A handler signals what went wrong with an error whose `code` is one of Ferry's (docs/errors.md), e.g.
 * FERRY_INVALID_INPUT for bad input (400); it needs no import from Ferry. Anything else is a 500.
 */
export function fromHandlerError(error: unknown): FerryError {
  if (isFerryError(error)) return error;
  const { code, message, hint } = (error ?? {}) as { code?: unknown; message?: unknown; hint?: unknown };
  if (typeof code === 'string' && code in ERROR_CODES) {
    const options = typeof hint === 'string' ? { hint, cause: error } : { cause: error };
    return new FerryError(code as ErrorCode, String(message), options);
  }
  const text = typeof message === 'string' ? message : String(error);
  return new FerryError('FERRY_INFERENCE_FAILED', `handler failed: ${text}`, { cause: error });
}
