/**
 * The README's main job, as a newcomer runs it: `ferry up --demo` from the CLI (a background platform, the
 * iris example deployed, a curl printed), that curl answering through the gateway, the platform commands
 * finding the platform through the saved context, and `ferry down` leaving no process or container behind.
 * Once with local processes, once with the Docker engine (its image built on a base made from this host).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readContext } from '../src/cli/context.ts';
import { pidAlive } from '../src/core/pid.ts';
import { platformId } from '../src/platform/index.ts';
import { ProcessRuntime } from '../src/runtime/index.ts';
import { requireDocker } from './docker-env.ts';
import { runCli, tempDir, until } from './helpers.ts';

for (const runtime of ['process', 'docker'] as const) {
  describe(`ferry up --demo / ferry down (${runtime})`, () => {
    const home = tempDir(`ferry-up-${runtime}-`);
    const env = { FERRY_HOME: home.path };
    let pid: number | undefined;
    const mine = async () =>
      runtime === 'docker'
        ? await requireDocker().listByLabel({ 'ferry.dev/platform': platformId(home.path) })
        : await new ProcessRuntime({ stateDir: join(home.path, 'replicas') }).list({
            'ferry.dev/platform': platformId(home.path),
          });

    after(async () => {
      if (pid !== undefined && pidAlive(pid)) await runCli(['down'], { env });
      home.remove();
    });

    test('up --demo prints URLs, a token once and a curl that works; the CLI finds the platform', async () => {
      if (runtime === 'docker') requireDocker();
      const up = await runCli(
        ['up', '--demo', '--runtime', runtime, '--api-port', '0', '--gateway-port', '0'],
        { env },
      );
      assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
      assert.match(up.stdout, new RegExp(`Ferry is up \\(runtime: ${runtime}\\)`));
      assert.match(up.stdout, /Admin token \(shown once; only its hash is stored\): ferry_/);
      const context = JSON.parse(readFileSync(join(home.path, 'context.json'), 'utf8'));
      assert.equal(statSync(join(home.path, 'context.json')).mode & 0o777, 0o600);
      pid = context.pid as number;
      assert.ok(pidAlive(pid), 'the platform runs in the background after up returns');

      // The dashboard: its URL printed (signed in, since up made the token), served by the API; ferry ui prints it.
      assert.ok(up.stdout.includes(`Dashboard: ${context.apiUrl}/ui/`), up.stdout);
      assert.ok(
        up.stdout.includes(`${context.apiUrl}/ui/#token=${encodeURIComponent(context.token)}`),
        up.stdout,
      );
      const page = await fetch(`${context.apiUrl}/ui/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(
        await page.text(),
        /<script type="module" crossorigin src="\/ui\/assets\/index-[\w-]+\.js">/,
      );
      const ui = await runCli(['ui'], { env });
      assert.equal(ui.code, 0, ui.stderr);
      assert.ok(ui.stdout.includes(`Dashboard: ${context.apiUrl}/ui/`), ui.stdout);
      assert.ok(!ui.stdout.includes(context.token), 'ferry ui prints no token unless asked');
      const signedIn = await runCli(['ui', '--with-token'], { env });
      assert.equal(
        signedIn.stdout.trim(),
        `${context.apiUrl}/ui/#token=${encodeURIComponent(context.token)}`,
      );

      // The printed curl, run as printed.
      const curl = up.stdout.split('\n').find((l) => l.trim().startsWith('curl '));
      assert.ok(curl, up.stdout);
      assert.ok(curl.includes(`${context.gatewayUrl}/v2/models/iris/infer`), curl);
      const answer = JSON.parse(execFileSync('sh', ['-c', curl.trim()], { encoding: 'utf8' }));
      assert.deepEqual(answer.outputs.find((o: { name: string }) => o.name === 'label').data, [0]);

      const get = await runCli(['get'], { env });
      assert.equal(get.code, 0, get.stderr);
      assert.match(get.stdout, /^iris\s+iris\s+\S+\s+r1\s+1\/1\s/m);
      assert.ok(!get.stdout.includes(context.token), 'no command prints the token');

      const again = await runCli(['up', '--runtime', runtime], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`already running \\(pid ${pid}, runtime ${runtime}\\)`));
      assert.ok(!again.stdout.includes(context.token), 'the token is shown once only');
      assert.equal((await mine()).length, 1);

      // Asking for the other runtime while this one runs is not "up": it says so and exits non-zero.
      const other = runtime === 'process' ? 'docker' : 'process';
      const mismatch = await runCli(['up', '--runtime', other], { env });
      assert.equal(mismatch.code, 1, mismatch.stdout);
      assert.match(
        mismatch.stderr,
        new RegExp(
          `FERRY_CONFLICT: Ferry is already running with the ${runtime} runtime \\(pid ${pid}\\), not ${other}`,
        ),
      );
      assert.match(mismatch.stderr, new RegExp(`--restart .*--runtime ${other}`));
      assert.equal(pidAlive(pid), true, 'it keeps running');
    });

    test('down drains and removes every replica and stops the platform', async () => {
      assert.ok(pid !== undefined, 'up ran');
      const down = await runCli(['down'], { env });
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /Ferry is down\./);
      assert.doesNotMatch(down.stdout, /leftover/, 'the platform removed its replicas itself');
      assert.equal(pidAlive(pid), false);
      assert.deepEqual(await mine(), []);
      const after = await runCli(['get'], { env });
      assert.notEqual(after.code, 0, 'nothing answers after down');
    });
  });
}

test('ferry up --runtime docker --restart moves a running Ferry to docker; its directory deployments come back there', async () => {
  const engine = requireDocker();
  const home = tempDir('ferry-up-switch-');
  const env = { FERRY_HOME: home.path };
  try {
    const up = await runCli(
      ['up', '--demo', '--runtime', 'process', '--api-port', '0', '--gateway-port', '0'],
      {
        env,
      },
    );
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    const before = readContext(home.path)!;
    const moved = await runCli(['up', '--runtime', 'docker', '--restart'], { env });
    assert.equal(moved.code, 0, `${moved.stdout}\n${moved.stderr}`);
    assert.match(moved.stdout, /Ferry runs with the process runtime; restarting it with docker\./);
    assert.match(moved.stdout, /Ferry is up \(runtime: docker\)/);
    const after = readContext(home.path)!;
    assert.notEqual(after.pid, before.pid);
    assert.equal(pidAlive(before.pid!), false, 'the old platform stopped');
    // iris was deployed from a directory: the platform builds its image and runs it as a container.
    await until('iris ready in a container', async () => {
      const list = await engine.listByLabel({ 'ferry.dev/platform': platformId(home.path) });
      if (list.length !== 1) return undefined;
      const get = await runCli(['get'], { env });
      return /^iris\s+iris\s+\S+\s+r1\s+1\/1\s/m.test(get.stdout) ? true : undefined;
    });
    const down = await runCli(['down'], { env });
    assert.equal(down.code, 0, down.stderr);
  } finally {
    const ctx = readContext(home.path);
    if (ctx?.pid !== undefined && pidAlive(ctx.pid)) await runCli(['down'], { env });
    home.remove();
  }
});

test('ferry up on a taken port: FERRY_PORT_IN_USE naming the flag, nothing left running', async () => {
  const home = tempDir('ferry-up-port-');
  const taken = createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const port = (taken.address() as AddressInfo).port;
  try {
    const up = await runCli(
      ['up', '--runtime', 'process', '--api-port', '0', '--gateway-port', String(port)],
      { env: { FERRY_HOME: home.path } },
    );
    assert.equal(up.code, 1, up.stdout);
    assert.match(up.stderr, new RegExp(`^error FERRY_PORT_IN_USE: .*127\\.0\\.0\\.1:${port}.*in use`, 'm'));
    assert.match(up.stderr, /^hint: .*--gateway-port/m);
    const ctx = readContext(home.path);
    assert.ok(ctx?.pid === undefined || !pidAlive(ctx.pid), 'no platform process is left');
  } finally {
    taken.close();
    home.remove();
  }
});
