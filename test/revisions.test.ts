/**
 * What a revision runs is fixed when it is made, on both runtimes, and what keeps it from running is said:
 * - a directory deployed is an artifact: editing the directory afterwards changes nothing a revision serves,
 *   not even replicas started later (scale), and undo brings the old bytes back (process and docker);
 * - on docker the platform builds the artifact's image itself, so a directory deployment made on processes runs
 *   on docker after a restart with the other runtime;
 * - an image in a registry is pinned by digest when its version is added and pulled when the engine lacks it;
 * - ferry.yaml's resources, env and secrets reach the container, and the view says the same;
 * - a model that cannot load in a container fails its revision with the reason.
 * Real platforms (SQLite, gateway, API), real processes and containers, a real registry (Debian's).
 */
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deploy } from '../src/cli/deploy.ts';
import { rolloutOutcome } from '../src/cli/format.ts';
import { waitFor } from '../src/cli/platform.ts';
import { ControlClient } from '../src/control/index.ts';
import { buildImage, hostBase, RegistryClient } from '../src/image/index.ts';
import { startTestRegistry, type TestRegistry } from '../src/image/registry/test-registry.ts';
import { type Platform, platformId, startPlatform } from '../src/platform/index.ts';
import { postReplica } from '../src/runtime/contract.ts';
import { requireDocker } from './docker-env.ts';
import { ROOT, tempDir, until } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const BODY = readFileSync(join(IRIS, 'requests', 'setosa.json'));
const quiet = () => undefined;

/** A copy of iris that the test may edit; model.version as given. */
function irisCopy(dir: string, modelVersion: string): string {
  cpSync(IRIS, dir, { recursive: true });
  setModelVersion(dir, modelVersion);
  return dir;
}

function setModelVersion(dir: string, modelVersion: string): void {
  const file = join(dir, 'ferry.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/version: "[^"]*"/, `version: "${modelVersion}"`));
}

async function modelVersionAt(url: string, servedName = 'iris'): Promise<string> {
  // A replica's url is its unix socket (unix:<path>): asked directly, past the gateway.
  const res = await postReplica(url, `/v2/models/${servedName}/infer`, BODY);
  const body = res.body as { model_version?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.model_version ?? '';
}

async function start(home: string, runtime: 'process' | 'docker', token?: string) {
  const platform = await startPlatform({
    home,
    runtime,
    apiPort: 0,
    gatewayPort: 0,
    resyncMs: 500,
    drainTimeoutMs: 10_000,
    stopGraceMs: 10_000,
  });
  const client = new ControlClient({ url: platform.apiUrl, token: platform.adminToken ?? token ?? '' });
  return { platform, client, token: platform.adminToken ?? token ?? '' };
}

const readyOf = async (client: ControlClient, name: string, revision: number) =>
  (await client.replicas(name)).filter((r) => r.revision === revision && r.state === 'ready');

/** The pinned-content story, the same on both runtimes. */
async function pinnedContent(client: ControlClient, work: string, name: string): Promise<void> {
  const dir = irisCopy(join(work, name), '1');
  const first = await deploy(client, dir, { name, replicas: 1 }, quiet);
  await until('r1 ready', async () => (await readyOf(client, name, 1)).length === 1);
  const [r1] = await readyOf(client, name, 1);
  assert.equal(await modelVersionAt(r1!.url), '1');

  // Edit the directory as a user does between deploys; nothing that runs may change.
  setModelVersion(dir, '2');
  await client.scale(name, 2);
  await until('2 replicas of r1', async () => (await readyOf(client, name, 1)).length === 2);
  for (const r of await readyOf(client, name, 1))
    assert.equal(await modelVersionAt(r.url), '1', `${r.name}, started after the edit, serves r1's bytes`);

  const second = await deploy(client, dir, { name }, quiet);
  assert.notEqual(second.version, first.version, 'the edit is another version');
  assert.equal(second.view.revision, 2);
  await until('r2 serves', async () => (await client.rollout(name))?.phase === 'succeeded');
  for (const r of await readyOf(client, name, 2)) assert.equal(await modelVersionAt(r.url), '2');

  const undo = await client.undo(name, 1);
  await until('undo done', async () => (await client.rollout(name))?.phase === 'succeeded');
  const back = await readyOf(client, name, undo.to);
  assert.equal(back.length, 2);
  for (const r of back) assert.equal(await modelVersionAt(r.url), '1', 'undo serves the bytes of r1');
}

describe('versions pin content (process runtime)', () => {
  const home = tempDir('ferry-revisions-process-');
  let platform: Platform;
  let client: ControlClient;
  before(async () => {
    ({ platform, client } = await start(home.path, 'process'));
  });
  after(async () => {
    await platform?.stop({ removeReplicas: true });
    home.remove();
  });

  test('a revision serves the bytes it was deployed with, whatever happens to the directory; undo brings them back', async () => {
    await pinnedContent(client, home.path, 'pinned');
  });
});

describe('docker runtime: artifacts become images, registry images are pulled, limits apply', () => {
  const home = tempDir('ferry-revisions-docker-');
  const engine = requireDocker();
  let platform: Platform | undefined;
  let client: ControlClient;
  let token: string;
  let registry: TestRegistry | undefined;
  const pulled: string[] = [];
  before(async () => {
    ({ platform, client, token } = await start(home.path, 'docker'));
  });
  after(async () => {
    await platform?.stop({ removeReplicas: true });
    for (const c of await engine.listByLabel({ 'ferry.dev/platform': platformId(home.path) }))
      await engine.remove(c.id);
    for (const ref of pulled) await engine.removeImage(ref, true);
    await registry?.stop();
    home.remove();
  });

  test('a directory runs as an image the platform builds from its artifact; edits of the directory change nothing', async () => {
    const began = Date.now();
    await pinnedContent(client, home.path, 'boxed');
    const events = await client.events({ deployment: 'boxed', limit: 200 });
    assert.ok(
      events.some((e) => e.reason === 'ImageReady'),
      'the platform made the image',
    );
    // The image says when its version was registered (in this test), not 1970 ("Created 56 years ago").
    // A ready replica's container (the list may still hold one of an older revision that is being removed).
    const container = await until('a ready replica to inspect', async () => {
      for (const r of await client.replicas('boxed')) {
        if (r.state !== 'ready') continue;
        try {
          return await engine.docker.getContainer(r.id).inspect();
        } catch {
          // removed meanwhile: the next one, or the next round
        }
      }
      return undefined;
    });
    const created = Date.parse((await engine.docker.getImage(container.Image).inspect()).Created);
    assert.ok(created >= began - 1000 && created <= Date.now(), `created ${new Date(created).toISOString()}`);
  });

  test('an image in a registry is pinned by digest when added, and pulled (with progress) when the engine lacks it', async () => {
    registry = await startTestRegistry();
    const dir = irisCopy(join(home.path, 'from-registry'), '7');
    const built = await buildImage({ dir, base: await hostBase() });
    await new RegistryClient(registry.host).pushImage('team/iris', '7', built.image);
    const ref = `${registry.host}/team/iris:7`;
    assert.equal(await engine.inspectImage(ref), null, 'the engine has never seen it');

    const result = await deploy(client, ref, { model: 'iris-reg', name: 'remote' }, quiet);
    const version = (await client.getModel('iris-reg')).versions[0]!;
    assert.equal(
      version.image,
      `${registry.host}/team/iris@${built.image.manifestDigest}`,
      'pinned by digest',
    );
    assert.equal(version.spec.servedName, 'iris', "the image's label names the model it serves");
    pulled.push(version.image!);
    assert.equal(result.view.revision, 1);
    await until('pulled and ready', async () => (await readyOf(client, 'remote', 1)).length === 1);
    const [r] = await readyOf(client, 'remote', 1);
    assert.equal(await modelVersionAt(r!.url), '7');
    assert.notEqual(await engine.inspectImage(version.image!), null);
    const events = await client.events({ deployment: 'remote', limit: 50 });
    assert.ok(events.some((e) => e.reason === 'ImageReady' && e.message.includes(version.image!)));

    // A tag that is not in the registry is refused when the version is added, not found out later.
    await assert.rejects(
      deploy(client, `${registry.host}/team/iris:nope`, { model: 'iris-reg', name: 'remote' }, quiet),
      /Cannot pin .*team\/iris:nope to a digest: .*has no image team\/iris:nope/,
    );
  });

  test("ferry.yaml's resources, env and secrets reach the container, and the view says the same", async () => {
    const dir = irisCopy(join(home.path, 'limited'), '1');
    appendFileSync(
      join(dir, 'ferry.yaml'),
      'resources:\n  cpu: 500m\n  memory: 256Mi\nenv:\n  GREETING: hello\nsecrets: [HF_TOKEN]\n',
    );
    const result = await deploy(client, dir, { name: 'limited' }, quiet);
    assert.deepEqual(result.unsetSecrets, ['HF_TOKEN'], 'deploy says the secret is not set');
    const waiting = await until('the revision waits for its secret', async () =>
      (await client.getDeployment('limited')).revisionStatus.find(
        (s) => s.problem?.reason === 'SecretMissing',
      ),
    );
    assert.match(waiting.problem!.message, /needs secret\(s\) HF_TOKEN, which are not set/);
    await client.setSecret('HF_TOKEN', 'hf-0123456789');
    await until('ready', async () => (await readyOf(client, 'limited', 1)).length === 1);
    const view = await client.getDeployment('limited');
    const spec = view.revisions.find((r) => r.number === 1)!.spec;
    assert.deepEqual(spec.resources, { cpu: 0.5, memoryBytes: 256 * 1024 ** 2, gpu: 0 });
    assert.equal(spec.env.GREETING, 'hello');
    assert.deepEqual(spec.secretRefs, ['HF_TOKEN']);
    const [replica] = await readyOf(client, 'limited', 1);
    const inspected = await engine.docker.getContainer(replica!.id).inspect();
    assert.equal(inspected.HostConfig.NanoCpus, 500_000_000);
    assert.equal(inspected.HostConfig.Memory, 256 * 1024 ** 2);
    const env = inspected.Config.Env ?? [];
    for (const pair of ['GREETING=hello', 'FERRY_CPU_LIMIT=0.5'])
      assert.ok(env.includes(pair), `${pair} in the container's environment`);
    // The secret arrives as a file the server reads, never in the container's configuration.
    assert.ok(!JSON.stringify(inspected).includes('hf-0123456789'), 'the secret is not in docker inspect');
    assert.ok(env.includes('FERRY_SECRETS_DIR=/run/ferry/secrets'));
  });

  test('a model that cannot load in a container fails its revision with the reason, at once', async () => {
    const dir = irisCopy(join(home.path, 'corrupt'), '1');
    writeFileSync(join(dir, 'model.onnx'), Buffer.from('not a protobuf'));
    await deploy(client, dir, { name: 'corrupt' }, quiet);
    const failed = await until('failed', async () =>
      (await client.getDeployment('corrupt')).revisionStatus.find((s) => s.problem?.fatal),
    );
    assert.equal(failed.problem!.reason, 'ModelLoadFailed');
    assert.match(failed.problem!.message, /Protobuf parsing failed/);
    // What `ferry deploy --wait` does: it stops at once with the reason instead of waiting out its timeout.
    await assert.rejects(
      waitFor(client, 'corrupt', 1, 10 * 60_000, (view) => rolloutOutcome(view, 1), quiet),
      (error: Error) =>
        /Revision 1 of corrupt failed \(ModelLoadFailed\): .*Protobuf parsing failed/.test(error.message),
    );
  });

  test('a directory deployment made on processes runs on docker after a restart with the other runtime', async () => {
    await platform?.stop({ removeReplicas: true });
    platform = undefined;
    const switching = join(home.path, 'switch-home');
    const onProcesses = await start(switching, 'process');
    try {
      await deploy(onProcesses.client, irisCopy(join(home.path, 'switch'), '3'), { name: 'moves' }, quiet);
      await until(
        'ready on processes',
        async () => (await readyOf(onProcesses.client, 'moves', 1)).length === 1,
      );
    } finally {
      await onProcesses.platform.stop({ removeReplicas: true });
    }
    const onDocker = await start(switching, 'docker', onProcesses.token);
    try {
      await until(
        'ready in a container',
        async () => (await readyOf(onDocker.client, 'moves', 1)).length === 1,
      );
      const [r] = await readyOf(onDocker.client, 'moves', 1);
      assert.ok(!r!.id.includes('@'), 'a container, not a process');
      assert.equal(await modelVersionAt(r!.url), '3');
    } finally {
      await onDocker.platform.stop({ removeReplicas: true });
    }
    ({ platform, client } = await start(home.path, 'docker', token));
  });
});
