/**
 * The gateway image's plan (pure), and its bundle run by node alone from a directory outside the repository
 * (nothing resolves to the repository's node_modules): the command line it parses is `ferry gateway`'s.
 * Running it against a model server, and the image on Docker: test/gateway-image.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { render } from '../k8s/render.ts';
import { irisInput } from '../k8s/testdata/fixtures.ts';
import { bundleGateway } from './bundle.ts';
import { DEFAULT_GATEWAY_IMAGE, GATEWAY_ARGS, planGatewayImage } from './gateway.ts';

const PLAN_INPUT = {
  bundle: { path: 'gateway.mjs', file: '/build/gateway.mjs' },
  ferryVersion: '9.8.7',
  created: '2021-03-04T05:06:07Z',
  baseRef: 'ferry-base:node20.0.0',
};

test('the plan: one layer with /app/gateway.mjs, root-owned and read-only', () => {
  const plan = planGatewayImage(PLAN_INPUT);
  assert.equal(plan.layers.length, 1);
  assert.equal(plan.layers[0]!.name, 'gateway');
  assert.deepEqual(plan.layers[0]!.entries, [
    { type: 'dir', path: 'app', mode: 0o555, uid: 0, gid: 0 },
    {
      type: 'file',
      path: 'app/gateway.mjs',
      mode: 0o444,
      uid: 0,
      gid: 0,
      source: { file: '/build/gateway.mjs' },
    },
  ]);
});

test('the config: node runs the bundle as 65532 with the gateway arguments; labels; health on /v2/health/live', () => {
  const { config } = planGatewayImage({
    ...PLAN_INPUT,
    source: 'https://example.invalid/ferry.git',
    revision: 'abc',
  });
  assert.equal(config.User, '65532:65532');
  assert.deepEqual(config.Entrypoint, ['node', '/app/gateway.mjs']);
  assert.deepEqual(config.Cmd, [
    'gateway',
    '--routes',
    '/etc/ferry/routes.json',
    '--host',
    '0.0.0.0',
    '--port',
    '8080',
  ]);
  assert.deepEqual(config.Env, ['NODE_ENV=production']);
  assert.deepEqual(config.ExposedPorts, { '8080/tcp': {} });
  assert.equal(config.StopSignal, 'SIGTERM');
  assert.match(config.Healthcheck.Test.join(' '), /127\.0\.0\.1:8080\/v2\/health\/live/);
  assert.deepEqual(config.Labels, {
    'dev.ferry.component': 'gateway',
    'dev.ferry.version': '9.8.7',
    'org.opencontainers.image.base.name': 'ferry-base:node20.0.0',
    'org.opencontainers.image.created': '2021-03-04T05:06:07Z',
    'org.opencontainers.image.description':
      "Ferry's gateway alone: routes from a file, replicas found by DNS (ferry gateway --routes <file>)",
    'org.opencontainers.image.revision': 'abc',
    'org.opencontainers.image.source': 'https://example.invalid/ferry.git',
    'org.opencontainers.image.title': 'ferry-gateway',
    'org.opencontainers.image.version': '9.8.7',
  });
  // Without git facts, no source or revision label (never an empty one).
  const bare = planGatewayImage(PLAN_INPUT).config.Labels;
  assert.equal(bare['org.opencontainers.image.source'], undefined);
  assert.equal(bare['org.opencontainers.image.revision'], undefined);
});

test("the image's Cmd is the Kubernetes renderer's gateway args, and its default tag ferry-gateway:<version>", () => {
  const objects = render([irisInput()], { gatewayImage: DEFAULT_GATEWAY_IMAGE });
  const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'ferry-gateway') as
    | { spec: { template: { spec: { containers: Array<{ image: string; args: string[] }> } } } }
    | undefined;
  assert.ok(deployment, 'the renderer makes a ferry-gateway Deployment');
  const container = deployment.spec.template.spec.containers[0]!;
  assert.deepEqual(container.args, [...GATEWAY_ARGS]);
  assert.equal(container.image, DEFAULT_GATEWAY_IMAGE);
  assert.match(DEFAULT_GATEWAY_IMAGE, /^ferry-gateway:\d+\.\d+\.\d+/);
});

// ---------------------------------------------------------------------------------------------------------
// The bundle, run by node from a directory outside the repository, with an environment of PATH only.

let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-gateway-bundle-'));
  await bundleGateway({ outDir: dir });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function runBundle(args: string[]) {
  const r = spawnSync(process.execPath, ['gateway.mjs', ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the bundle alone: its one command is gateway, with the options of `ferry gateway`', () => {
  const help = runBundle(['--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^ {2}gateway \[options\]/m);
  assert.doesNotMatch(help.stdout, /^ {2}(serve|build|up|deploy) /m);
  const gatewayHelp = runBundle(['gateway', '--help']);
  assert.equal(gatewayHelp.code, 0, gatewayHelp.stderr);
  for (const option of [
    '--routes <file>',
    '--host <host>',
    '--port <port>',
    '--dns-server',
    '--resolve-every',
  ])
    assert.ok(gatewayHelp.stdout.includes(option), `gateway --help lists ${option}`);
});

test('the bundle alone: usage errors exit 2, a missing route file exits 1 naming it', () => {
  const unknown = runBundle(['serve', '.']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'serve'/);
  const noRoutes = runBundle(['gateway']);
  assert.equal(noRoutes.code, 2);
  assert.match(noRoutes.stderr, /--routes <file>/);
  const missing = runBundle(['gateway', '--routes', join(dir, 'nope.json'), '--port', '0']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /FERRY_FILE_NOT_FOUND.*nope\.json/);
});
