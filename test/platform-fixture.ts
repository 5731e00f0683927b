/**
 * Shared by the platform tests: the platform started in this process as they start it, and examples/iris deployed
 * on it. Apart from test/helpers.ts, which stays free of the platform's imports (store, runtimes, controller).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addVersionFromDir } from '../src/cli/upload.ts';
import { ControlClient, type DeployInput } from '../src/control/index.ts';
import { type Platform, type PlatformOptions, startPlatform } from '../src/platform/index.ts';
import { ROOT, until } from './helpers.ts';

export const IRIS = join(ROOT, 'examples', 'iris');
/** One inference request examples/iris answers 200. */
export const IRIS_BODY = readFileSync(join(IRIS, 'requests', 'setosa.json'));

export interface TestPlatform {
  platform: Platform;
  /** A client with the admin token. */
  client: ControlClient;
}

/**
 * Starts the platform on `home` as the platform tests do: process runtime, free ports, a 500 ms resync, draining
 * and stopping replicas bounded to 10 s each. `overrides` win; an override of undefined leaves the platform's
 * default. The admin token is the one this start created (the first start on `home`), else `token` (a restart
 * on the same home); one of them there must be.
 */
export async function startTestPlatform(
  home: string,
  overrides: Partial<Omit<PlatformOptions, 'home'>> = {},
  token?: string,
): Promise<TestPlatform & { token: string }> {
  const platform = await startPlatform({
    home,
    runtime: 'process',
    apiPort: 0,
    gatewayPort: 0,
    resyncMs: 500,
    drainTimeoutMs: 10_000,
    stopGraceMs: 10_000,
    ...overrides,
  });
  const admin = platform.adminToken ?? token;
  assert.ok(admin, 'the first start creates the admin token');
  return { platform, client: new ControlClient({ url: platform.apiUrl, token: admin }), token: admin };
}

export interface DeployIrisOptions extends Partial<Omit<DeployInput, 'model' | 'version'>> {
  /**
   * Version 1 of model iris is this image (the docker runtime's replicas); without it, examples/iris uploaded
   * (addVersionFromDir).
   */
  image?: string;
  /**
   * What to wait for after the deploy: nothing; `ready`, as many ready replicas of revision 1 as `replicas` (1 if
   * not given); `served` (the default), that and then a 200 from the gateway for IRIS_BODY.
   */
  wait?: 'none' | 'ready' | 'served';
}

/**
 * Creates model iris with version 1 and deploys that (name `iris`, public, unless `options` say otherwise) through
 * `client`; then waits as `options.wait` says. `platform` gives the gateway to wait on.
 */
export async function deployIris(
  { platform, client }: TestPlatform,
  { image, wait = 'served', ...deploy }: DeployIrisOptions = {},
): Promise<void> {
  const input: DeployInput = { name: 'iris', model: 'iris', version: '1', public: true, ...deploy };
  await client.createModel('iris');
  if (image === undefined) await addVersionFromDir(client, 'iris', '1', IRIS);
  else await client.addVersion('iris', { version: '1', image });
  await client.deploy(input);
  if (wait === 'none') return;
  const replicas = input.replicas ?? 1;
  await until(
    `${replicas} ready replica(s)`,
    async () =>
      (await client.replicas(input.name)).filter((r) => r.revision === 1 && r.state === 'ready').length ===
      replicas,
  );
  if (wait === 'ready') return;
  const infer = `${platform.gatewayUrl}/v2/models/${input.name}/infer`;
  await until('the gateway serves', async () => {
    const res = await fetch(infer, {
      method: 'POST',
      body: IRIS_BODY,
      headers: { 'content-type': 'application/json' },
    });
    await res.arrayBuffer();
    return res.status === 200;
  });
}
