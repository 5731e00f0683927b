/**
 * The last step of the pipeline: a validated raw document -> the completed ModelSpec, every default
 * filled in from defaults.ts. Pure.
 */
import type { ScalingSettings } from '../autoscaler/types.ts';
import { DEFAULTS } from './defaults.ts';
import type { RawSpec } from './schema.ts';
import { API_VERSION, type BatchingSpec, type ExampleSpec, type ModelSpec } from './types.ts';

export function completeSpec(raw: RawSpec): ModelSpec {
  const serving = raw.serving ?? {};
  const resources = raw.resources ?? {};
  const build = raw.build ?? {};
  return {
    apiVersion: API_VERSION,
    kind: 'Model',
    model: {
      name: raw.model.name,
      version: raw.model.version ?? DEFAULTS.model.version,
      format: raw.model.format,
      file: raw.model.file,
      files: [...(raw.model.files ?? DEFAULTS.model.files)],
      inputs:
        raw.model.inputs?.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })) ?? null,
      outputs:
        raw.model.outputs?.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })) ?? null,
    },
    serving: {
      batching: completeBatching(serving.batching),
      concurrency: serving.concurrency ?? DEFAULTS.serving.concurrency,
      timeoutMs: serving.timeout ?? DEFAULTS.serving.timeoutMs,
      threads:
        serving.threads === undefined || serving.threads === 'auto'
          ? DEFAULTS.serving.threads
          : serving.threads,
      limits: {
        maxBodyBytes: serving.limits?.maxBodySize ?? DEFAULTS.serving.limits.maxBodyBytes,
      },
    },
    resources: {
      cpu: resources.cpu ?? DEFAULTS.resources.cpu,
      memoryBytes: resources.memory ?? DEFAULTS.resources.memoryBytes,
      gpu: resources.gpu ?? DEFAULTS.resources.gpu,
    },
    network: { egress: raw.network?.egress ?? DEFAULTS.network.egress },
    kubernetes: {
      startupTimeoutMs: raw.kubernetes?.startupTimeout ?? DEFAULTS.kubernetes.startupTimeoutMs,
      nodeSelector: { ...(raw.kubernetes?.nodeSelector ?? {}) },
      tolerations: (raw.kubernetes?.tolerations ?? []).map((t) => ({ ...t })),
    },
    build: {
      base: build.base ?? DEFAULTS.build.base,
      dependencies: { ...(build.dependencies ?? DEFAULTS.build.dependencies) },
    },
    examples: (raw.examples ?? DEFAULTS.examples).map((example) => {
      const out: ExampleSpec = {
        name: example.name,
        // A requestFile is read by loadSpec, which replaces this placeholder.
        request: example.request ?? null,
        tolerance: example.tolerance ?? DEFAULTS.example.tolerance,
      };
      if (example.response !== undefined) out.response = example.response;
      return out;
    }),
    env: { ...(raw.env ?? DEFAULTS.env) },
    secrets: [...(raw.secrets ?? DEFAULTS.secrets)],
    scaling: completeScaling(raw.scaling),
  };
}

/** `scaling:` over the autoscaler's defaults, durations in whole milliseconds; null without a block. */
export function completeScaling(block: RawSpec['scaling']): ScalingSettings | null {
  if (block === undefined) return DEFAULTS.scaling;
  const on = DEFAULTS.scalingWhenOn;
  const ms = (value: number | undefined, otherwise: number) =>
    value === undefined ? otherwise : Math.round(value);
  return {
    minReplicas: block.minReplicas ?? on.minReplicas,
    maxReplicas: block.maxReplicas ?? on.maxReplicas,
    metric: block.metric ?? on.metric,
    target: block.target === undefined || block.target === 'auto' ? on.target : block.target,
    targetUtilization: block.targetUtilization ?? on.targetUtilization,
    stableWindowMs: ms(block.stableWindow, on.stableWindowMs),
    panicWindowMs: ms(block.panicWindow, on.panicWindowMs),
    panicThreshold: block.panicThreshold ?? on.panicThreshold,
    maxScaleUpRate: block.maxScaleUpRate ?? on.maxScaleUpRate,
    maxScaleDownRate: block.maxScaleDownRate ?? on.maxScaleDownRate,
    scaleDownDelayMs: ms(block.scaleDownDelay, on.scaleDownDelayMs),
    scaleToZeroGraceMs: ms(block.scaleToZeroGrace, on.scaleToZeroGraceMs),
    initialScale: block.initialScale ?? on.initialScale,
    maxHeld: block.maxHeld ?? on.maxHeld,
    maxHeldWaitMs: ms(block.maxHeldWait, on.maxHeldWaitMs),
  };
}

function completeBatching(batching: NonNullable<RawSpec['serving']>['batching']): BatchingSpec | null {
  const on = DEFAULTS.serving.batchingWhenOn;
  if (batching === undefined) return { ...on, preferredBatchSizes: [...on.preferredBatchSizes], auto: true };
  if (batching === null || batching === false) return null;
  const given = batching === true ? {} : batching;
  const preferred = [...new Set(given.preferredBatchSizes ?? on.preferredBatchSizes)].sort((a, b) => a - b);
  return {
    maxBatchSize: given.maxBatchSize ?? on.maxBatchSize,
    maxQueueDelayMs: given.maxQueueDelay ?? on.maxQueueDelayMs,
    preferredBatchSizes: preferred,
    maxQueueSize: given.maxQueueSize ?? on.maxQueueSize,
  };
}
