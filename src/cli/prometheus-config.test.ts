/**
 * `ferry prometheus-config`'s text and the Grafana dashboard (grafana/ferry.json), without a Prometheus: the text
 * is YAML with the job Prometheus needs, and every query of the dashboard names metrics Ferry exports
 * (docs/metrics.md) and only the variables the dashboard defines. test/prometheus.test.ts runs Debian's
 * Prometheus on the same text and every query of the dashboard against it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { prometheusConfig } from './prometheus-config.ts';

const ROOT = join(import.meta.dirname, '..', '..');
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's datasource placeholder, filled in at import
const DS_UID = '${DS_PROMETHEUS}';

interface Dashboard {
  __inputs: Array<{ name: string; pluginId: string }>;
  templating: { list: Array<{ name: string; query: { query: string } }> };
  panels: Array<{
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: Array<{ expr: string; refId: string; datasource: { uid: string } }>;
  }>;
}

/** Every PromQL expression of the dashboard's panels, with its panel's title (test/prometheus.test.ts too). */
function dashboardQueries(dashboard: Dashboard): Array<{ panel: string; expr: string }> {
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}

test('the configuration: one job, targets from the control plane, the token file for discovery and scrapes', () => {
  const text = prometheusConfig({
    apiUrl: 'http://127.0.0.1:7070/',
    tokenFile: '/etc/prometheus/ferry metrics.token',
    scrapeIntervalSeconds: 15,
    jobName: 'ferry',
  });
  const config = parse(text);
  assert.equal(config.scrape_configs.length, 1);
  const job = config.scrape_configs[0];
  assert.equal(job.job_name, 'ferry');
  assert.equal(job.scrape_interval, '15s');
  assert.equal(job.scrape_timeout, '10s');
  const auth = { type: 'Bearer', credentials_file: '/etc/prometheus/ferry metrics.token' };
  assert.deepEqual(job.http_sd_configs, [
    { url: 'http://127.0.0.1:7070/v1/prometheus/targets', refresh_interval: '15s', authorization: auth },
  ]);
  assert.deepEqual(job.authorization, auth);
  assert.equal(job.metric_relabel_configs.length, 3);
  // A 1 s interval (the live test's) keeps the timeout within it, as Prometheus requires.
  const fast = parse(
    prometheusConfig({ apiUrl: 'http://h:1', tokenFile: '/t', scrapeIntervalSeconds: 1, jobName: 'x' }),
  );
  assert.equal(fast.scrape_configs[0].scrape_timeout, '1s');
});

test('the dashboard: a datasource input, and every query on documented metrics and defined variables', () => {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'grafana', 'ferry.json'), 'utf8')) as Dashboard;
  assert.deepEqual(
    dashboard.__inputs.map((i) => [i.name, i.pluginId]),
    [['DS_PROMETHEUS', 'prometheus']],
  );
  const documented = new Set(
    [...readFileSync(join(ROOT, 'docs', 'metrics.md'), 'utf8').matchAll(/^\| `(ferry_[a-z_]+)`/gm)].map(
      (m) => m[1]!,
    ),
  );
  const variables = new Set(dashboard.templating.list.map((v) => v.name));
  const queries = dashboardQueries(dashboard);
  assert.ok(queries.length >= 12, `${queries.length} queries`);
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    assert.equal(panel.datasource?.uid, DS_UID, panel.title);
    for (const t of panel.targets ?? []) assert.equal(t.datasource.uid, DS_UID, panel.title);
  }
  const needed = [
    'ferry_gateway_requests_total',
    'ferry_gateway_request_duration_seconds',
    'ferry_batch_size',
    'ferry_queue_depth',
    'ferry_cold_start_seconds',
    'ferry_gateway_activator_held',
    'ferry_model_ready',
  ];
  const all = queries.map((q) => q.expr).join('\n');
  for (const metric of needed) assert.ok(all.includes(metric), `a panel on ${metric}`);
  assert.match(all, /up\{ferry_component="replica"/, 'a panel on the replicas up');
  for (const { panel, expr } of queries) {
    // Metric names: what is left without label matchers and grouping clauses (which name labels).
    const names = expr
      .replace(/\{[^}]*\}/g, '')
      .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
    for (const [, name] of names.matchAll(/\b(ferry_[a-z_]+)/g)) {
      const base = name!.replace(/_(bucket|sum|count)$/, '');
      assert.ok(documented.has(name!) || documented.has(base), `${panel}: ${name} is not in docs/metrics.md`);
    }
    for (const [, v] of expr.matchAll(/\$(\w+)/g))
      assert.ok(v === '__rate_interval' || variables.has(v!), `${panel}: $${v} is not defined`);
  }
});
