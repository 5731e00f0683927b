/**
 * What the dashboard keeps up to date without asking: the deployments and the events of the caller's tenant.
 * Live from GET /v1/stream (Server-Sent Events: `deployments` with the whole list whenever it changed, `event`
 * for each new event); when this control plane has no stream (404) or it drops, the lists are fetched on each
 * navigation and after each change made here, and the stream is tried again after a growing pause (2 s to 30 s).
 * Never a poll every second.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, describeError, followEvents, get } from './api.ts';
import type { DeploymentView, EventRecord } from './types.ts';

export interface LiveState {
  deployments: DeploymentView[] | null;
  /** Newest first. */
  events: EventRecord[];
  /** live: the stream is open; fetched: read on navigation (no stream, or it dropped). */
  mode: 'connecting' | 'live' | 'fetched';
  error: string | null;
}

const MAX_EVENTS = 500;
let state: LiveState = { deployments: null, events: [], mode: 'connecting', error: null };
const listeners = new Set<(s: LiveState) => void>();
let abort: AbortController | null = null;
let retry: ReturnType<typeof setTimeout> | undefined;

function set(patch: Partial<LiveState>): void {
  state = { ...state, ...patch };
  for (const l of listeners) l(state);
}

export function useLive(): LiveState {
  const [s, setS] = useState(state);
  useEffect(() => {
    listeners.add(setS);
    setS(state);
    return () => {
      listeners.delete(setS);
    };
  }, []);
  return s;
}

function addEvents(events: EventRecord[]): void {
  const seen = new Set(state.events.map((e) => e.id));
  const fresh = events.filter((e) => !seen.has(e.id));
  if (fresh.length === 0) return;
  set({ events: [...fresh, ...state.events].sort((a, b) => b.id - a.id).slice(0, MAX_EVENTS) });
}

/** Reads both lists now (on navigation, after a change, when the stream is not there). */
export async function refresh(): Promise<void> {
  try {
    const [deployments, events] = await Promise.all([
      get<DeploymentView[]>('/v1/deployments'),
      get<EventRecord[]>('/v1/events?limit=200'),
    ]);
    set({ deployments, error: null });
    addEvents(events);
  } catch (error) {
    set({ error: describeError(error) });
  }
}

/** A deployment's newer view (the answer of a change): shown at once, before the stream says so. */
export function putDeployment(view: DeploymentView): void {
  const list = state.deployments ?? [];
  const others = list.filter((d) => d.name !== view.name);
  set({ deployments: [...others, view].sort((a, b) => (a.name < b.name ? -1 : 1)) });
}

/** Starts following (after sign-in); stop() ends it (sign-out). */
export function start(): void {
  stop();
  const controller = new AbortController();
  abort = controller;
  let pause = 2000;
  const connect = async () => {
    if (state.mode !== 'fetched') set({ mode: 'connecting' });
    if (state.events.length === 0) await refresh();
    try {
      await followEvents('/v1/stream', controller.signal, (message) => {
        if (state.mode !== 'live') set({ mode: 'live', error: null });
        pause = 2000;
        if (message.event === 'deployments')
          set({ deployments: JSON.parse(message.data) as DeploymentView[] });
        else if (message.event === 'event') addEvents([JSON.parse(message.data) as EventRecord]);
      });
    } catch (error) {
      if (controller.signal.aborted) return;
      if (!(error instanceof ApiError && error.status === 404)) set({ error: describeError(error) });
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return;
    }
    if (controller.signal.aborted) return;
    set({ mode: 'fetched' });
    await refresh();
    retry = setTimeout(connect, pause);
    pause = Math.min(pause * 2, 30_000);
  };
  void connect();
}

export function stop(): void {
  abort?.abort();
  abort = null;
  clearTimeout(retry);
  state = { deployments: null, events: [], mode: 'connecting', error: null };
  for (const l of listeners) l(state);
}
