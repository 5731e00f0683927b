/**
 * `ferry autoscale <deployment> [--min N] [--max N] [--target N] ... | --off`: autoscaling of one deployment
 * (docs/autoscaling.md). Flags left out keep the deployment's current settings (or the defaults, the first time).
 */
import type { Command } from 'commander';
import type { ScalingSettings } from '../autoscaler/types.ts';
import { connect } from './context.ts';
import { parseDurationFlag, parseIntFlag, UsageError } from './format.ts';
import { flag, type OutputFlags, out, printJson, run, withOutput } from './platform.ts';

interface AutoscaleFlags extends OutputFlags {
  min?: number;
  max?: number;
  metric?: 'concurrency' | 'rps';
  target?: number;
  utilization?: number;
  stableWindow?: number;
  panicWindow?: number;
  panicThreshold?: number;
  maxScaleUpRate?: number;
  maxScaleDownRate?: number;
  scaleDownDelay?: number;
  zeroGrace?: number;
  initial?: number;
  maxHeld?: number;
  maxHeldWait?: number;
  off?: boolean;
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0))
    throw new UsageError(`${name} must be a positive number, got "${text}"`);
  return n;
}

/** `200%` or `2`: the panic threshold as a ratio. */
function percentOrRatio(name: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  if (!m) throw new UsageError(`${name} must be a ratio (2) or a percentage (200%), got "${text}"`);
  return m[2] === '%' ? Number(m[1]) / 100 : Number(m[1]);
}

/** The settings the flags change (nothing else). */
export function scalingFromFlags(f: AutoscaleFlags): Partial<ScalingSettings> {
  const out: Partial<ScalingSettings> = {};
  if (f.min !== undefined) out.minReplicas = f.min;
  if (f.max !== undefined) out.maxReplicas = f.max;
  if (f.metric !== undefined) out.metric = f.metric;
  if (f.target !== undefined) out.target = f.target;
  if (f.utilization !== undefined) out.targetUtilization = f.utilization;
  if (f.stableWindow !== undefined) out.stableWindowMs = f.stableWindow;
  if (f.panicWindow !== undefined) out.panicWindowMs = f.panicWindow;
  if (f.panicThreshold !== undefined) out.panicThreshold = f.panicThreshold;
  if (f.maxScaleUpRate !== undefined) out.maxScaleUpRate = f.maxScaleUpRate;
  if (f.maxScaleDownRate !== undefined) out.maxScaleDownRate = f.maxScaleDownRate;
  if (f.scaleDownDelay !== undefined) out.scaleDownDelayMs = f.scaleDownDelay;
  if (f.zeroGrace !== undefined) out.scaleToZeroGraceMs = f.zeroGrace;
  if (f.initial !== undefined) out.initialScale = f.initial;
  if (f.maxHeld !== undefined) out.maxHeld = f.maxHeld;
  if (f.maxHeldWait !== undefined) out.maxHeldWaitMs = f.maxHeldWait;
  return out;
}

export function registerAutoscale(program: Command): void {
  withOutput(
    program
      .command('autoscale')
      .description(
        'scale a deployment on its load, down to zero with --min 0 (docs/autoscaling.md); --off to stop',
      )
      .argument('<deployment>')
      .option(
        '--min <n>',
        'fewest replicas; 0 scales to zero when idle (default 1)',
        flag((v) => parseIntFlag('--min', v, 0, 1000)),
      )
      .option(
        '--max <n>',
        'most replicas (default 10)',
        flag((v) => parseIntFlag('--max', v, 1, 1000)),
      )
      .option('--metric <metric>', 'concurrency (requests in flight, default) or rps')
      .option(
        '--target <n>',
        'per replica, in the metric (default: derived from the model)',
        flag((v) => positive('--target', v)),
      )
      .option(
        '--utilization <u>',
        'fraction of the target to aim at, 0 to 1 (default 0.7)',
        flag((v) => positive('--utilization', v)),
      )
      .option(
        '--stable-window <duration>',
        'averaged over in normal mode (default 60s)',
        flag((v) => parseDurationFlag('--stable-window', v)),
      )
      .option(
        '--panic-window <duration>',
        'averaged over in panic (default 6s)',
        flag((v) => parseDurationFlag('--panic-window', v)),
      )
      .option(
        '--panic-threshold <ratio>',
        'panic when the panic window wants this many times the ready replicas (default 200%)',
        flag((v) => percentOrRatio('--panic-threshold', v)),
      )
      .option(
        '--max-scale-up-rate <x>',
        'at most this many times the ready replicas per decision (default 1000)',
        flag((v) => positive('--max-scale-up-rate', v)),
      )
      .option(
        '--max-scale-down-rate <x>',
        'at least the ready replicas divided by this (default 2)',
        flag((v) => positive('--max-scale-down-rate', v)),
      )
      .option(
        '--scale-down-delay <duration>',
        'a scale-down waits until every decision of this long agrees (default 0s)',
        flag((v) => parseDurationFlag('--scale-down-delay', v, true)),
      )
      .option(
        '--zero-grace <duration>',
        'idle this long (after a stable window of zero) before scaling to zero (default 30s)',
        flag((v) => parseDurationFlag('--zero-grace', v, true)),
      )
      .option(
        '--initial <n>',
        'replicas before any data (default 1)',
        flag((v) => parseIntFlag('--initial', v, 0, 1000)),
      )
      .option(
        '--max-held <n>',
        'requests the gateway holds while replicas start; one more gets 503 + Retry-After (default 1000)',
        flag((v) => parseIntFlag('--max-held', v, 1, 100_000)),
      )
      .option(
        '--max-held-wait <duration>',
        'a held request waits at most this long, then 503 + Retry-After (default 30s)',
        flag((v) => parseDurationFlag('--max-held-wait', v)),
      )
      .option('--off', 'stop autoscaling: the replica count stays where it is'),
  ).action(
    run(async (name: string, flags: AutoscaleFlags) => {
      const client = connect(flags);
      const change = scalingFromFlags(flags);
      if (flags.metric !== undefined && flags.metric !== 'concurrency' && flags.metric !== 'rps')
        throw new UsageError(`--metric must be concurrency or rps, got "${flags.metric}"`);
      if (flags.off && Object.keys(change).length > 0) throw new UsageError('--off takes no other setting');
      const current = flags.off ? null : (await client.getDeployment(name)).scaling;
      const view = await client.setScaling(name, flags.off ? null : { ...(current ?? {}), ...change });
      if (flags.output === 'json') return printJson(view);
      const s = view.scaling;
      out(
        s === null
          ? `${name}: autoscaling off; ${view.replicas} replica(s)`
          : `${name}: autoscaling ${s.minReplicas}-${s.maxReplicas} replicas on ${s.metric}, target ${s.target ?? 'derived from the model'} at ${Math.round(s.targetUtilization * 100)}%; windows ${s.stableWindowMs / 1000} s / ${s.panicWindowMs / 1000} s${s.minReplicas === 0 ? `; to zero after ${s.scaleToZeroGraceMs / 1000} s idle` : ''}`,
      );
    }),
  );
}
