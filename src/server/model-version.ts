/**
 * One loaded version of a model: its workers, its batcher, its metadata and its lifecycle state.
 * Loading = start workers -> read metadata -> warm up; only then is it READY. A version that fails at
 * any step records why (state FAILED + reason), counts in metrics, and never serves.
 */

import { resolve } from 'node:path';
import { FerryError } from '../core/errors.ts';
import type { ModelLoadReport } from '../core/replica.ts';
import { compileValidator, decodeInferRequest } from '../protocol/index.ts';
import type { InferRequest, ModelMetadata, RepositoryIndexEntry, Tensor } from '../protocol/types.ts';
import { sampleRequest } from '../spec/index.ts';
import type { LoadedSpec, ModelSpec } from '../spec/types.ts';
import { Batcher, systemClock } from './batching/index.ts';
import { dispatchPlan, PIPELINE_DEPTH } from './batching/plan.ts';
import { threadsPerWorker } from './cpu.ts';
import { LoadMeter } from './load-meter.ts';
import type { ModelMetrics } from './metrics.ts';
import { type BatchTrace, type RequestTrace, startBatchTrace } from './tracing.ts';
import { WorkerPool } from './worker/pool.ts';
/** Inference threads yield the CPU to the event loop when both want it (see inference-worker.ts). */
import { WORKER_NICE } from './worker/preload.ts';

export type VersionState = RepositoryIndexEntry['state'];

export interface VersionLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export class ModelVersion {
  state: VersionState = 'UNAVAILABLE';
  reason = '';
  metadata: ModelMetadata | null = null;
  loadedAt: number | null = null;
  /**
   * When the last load got to each step (ms since the epoch): started, workers up with the model's session
   * (`loadedAt` is after the warm-up), and the warm-up done. Reported in the server's ready answer (startup).
   */
  loadStartedAt: number | null = null;
  modelLoadedAt: number | null = null;
  warmedAt: number | null = null;
  /** Checks a decoded request against this version's inputs and outputs (FERRY_INVALID_INPUT). */
  validate: (request: InferRequest) => void = () => {
    throw new FerryError('FERRY_MODEL_NOT_READY', `model "${this.name}" is not loaded`);
  };
  /** Requests are concatenated into batches (see batching/plan.ts); false: one model call each. */
  batched = false;
  #pool: WorkerPool | null = null;
  #batcher: Batcher<InferRequest, Tensor[]> | null = null;
  /** What GET /ferry/load reports (load-meter.ts), with the queue bound it sheds at. */
  #meter: LoadMeter | null = null;
  #maxQueueSize = 0;
  /** Tracing: each queued request's trace; null until a traced request comes (never, with tracing off). */
  #traces: WeakMap<InferRequest, RequestTrace> | null = null;

  constructor(
    readonly source: LoadedSpec,
    readonly metrics: ModelMetrics,
    private readonly log: VersionLogger,
  ) {}

  get name(): string {
    return this.source.spec.model.name;
  }
  get version(): string {
    return this.source.spec.model.version;
  }
  get spec(): ModelSpec {
    return this.source.spec;
  }
  /** READY and at least one worker running (a crashed worker's replacement may still be loading). */
  get serving(): boolean {
    return this.state === 'READY' && (this.#pool?.size ?? 0) > 0;
  }

  get queueDepth(): number {
    return this.#batcher?.queueDepth ?? 0;
  }

  /** Its load for the autoscaler (GET /ferry/load); null unless it is READY. */
  loadReport(): ModelLoadReport | null {
    const meter = this.#meter;
    if (this.state !== 'READY' || meter === null || this.#pool === null) return null;
    return {
      model: this.name,
      version: this.version,
      workers: this.#pool.size,
      pipelineDepth: PIPELINE_DEPTH,
      batchSize: meter.batchSize,
      queueDepth: this.queueDepth,
      maxQueueSize: this.#maxQueueSize,
      batches: meter.batches,
      samples: meter.samples,
      fillMs: meter.fillMs(),
      batchServiceMs: meter.batchServiceMs(),
    };
  }

  entry(): RepositoryIndexEntry {
    return { name: this.name, version: this.version, state: this.state, reason: this.reason };
  }

  async load(): Promise<void> {
    const started = performance.now();
    this.loadStartedAt = Date.now();
    const { spec } = this.source;
    const fields = { model: this.name, version: this.version };
    this.state = 'LOADING';
    this.reason = '';
    try {
      const threads = threadsPerWorker(spec.serving.concurrency, spec.serving.threads);
      this.#pool = await WorkerPool.start(
        {
          format: spec.model.format,
          options: {
            dir: this.source.dir,
            file: resolve(this.source.dir, spec.model.file),
            inputs: spec.model.inputs,
            outputs: spec.model.outputs,
            threads,
            env: spec.env,
            gpu: spec.resources.gpu,
          },
          nice: WORKER_NICE,
        },
        spec.serving.concurrency,
        {
          onWorkerExit: ({ code }) => {
            this.metrics.workerExited();
            this.log.error({ ...fields, exitCode: code }, 'inference worker exited; starting a replacement');
          },
          onReplacementFailed: (error, remaining) => {
            this.log.error(
              { ...fields, reason: error.message, remaining },
              'replacement inference worker failed to load',
            );
            if (remaining > 0 || this.state !== 'READY') return;
            this.state = 'FAILED';
            this.reason = `every inference worker exited and a replacement failed to load: ${error.message}`;
            this.metrics.ready(false);
          },
        },
      );
      const pool = this.#pool;
      this.metadata = {
        name: this.name,
        versions: [this.version],
        platform: spec.model.format === 'onnx' ? 'onnxruntime_onnx' : 'ferry_handler',
        inputs: pool.inputs,
        outputs: pool.outputs,
      };
      this.validate = compileValidator(this.metadata);
      const plan = dispatchPlan(spec.serving.batching, spec.model.format, pool.inputs, pool.outputs);
      if (plan.ignored.length > 0) {
        this.log.warn(
          { ...fields, tensors: plan.ignored },
          'serving.batching is ignored: these tensors have no dynamic first (batch) dimension',
        );
      }
      this.batched = plan.batched;
      const meter = new LoadMeter(plan.policy.maxBatchSize, plan.batched);
      this.#meter = meter;
      this.#maxQueueSize = plan.policy.maxQueueSize;
      const samplesIn = (batch: InferRequest[]): number => {
        if (!plan.batched) return batch.length;
        let n = 0;
        for (const request of batch) n += plan.samplesOf(request);
        return n;
      };
      this.#batcher = new Batcher<InferRequest, Tensor[]>({
        policy: plan.policy,
        clock: systemClock,
        concurrency: spec.serving.concurrency * PIPELINE_DEPTH,
        samplesOf: plan.samplesOf,
        keyOf: plan.keyOf,
        // The batcher's clock is performance.now(); the worker compares wall-clock times.
        execute: (batch, deadline) => {
          const samples = samplesIn(batch);
          meter.dispatched(samples);
          const onServed = (ms: number) => meter.served(samples, plan.batched ? 1 : batch.length, ms);
          if (this.#traces !== null) {
            const traced = this.#traceBatch(batch, samples);
            if (traced !== null) {
              return pool
                .run(batch, plan.batched, performance.timeOrigin + deadline, onServed, traced.worker)
                .then(
                  (results) => {
                    traced.settle(undefined);
                    return results;
                  },
                  (error: unknown) => {
                    traced.settle(error);
                    throw error;
                  },
                );
            }
          }
          return pool.run(batch, plan.batched, performance.timeOrigin + deadline, onServed);
        },
        onBatch: ({ size, samples, queueMs, runMs }) => {
          meter.settled(samples);
          if (plan.batched) this.metrics.batch(samples, runMs / 1000);
          // A group ran one model call per request: each counts as a call of its own.
          else for (let i = 0; i < size; i++) this.metrics.batch(1, runMs / size / 1000);
          for (const ms of queueMs) this.metrics.queued(ms / 1000);
        },
      });
      this.modelLoadedAt = Date.now();
      await this.#warmUp();
      this.state = 'READY';
      this.loadedAt = Date.now();
      this.warmedAt = this.loadedAt;
      const seconds = (performance.now() - started) / 1000;
      this.metrics.loaded(seconds);
      this.metrics.ready(true);
      this.log.info(
        {
          ...fields,
          seconds: Number(seconds.toFixed(3)),
          warmupSeconds: Number(((this.warmedAt - this.modelLoadedAt) / 1000).toFixed(3)),
          threads,
          workers: pool.size,
          // the first worker started while the process booted (worker/preload.ts)
          preloaded: pool.preloaded,
          // ONNX: cpu or cuda, and why (backends/execution-provider.ts)
          ...(pool.executionProvider
            ? {
                executionProvider: pool.executionProvider.provider,
                executionProviderWhy: pool.executionProvider.why,
              }
            : {}),
          // batched: requests are concatenated into one model call; grouped: one call each (batching/plan.ts)
          batching: this.batched ? 'batched' : 'grouped',
        },
        'model version ready',
      );
    } catch (error) {
      this.state = 'FAILED';
      this.reason = error instanceof Error ? error.message : String(error);
      this.metrics.loadFailed();
      this.metrics.ready(false);
      this.log.error({ ...fields, reason: this.reason }, 'model version failed to load');
      await this.#stop();
    }
  }

  /** Runs the first example (or a zero-filled request) once on every worker before reporting ready. */
  async #warmUp(): Promise<void> {
    const example = this.spec.examples[0]?.request;
    const body =
      example ?? (this.spec.model.format === 'onnx' ? sampleRequest(this.metadata!.inputs, 'zeros') : null);
    if (body === null) return;
    const workers = this.spec.serving.concurrency;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        const request = decodeInferRequest(
          Buffer.from(JSON.stringify(body)),
          {},
          { maxBodyBytes: Number.MAX_SAFE_INTEGER },
        );
        try {
          const [result] = await this.#pool!.run([request], this.batched);
          if (result instanceof FerryError) throw result;
        } catch (error) {
          throw new FerryError(
            'FERRY_MODEL_LOAD_FAILED',
            `warm-up ${example ? `example "${this.spec.examples[0]!.name}"` : 'request'} failed: ${(error as Error).message}`,
          );
        }
      }),
    );
  }

  /** Tracing on: the batch's spans (server/tracing.ts), when a request in it is traced. */
  #traceBatch(batch: InferRequest[], samples: number): BatchTrace | null {
    const traces: RequestTrace[] = [];
    for (const request of batch) {
      const trace = this.#traces!.get(request);
      if (trace !== undefined) traces.push(trace);
    }
    if (traces.length === 0) return null;
    return startBatchTrace(traces, batch.length, this.batched, {
      model: this.name,
      version: this.version,
      samples,
    });
  }

  /** `trace`: the request's tracing state, when tracing is on (server/tracing.ts). */
  submit(request: InferRequest, deadline: number, trace?: RequestTrace): Promise<Tensor[]> {
    if (this.state !== 'READY' || this.#batcher === null) {
      return Promise.reject(
        new FerryError(
          'FERRY_MODEL_NOT_READY',
          `model "${this.name}" version "${this.version}" is ${this.state.toLowerCase()}`,
        ),
      );
    }
    if (trace !== undefined) {
      this.#traces ??= new WeakMap();
      this.#traces.set(request, trace);
      trace.queuedAt = performance.now();
    }
    const result = this.#batcher.submit(request, deadline);
    this.metrics.queueDepth(this.#batcher.queueDepth);
    return result;
  }

  /** Stops taking requests, lets queued and running ones finish, then stops the workers. */
  async unload(): Promise<void> {
    if (this.state === 'UNAVAILABLE') return;
    this.state = 'UNLOADING';
    this.metrics.ready(false);
    await this.#stop();
    this.state = 'UNAVAILABLE';
    this.log.info({ model: this.name, version: this.version }, 'model version unloaded');
  }

  async #stop(): Promise<void> {
    if (this.#batcher) {
      this.#batcher.close();
      await this.#batcher.drain();
      this.#batcher = null;
    }
    if (this.#pool) {
      await this.#pool.close();
      this.#pool = null;
    }
  }
}
