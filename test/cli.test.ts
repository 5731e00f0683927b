/**
 * The `ferry` command line end to end, as child processes: init -> serve -> predict on a real ONNX model,
 * the errors a user meets on the way (exit codes, messages that name the file, field or URL, never a stack
 * trace), the `--demo` block the README tells people to copy, and help.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadSpec } from '../src/spec/index.ts';
import {
  FERRY_BIN,
  freePort,
  HANG_MS,
  ROOT,
  runCli,
  spawnServer,
  tempDir,
  until,
  writeModelDir,
} from './helpers.ts';

const IRIS_ONNX = join(ROOT, 'examples', 'iris', 'model.onnx');
const STACK_LINE = /^\s+at .+[:(]/m;

type Child = Awaited<ReturnType<typeof spawnServer>>['child'];

/**
 * Runs the CLI like runCli, but kills it (by PID) if it has not exited within timeoutMs: for commands
 * that must exit and could instead keep serving. The bound only stops that hang; it says nothing of speed.
 */
function runBounded(args: string[], env: Record<string, string> = {}, timeoutMs = HANG_MS) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }>(
    (resolve) => {
      const child = spawn(process.execPath, [FERRY_BIN, ...args], {
        cwd: ROOT,
        env: { ...process.env, FERRY_LOG_LEVEL: 'warn', ...env },
      });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr, timedOut });
      });
    },
  );
}

function stopChild(child: Child | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

describe('ferry init --from an ONNX file', () => {
  const tmp = tempDir('ferry-cli-init-');
  const dir = join(tmp.path, 'my-model');
  after(() => tmp.remove());

  test('writes a valid ferry.yaml and a sample request, prints the tensors and next steps', async () => {
    // No `ferry` on the PATH: the next steps then say node bin/ferry.js (checked below).
    const result = await runCli(['init', dir, '--from', IRIS_ONNX], {
      env: { PATH: dirname(process.execPath) },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');

    const loaded = await loadSpec(dir);
    assert.deepEqual(loaded.warnings, []);
    // The name comes from the directory the user gave (not model.onnx); --name overrides it (below).
    assert.equal(loaded.spec.model.name, 'my-model');
    assert.equal(loaded.spec.model.format, 'onnx');
    assert.equal(loaded.spec.model.file, 'model.onnx');
    assert.ok(existsSync(join(dir, 'model.onnx')), 'a model outside the directory is copied in');
    assert.deepEqual(
      loaded.spec.examples.map((e) => e.name),
      ['sample'],
    );

    // A fixed pattern, not zeros, so that the first predict shows a real answer.
    const sample = JSON.parse(readFileSync(join(dir, 'requests', 'sample.json'), 'utf8'));
    assert.deepEqual(sample, {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [0.1, 0.2, 0.3, 0.4] }],
    });

    assert.match(result.stdout, /ferry\.yaml for model "my-model" \(--name sets another\)/);
    assert.match(result.stdout, /input\s+input FP32 \[-1, 4\]/);
    assert.match(result.stdout, /output\s+label INT64 \[-1\]/);
    assert.match(result.stdout, /output\s+probabilities FP32 \[-1, 3\]/);
    // Next steps in the form this CLI was run (node bin/ferry.js from the repository root), so they work as printed.
    assert.match(result.stdout, /^ {2}node bin\/ferry\.js serve \S*my-model$/m);
    assert.match(
      result.stdout,
      /^ {2}node bin\/ferry\.js predict my-model --input \S*my-model\/requests\/sample\.json$/m,
    );
  });

  test('refuses to overwrite an existing ferry.yaml without --force', async () => {
    const specPath = join(dir, 'ferry.yaml');
    writeFileSync(specPath, `# edited by hand\n${readFileSync(specPath, 'utf8')}`);
    const result = await runCli(['init', dir, '--from', IRIS_ONNX]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^error FERRY_CONFLICT: \S*my-model already has ferry\.yaml and requests\/sample\.json$/m,
    );
    assert.match(result.stderr, /^hint: .*--force/m);
    assert.doesNotMatch(result.stderr, STACK_LINE);
    assert.match(readFileSync(specPath, 'utf8'), /^# edited by hand/, 'the file is left alone');
  });

  test('refuses to overwrite a sample request, or another model of the same file name, without --force', async () => {
    const sampleOnly = join(tmp.path, 'sample-only');
    mkdirSync(join(sampleOnly, 'requests'), { recursive: true });
    writeFileSync(join(sampleOnly, 'requests', 'sample.json'), '{"inputs": []}');
    const sample = await runCli(['init', sampleOnly, '--from', IRIS_ONNX]);
    assert.equal(sample.code, 1);
    assert.match(sample.stderr, /^error FERRY_CONFLICT: \S*sample-only already has requests\/sample\.json$/m);
    assert.equal(readFileSync(join(sampleOnly, 'requests', 'sample.json'), 'utf8'), '{"inputs": []}');
    assert.equal(existsSync(join(sampleOnly, 'ferry.yaml')), false, 'nothing is written');

    const otherModel = join(tmp.path, 'other-model');
    mkdirSync(otherModel);
    writeFileSync(join(otherModel, 'model.onnx'), 'another model');
    const model = await runCli(['init', otherModel, '--from', IRIS_ONNX]);
    assert.equal(model.code, 1);
    assert.match(model.stderr, /^error FERRY_CONFLICT: \S*other-model already has model\.onnx$/m);
    assert.equal(readFileSync(join(otherModel, 'model.onnx'), 'utf8'), 'another model');
    assert.equal(existsSync(join(otherModel, 'ferry.yaml')), false, 'nothing is written');
  });

  test('--force overwrites it (and --name sets the model name)', async () => {
    const result = await runCli(['init', dir, '--from', IRIS_ONNX, '--force', '--name', 'iris']);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(readFileSync(join(dir, 'ferry.yaml'), 'utf8'), /edited by hand/);
    assert.equal((await loadSpec(dir)).spec.model.name, 'iris');
  });

  test('--from a file that does not exist fails naming it', async () => {
    const target = join(tmp.path, 'other');
    const result = await runCli(['init', target, '--from', 'missing.onnx']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error FERRY_FILE_NOT_FOUND: .*missing\.onnx/m);
    assert.doesNotMatch(result.stderr, STACK_LINE);
    assert.equal(existsSync(join(target, 'ferry.yaml')), false);
  });

  test('--from a file that is not ONNX fails with FERRY_MODEL_LOAD_FAILED, no stack trace', async () => {
    const notOnnx = join(tmp.path, 'notes.onnx');
    writeFileSync(notOnnx, 'these are not the weights you are looking for\n');
    const target = join(tmp.path, 'other');
    const result = await runCli(['init', target, '--from', notOnnx]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error FERRY_MODEL_LOAD_FAILED: .*notes\.onnx/m);
    assert.match(result.stderr, /^hint: /m);
    assert.doesNotMatch(result.stderr, STACK_LINE);
    assert.equal(existsSync(join(target, 'ferry.yaml')), false);
  });
});

describe('ferry serve + ferry predict on an initialised directory', () => {
  const tmp = tempDir('ferry-cli-predict-');
  const dir = join(tmp.path, 'iris');
  let child: Child | undefined;
  let url: string;

  before(async () => {
    const init = await runCli(['init', dir, '--from', IRIS_ONNX, '--name', 'iris']);
    assert.equal(init.code, 0, init.stderr);
    ({ child, url } = await spawnServer([dir]));
  });
  after(async () => {
    await stopChild(child);
    tmp.remove();
  });

  const predict = (...args: string[]) => runCli(['predict', 'iris', '--url', url, ...args]);

  test('predict --input requests/sample.json prints the JSON response', async () => {
    const result = await predict('--input', join(dir, 'requests', 'sample.json'));
    assert.equal(result.code, 0, result.stderr);
    const response = JSON.parse(result.stdout) as { model_name: string; outputs: OutputTensor[] };
    assert.equal(response.model_name, 'iris');
    assert.deepEqual(
      response.outputs.map((o) => [o.name, o.datatype, o.shape]),
      [
        ['label', 'INT64', [1]],
        ['probabilities', 'FP32', [1, 3]],
      ],
    );
    const sum = response.outputs[1]!.data.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
  });

  test('predict --binary gives the same outputs as JSON', async () => {
    const input = join(dir, 'requests', 'sample.json');
    const [json, binary] = await Promise.all([
      predict('--input', input),
      predict('--input', input, '--binary'),
    ]);
    assert.equal(binary.code, 0, binary.stderr);
    assert.deepEqual(JSON.parse(binary.stdout).outputs, JSON.parse(json.stdout).outputs);
  });

  test('predict --v1 sends {"instances": [...]} to the KServe v1 endpoint', async () => {
    const input = join(tmp.path, 'v1.json');
    writeFileSync(
      input,
      JSON.stringify({
        instances: [
          [5.1, 3.5, 1.4, 0.2],
          [6.7, 3.0, 5.2, 2.3],
        ],
      }),
    );
    const result = await predict('--input', input, '--v1');
    assert.equal(result.code, 0, result.stderr);
    const { predictions } = JSON.parse(result.stdout) as {
      predictions: { label: number; probabilities: number[] }[];
    };
    assert.deepEqual(
      predictions.map((p) => p.label),
      [0, 2],
    );
    assert.equal(predictions[0]!.probabilities.length, 3);
  });

  test('predict to a port where nothing listens fails with FERRY_CONNECTION_FAILED naming the URL', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const result = await runCli([
      'predict',
      'iris',
      '--input',
      join(dir, 'requests', 'sample.json'),
      '--url',
      nobody,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error FERRY_CONNECTION_FAILED: /m);
    assert.ok(result.stderr.includes(nobody), result.stderr);
    assert.doesNotMatch(result.stderr, STACK_LINE);
  });
});

describe('ferry serve refuses to start, clearly', () => {
  const tmp = tempDir('ferry-cli-serve-');
  after(() => tmp.remove());

  test('a ferry.yaml with several mistakes: exit 2, every problem with file:line and field path', async () => {
    const dir = writeModelDir(
      join(tmp.path, 'broken'),
      [
        'apiVersion: ferry.dev/v1alpha1',
        'kind: Model',
        'model:',
        '  name: Iris_Model',
        '  version: "1"',
        '  format: onnnx',
        '  file: model.onnx',
        'serving:',
        '  timeout: forever',
        '  concurrency: 0',
        '',
      ].join('\n'),
      { 'model.onnx': readFileSync(IRIS_ONNX) },
    );
    const result = await runBounded(['serve', dir, '--port', '0']);
    assert.equal(
      result.timedOut,
      false,
      `ferry serve kept running on an invalid ferry.yaml instead of exiting:\n${result.stdout}${result.stderr}`,
    );
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /FERRY_SPEC_INVALID/);
    assert.match(result.stderr, /ferry\.yaml:4:\d+ model\.name: /);
    assert.match(result.stderr, /ferry\.yaml:6:\d+ model\.format: /);
    assert.match(result.stderr, /ferry\.yaml:9:\d+ serving\.timeout: /);
    assert.match(result.stderr, /ferry\.yaml:10:\d+ serving\.concurrency: /);
    assert.doesNotMatch(result.stderr, STACK_LINE);
  });

  test('an ONNX ferry.yaml that is invalid: exit 2 once the preloaded worker is out of native setup', async () => {
    // `format: onnx` starts the model's first worker before the file is parsed (worker/preload.ts): the exit
    // waits for it, as a thread stopped inside onnxruntime's setup aborts the process ('terminate called').
    const dir = writeModelDir(
      join(tmp.path, 'onnx-broken'),
      [
        'kind: Model',
        'model:',
        '  name: iris',
        '  format: onnx',
        '  file: model.onnx',
        'serving:',
        '  concurrency: 0',
        '',
      ].join('\n'),
      { 'model.onnx': readFileSync(IRIS_ONNX) },
    );
    const result = await runBounded(['serve', dir, '--port', '0']);
    assert.equal(result.timedOut, false, `${result.stdout}${result.stderr}`);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /ferry\.yaml:7:\d+ serving\.concurrency: /);
    assert.doesNotMatch(result.stderr, /terminate called|Napi::Error/);
  });

  test('invalid serving options (--serving or FERRY_SERVING_OVERRIDES): exit 2 naming the field', async () => {
    const iris = join(ROOT, 'examples', 'iris');
    const flag = await runBounded([
      'serve',
      iris,
      '--port',
      '0',
      '--serving',
      '{"batching":{"maxBatchSize":"lots"}}',
    ]);
    assert.equal(flag.timedOut, false);
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(flag.stderr, /--serving: serving\.batching\.maxBatchSize/);
    const env = await runBounded(['serve', iris, '--port', '0'], {
      FERRY_SERVING_OVERRIDES: '{"timeout":',
    });
    assert.equal(env.code, 2, env.stderr);
    assert.match(env.stderr, /FERRY_SERVING_OVERRIDES is not JSON/);
  });

  test('a path that does not exist: non-zero exit naming it', async () => {
    const missing = join(tmp.path, 'no-such-model');
    const result = await runBounded(['serve', missing, '--port', '0']);
    assert.equal(result.timedOut, false);
    assert.notEqual(result.code, 0);
    assert.ok(result.stderr.includes(missing), result.stderr);
    assert.doesNotMatch(result.stderr, STACK_LINE);
  });

  test('a port already in use: non-zero exit saying so', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    try {
      const result = await runBounded(['serve', 'examples/iris', '--port', String(port)]);
      assert.equal(result.timedOut, false);
      assert.notEqual(result.code, 0);
      assert.match(
        result.stderr,
        new RegExp(`^error FERRY_PORT_IN_USE: port ${port}\\b.*already in use`, 'm'),
      );
      assert.match(result.stderr, /^hint: .*--port \(0 picks a free one\)/m);
      assert.doesNotMatch(result.stderr, STACK_LINE);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});

describe('ferry serve examples/iris --demo (the README main job)', () => {
  let child: Child | undefined;
  after(() => stopChild(child));

  test('prints a curl command that works exactly as printed', async () => {
    const server = await spawnServer(['examples/iris', '--demo']);
    child = server.child;
    const curl = /curl -s (\S+) -H '([^':]+): ([^']+)' -d '([^']*)'/;
    await until('the curl command', () => curl.test(server.output()) || server.child.exitCode !== null);
    const output = server.output();
    assert.ok(output.includes(`Ferry is serving at ${server.url}`), output);
    const match = curl.exec(output);
    assert.ok(match, `no curl command with -H and -d in:\n${output}`);
    const [, target, headerName, headerValue, body] = match;
    assert.equal(target, `${server.url}/v2/models/iris/infer`);

    const response = await fetch(target!, {
      method: 'POST',
      headers: { [headerName!]: headerValue! },
      body,
    });
    assert.equal(response.status, 200);
    const json = (await response.json()) as { model_name: string; outputs: OutputTensor[] };
    assert.equal(json.model_name, 'iris');
    assert.deepEqual(
      json.outputs.map((o) => o.name),
      ['label', 'probabilities'],
    );
  });
});

describe('help', () => {
  test('ferry --help lists the commands', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: ferry/m);
    for (const command of ['init', 'serve', 'predict'])
      assert.match(result.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  test('ferry serve --help lists its options', async () => {
    const result = await runCli(['serve', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: ferry serve/m);
    for (const option of ['--port', '--host', '--watch', '--demo', '--shutdown-timeout'])
      assert.ok(result.stdout.includes(option), option);
  });

  test('an unknown command exits non-zero and shows the help', async () => {
    const result = await runCli(['frobnicate']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /unknown command 'frobnicate'/);
    assert.match(result.stderr, /^Usage: ferry/m);
  });
});

describe('ferry test --url: replays the examples of a ferry.yaml', () => {
  let child: Child | undefined;
  let url = '';
  const dir = tempDir();
  before(async () => {
    ({ child, url } = await spawnServer(['examples/iris']));
  });
  after(async () => {
    await stopChild(child);
    dir.remove();
  });

  test('every iris example passes: exit 0 and a summary line', async () => {
    const result = await runCli(['test', '--dir', 'examples/iris', '--url', url]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /setosa\s+pass/);
    assert.match(result.stdout, /4 passed, 0 failed/);
  });

  test('a wrong expectation fails with the path of the difference: exit 1', async () => {
    const spec = readFileSync(join(ROOT, 'examples', 'iris', 'ferry.yaml'), 'utf8');
    const wrong = { outputs: [{ name: 'label', datatype: 'INT64', shape: [1], data: [2] }] };
    writeModelDir(dir.path, spec, {
      'model.onnx': readFileSync(IRIS_ONNX),
      'requests/setosa.json': readFileSync(join(ROOT, 'examples/iris/requests/setosa.json')),
      'responses/setosa.json': JSON.stringify(wrong),
      'requests/versicolor.json': readFileSync(join(ROOT, 'examples/iris/requests/versicolor.json')),
      'responses/versicolor.json': readFileSync(join(ROOT, 'examples/iris/responses/versicolor.json')),
      'requests/virginica.json': readFileSync(join(ROOT, 'examples/iris/requests/virginica.json')),
      'responses/virginica.json': readFileSync(join(ROOT, 'examples/iris/responses/virginica.json')),
      'requests/batch.json': readFileSync(join(ROOT, 'examples/iris/requests/batch.json')),
      'responses/batch.json': readFileSync(join(ROOT, 'examples/iris/responses/batch.json')),
    });
    const result = await runCli(['test', '--dir', dir.path, '--url', url]);
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stdout, /setosa\s+FAIL/);
    assert.match(result.stdout, /outputs\["label"\]\.data\[0\]: expected 2, got 0/);
    assert.match(result.stdout, /3 passed, 1 failed/);
  });
});

describe('ferry gateway --routes (file + DNS discovery, the gateway a cluster runs)', () => {
  const tmp = tempDir('ferry-cli-gateway-');
  let replica: Awaited<ReturnType<typeof spawnServer>> | undefined;
  let gateway: ReturnType<typeof spawn> | undefined;
  after(async () => {
    await stopChild(gateway as Child | undefined);
    await stopChild(replica?.child);
    tmp.remove();
  });

  const routes = (service: unknown) =>
    JSON.stringify({
      deployments: [
        {
          name: 'iris',
          public: true,
          revisions: [{ revision: 1, percent: 100, shadow: 0, servedName: 'iris', service }],
        },
      ],
    });

  test('a route file naming the replica: the gateway serves iris through it', async () => {
    replica = await spawnServer(['examples/iris']);
    const file = join(tmp.path, 'routes.json');
    writeFileSync(file, routes({ host: '127.0.0.1', port: Number(new URL(replica.url).port) }));
    const port = await freePort();
    const g = spawn(process.execPath, [FERRY_BIN, 'gateway', '--routes', file, '--port', String(port)], {
      cwd: ROOT,
      env: { ...process.env, FERRY_LOG_LEVEL: 'warn' },
    });
    gateway = g;
    let output = '';
    g.stdout!.on('data', (d) => (output += d));
    g.stderr!.on('data', (d) => (output += d));
    await until('the gateway answers', async () => {
      if (g.exitCode !== null) throw new Error(`ferry gateway exited ${g.exitCode}: ${output}`);
      return fetch(`http://127.0.0.1:${port}/v2/health/live`).then(
        (r) => r.status === 200,
        () => false,
      );
    });
    const res = await fetch(`http://127.0.0.1:${port}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: readFileSync(join(ROOT, 'examples/iris/requests/setosa.json')),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.deepEqual((JSON.parse(text) as { outputs: OutputTensor[] }).outputs[0]!.data, [0]);
    assert.match(output, /Ferry gateway at http:\/\/127\.0\.0\.1:\d+ \(routes from /);
  });

  test('a missing route file: exit 1 naming it; an invalid one: exit 2 naming every problem, no stack', async () => {
    const missing = await runBounded(['gateway', '--routes', join(tmp.path, 'nope.json'), '--port', '0']);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /FERRY_FILE_NOT_FOUND: route file .*nope\.json/);
    const file = join(tmp.path, 'bad.json');
    writeFileSync(file, routes({ host: 'iris r1', port: 70000 }));
    const bad = await runBounded(['gateway', '--routes', file, '--port', '0']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /revisions\[0\]\.service\.host: "iris r1" is not a DNS name/);
    assert.match(bad.stderr, /revisions\[0\]\.service\.port: 70000 is not a port/);
    assert.doesNotMatch(bad.stderr, STACK_LINE);
    const flag = await runBounded(['gateway', '--routes', file, '--resolve-every', '0s']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--resolve-every: must be longer than 0/);
    // One source: a file or a URL (with its token file), never both, never neither.
    const both = await runBounded(['gateway', '--routes', file, '--routes-url', 'http://127.0.0.1:1/r']);
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /--routes <file> or --routes-url <url>, one of them/);
    const neither = await runBounded(['gateway']);
    assert.equal(neither.code, 2, neither.stderr);
    const noToken = await runBounded([
      'gateway',
      '--routes-url',
      'http://127.0.0.1:1/r',
      '--token-file',
      join(tmp.path, 'none'),
    ]);
    assert.equal(noToken.code, 2, noToken.stderr);
    assert.match(noToken.stderr, /--token-file .*none: ENOENT/);
    // A URL not answering yet (the control plane comes up later): the gateway stays up and alive, and says so.
    const port = await freePort();
    const routesPort = await freePort();
    const waiting = spawn(
      process.execPath,
      [
        FERRY_BIN,
        'gateway',
        '--routes-url',
        `http://127.0.0.1:${routesPort}/r`,
        '--port',
        String(port),
        '--check-every',
        '50ms',
      ],
      { cwd: ROOT, env: { ...process.env, FERRY_LOG_LEVEL: 'warn' } },
    );
    let logged = '';
    waiting.stdout!.on('data', (d) => (logged += d));
    try {
      await until('the waiting gateway says why and answers live', async () => {
        if (waiting.exitCode !== null) throw new Error(`exited ${waiting.exitCode}: ${logged}`);
        const live = await fetch(`http://127.0.0.1:${port}/v2/health/live`).then(
          (r) => r.status,
          () => 0,
        );
        return live === 200 && logged.includes('route file not readable yet');
      });
    } finally {
      await stopChild(waiting as Child);
    }
  });
});
