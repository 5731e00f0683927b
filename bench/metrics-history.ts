/**
 * Memory of the metrics history (src/control/metrics-history/store.ts): fills the store for N deployments x R
 * revisions with a whole window of points each (720 = one hour at 5 s), two status codes per point (200, 503), and
 * prints what the heap and the typed arrays' backing stores grew by, per point and in all, beside the store's own
 * count (the `ferry_metrics_history_bytes` gauge). Then the cost of reading one deployment's full hour (the GET
 * body): time and JSON size. No server, about a second per size. Run with --expose-gc (the script re-runs itself
 * with it when missing) so that the measures are after a collection.
 */
import { spawnSync } from 'node:child_process';
import { HistoryStore } from '../src/control/metrics-history/store.ts';
import { log } from './lib/measure.ts';
import { numberFlag, parseOptions } from './lib/options.ts';
import { printTable, saveResults } from './lib/report.ts';

const USAGE = `Metrics history memory: bytes per point and in all for N deployments x R revisions, full windows.
usage: node --expose-gc --import tsx bench/metrics-history.ts [options]
  --deployments <n>   deployments, default 100 (also measured: 10 and 1000)
  --revisions <n>     revisions per deployment, default 3
  --points <n>        points per revision, default 720 (one hour at 5 s)`;

if (typeof globalThis.gc !== 'function') {
  // Measuring without a collection before each reading counts garbage: re-run with --expose-gc.
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
const gc = globalThis.gc as () => void;

const { values } = parseOptions(USAGE, {
  deployments: { type: 'string' },
  revisions: { type: 'string' },
  points: { type: 'string' },
});
const deployments = Math.round(numberFlag(values, 'deployments', 100, 1, 100_000));
const revisions = Math.round(numberFlag(values, 'revisions', 3, 1, 10));
const points = Math.round(numberFlag(values, 'points', 720, 1, 100_000));

function memory(): { heap: number; buffers: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}

interface Row extends Record<string, string | number> {
  size: string;
  series: number;
  points: number;
  heapBytes: number;
  bufferBytes: number;
  totalBytes: number;
  bytesPerPoint: number;
  storeBytes: number;
  readMs: number;
  jsonBytes: number;
}

function measureSize(d: number, r: number): Row {
  const before = memory();
  // maxSeries as large as the size: what N x R full windows cost (the platform keeps 1000 at most).
  const store = new HistoryStore({ capacity: points, maxSeries: d * r });
  const t0 = Date.now() - points * 5000;
  for (let k = 0; k < points; k++) {
    const t = t0 + k * 5000;
    for (let i = 0; i < d; i++)
      for (let rev = 1; rev <= r; rev++)
        store.append(`tenant-${i % 7}/deployment-${i}`, rev, {
          t,
          rps: 10 + (k % 13),
          p50: 0.004,
          p99: 0.012 + (k % 5) / 1000,
          codes: { '200': 9.5 + (k % 13), '503': k % 10 === 0 ? 0.5 : 0 },
          replicas: 2,
          batchSize: 3.25,
          queueDepth: k % 3,
          coldStarts: 0,
        });
  }
  const after = memory();
  const stats = store.stats();
  const readStart = performance.now();
  const body = JSON.stringify({ deployment: 'deployment-0', revisions: store.view('tenant-0/deployment-0') });
  const readMs = performance.now() - readStart;
  const heapBytes = after.heap - before.heap;
  const bufferBytes = after.buffers - before.buffers;
  const row: Row = {
    size: `${d} x ${r}`,
    series: stats.series,
    points: stats.points,
    heapBytes,
    bufferBytes,
    totalBytes: heapBytes + bufferBytes,
    bytesPerPoint: (heapBytes + bufferBytes) / stats.points,
    storeBytes: stats.bytes,
    readMs,
    jsonBytes: body.length,
  };
  // Keep the store alive until measured.
  if (store.stats().series < 0) log('unreachable');
  return row;
}

const sizes = [...new Set([10, deployments, 1000])].sort((a, b) => a - b);
const rows: Row[] = [];
for (const d of sizes) {
  log(`filling ${d} deployments x ${revisions} revisions x ${points} points`);
  rows.push(measureSize(d, revisions));
}
printTable(
  `Metrics history memory (${points} points per revision, codes 200 and 503; the platform keeps 1000 revisions at most)`,
  [
    { key: 'size', title: 'deployments x revisions' },
    { key: 'series', title: 'series kept', digits: 0 },
    { key: 'points', title: 'points', digits: 0 },
    { key: 'heapBytes', title: 'heap bytes', digits: 0 },
    { key: 'bufferBytes', title: 'array buffer bytes', digits: 0 },
    { key: 'totalBytes', title: 'total bytes', digits: 0 },
    { key: 'bytesPerPoint', title: 'bytes/point', digits: 1 },
    { key: 'storeBytes', title: 'store gauge bytes', digits: 0 },
    { key: 'readMs', title: 'read 1 deployment ms', digits: 2 },
    { key: 'jsonBytes', title: 'its JSON bytes', digits: 0 },
  ],
  rows,
);
saveResults('metrics-history', { options: { deployments, revisions, points }, rows });
