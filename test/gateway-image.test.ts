/**
 * The gateway image end to end (`ferry gateway-image`, src/image/gateway.ts), on the real Docker engine and a real
 * registry (Debian's docker.io and docker-registry), nothing pulled from a public registry:
 * - its bundle, run by node alone from a directory outside the repository, proxies an inference to `ferry serve`;
 * - builds are reproducible (in this process twice, and the CLI in another process);
 * - in Docker, hardened as a cluster runs it (read-only root, /tmp a tmpfs, uid 65532, no capabilities, the
 *   route file mounted read-only) with the arguments the Kubernetes renderer writes, unchanged: an inference
 *   goes through it to a model server container and /v2/health/live answers; SIGTERM exits 0;
 * - `--push` prints a reference pinned by digest that the engine pulls.
 *
 * Networking: the engine here runs without a bridge (scripts/ensure-docker.mjs: --bridge=none) and only 127.0.0.1
 * traffic is allowed, so the model server container has no network (`--network none`, loopback only) and the
 * gateway container joins its network namespace (`--network container:<id>`, as two containers of one pod
 * share it): the route file names the replica by IP, `127.0.0.1:8081`, and the gateway binds 0.0.0.0:8080 as
 * rendered. The test reaches the gateway from inside its namespace with `docker exec <gateway> node -e fetch(...)`
 * (the image has node and no shell).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { bundleGateway } from '../src/image/bundle.ts';
import {
  buildGatewayImage,
  buildImage,
  DEFAULT_GATEWAY_IMAGE,
  GATEWAY_ARGS,
  hostBase,
  loadIntoEngine,
} from '../src/image/index.ts';
import { startTestRegistry, type TestRegistry } from '../src/image/registry/test-registry.ts';
import { render } from '../src/k8s/render.ts';
import { irisInput } from '../src/k8s/testdata/fixtures.ts';
import { cleanupContainers, requireDocker, TEST_LABEL, uniqueName } from './docker-env.ts';
import { ROOT, runCli, spawnServer, tempDir, until } from './helpers.ts';

const run = promisify(execFile);
const IRIS = join(ROOT, 'examples', 'iris');
const SETOSA = readFileSync(join(IRIS, 'requests', 'setosa.json'), 'utf8');
/** Where the model server listens in the shared network namespace (the gateway takes 8080). */
const REPLICA_PORT = 8081;

/** What the Kubernetes renderer gives the gateway: its container (args) and its route file. */
function renderedGateway(): { args: string[]; routes: { deployments: Array<{ revisions: object[] }> } } {
  const objects = render([irisInput()], { gatewayImage: DEFAULT_GATEWAY_IMAGE }) as Array<{
    kind: string;
    metadata: { name: string };
    spec?: unknown;
    data?: Record<string, string>;
  }>;
  const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'ferry-gateway') as {
    spec: { template: { spec: { containers: Array<{ args: string[] }> } } };
  };
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'ferry-gateway-routes');
  return {
    args: deployment.spec.template.spec.containers[0]!.args,
    routes: JSON.parse(configMap!.data!['routes.json']!),
  };
}

/** The rendered route file with every revision's service replaced by an address (an IP is taken as is). */
function routesTo(host: string, port: number): string {
  const { routes } = renderedGateway();
  for (const d of routes.deployments)
    d.revisions = d.revisions.map((r) => ({ ...r, service: { host, port } }));
  return `${JSON.stringify(routes, null, 2)}\n`;
}

describe('the gateway image', { timeout: 600_000 }, () => {
  const engine = requireDocker();
  const work = tempDir('ferry-gateway-image-test-');
  const runLabel = uniqueName('gateway-image');
  const images: string[] = [];
  let registry: TestRegistry;
  let base: string;

  before(async () => {
    base = await hostBase();
    registry = await startTestRegistry();
  });
  after(async () => {
    await cleanupContainers({ [TEST_LABEL]: runLabel }).catch(() => undefined);
    for (const image of images) await engine.removeImage(image, true).catch(() => undefined);
    await registry?.stop();
    work.remove();
  });

  test('the bundle, run by node alone outside the repository, takes an inference to ferry serve and answers live', async () => {
    const dir = join(work.path, 'bundle');
    await bundleGateway({ outDir: dir });
    const server = await spawnServer([IRIS]);
    let gateway: ChildProcess | undefined;
    try {
      const port = new URL(server.url).port;
      writeFileSync(join(dir, 'routes.json'), routesTo('127.0.0.1', Number(port)));
      gateway = spawn(
        process.execPath,
        ['gateway.mjs', 'gateway', '--routes', 'routes.json', '--host', '127.0.0.1', '--port', '0'],
        // PATH only: nothing from this process's environment helps it find a module.
        { cwd: dir, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      gateway.stderr!.on('data', (d) => (stderr += d));
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: gateway!.stdout! }).on('line', (line) => {
          const m = /^Ferry gateway at (http:\/\/\S+)/.exec(line);
          if (m) resolve(m[1]!);
        });
        gateway!.on('exit', (code) => reject(new Error(`the gateway exited with ${code}:\n${stderr}`)));
      });
      const live = await fetch(`${url}/v2/health/live`);
      assert.equal(live.status, 200);
      const answer = await fetch(`${url}/v2/models/iris/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: SETOSA,
      });
      const body = (await answer.json()) as {
        model_name: string;
        outputs: Array<{ name: string; data: number[] }>;
      };
      assert.equal(answer.status, 200, JSON.stringify(body));
      assert.equal(body.model_name, 'iris');
      assert.deepEqual(body.outputs.find((o) => o.name === 'label')?.data, [0], 'setosa is label 0');
    } finally {
      gateway?.kill('SIGTERM');
      server.child.kill('SIGTERM');
    }
  });

  test('reproducible: two builds give the same image ID and digest, and so does the CLI in another process', async () => {
    const first = await buildGatewayImage({ base });
    const second = await buildGatewayImage({ base });
    assert.equal(second.image.configDigest, first.image.configDigest);
    assert.equal(second.image.manifestDigest, first.image.manifestDigest);
    assert.equal(first.tag, DEFAULT_GATEWAY_IMAGE);

    const layout = join(work.path, 'gateway-oci');
    const cli = await runCli(['gateway-image', '--base', base, '--output', `oci:${layout}`]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`^image\\s+${DEFAULT_GATEWAY_IMAGE.replace('.', '\\.')}$`, 'm'));
    assert.match(cli.stdout, new RegExp(`^digest\\s+${first.image.manifestDigest}$`, 'm'));
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
    };
    assert.equal(index.manifests[0]!.digest, first.image.manifestDigest);
    assert.equal(index.manifests[0]!.annotations?.['io.containerd.image.name'], DEFAULT_GATEWAY_IMAGE);

    // On top of the base: one layer holding /app/gateway.mjs, root-owned and read-only.
    assert.equal(first.image.layers.length, first.baseLayers + 1);
    const blob = join(work.path, 'gateway-layer.tgz');
    writeFileSync(blob, first.image.layers.at(-1)!.blob);
    const listing = execFileSync('tar', ['--utc', '--numeric-owner', '-tvzf', blob], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((line) => line.replace(/\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+/, ' '));
    assert.equal(listing.length, 2, listing.join('\n'));
    assert.match(listing[0]!, /^dr-xr-xr-x 0\/0\s+0 app\/$/);
    assert.match(listing[1]!, /^-r--r--r-- 0\/0\s+\d+ app\/gateway\.mjs$/);
    const baseBytes = first.image.layers.slice(0, first.baseLayers).reduce((n, l) => n + l.size, 0);
    process.stderr.write(
      `# gateway image: ${((baseBytes + first.addedBytes) / 1e6).toFixed(1)} MB compressed: base ${(baseBytes / 1e6).toFixed(1)} MB + gateway layer ${(first.addedBytes / 1e3).toFixed(1)} kB\n`,
    );
  });

  test('in Docker, hardened, with the rendered args unchanged: an inference goes through it to a model server container; SIGTERM exits 0', async () => {
    const gatewayTag = `${uniqueName('ferry-gateway-test')}:1`;
    images.push(gatewayTag);
    const built = await runCli(['gateway-image', '--base', base, '--tag', gatewayTag]);
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stdout, new RegExp(`^ref\\s+${gatewayTag}$`, 'm'));

    // The replica: the iris image, no network at all, the server on 127.0.0.1:8081 of its namespace.
    const irisTag = `${uniqueName('iris-for-gateway')}:1`;
    images.push(irisTag);
    await loadIntoEngine(engine, (await buildImage({ dir: IRIS, base })).image, irisTag);
    const hardened = ['--read-only', '--tmpfs', '/tmp', '--user', '65532:65532', '--cap-drop', 'ALL'];
    const replica = (
      await run('docker', [
        'run',
        '-d',
        '--label',
        `${TEST_LABEL}=${runLabel}`,
        '--network',
        'none',
        ...hardened,
        '-e',
        'FERRY_HOST=127.0.0.1',
        '-e',
        `FERRY_PORT=${REPLICA_PORT}`,
        irisTag,
      ])
    ).stdout.trim();

    // The gateway: in the replica's network namespace, the route file read-only where the renderer mounts it.
    const routes = join(work.path, 'routes.json');
    writeFileSync(routes, routesTo('127.0.0.1', REPLICA_PORT), { mode: 0o644 });
    const { args } = renderedGateway();
    assert.deepEqual(args, [...GATEWAY_ARGS], "the image's Cmd is what the renderer gives");
    const gateway = (
      await run('docker', [
        'run',
        '-d',
        '--label',
        `${TEST_LABEL}=${runLabel}`,
        '--network',
        `container:${replica}`,
        ...hardened,
        '--security-opt',
        'no-new-privileges',
        '-v',
        `${routes}:/etc/ferry/routes.json:ro`,
        gatewayTag,
        ...args,
      ])
    ).stdout.trim();

    /** A request to the gateway from inside its network namespace (node is in the image; no shell is). */
    const ask = async (path: string, body?: string): Promise<{ status: number; body: string }> => {
      const init =
        body === undefined
          ? '{}'
          : JSON.stringify({ method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const script = `const r=await fetch('http://127.0.0.1:8080${path}',${init});process.stdout.write(JSON.stringify({status:r.status,body:await r.text()}))`;
      const { stdout } = await run('docker', ['exec', gateway, 'node', '--input-type=module', '-e', script]);
      return JSON.parse(stdout) as { status: number; body: string };
    };
    const logs = () =>
      execFileSync('docker', ['logs', gateway], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

    const live = await until('the gateway answers /v2/health/live', () =>
      ask('/v2/health/live').catch(() => undefined),
    );
    assert.equal(live.status, 200, logs());
    assert.deepEqual(JSON.parse(live.body), { live: true });
    // The replica loads its model after it listens: until then the gateway's answer is not 200.
    const answer = await until('an inference through the gateway', async () => {
      const r = await ask('/v2/models/iris/infer', SETOSA).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    });
    const inference = JSON.parse(answer.body) as {
      model_name: string;
      outputs: Array<{ name: string; data: number[] }>;
    };
    assert.equal(inference.model_name, 'iris');
    assert.deepEqual(inference.outputs.find((o) => o.name === 'label')?.data, [0], 'setosa is label 0');

    // As a cluster would run it: uid 65532, read-only root, no capabilities; it bound 0.0.0.0:8080 as told.
    const info = await engine.docker.getContainer(gateway).inspect();
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.deepEqual(info.Config.Cmd, args);
    assert.deepEqual(info.Config.Entrypoint, ['node', '/app/gateway.mjs']);
    const status = readFileSync(`/proc/${info.State.Pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    const listening = readFileSync(`/proc/${info.State.Pid}/net/tcp`, 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f[3] === '0A')
      .map((f) => f[1]);
    assert.ok(
      listening.includes('00000000:1F90'),
      `the gateway listens on 0.0.0.0:8080: ${listening.join(' ')}`,
    );

    // SIGTERM (docker stop): it closes and exits 0.
    await engine.stop(gateway, 20);
    const state = await engine.inspectContainer(gateway);
    assert.equal(state?.exitCode, 0, logs());
    assert.match(logs(), /gateway ready/);
  });

  test('--push: the reference printed is pinned by the digest of the build, and the engine pulls it', async () => {
    const pushed = await runCli(['gateway-image', '--base', base, '--push', '--registry', registry.host]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const here = await buildGatewayImage({ base });
    const ref = `${registry.host}/${DEFAULT_GATEWAY_IMAGE}@${here.image.manifestDigest}`;
    assert.match(pushed.stdout, new RegExp(`^ref\\s+${ref.replace(/[.]/g, '\\.')}$`, 'm'));
    const byDigest = `${registry.host}/ferry-gateway@${here.image.manifestDigest}`;
    images.push(byDigest);
    await engine.pullImage(byDigest);
    const pulled = await engine.docker.getImage(byDigest).inspect();
    assert.equal(pulled.Id, here.image.configDigest, 'the engine has the very image that was built');
    // Pushed again: nothing to upload.
    const again = await runCli(['gateway-image', '--base', base, '--push', '--registry', registry.host]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /: 0 B uploaded/);
  });
});
