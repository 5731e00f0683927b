/**
 * The life of a `ferry serve` process, as a child process: readiness only after loading, graceful
 * shutdown on SIGTERM (in-flight requests finish, readiness drops, exit 0) and its deadline, the image
 * entry's shutdown delay (FERRY_SHUTDOWN_DELAY_MS: unready but serving, then the drain), hot reload
 * with --watch (no failed request, a broken spec keeps the old version serving), and JSON logs with
 * request ids. Every wait is a bounded poll; every child is stopped by PID.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildRequest, RawHttpConnection } from '../bench/lib/raw-http.mjs';
import { FERRY_BIN, freePort, HANG_MS, post, ROOT, spawnServer, tempDir } from './helpers.ts';

const SLOW = join(ROOT, 'test', 'fixtures', 'lifecycle', 'slow');
const IRIS = join(ROOT, 'examples', 'iris');
const SETOSA = readFileSync(join(IRIS, 'requests', 'setosa.json'), 'utf8');

/** A request to the slow fixture whose predict() takes `ms` milliseconds (negative: until released). */
const slowBody = (ms: number) =>
  JSON.stringify({ inputs: [{ name: 'ms', datatype: 'INT32', shape: [1], data: [ms] }] });

interface LogLine {
  level?: number;
  msg?: string;
  [key: string]: unknown;
}

/** Every line of a child's output that is a JSON object (pino logs, fixture markers). */
function jsonLines(output: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

/** Polls `check` every 25 ms until it returns a value other than undefined, or fails after timeoutMs. */
async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = HANG_MS,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

/** Starts `ferry serve` without waiting for readiness; `exited` resolves when the process ends. */
async function startServe(args: string[]) {
  const port = await freePort();
  const child = spawn(process.execPath, [FERRY_BIN, 'serve', ...args, '--port', String(port)], {
    cwd: ROOT,
    env: { ...process.env, FERRY_LOG_LEVEL: 'info' },
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/** Follows a spawnServer child's exit; attach before signalling it. */
function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
}

const children = new Set<ChildProcess>();
function track<T extends { child: ChildProcess }>(started: T): T {
  children.add(started.child);
  return started;
}
after(async () => {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
});

/** Status of a GET, or 'refused' when no connection could be made. */
async function statusOf(url: string): Promise<number | 'refused'> {
  try {
    const response = await fetch(url);
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 'refused';
  }
}

/** Resolves once the slow fixture's predict() has started (it prints a marker line). */
function predictStarted(output: () => string, ms: number): Promise<true> {
  return waitFor(`predict(${ms} ms) to start`, () =>
    jsonLines(output()).some((l) => l.fixture === 'predict-start' && l.ms === ms) ? true : undefined,
  );
}

/**
 * A copy of the slow fixture whose requests with a negative `ms` run until the test writes the returned
 * release file: the test, not a duration, decides how long a request stays in flight.
 */
function gatedSlow(dir: string): { model: string; release: () => void } {
  const model = join(dir, 'slow');
  const releaseFile = join(dir, 'release');
  cpSync(SLOW, model, { recursive: true });
  writeFileSync(
    join(model, 'ferry.yaml'),
    `${readFileSync(join(SLOW, 'ferry.yaml'), 'utf8')}env:\n  RELEASE_FILE: "${releaseFile}"\n`,
  );
  return { model, release: () => writeFileSync(releaseFile, '') };
}

describe('graceful shutdown', () => {
  const tmp = tempDir('ferry-lifecycle-shutdown-');
  after(() => tmp.remove());

  test('SIGTERM: the in-flight request finishes, readiness drops, exit 0 with draining/stopped logs', async () => {
    const gated = gatedSlow(join(tmp.path, 'drain'));
    const server = track(await spawnServer([gated.model]));
    const exited = exitOf(server.child);
    // Connection: close, as the original 1.5 s version of this test effectively had (its readiness polls
    // reused the kept-alive connection after the answer). A connection kept alive instead is the next test.
    const inFlight = post(`${server.url}/v2/models/slow/infer`, slowBody(-1), { connection: 'close' });
    await predictStarted(server.output, -1);

    process.kill(server.child.pid!, 'SIGTERM');

    // The child logs 'draining' in the same tick in which readiness turns false; from then on readiness
    // is never 200: 503 on a kept-alive connection, or no connection at all. The request is still held,
    // so the process must still be there, waiting for it.
    await waitFor('the draining log line', () =>
      jsonLines(server.output()).some((l) => /^draining/.test(l.msg ?? '')) ? true : undefined,
    );
    const seen = new Set<number | 'refused'>();
    for (let i = 0; i < 5; i++) {
      seen.add(await statusOf(`${server.url}/v2/health/ready`));
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(server.child.exitCode, null, 'exited while a request was still in flight');
    assert.ok(!seen.has(200), `readiness answered 200 while draining (saw ${[...seen].join(', ')})`);
    gated.release();

    const response = await inFlight;
    assert.equal(response.status, 200, response.text);
    assert.deepEqual((response.json.outputs as { data: number[] }[])[0]!.data, [-1]);

    const exit = await exited;
    assert.deepEqual([exit.code, exit.signal], [0, null]);

    const logs = jsonLines(server.output()).filter((l) => typeof l.level === 'number');
    const draining = logs.findIndex((l) => /^draining/.test(l.msg ?? ''));
    const stopped = logs.findIndex((l) => l.msg === 'stopped');
    assert.ok(draining >= 0, `no 'draining' log line in:\n${server.output()}`);
    assert.ok(stopped > draining, `no 'stopped' log line after 'draining' in:\n${server.output()}`);
    assert.equal(logs[stopped]!.clean, true);
    const errors = logs.filter((l) => l.level! >= 50);
    assert.deepEqual(errors, [], 'a clean shutdown logs no errors');
  });

  test('SIGTERM: a kept-alive connection that goes idle once its request is answered does not hold the exit', async () => {
    const gated = gatedSlow(join(tmp.path, 'keep-alive'));
    const server = track(await spawnServer([gated.model, '--shutdown-timeout', '5']));
    const exited = exitOf(server.child);
    const inFlight = post(`${server.url}/v2/models/slow/infer`, slowBody(-1));
    await predictStarted(server.output, -1);
    process.kill(server.child.pid!, 'SIGTERM');
    await waitFor('the draining log line', () =>
      jsonLines(server.output()).some((l) => /^draining/.test(l.msg ?? '')) ? true : undefined,
    );
    gated.release();
    const answer = await inFlight;
    assert.equal(answer.status, 200);
    const exit = await exited;
    assert.deepEqual([exit.code, exit.signal], [0, null], server.output());
  });

  test('--shutdown-timeout 1: a request still running does not hold the exit', async () => {
    // The request is never released: without the deadline the process would wait for it forever.
    const gated = gatedSlow(join(tmp.path, 'deadline'));
    const server = track(await spawnServer([gated.model, '--shutdown-timeout', '1']));
    const exited = exitOf(server.child);
    const inFlight = post(`${server.url}/v2/models/slow/infer`, slowBody(-1)).catch((error: Error) => error);
    await predictStarted(server.output, -1);

    const signalledAt = Date.now();
    process.kill(server.child.pid!, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      exited,
      new Promise<null>((r) => {
        timer = setTimeout(() => r(null), HANG_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    assert.ok(
      exit !== null,
      'the process waited for a request that never ends, despite --shutdown-timeout 1',
    );
    // It gave the request its second first (a slow machine only makes that longer).
    const took = exit.at - signalledAt;
    assert.ok(took >= 900, `exited ${took} ms after SIGTERM; --shutdown-timeout 1 gives requests 1 s`);
    assert.equal(exit.code, 1, 'a shutdown that cut requests off exits 1');
    const result = await inFlight;
    assert.ok(result instanceof Error || result.status !== 200, 'the held request cannot have finished');
    assert.ok(
      jsonLines(server.output()).some((l) => l.clean === false && /deadline/.test(l.msg ?? '')),
      `no 'shutdown deadline passed' log line in:\n${server.output()}`,
    );
  });
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP exchange on a new connection (node:http, an agent of its own), asking to keep it alive as a
 * gateway does: a `Connection: close` in the answer is the server's choice.
 */
function exchange(url: string, path: string, body?: string): Promise<Answer> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method: body === undefined ? 'GET' : 'POST',
        agent,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  }).finally(() => agent.destroy());
}

/**
 * Runs the image's entry (src/server/entry.ts, through tsx) on a model directory with FERRY_* variables, on
 * 127.0.0.1 and a free port, and waits until it is ready.
 */
async function startEntry(modelDir: string, env: Record<string, string>) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server', 'entry.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      FERRY_MODEL_DIR: modelDir,
      FERRY_HOST: '127.0.0.1',
      FERRY_PORT: String(port),
      FERRY_LOG_LEVEL: 'info',
      ...env,
    },
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = exitOf(child);
  const started = { child, port, url: `http://127.0.0.1:${port}`, output: () => output, exited };
  track(started);
  await waitFor('the entry to be ready', () => {
    if (child.exitCode !== null) throw new Error(`the entry exited with ${child.exitCode}:\n${output}`);
    return jsonLines(output).some((l) => l.msg === 'server ready') ? true : undefined;
  });
  return started;
}

/** Index of the first log line whose msg matches, or -1. */
const logIndex = (output: string, msg: RegExp) =>
  jsonLines(output)
    .filter((l) => typeof l.level === 'number')
    .findIndex((l) => msg.test(l.msg ?? ''));

const DELAY_STARTED = /^shutdown delay: readiness is now false/;
const DELAY_CUT = /^shutdown delay cut short/;
const DRAINING = /^draining/;

describe('shutdown delay (the image entry, FERRY_SHUTDOWN_DELAY_MS)', () => {
  const tmp = tempDir('ferry-lifecycle-delay-');
  after(() => tmp.remove());

  test('in the delay: readiness 503, requests still served on new and kept-alive connections, each closed after its answer; a second SIGTERM ends the delay, the drain follows, exit 0', async () => {
    const gated = gatedSlow(join(tmp.path, 'serving'));
    // The longest delay: it cannot end on its own while the test looks at it; the second signal ends it.
    const server = await startEntry(gated.model, { FERRY_SHUTDOWN_DELAY_MS: '60000' });
    // A connection kept alive from before the signal, as a gateway holds one. This client never closes it
    // itself (it ignores Connection headers): when it closes, the server closed it.
    const kept = await RawHttpConnection.connect('127.0.0.1', server.port);
    const raw = (method: string, path: string, body?: string) =>
      buildRequest({
        method,
        host: `127.0.0.1:${server.port}`,
        path,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body }),
      });
    try {
      assert.equal((await kept.request(raw('GET', '/v2/health/ready'))).status, 200);

      process.kill(server.child.pid!, 'SIGTERM');
      await waitFor('the shutdown delay log line', () =>
        logIndex(server.output(), DELAY_STARTED) >= 0 ? true : undefined,
      );

      // Readiness is false at once, on a new connection, which closes after the answer as every one does now.
      const ready = await exchange(server.url, '/v2/health/ready');
      assert.equal(ready.status, 503, ready.body);
      assert.deepEqual(JSON.parse(ready.body), { ready: false });
      assert.equal(ready.headers.connection, 'close');

      // A new connection is accepted and its inference answered as usual, with Connection: close.
      const fresh = await exchange(server.url, '/v2/models/slow/infer', slowBody(0));
      assert.equal(fresh.status, 200, fresh.body);
      assert.deepEqual((JSON.parse(fresh.body).outputs as { data: number[] }[])[0]!.data, [0]);
      assert.equal(fresh.headers.connection, 'close');

      // The connection kept alive from before the signal: its next request is served, then the server closes it.
      const answer = await kept.request(raw('POST', '/v2/models/slow/infer', slowBody(0)));
      assert.equal(answer.status, 200, answer.body.toString());
      await waitFor('the server to close the kept-alive connection', () =>
        kept.socket.destroyed ? true : undefined,
      );

      // The routes of the Fastify app (metadata here) are served in the delay too, and close likewise.
      const meta = await exchange(server.url, '/v2/models/slow');
      assert.equal(meta.status, 200, meta.body);
      assert.equal(JSON.parse(meta.body).name, 'slow');
      assert.equal(meta.headers.connection, 'close');

      assert.equal(logIndex(server.output(), DRAINING), -1, 'the drain began before the second signal');
      assert.equal(server.child.exitCode, null);

      process.kill(server.child.pid!, 'SIGTERM');
      const exit = await server.exited;
      assert.deepEqual([exit.code, exit.signal], [0, null], server.output());
      const out = server.output();
      const cut = logIndex(out, DELAY_CUT);
      const draining = logIndex(out, DRAINING);
      const stopped = logIndex(out, /^stopped$/);
      assert.ok(
        cut > logIndex(out, DELAY_STARTED),
        `no 'shutdown delay cut short' line after the delay's in:\n${out}`,
      );
      assert.ok(
        draining > cut && stopped > draining,
        `no 'draining' then 'stopped' after the cut in:\n${out}`,
      );
      const errors = jsonLines(out).filter((l) => typeof l.level === 'number' && l.level >= 50);
      assert.deepEqual(errors, [], 'a clean shutdown logs no errors');
    } finally {
      kept.close();
    }
  });

  test('when the delay is over the drain runs as without one: the request in flight finishes, then exit 0', async () => {
    const gated = gatedSlow(join(tmp.path, 'over'));
    const server = await startEntry(gated.model, { FERRY_SHUTDOWN_DELAY_MS: '300' });
    // Held until the test releases it: the drain must wait for it, whatever the delay did meanwhile.
    const inFlight = exchange(server.url, '/v2/models/slow/infer', slowBody(-1));
    await predictStarted(server.output, -1);

    process.kill(server.child.pid!, 'SIGTERM');
    await waitFor('the draining log line (the delay over)', () =>
      logIndex(server.output(), DRAINING) >= 0 ? true : undefined,
    );
    const out = server.output();
    const delayed = logIndex(out, DELAY_STARTED);
    assert.ok(
      delayed >= 0 && delayed < logIndex(out, DRAINING),
      `no delay log line before draining in:\n${out}`,
    );
    assert.equal(logIndex(out, DELAY_CUT), -1, 'nothing cut the delay short');
    assert.notEqual(await statusOf(`${server.url}/v2/health/ready`), 200, 'ready while draining');
    assert.equal(server.child.exitCode, null, 'exited while a request was still in flight');

    gated.release();
    const answer = await inFlight;
    assert.equal(answer.status, 200, answer.body);
    assert.deepEqual((JSON.parse(answer.body).outputs as { data: number[] }[])[0]!.data, [-1]);
    const exit = await server.exited;
    assert.deepEqual([exit.code, exit.signal], [0, null], server.output());
    assert.ok(logIndex(server.output(), /^stopped$/) > logIndex(server.output(), DRAINING));
  });

  test('FERRY_SHUTDOWN_DELAY_MS outside 0-60000 or not an integer: one line naming it and the range, exit 2', async () => {
    for (const value of ['60001', '-1', '1.5', '3s']) {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server', 'entry.ts')], {
        cwd: ROOT,
        env: { ...process.env, FERRY_MODEL_DIR: IRIS, FERRY_PORT: '0', FERRY_SHUTDOWN_DELAY_MS: value },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      track({ child });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exit = await exitOf(child);
      assert.equal(exit.code, 2, stderr);
      assert.equal(
        stderr,
        `ferry: invalid configuration: FERRY_SHUTDOWN_DELAY_MS must be an integer from 0 to 60000, got ${JSON.stringify(value)}\n`,
      );
    }
  });
});

describe('readiness', () => {
  const tmp = tempDir('ferry-lifecycle-ready-');
  after(() => tmp.remove());

  test('liveness answers while load() runs; readiness turns 200 only after it', async () => {
    const dir = join(tmp.path, 'slow');
    cpSync(SLOW, dir, { recursive: true });
    writeFileSync(
      join(dir, 'ferry.yaml'),
      `${readFileSync(join(SLOW, 'ferry.yaml'), 'utf8')}env:\n  LOAD_MS: "1000"\n`,
    );
    const server = track(await startServe([dir]));
    let liveBeforeReady = false;
    await waitFor('readiness', async () => {
      if (server.child.exitCode !== null) throw new Error(`ferry serve exited:\n${server.output()}`);
      const [live, ready] = await Promise.all([
        statusOf(`${server.url}/v2/health/live`),
        statusOf(`${server.url}/v2/health/ready`),
      ]);
      if (ready === 200) {
        assert.equal(live, 200, 'ready but not live');
        return true;
      }
      assert.ok(ready === 'refused' || ready === 503, `readiness answered ${ready}`);
      if (live === 200) liveBeforeReady = true;
      return undefined;
    });
    assert.ok(liveBeforeReady, 'liveness was never 200 while the model was still loading');
    // The log line is written before readiness turns 200, but the pipe may bring it after the HTTP answer.
    const loaded = await waitFor('the "model version ready" log line', () =>
      jsonLines(server.output()).find((l) => l.msg === 'model version ready'),
    );
    assert.ok(Number(loaded.seconds) >= 1, `load took ${loaded.seconds} s; the handler waits 1 s`);
    // And the model then serves.
    const response = await post(`${server.url}/v2/models/slow/infer`, slowBody(0));
    assert.equal(response.status, 200, response.text);
  });
});

describe('--watch', () => {
  const tmp = tempDir('ferry-lifecycle-watch-');
  after(() => tmp.remove());

  test('a new version in ferry.yaml swaps in without a failed request; a broken spec keeps it serving', async () => {
    const dir = join(tmp.path, 'iris');
    cpSync(IRIS, dir, { recursive: true });
    const server = track(await spawnServer([dir, '--watch']));
    const infer = `${server.url}/v2/models/iris/infer`;

    // Requests in a loop for the whole test: not one may fail.
    const failures: string[] = [];
    const versionsServed = new Set<unknown>();
    let sent = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        sent++;
        try {
          const response = await post(infer, SETOSA);
          if (response.status === 200) versionsServed.add(response.json.model_version);
          else failures.push(`${response.status} ${response.text}`);
        } catch (error) {
          failures.push(String(error));
        }
      }
    })();
    try {
      const specPath = join(dir, 'ferry.yaml');
      const original = readFileSync(specPath, 'utf8');
      assert.match(original, /version: "1"/);
      writeFileSync(specPath, original.replace('version: "1"', 'version: "2"'));
      await waitFor('version 2 to replace version 1', async () => {
        const meta = (await (await fetch(`${server.url}/v2/models/iris`)).json()) as { versions: string[] };
        return meta.versions.length === 1 && meta.versions[0] === '2' ? true : undefined;
      });
      const afterSwap = sent;
      await waitFor('requests after the swap', () => (sent > afterSwap + 20 ? true : undefined));
      assert.deepEqual(failures, [], 'requests failed during the reload');
      assert.ok(versionsServed.has('2'), 'version 2 answered');
      const errors = jsonLines(server.output()).filter((l) => l.level! >= 50);
      assert.deepEqual(errors, [], 'a successful reload logs no errors');

      // Break the spec: the reload fails and version 2 keeps serving.
      writeFileSync(
        specPath,
        original.replace('version: "1"', 'version: "3"').replace('format: onnx', 'format: onnnx'),
      );
      const failed = await waitFor('a log line saying the reload failed', () =>
        jsonLines(server.output()).find(
          (l) => l.level! >= 40 && l.dir === dir && /cannot read model spec|reload failed/.test(l.msg ?? ''),
        ),
      );
      assert.match(String(failed.reason), /model\.format/);
      const afterBreak = sent;
      await waitFor('requests after the broken spec', () => (sent > afterBreak + 20 ? true : undefined));
      assert.deepEqual(failures, [], 'requests failed after the broken spec');
      const meta = (await (await fetch(`${server.url}/v2/models/iris`)).json()) as {
        versions: string[];
        state: string;
      };
      assert.deepEqual([meta.versions, meta.state], [['2'], 'READY']);
      assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 200);
    } finally {
      running = false;
      await loop;
    }
    assert.deepEqual(failures, []);
  });
});

describe('JSON logs', () => {
  test('a bad request logs a warn line with its x-request-id and error code; the id is echoed', async () => {
    const server = track(await spawnServer([IRIS]));
    const response = await post(
      `${server.url}/v2/models/iris/infer`,
      '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}',
      { 'x-request-id': 'abc-123' },
    );
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('x-request-id'), 'abc-123');
    const code = response.json.code;
    assert.equal(code, 'FERRY_INVALID_INPUT');
    const line = await waitFor('the request log line', () =>
      jsonLines(server.output()).find((l) => l.reqId === 'abc-123'),
    );
    assert.equal(line.level, 40);
    assert.equal(line.code, code);
    assert.equal(line.status, 400);
    assert.equal(line.service, 'ferry-server');
    assert.ok(typeof line.msg === 'string' && line.msg.length > 0);
  });
});
