/** `ferry predict <model> --input file.json`: send one request to a running server and print the answer. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { FerryError } from '../core/errors.ts';
import { action } from './output.ts';

interface PredictOptions {
  input: string;
  url: string;
  modelVersion?: string;
  binary?: boolean;
  v1?: boolean;
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('send an inference request (OIP JSON file) to a server and print the response')
    .argument('<model>', 'model name')
    .requiredOption(
      '-i, --input <file>',
      'request body: OIP JSON ({"inputs": [...]}), or {"instances": [...]} with --v1',
    )
    .option('-u, --url <url>', 'server URL', process.env.FERRY_URL ?? 'http://127.0.0.1:8080')
    .option('--model-version <version>', 'model version (default: the server picks the newest ready one)')
    .option('--binary', 'send and receive tensors with the binary tensor extension')
    .option('--v1', 'use the KServe v1 predict endpoint')
    .action(
      action(async (model: string, options: PredictOptions) => {
        const { OipClient } = await import('../client/index.ts');
        const { decodeInferRequest, encodeInferResponse } = await import('../protocol/index.ts');
        let text: string;
        try {
          text = await readFile(options.input, 'utf8');
        } catch (error) {
          throw new FerryError(
            'FERRY_FILE_NOT_FOUND',
            `cannot read --input ${options.input}: ${(error as Error).message}`,
          );
        }
        const client = new OipClient(options.url);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch (error) {
          throw new FerryError(
            'FERRY_BAD_REQUEST',
            `--input ${options.input} is not JSON: ${(error as Error).message}`,
          );
        }
        if (options.v1) {
          const instances = (body as { instances?: unknown[] }).instances;
          if (!Array.isArray(instances)) {
            throw new FerryError(
              'FERRY_BAD_REQUEST',
              `--input ${options.input} has no "instances" array (needed with --v1)`,
            );
          }
          print(await client.predictV1(model, instances));
          return;
        }
        if (!options.binary) {
          print(await client.inferJson(model, body, options.modelVersion));
          return;
        }
        const request = decodeInferRequest(
          Buffer.from(text),
          { contentType: 'application/json' },
          { maxBodyBytes: Number.MAX_SAFE_INTEGER },
        );
        const response = await client.infer(model, request, {
          version: options.modelVersion,
          binary: true,
          binaryOutputs: true,
        });
        print(JSON.parse(encodeInferResponse(response, undefined).body.toString('utf8')));
      }),
    );
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
