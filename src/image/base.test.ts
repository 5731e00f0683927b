import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cleanupContainers, requireDocker, TEST_LABEL, uniqueName } from '../../test/docker-env.ts';
import { isFerryError } from '../core/errors.ts';
import {
  buildBaseImage,
  defaultBaseTag,
  FERRY_UID,
  ferryBase,
  gatherHostRuntime,
  type HostRuntime,
  NODE_IN_IMAGE,
  onnxruntimeNativeFiles,
  parseLdd,
  planBaseImage,
} from './base.ts';
import type { RunOptions } from './engine/types.ts';
import { readOciLayout } from './oci/layout.ts';
import type { LayerEntry } from './oci/types.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A description of a merged-/usr Debian host (what gatherHostRuntime returns; plain data). */
const HOST: HostRuntime = {
  nodeVersion: 'v20.20.2',
  node: { path: '/usr/bin/node', mode: 0o755, size: 98_932_688 },
  libraries: [
    { kind: 'symlink', path: '/lib', target: 'usr/lib' },
    { kind: 'symlink', path: '/lib64', target: 'usr/lib64' },
    { kind: 'file', path: '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', mode: 0o755, size: 215_000 },
    { kind: 'file', path: '/usr/lib/x86_64-linux-gnu/libc.so.6', mode: 0o755, size: 1_926_232 },
    { kind: 'symlink', path: '/usr/lib/x86_64-linux-gnu/libstdc++.so.6', target: 'libstdc++.so.6.0.30' },
    { kind: 'file', path: '/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30', mode: 0o644, size: 2_190_440 },
    {
      kind: 'symlink',
      path: '/usr/lib64/ld-linux-x86-64.so.2',
      target: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    },
  ],
  caBundle: { path: '/etc/ssl/certs/ca-certificates.crt', size: 219_597 },
};

const text = (e: LayerEntry | undefined) => {
  assert.ok(e && e.type === 'file' && e.source instanceof Uint8Array, `${e?.path} is an inline file`);
  return new TextDecoder().decode(e.source as Uint8Array);
};

/** Resolves a path through the planned filesystem (all layers merged), following symlinks. */
function resolveIn(fs: Map<string, LayerEntry>, path: string, depth = 0): LayerEntry | undefined {
  assert.ok(depth < 40, `symlink loop at ${path}`);
  const parts = path.split('/').filter(Boolean);
  let prefix = '';
  for (let i = 0; i < parts.length; i++) {
    prefix = prefix === '' ? parts[i]! : `${prefix}/${parts[i]}`;
    const e = fs.get(prefix);
    if (e === undefined) return undefined;
    if (e.type === 'symlink') {
      const target = e.target.startsWith('/') ? e.target : posix.join(posix.dirname(`/${prefix}`), e.target);
      return resolveIn(fs, posix.join(target, ...parts.slice(i + 1)), depth + 1);
    }
    if (i === parts.length - 1) return e;
    assert.equal(e.type, 'dir', `${prefix} is a directory`);
  }
  return undefined;
}

function merged(layers: { entries: LayerEntry[] }[]): Map<string, LayerEntry> {
  const fs = new Map<string, LayerEntry>();
  for (const l of layers) for (const e of l.entries) fs.set(e.path, e);
  return fs;
}

describe('planBaseImage', () => {
  const plan = planBaseImage(HOST);
  const fs = merged(plan.layers);

  test('three layers: system files, shared libraries, node', () => {
    assert.deepEqual(
      plan.layers.map((l) => l.comment),
      [
        'ferry base: system files (users, /tmp, certificates)',
        'ferry base: shared libraries',
        'ferry base: node v20.20.2',
      ],
    );
    for (const l of plan.layers) {
      const paths = l.entries.map((e) => e.path);
      assert.deepEqual(paths, [...paths].sort(), `${l.comment} sorted`);
      assert.equal(new Set(paths).size, paths.length, `${l.comment} has no duplicate`);
      for (const p of paths) assert.ok(!p.startsWith('/') && !p.endsWith('/'), p);
    }
  });

  test('users root and ferry (65532), name service from files, writable /tmp', () => {
    assert.equal(
      text(fs.get('etc/passwd')),
      'root:x:0:0:root:/root:/sbin/nologin\nferry:x:65532:65532:ferry:/home/ferry:/sbin/nologin\n',
    );
    assert.equal(text(fs.get('etc/group')), 'root:x:0:\nferry:x:65532:\n');
    assert.match(text(fs.get('etc/nsswitch.conf')), /^hosts: files dns$/m);
    assert.match(text(fs.get('etc/hosts')), /^127\.0\.0\.1 localhost$/m);
    assert.deepEqual(fs.get('tmp'), { type: 'dir', path: 'tmp', mode: 0o1777, uid: 0, gid: 0 });
    assert.deepEqual(fs.get('home/ferry'), {
      type: 'dir',
      path: 'home/ferry',
      mode: 0o755,
      uid: FERRY_UID,
      gid: FERRY_UID,
    });
    // Docker mounts these; they exist so a read-only root filesystem needs no new mount points.
    assert.ok(fs.has('etc/resolv.conf') && fs.has('etc/hostname'));
  });

  test('node goes to /usr/local/bin/node, read from its host path', () => {
    const node = fs.get(NODE_IN_IMAGE);
    assert.deepEqual(node, {
      type: 'file',
      path: 'usr/local/bin/node',
      mode: 0o755,
      uid: 0,
      gid: 0,
      source: { file: '/usr/bin/node' },
    });
    assert.deepEqual(
      plan.layers[2]!.entries.map((e) => e.path),
      ['usr', 'usr/local', 'usr/local/bin', 'usr/local/bin/node'],
    );
  });

  test("the host's symlinks are kept and the loader resolves to a file (no directory under a symlink)", () => {
    assert.deepEqual(fs.get('lib'), { type: 'symlink', path: 'lib', target: 'usr/lib', uid: 0, gid: 0 });
    for (const wanted of [
      '/lib64/ld-linux-x86-64.so.2',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
    ]) {
      const e = resolveIn(fs, wanted);
      assert.equal(e?.type, 'file', wanted);
    }
    assert.ok(![...fs.keys()].some((p) => p.startsWith('lib/') || p.startsWith('lib64/')));
    const libc = fs.get('usr/lib/x86_64-linux-gnu/libc.so.6');
    assert.deepEqual(libc && libc.type === 'file' ? libc.source : null, {
      file: '/usr/lib/x86_64-linux-gnu/libc.so.6',
    });
  });

  test('config: non-root user, PATH, amd64, labels; default tag names the node version', () => {
    assert.deepEqual(plan.config, {
      architecture: 'amd64',
      os: 'linux',
      config: {
        User: '65532:65532',
        Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_VERSION=20.20.2'],
        Cmd: ['node'],
        WorkingDir: '/',
        Labels: {
          'org.opencontainers.image.title': 'ferry-base',
          'org.opencontainers.image.description':
            "Minimal Node.js v20.20.2 runtime built by 'ferry base' from the host's files",
          'dev.ferry.base.node-version': 'v20.20.2',
        },
      },
    });
    assert.equal(plan.tag, 'ferry-base:node20.20.2');
    assert.equal(defaultBaseTag('v22.1.0'), 'ferry-base:node22.1.0');
  });

  test('the CA bundle only when the host has one', () => {
    assert.ok(fs.has('etc/ssl/certs/ca-certificates.crt'));
    const { caBundle: _, ...without } = HOST;
    const bare = merged(planBaseImage(without).layers);
    assert.ok(!bare.has('etc/ssl/certs/ca-certificates.crt') && !bare.has('etc/ssl'));
  });

  test('pure: the same description gives the same plan', () => {
    assert.deepEqual(planBaseImage(structuredClone(HOST)), plan);
  });
});

describe('parseLdd', () => {
  const sample = `\tlinux-vdso.so.1 (0x00007ffd)
\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007fe846683000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007fe846400000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fe84669b000)
`;

  test('lists libraries and the loader, not the vdso', () => {
    assert.deepEqual(parseLdd(sample, '/usr/bin/node'), [
      '/lib/x86_64-linux-gnu/libdl.so.2',
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
    assert.deepEqual(parseLdd('\tstatically linked\n', '/bin/x'), []);
  });

  test('a missing library is a FerryError naming it and the binary', () => {
    assert.throws(
      () => parseLdd(`${sample}\tlibcuda.so.1 => not found\n`, '/opt/x.node'),
      (err: unknown) =>
        isFerryError(err) &&
        err.code === 'FERRY_FILE_NOT_FOUND' &&
        err.message.includes('libcuda.so.1') &&
        err.message.includes('/opt/x.node'),
    );
  });
});

describe('gatherHostRuntime (this host)', () => {
  const host = gatherHostRuntime();
  const plan = planBaseImage(host);
  const fs = merged(plan.layers);

  test("finds this node and its version, and onnxruntime-node's files", () => {
    assert.equal(host.nodeVersion, process.version);
    assert.ok(host.node.size > 1_000_000);
    assert.ok(onnxruntimeNativeFiles().some((f) => f.endsWith('libonnxruntime.so.1')));
    // Only system libraries: onnxruntime's own go into the server layer.
    assert.ok(!host.libraries.some((e) => e.path.includes('node_modules')));
  });

  test('every library ldd names for node and onnxruntime resolves to a file in the planned image', async () => {
    const { execFileSync } = await import('node:child_process');
    for (const binary of [process.execPath, ...onnxruntimeNativeFiles()]) {
      const needed = parseLdd(execFileSync('ldd', [binary], { encoding: 'utf8' }), binary).filter(
        (p) => !p.includes('node_modules'),
      );
      assert.ok(needed.length > 0);
      for (const lib of needed) assert.equal(resolveIn(fs, lib)?.type, 'file', `${lib} (for ${binary})`);
    }
    assert.equal(resolveIn(fs, '/lib64/ld-linux-x86-64.so.2')?.type, 'file');
  });

  test('the CA bundle is included when the host has one', () => {
    assert.equal(
      fs.has('etc/ssl/certs/ca-certificates.crt'),
      existsSync('/etc/ssl/certs/ca-certificates.crt'),
    );
  });
});

describe('ferry base on the real engine', () => {
  const engine = requireDocker();
  const run = uniqueName('base-test');
  const labels = { [TEST_LABEL]: run };
  const tag = `ferry-base-test:${run}`;

  after(async () => {
    await cleanupContainers(labels);
    await engine.removeImage(tag, true);
  });

  async function runToEnd(opts: Omit<RunOptions, 'network' | 'readOnly' | 'labels'>): Promise<string> {
    const { id } = await engine.runContainer({ ...opts, network: 'host', readOnly: true, labels });
    const { StatusCode } = await engine.docker.getContainer(id).wait();
    const chunks: Buffer[] = [];
    for await (const c of engine.logs(id)) chunks.push(c as Buffer);
    const out = Buffer.concat(chunks).toString('utf8');
    await engine.remove(id);
    assert.equal(StatusCode, 0, out);
    return out;
  }

  test('deterministic, loads, and node runs in it as ferry (65532), hardened', async () => {
    const progress: string[] = [];
    const first = await buildBaseImage({ onProgress: (l) => progress.push(l) });
    const second = await buildBaseImage();
    assert.equal(second.image.configDigest, first.image.configDigest);
    assert.equal(second.image.manifestDigest, first.image.manifestDigest);
    assert.equal(progress.length, 3);
    assert.match(progress[2]!, /^layer 3\/3 ferry base: node v\d+\.\d+\.\d+: [\d.]+ MB compressed$/);

    const result = await ferryBase({ engine, tag });
    assert.equal(result.id, first.image.configDigest);
    assert.equal((await engine.inspectImage(tag))?.id, first.image.configDigest);
    assert.ok(result.engineSize! > 50e6 && result.engineSize! < 200e6, `size ${result.engineSize}`);
    const out = await runToEnd({
      image: tag,
      cmd: [
        'node',
        '-e',
        "console.log(process.version, require('os').userInfo().username, process.getuid())",
      ],
    });
    assert.equal(out, `${process.version} ferry 65532\n`);

    // Removed and built again: the same image ID.
    assert.equal(await engine.removeImage(tag, true), true);
    assert.equal((await ferryBase({ engine, tag })).id, first.image.configDigest);
  });

  test('onnxruntime-node runs a model in it (the package and model mounted read-only)', async () => {
    await ferryBase({ engine, tag });
    const script = `
      const ort = require('/app/node_modules/onnxruntime-node');
      ort.InferenceSession.create('/model/model.onnx', { intraOpNumThreads: 1, interOpNumThreads: 1 })
        .then((s) => s.run({ input: new ort.Tensor('float32', Float32Array.from([5.1, 3.5, 1.4, 0.2]), [1, 4]) }))
        .then((o) => console.log('label=' + o.label.data[0]));
    `;
    const out = await runToEnd({
      image: tag,
      cmd: ['node', '-e', script],
      binds: [
        { source: join(ROOT, 'node_modules'), target: '/app/node_modules' },
        { source: join(ROOT, 'examples', 'iris'), target: '/model' },
      ],
    });
    assert.match(out, /^label=0$/m);
  });

  test('writes an OCI layout with the same image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-base-oci-'));
    try {
      const result = await ferryBase({ ociDir: dir });
      assert.equal(result.output, dir);
      const read = await readOciLayout(dir);
      assert.equal(read.configDigest, result.id);
      assert.equal(read.manifestDigest, result.digest);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
