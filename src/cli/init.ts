/** `ferry init [dir] --from model.onnx`: write a ferry.yaml (and a sample request) for an ONNX model. */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
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
    .option('--name <name>', 'model name (default: from the directory name)')
    .option('-f, --force', 'overwrite an existing ferry.yaml, sample request or model copy')
    .action(
      action(async (dirArg: string, options: InitOptions) => {
        const { openSession, specsFromSession } = await import('../server/backends/onnx-tensors.ts');
        const { initModelName, renderInitialSpec, sampleRequest } = await import('../spec/index.ts');
        const dir = resolve(dirArg);
        const specPath = join(dir, 'ferry.yaml');
        const samplePath = join(dir, 'requests', 'sample.json');
        const taken = [specPath, samplePath].filter((p) => existsSync(p));
        if (taken.length > 0 && !options.force) throw alreadyThere(dir, taken);
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

        const inside = relative(dir, source);
        // A model outside the directory is copied in.
        const copy = inside.startsWith('..') ? join(dir, basename(source)) : undefined;
        const file = copy ? basename(source) : inside;
        // Another model of the same file name is never replaced without --force.
        if (copy && existsSync(copy) && !options.force && !(await sameContent(source, copy)))
          throw alreadyThere(dir, [copy]);
        // The directory the user named is the model's name (`ferry init my-model`), unless --name says otherwise.
        const name = options.name ?? initModelName(dir, source);
        const spec = renderInitialSpec({ name, file, inputs, outputs, requestFile: 'requests/sample.json' });

        await mkdir(join(dir, 'requests'), { recursive: true });
        if (copy) await copyFile(source, copy);
        await writeFile(specPath, spec);
        await writeFile(samplePath, `${JSON.stringify(sampleRequest(inputs), null, 2)}\n`);
        process.stdout.write(
          [
            `Wrote ${relative(process.cwd(), specPath) || specPath} for model "${name}"${options.name ? '' : ' (--name sets another)'}:`,
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

function alreadyThere(dir: string, paths: string[]): FerryError {
  const names = paths.map((p) => relative(dir, p)).join(' and ');
  return new FerryError('FERRY_CONFLICT', `${dir} already has ${names}`, {
    hint: 'ferry init does not overwrite files: pass --force to overwrite them, or give it another directory.',
  });
}

/** Same bytes (size first, then sha256 of each, streamed: models can be large). */
async function sameContent(a: string, b: string): Promise<boolean> {
  if ((await stat(a)).size !== (await stat(b)).size) return false;
  const digest = async (path: string) => {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  };
  return (await digest(a)) === (await digest(b));
}
