/**
 * bin/ferry.js as users start it: the compiled CLI in dist/cli (rebuilt when a source changed, from source
 * through tsx when dist/ cannot be written), what a start loads, and the command its hints name when it runs
 * as `node bin/ferry.js`, as `npx ferry` from the clone, and as `ferry` after `npm link`.
 * npm runs offline, with its cache and global prefix in a temporary directory: nothing outside it changes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ferry.js');
const BUILDING = 'building the CLI (once)...';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<Run>((res) => {
    const child = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('bin/ferry.js', () => {
  const work = mkdtempSync(join(tmpdir(), 'ferry-bin-'));
  /** A home with no context and no API in the environment: `ferry get` fails with a hint to run `up`. */
  const home = join(work, 'home');
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const { FERRY_API_URL: _u, FERRY_TOKEN: _t, npm_command: _c, ...rest } = process.env;
    return { ...rest, FERRY_HOME: home, ...extra };
  };
  const npmEnv = (extra: NodeJS.ProcessEnv = {}) =>
    env({
      npm_config_cache: join(work, 'npm-cache'),
      npm_config_prefix: join(work, 'npm-prefix'),
      npm_config_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      ...extra,
    });

  /** A copy of what the CLI is built from, with the repository's node_modules. */
  function copyOfSources(name: string): string {
    const dir = join(work, name);
    for (const part of ['bin', 'src', 'package.json', join('scripts', 'build-cli.mjs')])
      cpSync(join(ROOT, part), join(dir, part), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    return dir;
  }

  before(async () => {
    // The build of this checkout, so that the runs below start from a fresh one.
    const r = await run(process.execPath, [BIN, '--version']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('a changed source is rebuilt before it runs, and the first line of output says so', async () => {
    const dir = copyOfSources('stale');
    const bin = join(dir, 'bin', 'ferry.js');
    const first = await run(process.execPath, [bin, '--version'], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr.split('\n')[0], BUILDING);
    assert.equal(first.stdout, `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);

    const again = await run(process.execPath, [bin, '--version'], { cwd: dir });
    assert.equal(again.stderr, '', 'a fresh build is used as is');

    const program = join(dir, 'src', 'cli', 'program.ts');
    writeFileSync(
      program,
      readFileSync(program, 'utf8').replace('Ship a machine-learning model', 'Ship an edited model'),
    );
    const edited = await run(process.execPath, [bin, '--help'], { cwd: dir });
    assert.equal(edited.code, 0, edited.stderr);
    assert.equal(edited.stderr.split('\n')[0], BUILDING);
    assert.match(edited.stdout, /Ship an edited model/);

    // The inference worker is compiled too (dist/cli/worker-<hash>.js): its sources count for freshness.
    const worker = join(dir, 'src', 'server', 'worker', 'inference-worker.ts');
    writeFileSync(worker, `${readFileSync(worker, 'utf8')}// edited\n`);
    const workerEdited = await run(process.execPath, [bin, '--version'], { cwd: dir });
    assert.equal(workerEdited.code, 0, workerEdited.stderr);
    assert.equal(workerEdited.stderr.split('\n')[0], BUILDING);
  });

  test('up and ui build the dashboard (dist/web) when web/ changed; other commands never look', async () => {
    const dir = copyOfSources('web');
    for (const part of ['web', join('scripts', 'build-web.mjs')])
      cpSync(join(ROOT, part), join(dir, part), { recursive: true });
    const bin = join(dir, 'bin', 'ferry.js');
    const ui = () => run(process.execPath, [bin, 'ui', '--api', 'http://127.0.0.1:1'], { cwd: dir });
    const first = await ui();
    assert.equal(first.code, 0, first.stderr);
    assert.ok(first.stderr.includes('building the dashboard (once)...'), first.stderr);
    assert.match(first.stdout, /^Dashboard: http:\/\/127\.0\.0\.1:1\/ui\/$/m);
    assert.match(readFileSync(join(dir, 'dist', 'web', 'index.html'), 'utf8'), /\/ui\/assets\/index-/);
    assert.ok(!(await ui()).stderr.includes('dashboard'), 'a fresh build is used as is');

    const main = join(dir, 'web', 'src', 'main.tsx');
    writeFileSync(main, `${readFileSync(main, 'utf8')}// edited\n`);
    const other = await run(process.execPath, [bin, '--version'], { cwd: dir });
    assert.ok(!other.stderr.includes('dashboard'), other.stderr);
    assert.ok((await ui()).stderr.includes('building the dashboard (once)...'));
  });

  test('sources that do not compile: exit 1 naming the file and line, nothing runs', async () => {
    const dir = copyOfSources('broken');
    writeFileSync(join(dir, 'src', 'cli', 'secrets.ts'), 'export const = ;\n');
    const r = await run(process.execPath, [join(dir, 'bin', 'ferry.js'), '--version'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error FERRY_INTERNAL: the CLI does not compile:\n.*src\/cli\/secrets\.ts:1:/m);
    assert.equal(r.stdout, '');
  });

  test('dist/ cannot be written: it runs from source through tsx, and says so', async () => {
    const dir = copyOfSources('read-only');
    writeFileSync(join(dir, 'dist'), 'a file where the build directory would go\n');
    const r = await run(process.execPath, [join(dir, 'bin', 'ferry.js'), 'get'], { cwd: dir, env: env() });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.split('\n')[0], BUILDING);
    assert.match(r.stderr, /running it from source through tsx/);
    assert.match(r.stderr, /^error FERRY_CONNECTION_FAILED: No Ferry control plane is known/m);
  });

  /** `--import` this to append every module URL the process (and its worker threads) resolves to FERRY_TRACE. */
  function traceHooks(): string {
    const hooks = join(work, 'trace');
    const register = join(hooks, 'register.mjs');
    mkdirSync(hooks, { recursive: true });
    writeFileSync(
      join(hooks, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.FERRY_TRACE, result.url + '\\n');
  return result;
}
`,
    );
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(new URL('./hooks.mjs', import.meta.url));\n`,
    );
    return register;
  }

  /**
   * The module URLs a trace lists, and for each file of dist/cli among them the npm files esbuild bundled into
   * it (from its `// path` comments), as `bundled:/<path>` (most packages are bundled into the compiled CLI).
   */
  function loadedModules(trace: string): string[] {
    const urls = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
    const dist = pathToFileURL(join(ROOT, 'dist', 'cli')).href;
    const bundled = [...new Set(urls)]
      .filter((url) => url.startsWith(`${dist}/`))
      .flatMap((url) =>
        [...readFileSync(fileURLToPath(url), 'utf8').matchAll(/^\/\/ (\S*node_modules\/\S+)$/gm)].map(
          (m) => `bundled:/${m[1]}`,
        ),
      );
    return [...urls, ...bundled];
  }

  test('--help, --version and get load none of the heavy packages', async () => {
    const register = traceHooks();
    const heavy =
      /\/node_modules\/(better-sqlite3|dockerode|fastify|onnxruntime-node|tsx|esbuild|zod|yaml|pino|prom-client)\//;
    for (const args of [['--help'], ['--version'], ['get'], ['deploy', '--help']]) {
      const trace = join(work, 'trace', `${args.join('-')}.txt`);
      writeFileSync(trace, '');
      const r = await run(process.execPath, ['--import', register, BIN, ...args], {
        env: env({ FERRY_TRACE: trace }),
      });
      assert.equal(r.stderr.includes(BUILDING), false, 'the build was fresh');
      if (args[0] === 'get') assert.match(r.stderr, /FERRY_CONNECTION_FAILED/);
      else assert.equal(r.code, 0, r.stderr);
      const loaded = loadedModules(trace);
      assert.ok(
        loaded.some((url) => url.includes('/node_modules/commander/')),
        'the trace sees packages',
      );
      assert.deepEqual(
        loaded.filter((url) => heavy.test(url)),
        [],
        `ferry ${args.join(' ')}`,
      );
    }
  });

  test('ferry serve runs its inference worker compiled, from dist/cli, without tsx', async () => {
    const trace = join(work, 'trace', 'serve.txt');
    writeFileSync(trace, '');
    // --import is in execArgv, which worker threads inherit: the trace covers the worker too.
    const child = spawn(
      process.execPath,
      ['--import', traceHooks(), BIN, 'serve', 'examples/iris', '--host', '127.0.0.1', '--port', '0'],
      {
        cwd: ROOT,
        env: env({ FERRY_TRACE: trace, FERRY_LOG_LEVEL: 'info' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    try {
      const url = await new Promise<string>((res, rej) => {
        const lines = createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          const record = JSON.parse(line) as { msg?: string; url?: string };
          if (record.msg === 'server ready' && record.url) res(record.url);
          else if (record.msg === 'server started, but no model is ready') rej(new Error(line));
        });
        void exited.then((code) =>
          rej(new Error(`ferry serve exited (${code}) before it was ready:\n${stderr}`)),
        );
      });
      const response = await fetch(`${url}/v2/models/iris/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: readFileSync(join(ROOT, 'examples', 'iris', 'requests', 'batch.json')),
      });
      assert.equal(response.status, 200, await response.clone().text());
      const { outputs } = (await response.json()) as { outputs: Array<{ name: string; data: number[] }> };
      assert.deepEqual(outputs.find((o) => o.name === 'label')?.data, [0, 1, 2]);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    assert.equal(stderr.includes(BUILDING), false, 'the build was fresh');
    const loaded = readFileSync(trace, 'utf8').split('\n');
    const dist = pathToFileURL(join(ROOT, 'dist', 'cli')).href;
    const src = pathToFileURL(join(ROOT, 'src')).href;
    assert.ok(
      loaded.some((u) => u.startsWith(`${dist}/worker-`) && u.endsWith('.js')),
      'the worker thread started from dist/cli/worker-<hash>.js',
    );
    assert.ok(
      loaded.some((u) => u.includes('/node_modules/onnxruntime-node/')),
      'the trace sees the worker thread load onnxruntime-node',
    );
    assert.deepEqual(
      loaded.filter((u) => u.includes('/node_modules/tsx/') || u.startsWith(`${src}/`)),
      [],
      'neither tsx nor a source file under src/ is loaded',
    );
  });

  test('node bin/ferry.js: hints say node bin/ferry.js', async () => {
    const r = await run(process.execPath, ['bin/ferry.js', 'get'], {
      env: env({ PATH: dirname(process.execPath) }),
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hint: Run 'node bin\/ferry\.js up' to start Ferry/m);
  });

  test('npx ferry works from the clone, and its hints say npx ferry', async () => {
    const version = await run('npx', ['ferry', '--version'], { env: npmEnv() });
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    const r = await run('npx', ['ferry', 'get'], { env: npmEnv() });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^hint: Run 'npx ferry up' to start Ferry/m);
  });

  test('after npm link, ferry is on the PATH and hints say ferry', async () => {
    const link = await run('npm', ['link'], { env: npmEnv() });
    assert.equal(link.code, 0, link.stderr);
    const path = `${join(work, 'npm-prefix', 'bin')}:${process.env.PATH}`;
    const r = await run('ferry', ['get'], { cwd: work, env: env({ PATH: path }) });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^hint: Run 'ferry up' to start Ferry/m);
    const help = await run('ferry', ['--help'], { cwd: work, env: env({ PATH: path }) });
    assert.match(help.stdout, /^Usage: ferry/m);
  });
});
