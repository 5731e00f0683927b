/**
 * `ferry prometheus-config`: a prometheus.yml (its `scrape_configs:`) that scrapes this Ferry: one job whose
 * targets come from the control plane's HTTP service discovery (GET /v1/prometheus/targets: the gateway, the
 * control plane, every replica through the control plane), with a `metrics` token read from a file for both the
 * discovery and the scrapes. Optionally writes that file: with a new metrics token (--create-token, needs a
 * platform admin's token) or one given (--metrics-token, checked against the API first). docs/prometheus.md.
 * The text is made by `prometheusConfig` (pure; test/prometheus.test.ts runs Prometheus on it).
 */
import { accessSync, constants, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { connect } from './context.ts';
import { parseDurationFlag, UsageError } from './format.ts';
import { type ConnectionFlags, flag, out, run, say, withConnection } from './platform.ts';

export interface PrometheusConfigInput {
  /** The control plane's base URL, as Prometheus reaches it. */
  apiUrl: string;
  /** Absolute path of the file holding the metrics token. */
  tokenFile: string;
  /** Seconds between scrapes (and between discoveries). */
  scrapeIntervalSeconds: number;
  jobName: string;
}

export const DEFAULT_TOKEN_FILE = '/etc/prometheus/ferry-metrics.token';
export const DEFAULT_SCRAPE_INTERVAL_SECONDS = 15;

/** YAML's double-quoted scalar of a string (JSON's escapes are YAML's). */
const q = (s: string): string => JSON.stringify(s);

/**
 * The prometheus.yml text. The metric relabelling makes `tenant` and `deployment` mean the same on every series:
 * the gateway's and the control plane's `deployment` label is the deployment's key (`tenant/name`, a plain name
 * in the default tenant), split here into `tenant` and the plain `deployment` the replicas' target labels carry.
 */
export function prometheusConfig(input: PrometheusConfigInput): string {
  const base = input.apiUrl.replace(/\/+$/, '');
  const every = `${input.scrapeIntervalSeconds}s`;
  const timeout = `${Math.min(10, input.scrapeIntervalSeconds)}s`;
  const auth = ['type: Bearer', `credentials_file: ${q(input.tokenFile)}`];
  return [
    `# Ferry at ${base}: the gateway, the control plane and every replica (docs/prometheus.md).`,
    '# Made by `ferry prometheus-config`; the token file holds a `metrics` token (ferry token create --role metrics).',
    'scrape_configs:',
    `  - job_name: ${q(input.jobName)}`,
    `    scrape_interval: ${every}`,
    `    scrape_timeout: ${timeout}`,
    '    http_sd_configs:',
    `      - url: ${q(`${base}/v1/prometheus/targets`)}`,
    `        refresh_interval: ${every}`,
    '        authorization:',
    ...auth.map((l) => `          ${l}`),
    '    authorization:',
    ...auth.map((l) => `      ${l}`),
    '    metric_relabel_configs:',
    '      # deployment="tenant/name" (gateway, control plane) -> tenant="tenant", deployment="name"',
    '      - source_labels: [deployment]',
    "        regex: '([^/]+)/(.+)'",
    '        target_label: tenant',
    "        replacement: '$1'",
    '      - source_labels: [deployment]',
    "        regex: '([^/]+)/(.+)'",
    '        target_label: deployment',
    "        replacement: '$2'",
    '      # a deployment of the default tenant has no "tenant/" in its key',
    '      - source_labels: [tenant, deployment]',
    "        regex: ';.+'",
    '        target_label: tenant',
    '        replacement: default',
    '',
  ].join('\n');
}

const TOKEN_RE = /^ferry_[0-9a-f]{16}_[A-Za-z0-9_-]{20,}$/;

interface PrometheusConfigFlags extends ConnectionFlags {
  tokenFile: string;
  createToken?: string | true;
  metricsToken?: string;
  scrapeInterval?: number;
  job: string;
  write?: string;
}

export function registerPrometheusConfig(program: Command): void {
  withConnection(
    program
      .command('prometheus-config')
      .description(
        "print a prometheus.yml scraping this Ferry (service discovery through the control plane, a metrics token from a file); optionally write the token's file",
      )
      .option(
        '--token-file <path>',
        'where Prometheus reads the metrics token (written with --create-token or --metrics-token)',
        DEFAULT_TOKEN_FILE,
      )
      .option(
        '--create-token [name]',
        'make a new metrics token (named prometheus unless given; needs a platform admin token) and write it to --token-file',
      )
      .option(
        '--metrics-token <token>',
        'write this metrics token to --token-file (checked against the API first)',
      )
      .option(
        '--scrape-interval <duration>',
        `seconds between scrapes, e.g. 15s, 1m (default ${DEFAULT_SCRAPE_INTERVAL_SECONDS}s)`,
        flag((v) => parseDurationFlag('--scrape-interval', v)),
      )
      .option('--job <name>', 'the scrape job name', 'ferry')
      .option('--write <path>', 'write the configuration to this file instead of printing it'),
  ).action(
    run(async (opts: PrometheusConfigFlags) => {
      if (opts.createToken !== undefined && opts.metricsToken !== undefined)
        throw new UsageError('give --create-token or --metrics-token, not both');
      const intervalMs = opts.scrapeInterval ?? DEFAULT_SCRAPE_INTERVAL_SECONDS * 1000;
      if (intervalMs < 1000 || intervalMs % 1000 !== 0)
        throw new UsageError('--scrape-interval: give whole seconds, at least 1s');
      const client = connect(opts);
      const tokenFile = resolve(opts.tokenFile);
      let token: string | undefined;
      if (opts.createToken !== undefined || opts.metricsToken !== undefined) {
        // Before a token is made: one made and then not written would be left behind.
        try {
          accessSync(dirname(tokenFile), constants.W_OK);
        } catch {
          throw new UsageError(
            `--token-file ${tokenFile}: cannot write in ${dirname(tokenFile)} (run as its owner, or pick another)`,
          );
        }
      }
      if (opts.createToken !== undefined) {
        const name = opts.createToken === true ? 'prometheus' : opts.createToken;
        token = (await client.createToken(name, 'metrics')).token;
        say(`token ${name} (metrics) created`);
      } else if (opts.metricsToken !== undefined) {
        token = opts.metricsToken.trim();
        if (!TOKEN_RE.test(token))
          throw new UsageError('--metrics-token is not a Ferry token (ferry_<id>_<secret>)');
        // The token must read the targets: a wrong role or a revoked token fails here, not in Prometheus.
        await connect({ api: client.url, token }).prometheusTargets();
      }
      if (token !== undefined) {
        writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
        say(
          `wrote the metrics token to ${tokenFile} (mode 0600: make it readable by the user Prometheus runs as)`,
        );
      }
      const text = prometheusConfig({
        apiUrl: client.url,
        tokenFile,
        scrapeIntervalSeconds: intervalMs / 1000,
        jobName: opts.job,
      });
      if (opts.write === undefined) return out(text);
      writeFileSync(resolve(opts.write), text);
      say(`wrote ${resolve(opts.write)}`);
    }),
  );
}
