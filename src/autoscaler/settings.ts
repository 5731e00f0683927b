/**
 * Ferry's scaling defaults, next to Knative's KPA and Kubernetes' HPA, and the check of settings a user gives.
 *
 * | setting            | Ferry    | Knative KPA        | HPA v2                          | why Ferry differs                    |
 * |--------------------|----------|--------------------|---------------------------------|--------------------------------------|
 * | minReplicas        | 1        | 0                  | 1                               | no cold start unless asked (--min 0) |
 * | maxReplicas        | 10       | 0 (unbounded)      | required                        | a bound on one machine               |
 * | metric             | concurrency | concurrency     | CPU utilisation                 | requests, not CPU, load a model      |
 * | target             | derived  | 100 per replica    | 80% CPU (common)                | from batching and service time       |
 * | target utilisation | 0.7      | 0.7                | -                               |                                      |
 * | stable window      | 60 s     | 60 s               | 0 up / 300 s down stabilisation |                                      |
 * | panic window       | 6 s      | 6 s (10%)          | -                               |                                      |
 * | panic threshold    | 200%     | 200%               | -                               |                                      |
 * | max scale-up rate  | 1000x    | 1000x              | max(100%, 4 pods) per 15 s      |                                      |
 * | max scale-down rate| 2x       | 2x                 | 100% per 15 s                   |                                      |
 * | scale-down delay   | 0 s      | 0 s                | (the 300 s window)              |                                      |
 * | scale-to-zero grace| 30 s     | 30 s               | no scale to zero                |                                      |
 * | initial scale      | 1        | 1                  | -                               |                                      |
 * | requests held      | 1000, 30 s | activator: unbounded, 10 min | -                    | bounded: 503 + Retry-After, no hang  |
 * | decision period    | 1 s, and at once on a request held at zero | 2 s | 15 s          | sooner decisions, no waiting at zero |
 */
import { FerryError } from '../core/errors.ts';
import type { ScalingSettings } from './types.ts';

export const DEFAULT_SETTINGS: ScalingSettings = {
  minReplicas: 1,
  maxReplicas: 10,
  metric: 'concurrency',
  target: null,
  targetUtilization: 0.7,
  stableWindowMs: 60_000,
  panicWindowMs: 6_000,
  panicThreshold: 2,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  scaleDownDelayMs: 0,
  scaleToZeroGraceMs: 30_000,
  initialScale: 1,
  maxHeld: 1000,
  maxHeldWaitMs: 30_000,
};

/** The longest a held request may wait (src/gateway/routes.ts checks the same bound in a route table). */
export const MAX_HELD_WAIT_MS = 3_600_000;

/** Per replica, when neither the settings nor the model's capacity say (Knative's default is 100). */
export const DEFAULT_TARGET = 8;

/** One problem with a setting: the field it is about and what is wrong, without the field's name. */
export interface SettingsIssue {
  field: keyof ScalingSettings;
  message: string;
}

/** The name a field goes by outside the code: `stableWindowMs` is `stableWindow` (ferry.yaml, messages). */
export function settingLabel(field: keyof ScalingSettings): string {
  return field.endsWith('Ms') ? field.slice(0, -2) : field;
}

/**
 * Every problem with these settings, each naming its field: the one set of rules, for the API, the CLI and
 * ferry.yaml's `scaling:` block. [] when they are usable.
 */
export function settingsIssues(s: ScalingSettings): SettingsIssue[] {
  const p: SettingsIssue[] = [];
  const push = (field: keyof ScalingSettings, message: string) => p.push({ field, message });
  const whole = (field: keyof ScalingSettings, v: number, min: number, max = 1000) => {
    if (!Number.isInteger(v) || v < min || v > max)
      push(field, `${v} is not a whole number from ${min} to ${max}`);
  };
  whole('minReplicas', s.minReplicas, 0);
  whole('maxReplicas', s.maxReplicas, 1);
  whole('initialScale', s.initialScale, 0);
  if (s.minReplicas > s.maxReplicas)
    push('minReplicas', `${s.minReplicas} is above maxReplicas ${s.maxReplicas}`);
  if (s.metric !== 'concurrency' && s.metric !== 'rps')
    push('metric', `${String(s.metric)} is not concurrency or rps`);
  if (s.target !== null && !(Number.isFinite(s.target) && s.target > 0))
    push('target', `${s.target} must be > 0`);
  if (!(s.targetUtilization > 0 && s.targetUtilization <= 1))
    push('targetUtilization', `${s.targetUtilization} must be in (0, 1]`);
  if (!(s.stableWindowMs >= 1000)) push('stableWindowMs', `${s.stableWindowMs} ms must be at least 1 s`);
  if (!(s.panicWindowMs >= 1000 && s.panicWindowMs <= s.stableWindowMs))
    push('panicWindowMs', `${s.panicWindowMs} ms must be at least 1 s and at most the stable window`);
  if (!(s.panicThreshold > 1)) push('panicThreshold', `${s.panicThreshold} must be above 1 (2 = 200%)`);
  if (!(s.maxScaleUpRate >= 1)) push('maxScaleUpRate', `${s.maxScaleUpRate} must be >= 1`);
  if (!(s.maxScaleDownRate >= 1)) push('maxScaleDownRate', `${s.maxScaleDownRate} must be >= 1`);
  if (!(s.scaleDownDelayMs >= 0)) push('scaleDownDelayMs', `${s.scaleDownDelayMs} ms must be >= 0`);
  if (!(s.scaleToZeroGraceMs >= 0)) push('scaleToZeroGraceMs', `${s.scaleToZeroGraceMs} ms must be >= 0`);
  whole('maxHeld', s.maxHeld, 1, 100_000);
  if (!(s.maxHeldWaitMs >= 100 && s.maxHeldWaitMs <= MAX_HELD_WAIT_MS))
    push('maxHeldWaitMs', `${s.maxHeldWaitMs} ms must be from 100 ms to 1 h`);
  return p;
}

/** Every problem with these settings as "field: what is wrong"; [] when they are usable. */
export function settingsProblems(s: ScalingSettings): string[] {
  return settingsIssues(s).map((i) => `${settingLabel(i.field)}: ${i.message}`);
}

/** The defaults with the given fields over them; FERRY_BAD_REQUEST naming every problem. */
export function scalingSettings(over: Partial<ScalingSettings> = {}): ScalingSettings {
  const s = { ...DEFAULT_SETTINGS, ...over };
  const problems = settingsProblems(s);
  if (problems.length > 0)
    throw new FerryError('FERRY_BAD_REQUEST', `Invalid scaling settings: ${problems.join('; ')}`, {
      details: problems,
    });
  return s;
}
