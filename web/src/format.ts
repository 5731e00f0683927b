/** Small formatting helpers shared by the pages. */
import type { DeploymentView, TrafficEntry } from './types.ts';

export function time(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

export function dateTime(ms: number | string): string {
  const d = new Date(ms);
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${d.toLocaleTimeString(undefined, { hour12: false })}`;
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function split(traffic: TrafficEntry[]): string {
  return traffic
    .map((t) => `r${t.revision} ${t.percent}%${t.shadow ? ` (+${t.shadow}% shadow)` : ''}`)
    .join(', ');
}

/** One word for a deployment's state, and its tone for the badge. */
export function health(d: DeploymentView): { text: string; tone: 'ok' | 'warn' | 'bad' | 'info' } {
  const problem = d.revisionStatus.find((r) => r.problem?.fatal);
  if (problem) return { text: 'Failing', tone: 'bad' };
  const ready = d.conditions.find((c) => c.type === 'Ready');
  if (ready?.reason === 'CrashLoopBackOff') return { text: 'Crash loop', tone: 'bad' };
  if (d.rollout && (d.rollout.phase === 'progressing' || d.rollout.phase === 'aborting'))
    return { text: 'Rolling out', tone: 'info' };
  if (d.rollout?.phase === 'paused') return { text: 'Paused', tone: 'warn' };
  const readyCount = d.replicaStatus.filter((r) => r.state === 'ready').length;
  if (d.replicas === 0 && readyCount === 0) return { text: 'Scaled to zero', tone: 'info' };
  if (readyCount === 0) return { text: 'Starting', tone: 'warn' };
  if (ready?.status === 'True') return { text: 'Ready', tone: 'ok' };
  return { text: 'Degraded', tone: 'warn' };
}

/** Ready replicas against those wanted (every revision's: a split or a rollout wants replicas of several). */
export function readyOf(d: DeploymentView): string {
  const ready = d.replicaStatus.filter((r) => r.state === 'ready').length;
  const wanted = d.revisionStatus.reduce((sum, r) => sum + r.desired, 0);
  return `${ready}/${Math.max(wanted, d.replicas)}`;
}

/** A rollout is under way (moving or waiting for promote): a split or a new rollout must wait for it. */
export function rolloutUnderWay(d: Pick<DeploymentView, 'rollout'>): boolean {
  return d.rollout !== null && (d.rollout.phase === 'progressing' || d.rollout.phase === 'paused');
}
