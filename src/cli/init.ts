/** `ferry init [dir] --from model.onnx`: write a ferry.yaml (and a sample request) for an ONNX model. */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { FerryError } from '../core/errors.ts';
import { action, cliCommand } from './output.ts';

interface InitOptions {
  from?: string;
  name?: string;
  force?: boolean;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description(
      'write a ferry.yaml and a sample request for a model (reads inputs and outputs from an ONNX file)',
    )
    .argument('[dir]', 'model directory', '.')
    .option('--from <model.onnx>', 'ONNX model to describe (copied into dir when it lives elsewhere)')
    .option('--name <name>', 'model name (default: from the file name)')
    .option('-f, --force', 'overwrite an existing ferry.yaml')
    .action(
      action(async (dirArg: string, options: InitOptions) => {
        const { openSession, specsFromSession } = await import('../server/backends/onnx-tensors.ts');
        const { modelNameFromFile, renderInitialSpec, sampleRequest } = await import('../spec/index.ts');
        const dir = resolve(dirArg);
        const specPath = join(dir, 'ferry.yaml');
        if (existsSync(specPath) && !options.force) {
          throw new FerryError('FERRY_BAD_REQUEST', `${specPath} already exists`, {
            hint: 'Pass --force to overwrite it.',
          });
        }
        if (!options.from) {
          throw new FerryError('FERRY_BAD_REQUEST', 'ferry init needs --from <model.onnx>', {
            hint: 'For a handler model, start from examples/ocr/ferry.yaml.',
          });
        }
        const source = resolve(options.from);
        if (!existsSync(source))
          throw new FerryError('FERRY_FILE_NOT_FOUND', `--from ${options.from} does not exist`);
        const session = await openSession(source, 1);
        const inputs = specsFromSession(session.inputMetadata, 'input');
        const outputs = specsFromSession(session.outputMetadata, 'output');
        await session.release();

        await mkdir(join(dir, 'requests'), { recursive: true });
        let file = relative(dir, source);
        if (file.startsWith('..')) {
          file = basename(source);
          await copyFile(source, join(dir, file));
        }
        const name = options.name ?? modelNameFromFile(source);
        await writeFile(
          specPath,
          renderInitialSpec({ name, file, inputs, outputs, requestFile: 'requests/sample.json' }),
        );
        await writeFile(
          join(dir, 'requests', 'sample.json'),
          `${JSON.stringify(sampleRequest(inputs), null, 2)}\n`,
        );
        process.stdout.write(
          [
            `Wrote ${relative(process.cwd(), specPath) || specPath} for model "${name}":`,
            ...inputs.map((t) => `  input  ${t.name} ${t.datatype} [${t.shape.join(', ')}]`),
            ...outputs.map((t) => `  output ${t.name} ${t.datatype} [${t.shape.join(', ')}]`),
            `and ${join(relative(process.cwd(), dir) || '.', 'requests', 'sample.json')}. Next:`,
            `  ${cliCommand()} serve ${relative(process.cwd(), dir) || '.'}`,
            `  ${cliCommand()} predict ${name} --input ${join(relative(process.cwd(), dir) || '.', 'requests', 'sample.json')}`,
            '',
          ].join('\n'),
        );
      }),
    );
}
