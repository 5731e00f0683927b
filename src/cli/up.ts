/**
 * `ferry up` / `ferry down`: Ferry as a platform on this machine. `up` starts the platform (src/platform) in
 * a background process, waits until it answers, saves the CLI context ($FERRY_HOME/context.json, mode 0600)
 * and prints the URLs and the admin token (once). `down` stops it: replicas are drained and removed, and
 * whatever is still labelled as Ferry's afterwards is removed too, so nothing is left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ControlClient } from '../control/api/client.ts';
import { FerryError, isErrorCode } from '../core/errors.ts';
import { pidAlive } from '../core/pid.ts';
import { DEFAULT_API_PORT, DEFAULT_GATEWAY_PORT } from '../platform/defaults.ts';
import type { RuntimeChoice } from '../platform/index.ts';
import type { Runtime, RuntimeKind } from '../runtime/index.ts';
import { type FerryContext, ferryHomeDir, readContext, writeContext } from './context.ts';
import { action, cliCommand, EXIT_USAGE, intOption } from './output.ts';
import { dashboardUrl } from './ui.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface UpOptions {
  runtime: string;
  apiPort: number;
  gatewayPort: number;
  home: string;
  foreground?: boolean;
  demo?: boolean;
  restart?: boolean;
  allowRegistry?: string[];
  tenantHostSuffix?: string;
  host?: string;
  dockerHost?: string;
  registry?: string;
  insecureRegistry?: boolean;
  advertiseAddress?: string;
}

/** What the background process tells `ferry up` once it listens (over the IPC channel). */
type UpMessage =
  | { ok: true; apiUrl: string; gatewayUrl: string; runtime: RuntimeKind; adminToken: string | null }
  | { ok: false; code?: string; message: string; hint?: string };

export function registerUp(program: Command): void {
  program
    .command('up')
    .description(
      'start Ferry on this machine: control-plane API, gateway, and replicas as containers or processes',
    )
    .option(
      '--runtime <kind>',
      'auto (Docker when an engine answers), process, docker, or swarm (replicas and gateways on a Docker Swarm)',
      'auto',
    )
    .option('--host <address>', 'address the API and gateway listen on', '127.0.0.1')
    .option(
      '--docker-host <address>',
      'swarm: a manager of the swarm, unix:///path or tcp://host:port (default DOCKER_HOST)',
    )
    .option(
      '--registry <host[:port]>',
      'swarm: the registry every node pulls images from (FERRY_REGISTRY)',
      process.env.FERRY_REGISTRY,
    )
    .option('--insecure-registry', 'swarm: the registry speaks plain HTTP (the nodes must allow it too)')
    .option(
      '--advertise-address <address>',
      "swarm: this machine's address as the nodes reach it (default --host), for the gateways' route file",
    )
    .option(
      '--api-port <port>',
      'control-plane API port',
      intOption('--api-port', 0, 65535),
      Number(process.env.FERRY_API_PORT ?? DEFAULT_API_PORT),
    )
    .option(
      '--gateway-port <port>',
      'gateway port',
      intOption('--gateway-port', 0, 65535),
      Number(process.env.FERRY_GATEWAY_PORT ?? DEFAULT_GATEWAY_PORT),
    )
    .option('--home <dir>', 'state directory (FERRY_HOME)', ferryHomeDir())
    .option('--demo', 'also deploy the iris example and print a curl that works')
    .option(
      '--tenant-host-suffix <suffix>',
      'gateway: Host <tenant><suffix> addresses that tenant with plain paths, e.g. .models.example.com (besides /t/<tenant>/)',
    )
    .option(
      '--allow-registry <host>',
      'registries image versions may come from: host[:port] or *.domain, repeatable (FERRY_ALLOWED_REGISTRIES, comma-separated; default: any on an ordinary address)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--foreground', 'run in this process (logs to stdout) instead of in the background')
    .option(
      '--restart',
      'when Ferry runs with another runtime than --runtime asks: stop it (replicas drained and removed) and start it with that runtime',
    )
    .action(
      action(async (options: UpOptions) => {
        const runtime = parseRuntime(options.runtime);
        const home = resolve(options.home);
        if (options.foreground) return runForeground(home, runtime, options);
        let ctx = runningContext(home);
        if (ctx && runtime !== 'auto' && runtime !== ctx.runtime) {
          if (!options.restart)
            throw new FerryError(
              'FERRY_CONFLICT',
              `Ferry is already running with the ${ctx.runtime} runtime (pid ${ctx.pid}), not ${runtime}`,
              {
                hint: `Pass --restart to stop it and start it with --runtime ${runtime} (its deployments come back on ${runtime}), or stop it first: ${cliCommand()} down.`,
              },
            );
          process.stdout.write(
            `Ferry runs with the ${ctx.runtime} runtime; restarting it with ${runtime}.\n`,
          );
          await stopRunning(home, ctx.pid, 120);
          ctx = undefined;
        }
        if (ctx) {
          process.stdout.write(`Ferry is already running (pid ${ctx.pid}, runtime ${ctx.runtime}).\n`);
        } else {
          ctx = await startBackground(home, runtime, options);
        }
        printUp(ctx, home);
        if (options.demo) {
          const { deployDemo } = await import('./demo.ts');
          const client = new ControlClient({ url: ctx.apiUrl, token: ctx.token });
          await deployDemo(client, ctx, (line) => process.stdout.write(`${line}\n`)).catch((error) => {
            process.stderr.write(
              `The demo failed; Ferry itself is still running (stop it with: ${cliCommand()} down).\n`,
            );
            throw error;
          });
        }
      }),
    );

  program
    .command('down')
    .description('stop Ferry: drain and remove every replica, stop the API and the gateway')
    .option('--home <dir>', 'state directory (FERRY_HOME)', ferryHomeDir())
    .option(
      '--timeout <seconds>',
      'how long to wait for a clean stop before killing',
      intOption('--timeout', 1, 3600),
      120,
    )
    .action(
      action(async (options: { home: string; timeout: number }) => {
        const home = resolve(options.home);
        const ctx = readContext(home);
        const running = ctx?.pid !== undefined && platformRunning(ctx.pid) ? ctx.pid : undefined;
        if (running === undefined) process.stdout.write('Ferry is not running.\n');
        const swept = await stopRunning(home, running, options.timeout);
        process.stdout.write(
          `Ferry is down.${swept > 0 ? ` Removed ${swept} leftover replica(s).` : ''} State is kept in ${home}; '${cliCommand()} up' brings the deployments back.\n`,
        );
      }),
    );
}

/**
 * Stops the platform process (SIGTERM: it drains and removes its replicas; SIGKILL after `timeoutS`), removes
 * replicas that outlived it, and clears the pid from the context. Returns how many leftovers were removed.
 */
async function stopRunning(home: string, pid: number | undefined, timeoutS: number): Promise<number> {
  const ctx = readContext(home);
  if (pid !== undefined) {
    process.stdout.write(`Stopping Ferry (pid ${pid}): draining and removing replicas...\n`);
    process.kill(pid, 'SIGTERM');
    if (!(await waitExit(pid, timeoutS * 1000))) {
      process.stderr.write(`Ferry (pid ${pid}) did not stop within ${timeoutS} s; killing it.\n`);
      process.kill(pid, 'SIGKILL');
      await waitExit(pid, 5000);
    }
  }
  const swept = await sweep(home, ctx?.runtime);
  if (ctx) writeContext(home, { ...ctx, pid: undefined });
  return swept;
}

function parseRuntime(value: string): RuntimeChoice {
  if (value === 'auto' || value === 'process' || value === 'docker' || value === 'swarm') return value;
  process.stderr.write(`error: --runtime must be auto, process, docker or swarm, got "${value}"\n`);
  process.exit(EXIT_USAGE);
}

/** The saved context when its background process is still alive. */
function runningContext(home: string): (FerryContext & { pid: number }) | undefined {
  const ctx = readContext(home);
  return ctx?.pid !== undefined && platformRunning(ctx.pid)
    ? (ctx as FerryContext & { pid: number })
    : undefined;
}

/**
 * The saved pid is still a platform process: alive, and (where /proc tells) running `ferry up --foreground`.
 * A pid reused by another program after a reboot is never signalled.
 */
function platformRunning(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return process.platform !== 'linux'; // no /proc to ask: trust the pid
  }
  const args = cmdline.split('\0');
  return args.includes('up') && args.includes('--foreground');
}

async function startBackground(
  home: string,
  runtime: RuntimeChoice,
  options: UpOptions,
): Promise<FerryContext & { pid: number }> {
  const previous = readContext(home);
  const logPath = join(home, 'ferry.log');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const out = openSync(logPath, 'a');
  const args = [
    join(REPO_ROOT, 'bin', 'ferry.js'),
    'up',
    '--foreground',
    '--runtime',
    runtime,
    '--api-port',
    String(options.apiPort),
    '--gateway-port',
    String(options.gatewayPort),
    '--home',
    home,
    ...(options.allowRegistry ?? []).flatMap((r) => ['--allow-registry', r]),
    ...(options.tenantHostSuffix ? ['--tenant-host-suffix', options.tenantHostSuffix] : []),
    ...(options.host ? ['--host', options.host] : []),
    ...(options.dockerHost ? ['--docker-host', options.dockerHost] : []),
    ...(options.registry ? ['--registry', options.registry] : []),
    ...(options.insecureRegistry ? ['--insecure-registry'] : []),
    ...(options.advertiseAddress ? ['--advertise-address', options.advertiseAddress] : []),
  ];
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', out, out, 'ipc'],
      env: { ...process.env, FERRY_UP_CHILD: previous?.token ? '1' : 'rotate' },
    });
  } finally {
    closeSync(out);
  }
  process.stdout.write(`Starting Ferry (logs: ${logPath})...\n`);
  const message = await new Promise<UpMessage>((res) => {
    child.once('message', (m) => res(m as UpMessage));
    child.once('exit', (code) =>
      res({
        ok: false,
        message: `Ferry exited during start (code ${code}); last log lines:\n${tail(logPath, 20)}`,
      }),
    );
  });
  child.removeAllListeners('exit');
  if (!message.ok) {
    if (child.pid !== undefined && pidAlive(child.pid)) child.kill('SIGKILL');
    throw new FerryError(
      isErrorCode(message.code) ? message.code : 'FERRY_INTERNAL',
      message.message,
      message.hint ? { hint: message.hint } : {},
    );
  }
  child.disconnect();
  child.unref();
  const token = message.adminToken ?? previous?.token;
  if (!token) throw new FerryError('FERRY_INTERNAL', 'Ferry started but no admin token is known to the CLI');
  const ctx = {
    apiUrl: message.apiUrl,
    gatewayUrl: message.gatewayUrl,
    runtime: message.runtime,
    token,
    pid: child.pid as number,
  };
  writeContext(home, ctx);
  if (message.adminToken) (ctx as FerryContext & { fresh?: boolean }).fresh = true;
  return ctx;
}

async function runForeground(home: string, runtime: RuntimeChoice, options: UpOptions): Promise<void> {
  const { default: pino } = await import('pino');
  const { startPlatform } = await import('../platform/index.ts');
  const logger = pino({
    level: process.env.FERRY_LOG_LEVEL ?? 'info',
    redact: ['req.headers.authorization'],
  });
  const send = (m: UpMessage) => process.send?.(m);
  let platform: Awaited<ReturnType<typeof startPlatform>>;
  try {
    platform = await startPlatform({
      home,
      runtime,
      apiPort: options.apiPort,
      gatewayPort: options.gatewayPort,
      ...(options.allowRegistry ? { allowedRegistries: options.allowRegistry } : {}),
      ...(options.tenantHostSuffix ? { tenantHostSuffix: options.tenantHostSuffix } : {}),
      ...(options.host ? { host: options.host } : {}),
      ...(runtime === 'swarm' && options.registry
        ? {
            swarm: {
              registry: options.registry,
              ...(options.dockerHost ? { dockerHost: options.dockerHost } : {}),
              ...(options.insecureRegistry ? { insecureRegistry: true } : {}),
              ...(options.advertiseAddress ? { advertiseAddress: options.advertiseAddress } : {}),
            },
            onProgress: (line: string) => logger.info(line),
          }
        : {}),
      logger,
      adminToken:
        process.env.FERRY_UP_CHILD === 'rotate' || (process.send === undefined && !readContext(home)?.token)
          ? 'rotate'
          : 'if-missing',
    });
  } catch (error) {
    const e = error as FerryError;
    send({
      ok: false,
      ...(e.code ? { code: e.code } : {}),
      message: e.message,
      ...(e.hint ? { hint: e.hint } : {}),
    });
    throw error;
  }
  if (process.send) {
    send({
      ok: true,
      apiUrl: platform.apiUrl,
      gatewayUrl: platform.gatewayUrl,
      runtime: platform.runtime.kind,
      adminToken: platform.adminToken,
    });
  } else {
    const previous = readContext(home);
    const token = platform.adminToken ?? previous?.token ?? '';
    const ctx = {
      apiUrl: platform.apiUrl,
      gatewayUrl: platform.gatewayUrl,
      runtime: platform.runtime.kind,
      token,
      pid: process.pid,
    };
    writeContext(home, ctx);
    printUp({ ...ctx, ...(platform.adminToken ? { fresh: true } : {}) } as FerryContext, home);
    if (options.demo) {
      const { deployDemo } = await import('./demo.ts');
      await deployDemo(new ControlClient({ url: ctx.apiUrl, token }), ctx, (l) => logger.info(l));
    }
  }
  let stopping = false;
  const stop = (removeReplicas: boolean, signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, removeReplicas }, 'stopping Ferry');
    void platform.stop({ removeReplicas }).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop(true, 'SIGTERM'));
  process.on('SIGINT', () => stop(true, 'SIGINT'));
  // SIGUSR2: stop the control plane but keep the replicas running, for the next start to adopt (upgrades).
  process.on('SIGUSR2', () => stop(false, 'SIGUSR2'));
}

function printUp(ctx: FerryContext & { fresh?: boolean }, home: string): void {
  const lines = [
    `Ferry is up (runtime: ${ctx.runtime})`,
    `  API:      ${ctx.apiUrl}   (OpenAPI: ${ctx.apiUrl}/openapi.json)`,
    `  Gateway:  ${ctx.gatewayUrl}   (models at ${ctx.gatewayUrl}/v2/models/<deployment>/infer)`,
    `  Dashboard: ${dashboardUrl(ctx.apiUrl)}`,
  ];
  if (ctx.fresh) {
    lines.push(`  Admin token (shown once; only its hash is stored): ${ctx.token}`);
    lines.push(`  The ferry CLI uses it from ${join(home, 'context.json')} (mode 0600).`);
    lines.push(`  Signed in as admin (the token rides in the #fragment, never sent to a server):`);
    lines.push(`    ${dashboardUrl(ctx.apiUrl, ctx.token)}`);
  } else {
    lines.push(
      `  The ferry CLI's token is in ${join(home, 'context.json')}; ${cliCommand()} ui --open signs a browser in.`,
    );
  }
  lines.push(`  Stop with: ${cliCommand()} down`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Removes replicas labelled as Ferry's that outlived the platform (a killed control plane, a failed stop). */
async function sweep(home: string, runtimeKind: RuntimeKind | undefined): Promise<number> {
  // Swarm: the platform's stop removed what it made; its replicas never outlive it on this machine.
  if (runtimeKind === 'swarm') return 0;
  const { chooseRuntime, platformId } = await import('../platform/index.ts');
  const kinds: RuntimeChoice[] = runtimeKind === 'docker' ? ['docker', 'process'] : ['process', 'docker'];
  let removed = 0;
  for (const kind of kinds) {
    let runtime: Runtime;
    try {
      runtime = (await chooseRuntime(kind, home)).runtime;
    } catch {
      continue; // no engine: nothing of ours can run there
    }
    if (runtime.kind !== kind) continue;
    const left = await runtime.list({
      'ferry.dev/managed-by': 'ferry',
      'ferry.dev/platform': platformId(home),
    });
    await Promise.all(left.map((r) => runtime.remove(r.id, 5000)));
    removed += left.length;
  }
  return removed;
}

async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !pidAlive(pid);
}

function tail(path: string, n: number): string {
  if (!existsSync(path)) return '(no log)';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
}
