/** `ferry test`: replay a model's examples against a server (or an image) and print a pass/fail table. */
import type { Command } from 'commander';
import type { ExampleResult } from '../client/index.ts';
import { FerryError } from '../core/errors.ts';
import { action, intOption } from './output.ts';

interface TestOptions {
  dir: string;
  url?: string;
  port: number;
}

export function registerTest(program: Command): void {
  program
    .command('test')
    .description(
      "replay the examples of a model's ferry.yaml against a server, or against an image it starts, and compare",
    )
    .argument(
      '[image]',
      'image to start (hardened, 127.0.0.1) and test; without it, test the server at --url',
    )
    .option('-d, --dir <dir>', 'model directory whose ferry.yaml has the examples', '.')
    .option('-u, --url <url>', 'server to test', process.env.FERRY_URL ?? 'http://127.0.0.1:8080')
    .option('-p, --port <port>', 'port for the image on 127.0.0.1', intOption('--port', 1, 65535), 18080)
    .action(
      action(async (image: string | undefined, options: TestOptions) => {
        const { OipClient, replayExamples } = await import('../client/index.ts');
        const { createEngine, startImage } = await import('../image/index.ts');
        const { loadSpec } = await import('../spec/index.ts');
        const { spec } = await loadSpec(options.dir);
        if (spec.examples.length === 0) {
          throw new FerryError('FERRY_SPEC_INVALID', `${options.dir}/ferry.yaml has no examples to test`, {
            hint: 'Add examples with a request and an expected response (docs/spec.md, "examples").',
          });
        }
        let results: ExampleResult[];
        if (image === undefined) {
          const client = new OipClient(options.url ?? 'http://127.0.0.1:8080');
          results = await replayExamples(client, spec.model.name, spec.model.version, spec.examples);
        } else {
          const started = performance.now();
          const running = await startImage(createEngine(), { image, port: options.port });
          process.stderr.write(
            `${image} ready in ${((performance.now() - started) / 1000).toFixed(1)} s at ${running.url}\n`,
          );
          try {
            results = await replayExamples(
              new OipClient(running.url),
              spec.model.name,
              spec.model.version,
              spec.examples,
            );
          } finally {
            await running.stop();
          }
        }
        printResults(results);
        if (results.some((r) => !r.passed)) process.exitCode = 1;
      }),
    );
}

export function printResults(results: ExampleResult[]): void {
  const width = Math.max(7, ...results.map((r) => r.name.length));
  const lines = [`${'example'.padEnd(width)}  result  ms`];
  for (const r of results) {
    lines.push(`${r.name.padEnd(width)}  ${r.passed ? 'pass  ' : 'FAIL  '}  ${r.ms.toFixed(1)}`);
    if (r.error) lines.push(`  ${r.error}`);
    for (const m of r.mismatches) lines.push(`  ${m.path}: expected ${m.expected}, got ${m.actual}`);
  }
  const failed = results.filter((r) => !r.passed).length;
  lines.push('', `${results.length - failed} passed, ${failed} failed`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
