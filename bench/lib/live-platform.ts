/**
 * A real `ferry up --foreground` for the live benchmarks (bench/cold-start.ts, bench/autoscale.ts --live): its own
 * process on 127.0.0.1, a temporary home, the runtime asked for; a ControlClient on its API. stop() deletes the
 * deployments given, waits for their replicas to go, stops the platform by its PID and removes the home.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/index.ts';
import { createEngine } from '../../src/image/engine/index.ts';
import { log } from './measure.ts';
import { freePort, type RunningProcess, startProcess } from './process.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until true; throws after timeoutMs. */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  pollMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

/** True when a Docker engine answers within 3 s. */
export async function dockerAnswers(): Promise<boolean> {
  return Promise.race([
    createEngine()
      .ping()
      .then(
        () => true,
        () => false,
      ),
    sleep(3000).then(() => false),
  ]);
}

export interface LivePlatform {
  client: ControlClient;
  apiUrl: string;
  gatewayUrl: string;
  process: RunningProcess;
  /** Delete these deployments (their replicas gone, at most 60 s), stop the platform, remove its home. */
  stop(deployments: string[]): Promise<void>;
}

export async function startLivePlatform(opts: {
  runtime: 'process' | 'docker';
  ferryBin: string;
  /** For messages and the temporary home's name. */
  label: string;
  readyTimeoutMs: number;
}): Promise<LivePlatform> {
  const home = await mkdtemp(join(tmpdir(), `ferry-bench-${opts.label.replace(/[^a-z0-9-]/gi, '-')}-`));
  const [apiPort, gatewayPort] = [await freePort(), await freePort()];
  let platform: RunningProcess | undefined;
  let client: ControlClient | undefined;
  const stop = async (deployments: string[]) => {
    // Nothing left behind: the deployments go (their replicas are removed), then the platform (SIGTERM drains
    // and removes what still runs).
    if (client) {
      const c = client;
      for (const name of deployments) {
        await c.deleteDeployment(name).catch(() => undefined);
        await until(
          `no replica of ${name}`,
          async () => (await c.replicas(name).catch(() => [])).length === 0,
          60_000,
          200,
        ).catch(() => undefined);
      }
    }
    await platform?.stop(60_000);
    await rm(home, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    log(
      `${opts.label}: ferry up --foreground --runtime ${opts.runtime} (API :${apiPort}, gateway :${gatewayPort}) from ${opts.ferryBin}`,
    );
    platform = await startProcess({
      name: `ferry up (${opts.label})`,
      command: process.execPath,
      args: [
        opts.ferryBin,
        ...['up', '--foreground', '--runtime', opts.runtime, '--home', home],
        ...['--api-port', String(apiPort), '--gateway-port', String(gatewayPort)],
      ],
      env: { ...process.env, FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'warn' },
      readyUrl: `http://127.0.0.1:${apiPort}/healthz`,
      readyTimeoutMs: opts.readyTimeoutMs,
    });
    // The context (API URL and token) is written just after the API answers.
    const contextFile = join(home, 'context.json');
    await until('context.json', async () => existsSync(contextFile), 10_000);
    const ctx = JSON.parse(readFileSync(contextFile, 'utf8')) as {
      apiUrl: string;
      gatewayUrl: string;
      token: string;
    };
    client = new ControlClient({ url: ctx.apiUrl, token: ctx.token });
    return { client, apiUrl: ctx.apiUrl, gatewayUrl: ctx.gatewayUrl, process: platform, stop };
  } catch (e) {
    await stop([]);
    throw e;
  }
}
