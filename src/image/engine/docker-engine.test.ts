// Contract test of the Engine against the real Docker engine (started by test/docker-env.ts if needed).
// The image: `ferry base` (the host's node and the libraries it needs), assembled by the OCI helpers.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { cleanupContainers, requireDocker, TEST_LABEL, uniqueName } from '../../../test/docker-env.ts';
import { HANG_MS } from '../../../test/hang.ts';
import { isFerryError } from '../../core/errors.ts';
import { freePort } from '../../core/free-port.ts';
import { buildBaseImage } from '../base.ts';
import { assembleImage } from '../oci/image.ts';
import { buildLayer } from '../oci/layer.ts';
import { writeDockerArchive } from '../oci/layout.ts';
import type { Image, LayerEntry } from '../oci/types.ts';
import { createEngine, demuxLines, engineTime } from './docker-engine.ts';
import { loadIntoEngine } from './load.ts';
import type { ContainerEvent, ContainerLogLine } from './types.ts';

const engine = requireDocker();
const run = uniqueName('engine-test');
const labels = { [TEST_LABEL]: run };
const tag = `ferry-engine-test:${run}`;
const rootTag = `ferry-engine-test-root:${run}`;
const work = mkdtempSync(join(tmpdir(), 'ferry-engine-test-'));

async function waitExit(id: string): Promise<number> {
  const result = await engine.docker.getContainer(id).wait();
  return result.StatusCode as number;
}

async function logsOf(id: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of engine.logs(id)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A build context (gzip tarball, which the engine accepts) made with Ferry's own layer writer. */
async function context(files: Record<string, string>): Promise<Uint8Array> {
  const entries = Object.entries(files).map(
    ([path, text]): LayerEntry => ({
      type: 'file',
      path,
      source: new TextEncoder().encode(text),
    }),
  );
  return (await buildLayer(entries, 'context')).blob;
}

before(async () => {
  // The image under test: `ferry base` (node + its libraries, USER 65532), written as a docker-archive by the
  // OCI helpers and streamed through Engine.loadImage.
  const base = await buildBaseImage();
  const info = await loadIntoEngine(engine, base.image, tag);
  assert.equal(info.id, base.image.configDigest);
  // The same layers without a USER, for the "refuses root" case.
  const { User: _, ...rootConfig } = base.image.config.config;
  const rootImage = assembleImage({
    layers: base.image.layers,
    config: { architecture: 'amd64', os: 'linux', created: base.image.config.created, config: rootConfig },
  });
  assert.deepEqual(await engine.loadImage(await archive(rootImage, rootTag)), [rootTag]);
});

/** A docker-archive in memory, for loadImage(Uint8Array). */
async function archive(image: Image, repoTag: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await writeDockerArchive(image, repoTag, sink);
  return Buffer.concat(chunks);
}

after(async () => {
  await cleanupContainers(labels);
  await engine.removeImage(tag, true);
  await engine.removeImage(rootTag, true);
  rmSync(work, { recursive: true, force: true });
});

/** One frame of Docker's multiplexed log stream. */
function frame(stream: 1 | 2, text: string | Buffer): Buffer {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

describe('demuxLines and engineTime (pure)', () => {
  test('lines per stream across frames and chunks, UTF-8 split anywhere, a last partial line', async () => {
    const e = Buffer.from('é');
    const all = Buffer.concat([
      frame(1, 'one\ntw'),
      frame(2, Buffer.concat([Buffer.from('err '), e.subarray(0, 1)])),
      frame(1, 'o\n'),
      frame(2, Buffer.concat([e.subarray(1), Buffer.from('\r\n')])),
      frame(1, 'no newline'),
    ]);
    // Chunks of 3 bytes: headers and characters cut everywhere.
    const chunks: Buffer[] = [];
    for (let i = 0; i < all.length; i += 3) chunks.push(all.subarray(i, i + 3));
    const lines: ContainerLogLine[] = [];
    for await (const l of demuxLines(chunks)) lines.push(l);
    assert.deepEqual(lines, [
      { stream: 'stdout', line: 'one' },
      { stream: 'stdout', line: 'two' },
      { stream: 'stderr', line: 'err é' },
      { stream: 'stdout', line: 'no newline' },
    ]);
  });

  test('engineTime gives seconds.nanoseconds', () => {
    assert.equal(engineTime(1_700_000_000_123), '1700000000.123000000');
    assert.equal(engineTime(1_700_000_000_000.5), '1700000000.000500000');
    assert.equal(engineTime(5), '0.005000000');
  });
});

describe('DockerEngine (real engine)', () => {
  test('ping reports the engine version', async () => {
    const info = await engine.ping();
    assert.match(info.version, /^\d+\.\d+/);
    assert.match(info.apiVersion, /^1\.\d+$/);
    assert.equal(info.os, 'linux');
  });

  test('an unreachable engine is FERRY_CONNECTION_FAILED with a hint', async () => {
    const nowhere = createEngine({ socketPath: join(work, 'no-such.sock') });
    await assert.rejects(nowhere.ping(), (err: unknown) => {
      assert.ok(isFerryError(err));
      assert.equal(err.code, 'FERRY_CONNECTION_FAILED');
      assert.match(err.message, /no-such\.sock/);
      assert.match(err.hint ?? '', /DOCKER_HOST/);
      return true;
    });
  });

  test('DOCKER_HOST is respected (unix:// and tcp://)', async () => {
    const saved = process.env.DOCKER_HOST;
    try {
      process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';
      assert.equal(createEngine().address, 'unix:///var/run/docker.sock');
      process.env.DOCKER_HOST = 'tcp://127.0.0.1:1';
      const tcp = createEngine();
      assert.equal(tcp.address, 'tcp://127.0.0.1:1');
      await assert.rejects(
        tcp.ping(),
        (err: unknown) =>
          isFerryError(err) && err.code === 'FERRY_CONNECTION_FAILED' && /127\.0\.0\.1:1/.test(err.message),
      );
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  test('loadImage loads a docker-archive; inspectImage sees it, and null for a missing image', async () => {
    const info = await engine.inspectImage(tag);
    assert.ok(info);
    assert.match(info.id, /^sha256:[0-9a-f]{64}$/);
    assert.ok(info.repoTags.includes(tag)); // (same ID as ferry-base:node<version> when that is loaded)
    assert.equal(info.config.User, '65532:65532');
    assert.equal((await engine.inspectImage(rootTag))?.config.User, '');
    assert.ok(info.size > 50_000_000, `size ${info.size}`);
    assert.equal(await engine.inspectImage(`ferry-engine-test:missing-${run}`), null);
    assert.equal(await engine.removeImage(`ferry-engine-test:missing-${run}`), false);
  });

  test('a garbage tarball is refused with a FerryError', async () => {
    await assert.rejects(engine.loadImage(Buffer.from('not a tarball at all')), (err: unknown) => {
      assert.ok(isFerryError(err));
      assert.match(err.message, /load/);
      return true;
    });
  });

  test('runContainer applies the hardened options', async () => {
    const script = `
      const fs = require('node:fs');
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const field = (k) => status.split('\\n').find((l) => l.startsWith(k + ':')).split(/\\s+/)[1];
      let rootWritable = true;
      try { fs.writeFileSync('/probe', 'x'); } catch { rootWritable = false; }
      fs.writeFileSync('/tmp/probe', 'x');
      console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), capEff: field('CapEff'),
        noNewPrivs: field('NoNewPrivs'), rootWritable, tmp: fs.readFileSync('/tmp/probe', 'utf8'),
        env: process.env.FERRY_PORT + '@' + process.env.FERRY_HOST, extra: process.env.EXTRA }));
    `;
    const { id } = await engine.runContainer({
      image: tag,
      name: uniqueName('hardened'),
      env: { EXTRA: 'yes' },
      hostPort: 18123,
      network: 'host',
      cpus: 0.5,
      memoryBytes: 128 * 1024 * 1024,
      pidsLimit: 64,
      readOnly: true,
      labels,
      cmd: ['node', '-e', script],
    });
    assert.equal(await waitExit(id), 0, await logsOf(id));
    const out = JSON.parse((await logsOf(id)).trim());
    assert.deepEqual(out, {
      uid: 65532,
      gid: 65532,
      capEff: '0000000000000000',
      noNewPrivs: '1',
      rootWritable: false,
      tmp: 'x',
      env: '18123@127.0.0.1',
      extra: 'yes',
    });
    const hc = (await engine.docker.getContainer(id).inspect()).HostConfig;
    assert.deepEqual(hc.CapDrop, ['ALL']);
    assert.deepEqual(hc.SecurityOpt, ['no-new-privileges']);
    assert.equal(hc.ReadonlyRootfs, true);
    assert.equal(hc.NetworkMode, 'host');
    assert.equal(hc.NanoCpus, 500_000_000);
    assert.equal(hc.Memory, 128 * 1024 * 1024);
    assert.equal(hc.PidsLimit, 64);
    assert.deepEqual(hc.Tmpfs, { '/tmp': 'rw,nosuid,nodev,size=64m' });
    assert.equal(hc.RestartPolicy?.Name, 'no');
    assert.deepEqual(hc.LogConfig, {
      Type: 'json-file',
      Config: { 'max-size': String(10 * 1024 * 1024), 'max-file': '3' },
    });
    await engine.remove(id);
    assert.equal(await engine.inspectContainer(id), null);
    await engine.remove(id); // idempotent
  });

  test('runContainer refuses root when the image has no USER, and names a missing image', async () => {
    await assert.rejects(
      engine.runContainer({ image: rootTag, network: 'host', readOnly: true, labels }),
      (err: unknown) => isFerryError(err) && err.code === 'FERRY_BAD_REQUEST' && /root/.test(err.message),
    );
    const missing = `ferry-engine-test:missing-${run}`;
    await assert.rejects(
      engine.runContainer({ image: missing, network: 'host', readOnly: true, labels }),
      (err: unknown) =>
        isFerryError(err) && err.code === 'FERRY_FILE_NOT_FOUND' && err.message.includes(missing),
    );
    assert.deepEqual(await engine.listByLabel(labels), []);
  });

  test('waitReady, logs, listByLabel and stop on a server bound to 127.0.0.1', async () => {
    const port = await freePort();
    const server = `
      const http = require('node:http');
      const s = http.createServer((req, res) => { res.statusCode = req.url === '/v2/health/ready' ? 200 : 404; res.end(); });
      s.listen(Number(process.env.FERRY_PORT), process.env.FERRY_HOST, () => console.log('listening on ' + process.env.FERRY_HOST + ':' + process.env.FERRY_PORT));
      process.on('SIGTERM', () => { console.log('draining'); s.close(() => process.exit(0)); });
    `;
    const name = uniqueName('server');
    const { id } = await engine.runContainer({
      image: tag,
      name,
      hostPort: port,
      network: 'host',
      readOnly: true,
      labels,
      cmd: ['node', '-e', server],
    });
    await engine.waitReady(`http://127.0.0.1:${port}`, HANG_MS, { containerId: id });
    const listed = await engine.listByLabel(labels);
    assert.deepEqual(
      listed.map((c) => [c.id, c.name, c.state, c.labels[TEST_LABEL]]),
      [[id, name, 'running', run]],
    );
    const follow = engine.logs(id, { follow: true });
    const followed: Buffer[] = [];
    follow.on('data', (c: Buffer) => followed.push(c));
    const ended = new Promise((resolve) => follow.on('end', resolve));
    await engine.stop(id, 10);
    await ended;
    assert.equal(Buffer.concat(followed).toString(), `listening on 127.0.0.1:${port}\ndraining\n`);
    const { labels: stateLabels, ...state } = (await engine.inspectContainer(id))!;
    assert.deepEqual(state, {
      running: false,
      exitCode: 0,
      status: 'exited',
      oomKilled: false,
      restartCount: 0,
    });
    assert.equal(stateLabels?.[TEST_LABEL], labels[TEST_LABEL], 'its labels come with its state');
    await engine.stop(id, 1); // already stopped: no-op
    await engine.remove(id);
  });

  test('containerEvents (caught up with sinceMs) and logLines by stream', async () => {
    const mine = { ...labels, 'dev.ferry.events': uniqueName('events') };
    const since = Date.now();
    const { id } = await engine.runContainer({
      image: tag,
      name: uniqueName('events'),
      network: 'host',
      readOnly: true,
      labels: mine,
      cmd: [
        'node',
        '-e',
        "console.log('out-1'); console.error('err-1'); process.stdout.write('tail'); process.exitCode = 3",
      ],
    });
    // Another container, without the label: not reported.
    const other = await engine.runContainer({
      image: tag,
      network: 'host',
      readOnly: true,
      labels,
      cmd: ['node', '-e', '0'],
    });
    assert.equal(await waitExit(id), 3);
    const lines: ContainerLogLine[] = [];
    for await (const l of engine.logLines(id)) lines.push(l);
    assert.deepEqual(
      lines.filter((l) => l.stream === 'stdout'),
      [
        { stream: 'stdout', line: 'out-1' },
        { stream: 'stdout', line: 'tail' },
      ],
    );
    assert.deepEqual(
      lines.filter((l) => l.stream === 'stderr'),
      [{ stream: 'stderr', line: 'err-1' }],
    );
    await engine.remove(id);
    await engine.remove(other.id);
    // Subscribed after it all happened: sinceMs replays it.
    const abort = new AbortController();
    const events: ContainerEvent[] = [];
    const timer = setTimeout(() => abort.abort(), HANG_MS);
    try {
      for await (const e of engine.containerEvents({ labels: mine, sinceMs: since, signal: abort.signal })) {
        events.push(e);
        if (e.action === 'destroy') break;
      }
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    assert.deepEqual(
      events.map((e) => [e.id, e.action, e.exitCode]),
      [
        [id, 'start', undefined],
        [id, 'die', 3],
        [id, 'destroy', undefined],
      ],
      'start, die (exit 3) and destroy, and nothing of the other container',
    );
    assert.equal(events[0]?.labels['dev.ferry.events'], mine['dev.ferry.events']);
    assert.ok(events[0]!.timeNano <= events[1]!.timeNano && events[1]!.timeNano <= events[2]!.timeNano);
  });

  test('waitReady fails fast with the log tail when the container exits', async () => {
    const port = await freePort();
    const { id } = await engine.runContainer({
      image: tag,
      hostPort: port,
      network: 'host',
      readOnly: true,
      labels,
      cmd: ['node', '-e', 'console.error("model file missing"); process.exit(3)'],
    });
    await assert.rejects(
      engine.waitReady(`http://127.0.0.1:${port}`, HANG_MS, { containerId: id }),
      (err: unknown) => {
        assert.ok(isFerryError(err));
        assert.equal(err.code, 'FERRY_MODEL_LOAD_FAILED');
        assert.match(err.message, /exited with code 3/);
        assert.match(err.message, /model file missing/);
        return true;
      },
    );
    await engine.remove(id);
  });

  test('waitReady times out with FERRY_MODEL_NOT_READY when nothing answers', async () => {
    const port = await freePort();
    await assert.rejects(
      engine.waitReady(`http://127.0.0.1:${port}`, 300),
      (err: unknown) =>
        isFerryError(err) && err.code === 'FERRY_MODEL_NOT_READY' && err.message.includes(String(port)),
    );
  });

  test('buildDockerfile builds with progress, and a failing step reports its log', async () => {
    const ok = await context({
      'hello.txt': 'hello from the context\n',
      Dockerfile: `FROM ${tag}\nCOPY hello.txt /hello.txt\nCMD ["node", "-e", "process.stdout.write(require('fs').readFileSync('/hello.txt'))"]\n`,
    });
    const built = `${tag}-built`;
    const events: string[] = [];
    const { id } = await engine.buildDockerfile(ok, built, {
      network: 'host',
      onProgress: (e) => {
        if (e.type === 'step') events.push(`${e.index}/${e.total} ${e.instruction}`);
      },
    });
    assert.deepEqual(events, [`1/3 FROM ${tag}`, '2/3 COPY hello.txt /hello.txt', events[2]!]);
    assert.match(events[2]!, /^3\/3 CMD/);
    assert.equal((await engine.inspectImage(built))?.id, id);
    const c = await engine.runContainer({ image: built, network: 'host', readOnly: true, labels });
    assert.equal(await waitExit(c.id), 0);
    assert.equal(await logsOf(c.id), 'hello from the context\n');
    await engine.remove(c.id);
    await engine.removeImage(built, true);

    const broken = await context({
      Dockerfile: `FROM ${tag}\nRUN ["node", "-e", "console.log('installing deps'); console.error('npm ERR! boom'); process.exit(7)"]\n`,
    });
    await assert.rejects(
      engine.buildDockerfile(broken, `${tag}-broken`, { network: 'host' }),
      (err: unknown) => {
        assert.ok(isFerryError(err));
        assert.match(err.message, /step 2\/2 \(RUN/);
        assert.match(err.message, /returned a non-zero code: 7/);
        assert.match(err.hint ?? '', /installing deps/);
        assert.match(err.hint ?? '', /npm ERR! boom/);
        return true;
      },
    );
    assert.equal(await engine.inspectImage(`${tag}-broken`), null);
  });
});
