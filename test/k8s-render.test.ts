/**
 * `ferry k8s render` end to end: a model directory to YAML on stdout and to files with a kustomization.yaml that
 * `kubectl kustomize` (offline; kubectl is the real client) reads back into the same objects.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { runCli, tempDir } from './helpers.ts';

const tmp = tempDir('ferry-k8s-render-');
after(() => tmp.remove());

const IMAGE = `reg.example.com/ml/iris@sha256:${'b'.repeat(64)}`;
const GATEWAY = `reg.example.com/ferry/gateway@sha256:${'c'.repeat(64)}`;
const args = [
  'k8s',
  'render',
  'examples/iris',
  '--image',
  IMAGE,
  '--gateway-image',
  GATEWAY,
  '--tenant',
  'ml',
];

const key = (o: { kind: string; metadata: { name: string } }) => `${o.kind}/${o.metadata.name}`;

test('iris to YAML on stdout and to a kustomize directory that kubectl reads back into the same objects', async (t) => {
  const stdout = await runCli(args);
  assert.equal(stdout.code, 0, stdout.stderr);
  const objects = parseAllDocuments(stdout.stdout).map((d) => d.toJS());
  assert.ok(
    objects.some((o) => key(o) === 'Deployment/iris-r1'),
    stdout.stdout.slice(0, 500),
  );
  assert.ok(objects.every((o) => o.kind === 'Namespace' || o.metadata.namespace === 'ferry-ml'));
  const iris = objects.find((o) => key(o) === 'Deployment/iris-r1');
  assert.equal(iris.spec.template.spec.containers[0].image, IMAGE);

  const dir = join(tmp.path, 'out');
  const files = await runCli([...args, '-o', dir]);
  assert.equal(files.code, 0, files.stderr);
  assert.match(files.stdout, /wrote \d+ objects and kustomization\.yaml/);
  assert.ok(readdirSync(dir).includes('kustomization.yaml'));
  if (spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status !== 0) {
    t.skip('kubectl is not installed: kustomize not checked');
    return;
  }
  const kustomized = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  assert.equal(kustomized.status, 0, kustomized.stderr);
  const back = parseAllDocuments(kustomized.stdout).map((d) => d.toJS());
  const byKey = (list: typeof objects) => new Map(list.map((o) => [key(o), o]));
  assert.deepEqual(byKey(back), byKey(objects), 'kubectl kustomize gives back the objects rendered');
});

test('without --image or a ferry.yaml: a clear error, no stack', async () => {
  const noImage = await runCli(['k8s', 'render', 'examples/iris', '--gateway-image', GATEWAY]);
  assert.notEqual(noImage.code, 0);
  assert.match(noImage.stderr, /--image <ref>/);
  const noSpec = await runCli(['k8s', 'render', tmp.path, '--image', IMAGE, '--gateway-image', GATEWAY]);
  assert.equal(noSpec.code, 2, noSpec.stderr);
  assert.match(noSpec.stderr, /FERRY_SPEC_NOT_FOUND/);
  assert.doesNotMatch(noSpec.stderr, /^\s+at .+[:(]/m);
});

test('both examples render to objects that pass every offline check (ferry k8s render refuses any that does not)', async () => {
  const { objectProblems } = await import('../src/k8s/validate.ts');
  for (const example of ['iris', 'ocr']) {
    const result = await runCli(['k8s', 'render', `examples/${example}`, '--image', IMAGE]);
    assert.equal(result.code, 0, result.stderr);
    const objects = parseAllDocuments(result.stdout).map((d) => d.toJS());
    assert.deepEqual(objectProblems(objects), [], example);
    assert.ok(
      objects.some((o) => key(o) === `Deployment/${example}-r1`),
      example,
    );
    // The gateway's image defaults to the one `ferry gateway-image` builds.
    const gateway = objects.find((o) => key(o) === 'Deployment/ferry-gateway');
    assert.match(gateway.spec.template.spec.containers[0].image, /^ferry-gateway:\d/);
  }
});
