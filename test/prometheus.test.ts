/**
 * Prometheus, real (issue 14): Debian's `prometheus` (/usr/bin/prometheus, installed by
 * `node scripts/ensure-deps.mjs --test`) started on a free loopback port with the configuration
 * `ferry prometheus-config` writes (the CLI as users run it, its scrape interval 1 s), scraping a running platform
 * (process runtime, then docker: replicas as sealed containers, their sockets bind-mounted): two deployments of examples/iris, one in the default tenant with a replica from the start and
 * one in tenant `acme` that starts from zero (a cold start, the activator). Under a bounded load through the
 * gateway (answers, a few 400s and 404s), it waits (on conditions; HANG_MS bounds each wait) until Prometheus's
 * /api/v1/targets shows every target Ferry's http_sd lists up (the gateway, the control plane, each replica, the
 * replicas scraped through the control plane), and until every PromQL expression of grafana/ferry.json returns
 * data with a finite value (its variables: All). Also: the http_sd endpoint refuses a viewer token and no token.
 * Prints the targets and the figures.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../src/control/index.ts';
import type { Platform } from '../src/platform/index.ts';
import { requireDocker } from './docker-env.ts';
import { freePort, ROOT, runCli, tempDir, until } from './helpers.ts';
import { IRIS_BODY as BODY, deployIris, startTestPlatform } from './platform-fixture.ts';

const BAD_BODY = JSON.stringify({ inputs: [{ name: 'nope', shape: [1], datatype: 'FP32', data: [1] }] });
const PROMETHEUS = '/usr/bin/prometheus';
/** Debian's prometheus package ships it: `promtool check config` checks the file as Prometheus will read it. */
const PROMTOOL = '/usr/bin/promtool';
/** The load's bound: it stops after this many requests even if a wait below never ends. */
const MAX_REQUESTS = 60_000;

interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}
interface ActiveTarget {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrapeDuration: number;
}
interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
interface Dashboard {
  panels: Array<{ title: string; targets?: Array<{ expr: string; legendFormat?: string }> }>;
  templating: { list: Array<{ name: string; query: { query: string } }> };
}

for (const runtime of ['process', 'docker'] as const)
  describe(`Prometheus scrapes a running platform (${runtime} runtime); every Grafana query returns data`, () => {
    if (runtime === 'docker') requireDocker();
    const home = tempDir(`ferry-prometheus-${runtime}-`);
    let platform: Platform;
    let admin: ControlClient;
    let prometheus: ChildProcess | undefined;
    let promUrl: string;
    let promLog = '';
    let loadStopped = false;
    let load: Promise<Record<string, number>> | undefined;

    const promGet = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${promUrl}${path}`);
      const body = (await res.json()) as { status: string; data: T; error?: string };
      if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? res.status}`);
      return body.data;
    };
    const infer = (path: string, body: string | Buffer) =>
      fetch(`${platform.gatewayUrl}${path}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      });

    before(async () => {
      assert.ok(existsSync(PROMETHEUS), `${PROMETHEUS}: run node scripts/ensure-deps.mjs --test (as root)`);
      // The controller's own drain and stop bounds (undefined: its defaults).
      ({ platform, client: admin } = await startTestPlatform(join(home.path, 'ferry'), {
        runtime,
        resyncMs: 300,
        drainTimeoutMs: undefined,
        stopGraceMs: undefined,
      }));
      await deployIris({ platform, client: admin }, { replicas: 1, wait: 'none' });
      // Tenant acme's iris starts from zero: its first request is held by the activator, a cold start follows.
      await admin.createTenant('acme');
      const acme = new ControlClient({ url: platform.apiUrl, token: platform.adminToken!, tenant: 'acme' });
      await deployIris(
        { platform, client: acme },
        {
          scaling: { minReplicas: 0, maxReplicas: 1, initialScale: 0, scaleToZeroGraceMs: 3_600_000 },
          wait: 'none',
        },
      );
      await until(
        'the default tenant serves',
        async () => (await infer('/v2/models/iris/infer', BODY)) === 200,
      );
    });

    after(async () => {
      loadStopped = true;
      await load;
      if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
        const exited = new Promise((r) => prometheus!.once('exit', r));
        process.kill(prometheus.pid, 'SIGTERM');
        const timer = setTimeout(() => prometheus?.pid && process.kill(prometheus.pid, 'SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
      await platform?.stop({ removeReplicas: true });
      home.remove();
    });

    test('the http_sd endpoint refuses no token and a viewer token', async () => {
      const viewer = (await admin.createToken('look', 'viewer')).token;
      const none = await fetch(`${platform.apiUrl}/v1/prometheus/targets`);
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as { code: string }).code, 'FERRY_UNAUTHORIZED');
      const refused = await fetch(`${platform.apiUrl}/v1/prometheus/targets`, {
        headers: { authorization: `Bearer ${viewer}` },
      });
      assert.equal(refused.status, 403);
      assert.equal(((await refused.json()) as { code: string }).code, 'FERRY_FORBIDDEN');
      // ferry prometheus-config --metrics-token checks the token it is given before writing it.
      const tokenFile = join(home.path, 'viewer.token');
      const cli = await runCli(
        ['prometheus-config', '--api', platform.apiUrl, '--metrics-token', viewer, '--token-file', tokenFile],
        { env: { FERRY_HOME: join(home.path, 'cli-home') } },
      );
      assert.equal(cli.code, 1, cli.stderr);
      assert.match(cli.stderr, /FERRY_FORBIDDEN/);
      assert.ok(!existsSync(tokenFile), 'a token that cannot read the targets is not written');
    });

    test('every target up, and every dashboard query returns data', async () => {
      // 1. The configuration and the token file, as a user makes them.
      const config = join(home.path, 'prometheus.yml');
      const tokenFile = join(home.path, 'metrics.token');
      const made = await runCli(
        [
          'prometheus-config',
          '--api',
          platform.apiUrl,
          '--token',
          platform.adminToken!,
          '--create-token',
          'prometheus',
          '--token-file',
          tokenFile,
          '--scrape-interval',
          '1s',
          '--write',
          config,
        ],
        { env: { FERRY_HOME: join(home.path, 'cli-home') } },
      );
      assert.equal(made.code, 0, made.stderr);
      const metricsToken = readFileSync(tokenFile, 'utf8').trim();
      const check = spawnSync(PROMTOOL, ['check', 'config', config], { encoding: 'utf8' });
      assert.equal(check.status, 0, `promtool check config: ${check.stdout}${check.stderr}`);
      console.log(
        `# prometheus.yml (ferry prometheus-config):\n${readFileSync(config, 'utf8').replace(/^/gm, '#   ')}`,
      );

      // 2. Prometheus on a free loopback port, its data in the test's directory; stopped by its PID in after().
      const port = await freePort();
      promUrl = `http://127.0.0.1:${port}`;
      mkdirSync(join(home.path, 'tsdb'));
      prometheus = spawn(
        PROMETHEUS,
        [
          `--config.file=${config}`,
          `--web.listen-address=127.0.0.1:${port}`,
          `--storage.tsdb.path=${join(home.path, 'tsdb')}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const keep = (d: Buffer) => {
        promLog = (promLog + d.toString()).slice(-20_000);
      };
      prometheus.stdout!.on('data', keep);
      prometheus.stderr!.on('data', keep);
      await until('Prometheus is ready', async () => {
        if (prometheus!.exitCode !== null)
          throw new Error(`prometheus exited ${prometheus!.exitCode}:\n${promLog}`);
        return fetch(`${promUrl}/-/ready`).then(
          (r) => r.status === 200,
          () => false,
        );
      });

      // 3. A bounded load through the gateway: both deployments (acme's first request starts its replica), and a
      // few answers that are not 200 (an input the model refuses: 400; a model that is not there: 404).
      const statuses: Record<string, number> = {};
      load = (async () => {
        let sent = 0;
        while (!loadStopped && sent < MAX_REQUESTS) {
          const round = [
            infer('/v2/models/iris/infer', BODY),
            infer('/t/acme/v2/models/iris/infer', BODY),
            infer('/v2/models/iris/infer', BODY),
            ...(sent % 50 === 0
              ? [infer('/v2/models/iris/infer', BAD_BODY), infer('/v2/models/nope/infer', BODY)]
              : []),
          ];
          sent += round.length;
          for (const s of await Promise.all(round.map((p) => p.catch(() => 0))))
            statuses[s] = (statuses[s] ?? 0) + 1;
          await new Promise((r) => setTimeout(r, 20));
        }
        return statuses;
      })();

      // 4. Every target Ferry lists is one Prometheus scrapes, and up. Both replicas are in the list first.
      const sd = new ControlClient({ url: platform.apiUrl, token: metricsToken });
      const groups: TargetGroup[] = await until('both replicas are scrape targets', async () => {
        const g = await sd.prometheusTargets();
        return g.filter((x) => x.labels.ferry_component === 'replica').length === 2 && g;
      });
      const key = (l: Record<string, string>) => `${l.ferry_component} ${l.__metrics_path__}`;
      let active: ActiveTarget[] = [];
      await until('every target Ferry lists is up in Prometheus', async () => {
        active = (await promGet<{ activeTargets: ActiveTarget[] }>('/api/v1/targets')).activeTargets;
        return groups.every((g) =>
          active.some(
            (t) => key(t.discoveredLabels) === key(g.labels) && t.health === 'up' && t.lastError === '',
          ),
        );
      });
      assert.equal(active.length, groups.length, 'Prometheus scrapes what Ferry lists, nothing else');
      console.log(`# targets (Prometheus /api/v1/targets), ${runtime} runtime:`);
      for (const t of active)
        console.log(
          `#   ${t.health.padEnd(4)} ${t.labels.ferry_component?.padEnd(13)} ${t.scrapeUrl}  ${[
            'tenant',
            'deployment',
            'revision',
            'replica',
            'model',
            'instance',
          ]
            .filter((l) => t.labels[l] !== undefined)
            .map((l) => `${l}=${t.labels[l]}`)
            .join(' ')}  (${(t.lastScrapeDuration * 1000).toFixed(1)} ms)`,
        );
      const replicas = active.filter((t) => t.labels.ferry_component === 'replica');
      assert.deepEqual(replicas.map((t) => `${t.labels.tenant}/${t.labels.deployment}`).sort(), [
        'acme/iris',
        'default/iris',
      ]);
      for (const t of replicas) {
        assert.equal(t.labels.revision, '1');
        assert.equal(t.labels.model, 'iris');
        assert.match(t.labels.instance!, /^ferry-.*iris-r1-0-/);
        assert.equal(t.labels.replica, t.labels.instance);
        assert.equal(new URL(t.scrapeUrl).origin, platform.apiUrl, 'scraped through the control plane');
      }

      // 5. Every query of the dashboard, its variables at All, returns at least one series with a finite value.
      const dashboard = JSON.parse(readFileSync(join(ROOT, 'grafana', 'ferry.json'), 'utf8')) as Dashboard;
      const queries = dashboard.panels.flatMap((p) =>
        (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, legend: t.legendFormat ?? '' })),
      );
      assert.ok(queries.length >= 12);
      const concrete = (expr: string) =>
        expr
          .replaceAll('$__rate_interval', '30s')
          .replaceAll('$tenant', '.*')
          .replaceAll('$deployment', '.*');
      console.log('# dashboard queries (grafana/ferry.json), variables at All, $__rate_interval=30s:');
      for (const q of queries) {
        const samples = await until(`data for "${q.panel}": ${q.expr}`, async () => {
          const data = await promGet<{ resultType: string; result: Sample[] }>(
            `/api/v1/query?query=${encodeURIComponent(concrete(q.expr))}`,
          );
          return data.result.some((s) => Number.isFinite(Number(s.value[1]))) && data.result;
        });
        const shown = samples
          .map((s) => {
            const legend = q.legend.replace(/\{\{(\w+)\}\}/g, (_, l: string) => s.metric[l] ?? '');
            const v = Number(s.value[1]);
            return `${legend}=${Number.isFinite(v) ? Number(v.toPrecision(4)) : s.value[1]}`;
          })
          .join(', ');
        console.log(`#   ${q.panel}: ${shown}`);
      }

      // 6. The dashboard's variables (Grafana's label_values) have values, and the generated relabelling gives
      // the gateway's series the replicas' tenant and deployment.
      for (const v of dashboard.templating.list) {
        const m = /^label_values\((.*), (\w+)\)$/.exec(v.query.query);
        assert.ok(m, v.query.query);
        const match = m[1]!.replace('tenant=~"$tenant"', 'tenant=~".*"');
        const values = await promGet<string[]>(
          `/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(match)}`,
        );
        console.log(`#   variable ${v.name}: ${values.join(', ')}`);
        assert.deepEqual(values, v.name === 'tenant' ? ['acme', 'default'] : ['iris']);
      }
      const acmeAtGateway = await promGet<{ result: Sample[] }>(
        `/api/v1/query?query=${encodeURIComponent('ferry_gateway_requests_total{tenant="acme", deployment="iris", code="200"}')}`,
      );
      assert.equal(
        acmeAtGateway.result.length,
        1,
        'the gateway\'s "acme/iris" reads tenant=acme, deployment=iris',
      );

      loadStopped = true;
      console.log(`# load through the gateway: ${JSON.stringify(await load)} (status: requests)`);
    });
  });
