/** `ferry serve [dir...]`: run the model server on model directories. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { FerryError, isFerryError } from '../core/errors.ts';
import { EXIT_MODEL_LOAD_FAILED, FAIL_ON_LOAD_ERROR_ENV } from '../core/replica.ts';
import type { ModelVersion } from '../server/index.ts';
import { SERVING_OVERRIDES_ENV } from '../spec/defaults.ts';
import { action, intOption, printError } from './output.ts';

interface ServeOptions {
  host: string;
  port: number;
  socket?: string;
  watch?: boolean;
  demo?: boolean;
  shutdownTimeout: number;
  serving?: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve models over the Open Inference Protocol (v2 REST, binary tensors) and KServe v1')
    .argument('[paths...]', 'model directories (with a ferry.yaml) or a directory of them', ['.'])
    .option('--host <host>', 'address to bind', process.env.FERRY_HOST ?? '127.0.0.1')
    .option(
      '-p, --port <port>',
      'port to listen on (0 = any free port)',
      intOption('--port', 0, 65535),
      Number(process.env.FERRY_PORT ?? 8080),
    )
    .option(
      '--socket <path>',
      'listen on this unix socket (absolute path, mode 0600, removed on exit) instead of --host/--port',
    )
    .option('-w, --watch', 'reload a model when its files change')
    .option(
      '--serving <json>',
      `serving options as JSON, merged over each ferry.yaml's serving section (default: $${SERVING_OVERRIDES_ENV})`,
      process.env[SERVING_OVERRIDES_ENV] || undefined,
    )
    .option('--demo', 'print ready-to-run curl commands for the first model once it is ready')
    .option(
      '--shutdown-timeout <seconds>',
      'how long draining may take on SIGTERM',
      intOption('--shutdown-timeout', 0, 3600),
      30,
    )
    .action(
      action(async (paths: string[], options: ServeOptions, command: Command) => {
        // Bad options are refused before any worker starts: a process that exits while a worker is still setting
        // up onnxruntime can abort in native code instead of exiting with its own code.
        const overrides =
          options.serving === undefined
            ? undefined
            : (await import('../spec/index.ts')).parseServingOverrides(
                options.serving,
                command.getOptionValueSource('serving') === 'cli' ? '--serving' : SERVING_OVERRIDES_ENV,
              );
        if (overrides !== undefined && 'problem' in overrides)
          throw new FerryError('FERRY_SPEC_INVALID', overrides.problem, {
            hint: 'e.g. --serving \'{"batching":{"maxBatchSize":32},"timeout":"5s"}\'',
          });
        // The model's first inference worker starts now, beside the loading of the server's modules (preload.ts).
        const preload = await import('../server/worker/preload.ts');
        if (paths.length === 1) preload.preloadWorker(resolve(paths[0]!));
        const { startServer } = await import('../server/index.ts');
        let server: Awaited<ReturnType<typeof startServer>>;
        try {
          server = await startServer({
            ...(overrides ? { servingOverrides: overrides.value } : {}),
            paths,
            host: options.host,
            port: options.port,
            ...(options.socket === undefined ? {} : { socketPath: resolve(options.socket) }),
            watch: options.watch ?? false,
            shutdownTimeoutMs: options.shutdownTimeout * 1000,
            failOnLoadError: process.env[FAIL_ON_LOAD_ERROR_ENV] === '1',
          });
        } catch (error) {
          // A replica whose model cannot load says why on its last line and exits with its own code.
          if (!isFerryError(error) || error.code !== 'FERRY_MODEL_LOAD_FAILED') throw error;
          printError(error);
          await preload.preloadSettled();
          process.exit(EXIT_MODEL_LOAD_FAILED);
        }
        let signals = 0;
        const stop = (signal: string) => {
          if (++signals > 1) process.exit(130);
          server.logger.info({ signal }, 'shutting down');
          // Exit 1 when the deadline cut requests off, so supervisors and CI can tell.
          void server.close().then((clean) => process.exit(clean ? 0 : 1));
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
        if (options.demo) printDemo(server.url, server.repository.all());
      }),
    );
}

function printDemo(url: string, versions: ModelVersion[]): void {
  const ready = versions.find((v) => v.state === 'READY');
  const lines = ['', `Ferry is serving at ${url}`];
  if (!ready) {
    lines.push('No model is ready; see the log above for why.');
  } else {
    const example = ready.spec.examples[0];
    const body = JSON.stringify(example?.request ?? { inputs: [] });
    lines.push(
      `Model "${ready.name}" version ${ready.version} is ready. Try:`,
      '',
      `  curl -s ${url}/v2/models/${ready.name}/infer -H 'content-type: application/json' -d ${shellQuote(body)}`,
      '',
      `  curl -s ${url}/v2/models/${ready.name}          # inputs and outputs`,
      `  curl -s ${url}/metrics | grep ferry_            # Prometheus metrics`,
      '',
      'Press Ctrl+C to stop (in-flight requests finish first).',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

/** Single-quotes a string for POSIX shells ('it'\''s'). */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
