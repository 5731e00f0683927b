/**
 * A deployment's replica logs: the last lines of each replica, then followed as they come (GET
 * /v1/deployments/{name}/logs?follow=true, NDJSON), filtered by replica here and by revision at the API.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError, followNdjson } from '../api.ts';
import { Title } from '../app.tsx';
import { ErrorBox } from '../components.tsx';
import { time } from '../format.ts';
import { useLive } from '../live.ts';
import { Link } from '../router.tsx';
import type { LogLine } from '../types.ts';

const KEEP = 2000;

export function LogsPage({ name }: { name: string }) {
  const live = useLive();
  const view = live.deployments?.find((d) => d.name === name);
  const [lines, setLines] = useState<LogLine[]>([]);
  const [replica, setReplica] = useState('');
  const [following, setFollowing] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [streaming, setStreaming] = useState(false);
  const list = useRef<HTMLOListElement>(null);

  useEffect(() => {
    if (!following) return;
    const controller = new AbortController();
    setLines([]);
    setError(null);
    setStreaming(true);
    let pending: LogLine[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const add = pending;
      pending = [];
      setLines((old) => [...old, ...add].slice(-KEEP));
    };
    followNdjson<LogLine>(
      `/v1/deployments/${encodeURIComponent(name)}/logs?follow=true&tail=200`,
      controller.signal,
      (line) => {
        pending.push(line);
        if (frame === 0) frame = requestAnimationFrame(flush);
      },
    ).then(
      () => setStreaming(false),
      (e) => {
        if (!controller.signal.aborted) setError(describeError(e));
        setStreaming(false);
      },
    );
    return () => {
      controller.abort();
      cancelAnimationFrame(frame);
    };
  }, [name, following]);

  const shown = replica === '' ? lines : lines.filter((l) => l.replica === replica);
  useEffect(() => {
    const el = list.current;
    if (el && following) el.scrollTop = el.scrollHeight;
  }, [shown.length, following]);

  const replicas = [
    ...new Set([...(view?.replicaStatus.map((r) => r.name) ?? []), ...lines.map((l) => l.replica)]),
  ].sort();

  return (
    <section aria-labelledby="page-title">
      <p class="crumbs">
        <Link href="/">Deployments</Link> /{' '}
        <Link href={`/deployments/${encodeURIComponent(name)}`}>{name}</Link> / <span>Logs</span>
      </p>
      <Title>{name}: logs</Title>
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label for="replica">Replica</label>
        <select
          id="replica"
          value={replica}
          onChange={(e) => setReplica((e.target as HTMLSelectElement).value)}
        >
          <option value="">All replicas</option>
          {replicas.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <button type="button" aria-pressed={following} onClick={() => setFollowing(!following)}>
          {following ? 'Pause following' : 'Follow'}
        </button>
        <span class="muted" aria-live="polite">
          {streaming ? 'Following' : following ? 'Connecting' : 'Paused'} · {shown.length} lines
        </span>
      </form>
      <ErrorBox error={error} title="Logs" />
      <ol
        class="log"
        ref={list}
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard (WCAG 2.1.1)
        tabIndex={0}
        aria-label={`Log lines of ${replica || 'all replicas'}`}
        data-testid="log"
      >
        {shown.map((l, i) => (
          <li key={`${l.at}-${i}`} class={l.stream === 'stderr' ? 'stderr' : undefined}>
            <time dateTime={new Date(l.at).toISOString()}>{time(l.at)}</time>{' '}
            <span class="replica">{l.replica}</span> <LineText line={l.line} />
          </li>
        ))}
      </ol>
    </section>
  );
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const QUIET = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

/** A JSON log line (pino) as its level, message and other fields; any other line as it is. */
function LineText({ line }: { line: string }) {
  if (line.startsWith('{')) {
    try {
      const fields = JSON.parse(line) as Record<string, unknown>;
      const level = typeof fields.level === 'number' ? (LEVELS[fields.level] ?? String(fields.level)) : '';
      const rest = Object.entries(fields)
        .filter(([k]) => !QUIET.has(k))
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      return (
        <span class="line">
          {level && <span class={`level level-${level.toLowerCase()}`}>{level}</span>}{' '}
          {String(fields.msg ?? '')} <span class="fields">{rest}</span>
        </span>
      );
    } catch {
      // not JSON after all
    }
  }
  return <span class="line">{line}</span>;
}
