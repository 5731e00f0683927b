/**
 * A deployment's live charts per revision (uPlot): requests/s, p50 and p99 latency, errors by status code,
 * replicas, batch size, queue depth, cold starts. Data from the metrics history (GET
 * /v1/deployments/{name}/metrics/stream: a snapshot, then a point per revision after each scrape). Each chart
 * has a text summary of its latest values (read by screen readers; the test reads it too).
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, describeError, followEvents, get } from '../api.ts';
import { Title } from '../app.tsx';
import { ErrorBox, Loading } from '../components.tsx';
import { Link } from '../router.tsx';
import type { MetricsHistory, MetricsPoint } from '../types.ts';

/** Series colours: distinct, each with >= 3:1 contrast on white (WCAG non-text contrast). */
const COLOURS = ['#0b5cad', '#b3261e', '#1b7a3a', '#8a4b00', '#6b3fa0', '#00707a', '#a1285e', '#4d5b00'];

interface Series {
  label: string;
  values: Map<number, number | null>;
}
interface ChartDef {
  id: string;
  title: string;
  unit: string;
  series(history: MetricsHistory): Series[];
}

const perRevision =
  (pick: (p: MetricsPoint) => number | null, scale = 1) =>
  (h: MetricsHistory): Series[] =>
    h.revisions.map((r) => ({
      label: `r${r.revision}`,
      values: new Map(r.points.map((p) => [p.t, nullable(pick(p), scale)])),
    }));

function nullable(v: number | null, scale: number): number | null {
  return v === null || v === undefined ? null : v * scale;
}

const CHARTS: ChartDef[] = [
  { id: 'rps', title: 'Requests per second', unit: 'req/s', series: perRevision((p) => p.rps) },
  {
    id: 'latency',
    title: 'Latency p50 and p99',
    unit: 'ms',
    series: (h) =>
      h.revisions.flatMap((r) => [
        { label: `r${r.revision} p50`, values: new Map(r.points.map((p) => [p.t, nullable(p.p50, 1000)])) },
        { label: `r${r.revision} p99`, values: new Map(r.points.map((p) => [p.t, nullable(p.p99, 1000)])) },
      ]),
  },
  {
    id: 'errors',
    title: 'Errors by status code',
    unit: 'req/s',
    series: (h) =>
      h.revisions.flatMap((r) => {
        const codes = [...new Set(r.points.flatMap((p) => Object.keys(p.codes)))].filter(
          (c) => !c.startsWith('2'),
        );
        return codes.map((code) => ({
          label: `r${r.revision} ${code}`,
          values: new Map(r.points.map((p) => [p.t, p.codes[code] ?? 0])),
        }));
      }),
  },
  { id: 'replicas', title: 'Ready replicas', unit: 'replicas', series: perRevision((p) => p.replicas) },
  {
    id: 'batch',
    title: 'Batch size (samples per model call)',
    unit: 'samples',
    series: perRevision((p) => p.batchSize),
  },
  { id: 'queue', title: 'Queue depth', unit: 'requests', series: perRevision((p) => p.queueDepth) },
  { id: 'cold', title: 'Cold starts', unit: 'per step', series: perRevision((p) => p.coldStarts) },
];

type Source =
  | { kind: 'loading' }
  | { kind: 'ok'; history: MetricsHistory }
  | { kind: 'missing'; why: string };

export function ChartsPage({ name }: { name: string }) {
  const [source, setSource] = useState<Source>({ kind: 'loading' });
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);

  useEffect(() => {
    const controller = new AbortController();
    let history: MetricsHistory | null = null;
    let pause = 2000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const path = `/v1/deployments/${encodeURIComponent(name)}/metrics`;
    const follow = async () => {
      try {
        await followEvents(`${path}/stream`, controller.signal, (m) => {
          if (m.event === 'snapshot') {
            history = JSON.parse(m.data) as MetricsHistory;
            setSource({ kind: 'ok', history });
            setLive(true);
            setError(null);
            pause = 2000;
          } else if (m.event === 'point' && history) {
            const { revision, point } = JSON.parse(m.data) as { revision: number; point: MetricsPoint };
            history = appendPoint(history, revision, point);
            setSource({ kind: 'ok', history });
          } else if (m.event === 'deleted') {
            setError(`The deployment ${name} was deleted.`);
            controller.abort();
          }
        });
      } catch (e) {
        if (controller.signal.aborted) return;
        if (e instanceof ApiError && e.status === 404 && e.code === 'FERRY_ROUTE_NOT_FOUND') {
          setSource({
            kind: 'missing',
            why: `This control plane keeps no metrics history (GET ${path}/stream answered: ${e.message}).`,
          });
          return;
        }
        setError(describeError(e));
        if (e instanceof ApiError && e.status < 500) return;
      }
      setLive(false);
      if (controller.signal.aborted) return;
      // Dropped: show what GET has, and follow again after a pause.
      try {
        history = await get<MetricsHistory>(path);
        setSource({ kind: 'ok', history });
      } catch {
        // the error above says enough
      }
      timer = setTimeout(follow, pause);
      pause = Math.min(pause * 2, 30_000);
    };
    void follow();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [name]);

  return (
    <section aria-labelledby="page-title">
      <p class="crumbs">
        <Link href="/">Deployments</Link> /{' '}
        <Link href={`/deployments/${encodeURIComponent(name)}`}>{name}</Link> / <span>Charts</span>
      </p>
      <Title>{name}: live charts</Title>
      <ErrorBox error={error} title="Metrics" />
      {source.kind === 'loading' && <Loading what="metrics" />}
      {source.kind === 'missing' && <p class="notice">{source.why}</p>}
      {source.kind === 'ok' && (
        <>
          <p class="muted">
            {live ? 'Live' : 'Not live'}: one point every {source.history.stepMs / 1000} s over the last{' '}
            {Math.round(source.history.windowMs / 60000)} min, per revision
            {source.history.source === 'gateway-reports' &&
              " (from the gateways' reports: batch size, queue depth and cold starts are not known)"}
            .
          </p>
          <div class="charts">
            {CHARTS.map((def) => (
              <Chart key={def.id} def={def} history={source.history} />
            ))}
          </div>
        </>
      )}
    </section>
  );
}

function appendPoint(h: MetricsHistory, revision: number, point: MetricsPoint): MetricsHistory {
  const cutoff = point.t - h.windowMs;
  const known = h.revisions.some((r) => r.revision === revision);
  const revisions = (known ? h.revisions : [...h.revisions, { revision, points: [] }]).map((r) =>
    r.revision === revision
      ? { revision, points: [...r.points.filter((p) => p.t > cutoff && p.t !== point.t), point] }
      : r,
  );
  return { ...h, revisions: revisions.sort((a, b) => a.revision - b.revision) };
}

function Chart({ def, history }: { def: ChartDef; history: MetricsHistory }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  /** The first and last time of the data (seconds), read by the x scale's range. */
  const bounds = useRef<[number, number]>([0, 1]);
  const series = def.series(history);
  const xs = [...new Set(series.flatMap((s) => [...s.values.keys()]))].sort((a, b) => a - b);
  const data: uPlot.AlignedData = [
    xs.map((t) => t / 1000),
    ...series.map((s) => xs.map((t) => s.values.get(t) ?? null)),
  ];
  const shape = series.map((s) => s.label).join('|');
  const now = Date.now() / 1000;
  bounds.current = [data[0][0] ?? now - 60, data[0].at(-1) ?? now];
  const latest = series.map((s) => {
    const last = [...s.values.entries()].sort((a, b) => a[0] - b[0]).at(-1);
    return { label: s.label, value: last?.[1] ?? null };
  });
  const summary =
    series.length === 0
      ? def.id === 'errors'
        ? 'No errors.'
        : 'No data yet.'
      : `Latest: ${latest.map((l) => `${l.label} ${l.value === null ? 'no data' : round(l.value)} ${def.unit}`).join(', ')}.`;

  useEffect(() => {
    if (!box.current || series.length === 0) return;
    plot.current?.destroy();
    const width = Math.max(280, box.current.clientWidth);
    const stepS = history.stepMs / 1000;
    plot.current = new uPlot(
      {
        width,
        height: 180,
        scales: {
          // At least ten steps wide, so that the first points of a new history sit on a readable time axis.
          x: {
            time: true,
            range: () => {
              const xs = bounds.current;
              return [Math.min(xs[0], xs[1] - 10 * stepS), xs[1]];
            },
          },
          y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
        },
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: COLOURS[i % COLOURS.length],
            width: 2,
            spanGaps: false,
            // Dots while there are few points (a single point draws no line).
            points: { show: (_u: uPlot, _s: number, i0: number, i1: number) => i1 - i0 < 30, size: 6 },
          })),
        ],
        axes: [{ stroke: '#333' }, { stroke: '#333', size: 50 }],
        legend: { show: true },
        cursor: { show: true },
      },
      data,
      box.current,
    );
    const resize = () =>
      box.current && plot.current?.setSize({ width: Math.max(280, box.current.clientWidth), height: 180 });
    addEventListener('resize', resize);
    return () => {
      removeEventListener('resize', resize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return (
    <figure class="chart" data-testid={`chart-${def.id}`} data-points={xs.length}>
      <figcaption>
        {def.title} <span class="muted">({def.unit})</span>
      </figcaption>
      {series.length === 0 ? (
        <p class="plot empty">
          {def.id === 'errors' ? 'No errors in the window.' : 'No data in the window.'}
        </p>
      ) : (
        <div ref={box} class="plot" role="img" aria-label={`${def.title}. ${summary}`} />
      )}
      <p class="summary" data-testid={`summary-${def.id}`}>
        {summary}
      </p>
    </figure>
  );
}

function round(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
