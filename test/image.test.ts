/**
 * Container images end to end, on a real Docker engine and a real registry (Debian's docker.io and
 * docker-registry, set up by scripts/ensure-deps.mjs --test): `ferry base`, `build`, `push`, `test`,
 * hardening, reproducibility, secrets, and what a code-only change pushes. Nothing is pulled from a
 * public registry.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isFerryError } from '../src/core/errors.ts';
import {
  baseCacheDir,
  buildImage,
  defaultBaseTag,
  ferryBase,
  loadIntoEngine,
  startImage,
} from '../src/image/index.ts';
import { startTestRegistry, type TestRegistry } from '../src/image/registry/test-registry.ts';
import { requireDocker } from './docker-env.ts';
import { freePort, ROOT, runCli, tempDir } from './helpers.ts';

const BASE = defaultBaseTag(process.version);
const IRIS = join(ROOT, 'examples', 'iris');
const OCR = join(ROOT, 'examples', 'ocr');

describe('ferry images on a real engine and registry', { timeout: 600_000 }, () => {
  const engine = requireDocker();
  let registry: TestRegistry;
  const work = tempDir('ferry-image-test-');

  before(async () => {
    await ferryBase({ ociDir: baseCacheDir(BASE), engine, tag: BASE });
    registry = await startTestRegistry();
  });
  after(async () => {
    await registry?.stop();
    work.remove();
  });

  test('ferry base: the base image runs node as the non-root user ferry', () => {
    const out = execFileSync(
      'docker',
      [
        'run',
        '--rm',
        '--network',
        'host',
        BASE,
        'node',
        '-e',
        'console.log(process.version, process.getuid())',
      ],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(out.trim(), `${process.version} 65532`);
  });

  for (const [name, dir, examples] of [
    ['iris', IRIS, 4],
    ['ocr', OCR, 1],
  ] as const) {
    test(`${name}: ferry build loads the image, ferry test passes every example in the hardened container, ferry push`, async () => {
      const build = await runCli(['build', dir, '--base', BASE]);
      assert.equal(build.code, 0, build.stderr);
      assert.match(build.stdout, new RegExp(`image\\s+${name}:1`));
      assert.match(build.stdout, /size\s+[\d.]+ MB compressed on top of the base/);
      const port = await freePort();
      const result = await runCli(['test', `${name}:1`, '--dir', dir, '--port', String(port)]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, new RegExp(`${examples} passed, 0 failed`));
      const pushed = await runCli(['push', dir, '--base', BASE, '--registry', registry.host]);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.match(pushed.stderr, new RegExp(`pushed ${registry.host}/${name}:1@sha256:`));
    });
  }

  test('the container runs non-root, read-only, without capabilities, with limits, on 127.0.0.1', async () => {
    const port = await freePort();
    const running = await startImage(engine, { image: 'iris:1', port });
    try {
      const info = await engine.docker.getContainer(running.id).inspect();
      assert.equal(info.Config.User, '65532:65532');
      assert.equal(info.HostConfig.ReadonlyRootfs, true);
      assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
      assert.ok(info.HostConfig.SecurityOpt?.includes('no-new-privileges'));
      assert.ok((info.HostConfig.PidsLimit ?? 0) > 0);
      assert.ok((info.HostConfig.Memory ?? 0) > 0 && (info.HostConfig.NanoCpus ?? 0) > 0);
      assert.equal(info.HostConfig.NetworkMode, 'host');
      const status = readFileSync(`/proc/${info.State.Pid}/status`, 'utf8');
      assert.match(status, /^Uid:\s+65532\s/m, 'the server process runs as uid 65532');
      const health = await fetch(`${running.url}/v2/health/ready`);
      assert.equal(health.status, 200);
      // The server's listening socket is bound to 127.0.0.1 only (read from the kernel, no traffic elsewhere).
      const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
      const listening = readFileSync(`/proc/${info.State.Pid}/net/tcp`, 'utf8')
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter((f) => f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`))
        .map((f) => f[1]);
      assert.deepEqual(listening, [`0100007F:${hexPort}`]);
    } finally {
      await running.stop();
    }
  });

  test('SIGTERM to PID 1 drains and exits 0', async () => {
    const port = await freePort();
    const running = await startImage(engine, { image: 'iris:1', port });
    await engine.stop(running.id, 20);
    const state = await engine.inspectContainer(running.id);
    const logs = await new Promise<string>((resolve) => {
      let text = '';
      const stream = engine.logs(running.id, {});
      stream.on('data', (d: Buffer) => (text += d.toString('utf8')));
      stream.on('end', () => resolve(text));
    });
    await engine.remove(running.id);
    assert.equal(state?.exitCode, 0, logs);
    assert.match(logs, /"msg":"stopped"/);
  });

  test('reproducible: the same inputs give the same image ID and digest, also after deleting the image', async () => {
    // Without the layer cache: every layer is really rebuilt, so equal digests prove determinism.
    const first = await buildImage({ dir: IRIS, base: BASE, cache: false });
    const second = await buildImage({ dir: IRIS, base: BASE, cache: false });
    assert.equal(second.image.configDigest, first.image.configDigest);
    assert.equal(second.image.manifestDigest, first.image.manifestDigest);
    await engine.removeImage('iris:1', true);
    const rebuilt = await buildImage({ dir: IRIS, base: BASE, cache: false });
    const reloaded = await loadIntoEngine(engine, rebuilt.image, 'iris:1');
    assert.equal(reloaded.id, first.image.configDigest, 'the engine reports the same image ID');
  });

  test('reproducible in a fresh clone of the repository', async (t) => {
    if (
      execFileSync('git', ['-C', ROOT, 'status', '--porcelain', 'src', 'examples'], {
        encoding: 'utf8',
      }).trim() !== ''
    ) {
      t.skip('uncommitted changes under src/ or examples/: a clone would differ by design');
      return;
    }
    const clone = join(work.path, 'clone');
    execFileSync('git', ['clone', '--quiet', ROOT, clone]);
    // The source label comes from the origin remote, which differs between two clones: pin it for both builds.
    const source = 'https://example.invalid/ferry.git';
    execFileSync('ln', ['-s', join(ROOT, 'node_modules'), join(clone, 'node_modules')]);
    const out = join(work.path, 'clone-iris.tar');
    execFileSync(
      process.execPath,
      [
        join(clone, 'bin', 'ferry.js'),
        'build',
        join(clone, 'examples', 'iris'),
        '--base',
        BASE,
        '--output',
        out,
        '--no-cache',
      ],
      {
        stdio: 'ignore',
        env: { ...process.env, FERRY_SOURCE: source },
      },
    );
    const index = JSON.parse(execFileSync('tar', ['-xOf', out, 'index.json'], { encoding: 'utf8' })) as {
      manifests: Array<{ digest: string }>;
    };
    process.env.FERRY_SOURCE = source;
    const here = await buildImage({ dir: IRIS, base: BASE, cache: false }).finally(
      () => delete process.env.FERRY_SOURCE,
    );
    assert.equal(index.manifests[0]!.digest, here.image.manifestDigest);
  });

  test("created is the model directory's last commit time; builds stay identical; layers do not change", async () => {
    const saved = process.env.SOURCE_DATE_EPOCH;
    delete process.env.SOURCE_DATE_EPOCH;
    try {
      const dir = join(work.path, 'iris-in-git');
      cpSync(IRIS, dir, { recursive: true });
      const when = '2021-03-04T05:06:07Z';
      const git = (...args: string[]) =>
        execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], {
          env: { ...process.env, GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when },
        });
      git('init', '--quiet');
      git('add', '.');
      git('commit', '--quiet', '-m', 'iris');

      const first = await buildImage({ dir, base: BASE, cache: false });
      const second = await buildImage({ dir, base: BASE, cache: false });
      assert.equal(first.image.config.created, when);
      assert.equal(first.image.config.config.Labels?.['org.opencontainers.image.created'], when);
      assert.equal(second.image.configDigest, first.image.configDigest);
      assert.equal(second.image.manifestDigest, first.image.manifestDigest);

      // The same files outside git: the epoch as before, and the very same layers (mtimes do not follow commits).
      const plain = join(work.path, 'iris-no-git');
      cpSync(IRIS, plain, { recursive: true });
      const outside = await buildImage({ dir: plain, base: BASE, cache: false });
      assert.equal(outside.image.config.created, '1970-01-01T00:00:00Z');
      assert.deepEqual(
        outside.image.layers.map((l) => l.digest),
        first.image.layers.map((l) => l.digest),
      );

      // SOURCE_DATE_EPOCH still wins, for created and for the layers' mtimes.
      process.env.SOURCE_DATE_EPOCH = '1700000000';
      const stamped = await buildImage({ dir, base: BASE, cache: false });
      assert.equal(stamped.image.config.created, '2023-11-14T22:13:20Z');
      assert.notDeepEqual(
        stamped.image.layers.map((l) => l.digest),
        first.image.layers.map((l) => l.digest),
      );
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
  });

  test('no --base and no build.base: the base ferry base made for this Node, and the progress says so', async () => {
    const lines: string[] = [];
    const built = await buildImage({ dir: IRIS, onProgress: (line) => lines.push(line) });
    assert.equal(built.baseRef, BASE);
    assert.ok(lines.includes(`base ${BASE} (made by ferry base; --base picks another)`), lines.join('\n'));
    assert.equal(built.baseLayers, 3);
  });

  test('a base that cannot be pulled: FERRY_CONNECTION_FAILED, the hint points to ferry base', async () => {
    const unreachable = `127.0.0.1:${await freePort()}/nobody/base:1`;
    await assert.rejects(buildImage({ dir: IRIS, base: unreachable }), (error: unknown) => {
      assert.ok(isFerryError(error));
      assert.equal(error.code, 'FERRY_CONNECTION_FAILED');
      assert.ok(error.message.includes(unreachable), error.message);
      assert.match(String(error.hint), /`ferry base`, then pass --base/);
      return true;
    });
  });

  test('the image carries OCI labels, a health check on readiness, a non-root user and SIGTERM', async () => {
    const { image } = await buildImage({ dir: IRIS, base: BASE });
    const config = image.config.config;
    assert.equal(config.User, '65532:65532');
    assert.equal(config.StopSignal, 'SIGTERM');
    assert.match(JSON.stringify(config.Healthcheck?.Test), /\/v2\/health\/ready/);
    const labels = config.Labels ?? {};
    for (const key of [
      'org.opencontainers.image.created',
      'org.opencontainers.image.version',
      'dev.ferry.model.name',
      'dev.ferry.version',
      'dev.ferry.weights.sha256',
    ]) {
      assert.ok(labels[key], `label ${key}`);
    }
    assert.equal(labels['dev.ferry.model.name'], 'iris');
    const weights = execFileSync('sh', ['-c', `sha256sum model.onnx | sha256sum`], {
      cwd: IRIS,
      encoding: 'utf8',
    }).split(' ')[0];
    assert.equal(labels['dev.ferry.weights.sha256'], weights);
  });

  test('no secret value lands in any layer, the config or the history', async () => {
    const dir = join(work.path, 'iris-secret');
    cpSync(IRIS, dir, { recursive: true });
    const spec = readFileSync(join(dir, 'ferry.yaml'), 'utf8');
    writeFileSync(join(dir, 'ferry.yaml'), `${spec}\nsecrets: [IRIS_API_KEY]\nenv: { LOG_FORMAT: json }\n`);
    const value = 'sup3r-s3cret-value-8c1f';
    process.env.IRIS_API_KEY = value;
    try {
      const { image } = await buildImage({ dir, base: BASE });
      const haystacks = [
        image.configBlob,
        image.manifestBlob,
        ...image.layers.map((l) => gunzipSync(l.blob)),
      ];
      for (const bytes of haystacks)
        assert.equal(Buffer.from(bytes).indexOf(value), -1, 'the secret value is in the image');
      assert.ok(!JSON.stringify(image.config).includes(value));
    } finally {
      delete process.env.IRIS_API_KEY;
    }
  });

  test('push to a registry; again pushes nothing; a code-only change pushes only the small top layers', async () => {
    const dir = join(work.path, 'ocr-push');
    cpSync(OCR, dir, { recursive: true });
    const push = () => runCli(['push', dir, '--base', BASE, '--registry', registry.host]);
    const uploaded = (stdout: string) => {
      const m = /: ([\d.]+ [kM]?B) uploaded, ([\d.]+ [kM]?B) already there/.exec(stdout);
      assert.ok(m, stdout);
      return { uploaded: m[1]!, skipped: m[2]! };
    };
    const first = await push();
    assert.equal(first.code, 0, first.stderr);
    const again = await push();
    assert.equal(again.code, 0, again.stderr);
    assert.equal(uploaded(again.stderr).uploaded, '0 B');
    writeFileSync(
      join(dir, 'handler.ts'),
      `${readFileSync(join(dir, 'handler.ts'), 'utf8')}\nexport const buildNote = 'code-only change';\n`,
    );
    const changed = await push();
    assert.equal(changed.code, 0, changed.stderr);
    const { uploaded: bytes, skipped } = uploaded(changed.stderr);
    assert.match(bytes, /^[\d.]+ (B|kB)$/, `a code-only change uploaded ${bytes}`);
    assert.match(skipped, /MB$/);
    process.stderr.write(`# code-only change: ${bytes} uploaded, ${skipped} already in the registry\n`);
  });

  test('--eject writes a Dockerfile and context; --dockerfile builds it on the engine and it passes ferry test', async () => {
    const out = join(work.path, 'ejected');
    const ejected = await runCli(['build', IRIS, '--base', BASE, '--eject', out]);
    assert.equal(ejected.code, 0, ejected.stderr);
    const dockerfile = readFileSync(join(out, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, new RegExp(`^FROM ${BASE}$`, 'm'));
    assert.match(dockerfile, /^USER 65532:65532$/m);
    assert.match(dockerfile, /^HEALTHCHECK /m);
    const built = await runCli(['build', IRIS, '--base', BASE, '--dockerfile', '--tag', 'iris-dockerfile:1']);
    assert.equal(built.code, 0, built.stderr);
    const port = await freePort();
    const result = await runCli(['test', 'iris-dockerfile:1', '--dir', IRIS, '--port', String(port)]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /4 passed, 0 failed/);
    await engine.removeImage('iris-dockerfile:1', true);
  });

  test('offline: the public default base cannot be pulled, and the error points to ferry base', async () => {
    await assert.rejects(buildImage({ dir: IRIS, base: 'node:20-bookworm-slim' }), (error: unknown) => {
      assert.ok(isFerryError(error));
      assert.equal(error.code, 'FERRY_CONNECTION_FAILED');
      assert.match(String(error.hint), /ferry base/);
      return true;
    });
  });
});
