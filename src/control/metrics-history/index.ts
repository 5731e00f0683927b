/** The metrics history: a bounded store of per-revision points made from scrapes (docs/metrics.md). */
export {
  type HistoryListener,
  type HistorySource,
  type HistorySources,
  type HistoryView,
  MetricsHistory,
  type MetricsHistoryOptions,
  type ReplicaEndpoint,
} from './history.ts';
export { type Point, pointBetween, quantile, type Reading } from './points.ts';
export { parsePromText, type Sample } from './prom-text.ts';
export { DEFAULT_LIMITS, type HistoryLimits, HistoryStore, type RevisionHistory } from './store.ts';
