import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../core/errors.ts';
import { renderDockerfile } from './dockerfile.ts';
import { planImage } from './plan.ts';
import { checkGolden, exampleInput, showPath } from './testdata/golden.ts';

const BASE = 'localhost:5000/ferry/base:node20';

function renderContext(context: ReturnType<typeof renderDockerfile>['context']): string {
  return context
    .map((e) => {
      const head = `${e.type} 0${e.mode.toString(8)} ${e.path}`;
      if (e.type === 'dir') return head;
      return `${head} <- ${e.source instanceof Uint8Array ? `inline (${e.source.length} bytes)` : showPath(e.source.file)}`;
    })
    .join('\n')
    .concat('\n');
}

for (const example of ['iris', 'ocr'] as const) {
  test(`${example}: the ejected Dockerfile and context match the golden files`, async () => {
    const ejected = renderDockerfile(planImage(await exampleInput(example)), { base: BASE });
    checkGolden(`${example}.Dockerfile`, ejected.dockerfile);
    checkGolden(`${example}.context.txt`, renderContext(ejected.context));
  });
}

test('one COPY per plan layer, in plan order, root-owned; the context holds every file of the plan', async () => {
  const plan = planImage(await exampleInput('ocr'));
  const { dockerfile, context } = renderDockerfile(plan, { base: BASE });
  const copies = dockerfile.split('\n').filter((l) => l.startsWith('COPY '));
  assert.deepEqual(
    copies,
    plan.layers.map((l, i) => `COPY --chown=0:0 layers/${i + 1}-${l.name}/ /`),
  );
  assert.doesNotMatch(dockerfile, /--chmod/, 'the classic builder of Docker 20.10 has no --chmod');
  assert.doesNotMatch(dockerfile, /^RUN /m, 'the base image may have no shell');
  const files = new Set(context.filter((e) => e.type === 'file').map((e) => e.path));
  plan.layers.forEach((l, i) => {
    for (const e of l.entries)
      assert.ok(e.type !== 'file' || files.has(`layers/${i + 1}-${l.name}/${e.path}`));
  });
  for (const e of context) {
    const layerRoot = /^layers(\/[^/]+)?$/.test(e.path);
    assert.equal(e.mode, e.type === 'file' ? 0o444 : layerRoot ? 0o755 : 0o555, e.path);
  }
});

test('ENV and LABEL values are quoted so that Docker substitutes nothing', async () => {
  const input = await exampleInput('iris');
  input.spec = structuredClone(input.spec);
  input.spec.env = { GREETING: 'say "hi" to $USER \\o/' };
  const { dockerfile } = renderDockerfile(planImage(input), { base: BASE });
  assert.match(dockerfile, /GREETING="say \\"hi\\" to \\\$USER \\\\o\/"/);
  input.spec.env = { MULTI: 'a\nb' };
  assert.throws(
    () => renderDockerfile(planImage(input), { base: BASE }),
    (e: unknown) => isFerryError(e) && e.code === 'FERRY_SPEC_INVALID' && /env\.MULTI/.test(e.message),
  );
});

test('a base that is not an image reference is refused', async () => {
  const plan = planImage(await exampleInput('iris'));
  assert.throws(
    () => renderDockerfile(plan, { base: 'node:20\nRUN rm -rf /' }),
    (e: unknown) => isFerryError(e) && e.code === 'FERRY_BAD_REQUEST',
  );
});
