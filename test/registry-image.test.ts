/**
 * Images for a cluster runtime (src/image/registry-provision.ts) against a real registry (Debian's docker-registry
 * on 127.0.0.1) and real builds (the iris example, as an artifact the platform's store holds, on this host's
 * `ferry base`); no Docker engine is needed. A counting fetch tells what was asked of the registry: "built and
 * pushed once" is shown by the requests made, not by time.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ArtifactStore } from '../src/control/artifacts.ts';
import { isFerryError } from '../src/core/errors.ts';
import { FERRY_VERSION } from '../src/core/version.ts';
import { prepareArtifact } from '../src/image/artifact.ts';
import {
  buildGatewayImage,
  ensureRegistryImage,
  hostBase,
  pushGatewayImage,
  RegistryClient,
} from '../src/image/index.ts';
import { parseJson } from '../src/image/oci/image.ts';
import { startTestRegistry, type TestRegistry } from '../src/image/registry/test-registry.ts';
import { ROOT, tempDir } from './helpers.ts';

const IRIS = join(ROOT, 'examples', 'iris');
const PINNED = /^127\.0\.0\.1:\d+\/ferry\/iris@sha256:[0-9a-f]{64}$/;

/** A fetch that records every request (method and URL) before passing it on, or to `inner`. */
function countingFetch(inner: typeof fetch = fetch) {
  const requests: Array<{ method: string; url: string }> = [];
  const wrapped = ((input: string | URL | Request, init?: RequestInit) => {
    requests.push({
      method: init?.method ?? 'GET',
      url: input instanceof Request ? input.url : String(input),
    });
    return inner(input, init);
  }) as typeof fetch;
  return {
    fetch: wrapped,
    requests,
    writes: () => requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD'),
  };
}

describe('images in a registry for a cluster runtime', { timeout: 600_000 }, () => {
  const work = tempDir('ferry-registry-image-test-');
  let registry: TestRegistry;
  let base: string;
  let artifactDir: string;
  /** What the first build and push returned. */
  let pushed: string;
  const createdAt = Date.UTC(2026, 11, 1, 12, 0, 0);

  before(async () => {
    base = await hostBase();
    registry = await startTestRegistry();
    // The iris artifact as `ferry deploy` sends it and the platform keeps it.
    const prepared = await prepareArtifact(IRIS);
    try {
      const store = new ArtifactStore(join(work.path, 'artifacts'));
      artifactDir = (await store.receive(prepared.digest, Readable.from(prepared.stream()))).dir;
    } finally {
      await prepared.cleanup();
    }
  });
  after(async () => {
    await registry?.stop();
    work.remove();
  });

  const request = (over: Partial<Parameters<typeof ensureRegistryImage>[0]> = {}) => ({
    model: 'iris',
    image: null,
    artifactDir,
    base,
    createdAt,
    ...over,
  });

  test('an artifact is built and pushed as ferry/<model>:<tag>; the reference is pinned by digest and served', async () => {
    const counted = countingFetch();
    const lines: string[] = [];
    const started = performance.now();
    pushed = await ensureRegistryImage(request(), { registry: registry.host, fetch: counted.fetch }, (l) =>
      lines.push(l),
    );
    process.stderr.write(
      `# iris artifact built and pushed in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    assert.match(pushed, PINNED);
    assert.ok(pushed.startsWith(`${registry.host}/`));
    const text = lines.join('\n');
    assert.match(text, /^checking 127\.0\.0\.1:\d+ for ferry\/iris:[0-9a-f]{12}$/m);
    assert.ok(lines.includes(`building an image of the artifact on ${base}`), text);
    assert.match(text, /^pushing 127\.0\.0\.1:\d+\/ferry\/iris:[0-9a-f]{12}$/m);
    assert.match(text, /^ {2}uploaded config /m);
    assert.ok(lines.at(-1)!.startsWith(`pushed ${pushed}: `), text);
    assert.ok(counted.writes().length > 0, 'blobs and a manifest were written');

    // The registry serves the manifest by that digest and by the tag; the image says when the version was added.
    const client = new RegistryClient(registry.host);
    const digest = pushed.slice(pushed.indexOf('@') + 1);
    const manifest = await client.getManifest('ferry/iris', digest);
    assert.equal(manifest.digest, digest);
    const tag = /ferry\/iris:([0-9a-f]{12})/.exec(text)![1]!;
    assert.equal((await client.getManifest('ferry/iris', tag)).digest, digest);
    const config = parseJson(
      await client.getBlob(
        'ferry/iris',
        (parseJson(manifest.bytes, 'manifest') as { config: { digest: string } }).config.digest,
      ),
      'config',
    ) as { created: string };
    assert.equal(config.created, new Date(createdAt).toISOString().replace('.000Z', 'Z'));
  });

  test('the same artifact again: the same reference, nothing built or pushed', async () => {
    const counted = countingFetch();
    const lines: string[] = [];
    const again = await ensureRegistryImage(
      request(),
      { registry: registry.host, fetch: counted.fetch },
      (l) => lines.push(l),
    );
    assert.equal(again, pushed);
    assert.deepEqual(counted.writes(), [], 'no upload, no manifest put');
    assert.equal(counted.requests.length, 1, JSON.stringify(counted.requests));
    assert.ok(!lines.some((l) => l.startsWith('building') || l.startsWith('push')), lines.join('\n'));
    assert.match(lines.at(-1)!, new RegExp(`has ferry/iris:[0-9a-f]{12} already: ${pushed}$`));
  });

  test('a reference pinned by digest in the target registry is checked there and returned as is', async () => {
    const counted = countingFetch();
    const lines: string[] = [];
    const out = await ensureRegistryImage(
      request({ image: pushed, artifactDir: null }),
      { registry: registry.host, fetch: counted.fetch },
      (l) => lines.push(l),
    );
    assert.equal(out, pushed);
    assert.deepEqual(
      counted.requests.map((r) => r.method),
      ['GET'],
      'one manifest request, nothing written',
    );
    assert.match(counted.requests[0]!.url, /\/v2\/ferry\/iris\/manifests\/sha256:/);

    // A digest the target registry does not have: the nodes could not pull it.
    const missing = `${registry.host}/ferry/iris@sha256:${'0'.repeat(64)}`;
    await assert.rejects(
      ensureRegistryImage(
        request({ image: missing, artifactDir: null }),
        { registry: registry.host },
        () => {},
      ),
      (error: unknown) => {
        assert.ok(isFerryError(error));
        assert.equal(error.code, 'FERRY_NOT_FOUND');
        assert.match(error.message, /has no image/);
        return true;
      },
    );
  });

  test('a reference pinned by digest in another registry passes through, nothing asked of any registry', async () => {
    const counted = countingFetch();
    const elsewhere = `registry.example.com/team/iris:1@sha256:${'a'.repeat(64)}`;
    const lines: string[] = [];
    const out = await ensureRegistryImage(
      request({ image: elsewhere, artifactDir: null }),
      { registry: registry.host, fetch: counted.fetch },
      (l) => lines.push(l),
    );
    assert.equal(out, elsewhere);
    assert.deepEqual(counted.requests, []);
    assert.deepEqual(lines, [
      `${elsewhere} is pinned by digest in registry.example.com: the nodes pull it from there`,
    ]);
  });

  test('an engine image ID is refused: a Swarm runtime needs a registry reference (push it)', async () => {
    const id = `sha256:${'b'.repeat(64)}`;
    await assert.rejects(
      ensureRegistryImage(request({ image: id, artifactDir: null }), { registry: registry.host }, () => {}),
      (error: unknown) => {
        assert.ok(isFerryError(error));
        assert.equal(error.code, 'FERRY_BAD_REQUEST');
        assert.match(
          error.message,
          /image ID, local to one Docker engine; a Swarm runtime needs a reference in a registry/,
        );
        assert.match(String(error.hint), new RegExp(`ferry push <dir> --registry ${registry.host}`));
        return true;
      },
    );
    // With an artifact, the artifact is what the nodes get (built once already: the same reference).
    const lines: string[] = [];
    assert.equal(
      await ensureRegistryImage(request({ image: id }), { registry: registry.host }, (l) => lines.push(l)),
      pushed,
    );
    assert.match(lines[0]!, /is local to one engine: using the version's artifact instead/);
  });

  test('a plain-HTTP registry on a private address: https unless marked insecure, then http', async () => {
    const lab = '10.231.0.1:5000';
    const image = `${lab}/ferry/iris@${pushed.slice(pushed.indexOf('@') + 1)}`;
    // Default: HTTPS (only loopback gets plain HTTP by default). Nothing is sent to 10.x: the fetch stops here.
    const refused = countingFetch((() => Promise.reject(new TypeError('fetch failed'))) as typeof fetch);
    await assert.rejects(
      ensureRegistryImage(
        request({ image, artifactDir: null }),
        { registry: lab, fetch: refused.fetch },
        () => {},
      ),
      (error: unknown) => isFerryError(error) && error.code === 'FERRY_CONNECTION_FAILED',
    );
    assert.ok(refused.requests[0]!.url.startsWith(`https://${lab}/v2/`), refused.requests[0]!.url);
    // insecure: plain HTTP; the requests are carried to the test registry on 127.0.0.1 (the only network here).
    const toTestRegistry = ((input: string | URL | Request, init?: RequestInit) =>
      fetch(String(input).replace(`http://${lab}/`, `http://${registry.host}/`), init)) as typeof fetch;
    const counted = countingFetch(toTestRegistry);
    const out = await ensureRegistryImage(
      request({ image, artifactDir: null }),
      { registry: lab, insecure: true, fetch: counted.fetch },
      () => {},
    );
    assert.equal(out, image);
    assert.deepEqual(
      counted.requests.map((r) => r.url.slice(0, r.url.indexOf('/v2/'))),
      [`http://${lab}`],
    );
  });

  test('the gateway image: pushed as ferry-gateway:<version>, pinned by the digest of the build; again, nothing pushed', async () => {
    const counted = countingFetch();
    const lines: string[] = [];
    const started = performance.now();
    const ref = await pushGatewayImage(
      { registry: registry.host, fetch: counted.fetch },
      (l) => lines.push(l),
      {
        base,
      },
    );
    process.stderr.write(
      `# gateway image built and pushed in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    const here = await buildGatewayImage({ base });
    assert.equal(ref, `${registry.host}/ferry-gateway@${here.image.manifestDigest}`);
    assert.ok(counted.writes().length > 0);
    assert.ok(lines.at(-1)!.startsWith(`pushed ${ref}: `), lines.join('\n'));
    const client = new RegistryClient(registry.host);
    assert.equal(
      (await client.getManifest('ferry-gateway', FERRY_VERSION)).digest,
      here.image.manifestDigest,
    );

    const again = countingFetch();
    const againLines: string[] = [];
    assert.equal(
      await pushGatewayImage({ registry: registry.host, fetch: again.fetch }, (l) => againLines.push(l), {
        base,
      }),
      ref,
    );
    assert.deepEqual(again.writes(), []);
    assert.equal(again.requests.length, 1, 'the tag is looked up, nothing else');
    assert.match(againLines.at(-1)!, /has ferry-gateway:\S+ as built already: /);
  });

  test('a registry that is not host[:port] is refused with the form to use', async () => {
    await assert.rejects(
      ensureRegistryImage(request(), { registry: 'myregistry' }, () => {}),
      (error: unknown) => isFerryError(error) && /is not a registry address/.test(error.message),
    );
  });
});
