/**
 * The metrics history on a real platform (process runtime, examples/iris, real HTTP): under a bounded load
 * through the gateway, GET /v1/deployments/iris/metrics fills with points (requests/s, latency quantiles, codes,
 * replicas, batch size, queue depth), the SSE stream sends a snapshot then points and `deleted` when the
 * deployment goes, and `ferry top --once` prints a frame. The step is shortened to 500 ms (5 s by default).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { ControlClient, MetricsStreamEvent } from '../src/control/index.ts';
import type { Platform } from '../src/platform/index.ts';
import { FERRY_BIN, ROOT, runCli, tempDir, until } from './helpers.ts';
import { type SteadyLoad, steadyLoad } from './load.ts';
import { IRIS_BODY as BODY, deployIris, startTestPlatform } from './platform-fixture.ts';

const RPS = 20;

describe('metrics history (process runtime)', () => {
  const home = tempDir('ferry-history-');
  let platform: Platform;
  let client: ControlClient;
  let load: SteadyLoad;

  before(async () => {
    // The controller's own drain and stop bounds (undefined: its defaults).
    ({ platform, client } = await startTestPlatform(home.path, {
      metricsStepMs: 500,
      drainTimeoutMs: undefined,
      stopGraceMs: undefined,
    }));
    await deployIris({ platform, client }, { replicas: 2, wait: 'ready' });
    load = steadyLoad({
      url: `${platform.gatewayUrl}/v2/models/iris/infer`,
      body: BODY,
      rps: RPS,
      maxDurationMs: 10 * 60_000,
    });
  });

  after(async () => {
    await load?.stop();
    await platform?.stop({ removeReplicas: true });
    home.remove();
  });

  test('points appear with requests/s, p50/p99, codes, replicas, batch size and queue depth', async () => {
    const point = await until('a point of revision 1 with requests, 2 replicas and batches', async () => {
      const h = await client.metricsHistory('iris');
      return h.revisions
        .find((r) => r.revision === 1)
        ?.points.find((p) => p.rps > 0 && p.replicas === 2 && p.batchSize !== null && p.queueDepth !== null);
    });
    const history = await client.metricsHistory('iris');
    assert.equal(history.deployment, 'iris');
    assert.equal(history.stepMs, 500);
    assert.equal(history.source, 'scraped');
    assert.ok(point.p50 !== null && point.p50 > 0, `p50 ${point.p50}`);
    assert.ok(point.p99 !== null && point.p99 >= point.p50, `p99 ${point.p99}`);
    assert.ok((point.codes['200'] ?? 0) > 0, JSON.stringify(point.codes));
    assert.ok(point.batchSize! >= 1, `batch size ${point.batchSize}`);
    assert.equal(point.coldStarts, 0);
    const points = history.revisions[0]!.points;
    for (let i = 1; i < points.length; i++) assert.ok(points[i]!.t > points[i - 1]!.t, 'oldest first');
    // since: only what came after.
    const last = points.at(-1)!.t;
    const later = await client.metricsHistory('iris', last);
    assert.ok(later.revisions.every((r) => r.points.every((p) => p.t > last)));
    // Its size shows in the control plane's registry.
    const text = await (
      await fetch(`${platform.apiUrl}/metrics`, {
        headers: { authorization: `Bearer ${platform.adminToken}` },
      })
    ).text();
    assert.match(text, /^ferry_metrics_history_series [1-9]/m);
    assert.match(text, /^ferry_metrics_history_points [1-9]/m);
  });

  test('an unknown deployment: 404 FERRY_NOT_FOUND, for the GET and the stream', async () => {
    for (const path of ['/v1/deployments/nope/metrics', '/v1/deployments/nope/metrics/stream']) {
      const res = await fetch(`${platform.apiUrl}${path}`, {
        headers: { authorization: `Bearer ${platform.adminToken}` },
      });
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { code: string }).code, 'FERRY_NOT_FOUND');
    }
  });

  test('the stream: a snapshot, then points', async () => {
    const abort = new AbortController();
    const seen: MetricsStreamEvent[] = [];
    for await (const e of client.metricsStream('iris', abort.signal)) {
      seen.push(e);
      if (e.event === 'point' && e.point.rps > 0) break;
    }
    abort.abort();
    assert.equal(seen[0]!.event, 'snapshot');
    const snapshot = seen[0] as Extract<MetricsStreamEvent, { event: 'snapshot' }>;
    assert.equal(snapshot.history.deployment, 'iris');
    assert.ok(snapshot.history.revisions[0]!.points.length > 0);
    const point = seen.at(-1) as Extract<MetricsStreamEvent, { event: 'point' }>;
    assert.equal(point.revision, 1);
    assert.ok(point.point.t > snapshot.history.revisions[0]!.points.at(-1)!.t);
  });

  test('ferry top --once prints one frame of the revisions', async (t) => {
    const { code, stdout, stderr } = await runCli(['top', 'iris', '--once'], {
      env: { FERRY_API_URL: platform.apiUrl, FERRY_TOKEN: platform.adminToken!, FERRY_HOME: home.path },
    });
    assert.equal(code, 0, stderr);
    t.diagnostic(`ferry top iris --once:\n${stdout}`);
    assert.match(stdout, /iris/);
    const row = stdout.split('\n').find((l) => /^\s*1\s/.test(l));
    assert.ok(row, `a row for revision 1:\n${stdout}`);
    assert.match(row, /\d+(\.\d+)?/);
  });

  test('ferry top, piped: one line per revision and step as the stream brings them', async () => {
    const child = spawn(process.execPath, [FERRY_BIN, 'top', 'iris'], {
      cwd: ROOT,
      env: {
        ...process.env,
        FERRY_API_URL: platform.apiUrl,
        FERRY_TOKEN: platform.adminToken!,
        FERRY_HOME: home.path,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until('two lines of revision 1 with requests', () =>
        stdout.split('\n').filter((l) => / r1 rps=(?!0\.0 )[\d.]+ p50=[\d.]+m?s .* replicas=2 /.test(l))
          .length >= 2
          ? true
          : undefined,
      );
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, stderr);
    assert.ok(!stdout.includes('\u001b['), 'no terminal escapes when piped');
  });

  test('deleting the deployment ends the stream with `deleted`', async () => {
    const events: string[] = [];
    const stream = (async () => {
      for await (const e of client.metricsStream('iris')) {
        events.push(e.event);
        if (e.event === 'snapshot') await client.deleteDeployment('iris');
      }
    })();
    await stream;
    assert.equal(events[0], 'snapshot');
    assert.equal(events.at(-1), 'deleted');
  });
});
