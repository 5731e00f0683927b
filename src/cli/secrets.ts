/**
 * `ferry secrets set|list|rm`: the platform's secrets, through the control-plane API. A value comes from a
 * file (`--from-file`) or from stdin, never from the command line (argv shows in `ps`, shell history and CI
 * logs), and is never printed: `list` shows names and dates, the API never returns a value.
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { FerryError } from '../core/errors.ts';
import { connect } from './context.ts';
import { secretsTable, UsageError } from './format.ts';
import { cliCommand } from './output.ts';
import {
  type ConnectionFlags,
  type OutputFlags,
  out,
  printJson,
  run,
  say,
  withConnection,
  withOutput,
} from './platform.ts';

/** The control plane refuses longer values (src/control/secrets.ts); reading stops past it. */
export const MAX_SECRET_BYTES = 64 * 1024;

/**
 * The secret from what was read: one trailing line break (`echo`, an editor's last newline) is not part of
 * it; anything else is kept as is. Empty or too long -> a FerryError naming where the value came from.
 */
export function secretValue(bytes: Buffer, from: string): string {
  if (bytes.length > MAX_SECRET_BYTES) {
    throw new FerryError('FERRY_PAYLOAD_TOO_LARGE', `The secret from ${from} is over 64 KiB`, {
      hint: 'A secret is a token, a password or a key; put larger files in the model directory.',
    });
  }
  const value = bytes.toString('utf8').replace(/\r?\n$/, '');
  if (value === '') {
    throw new FerryError('FERRY_BAD_REQUEST', `The secret from ${from} is empty`, {
      hint: `Pipe the value in (printf '%s' "$VALUE" | ${cliCommand()} secrets set <name>) or pass --from-file <path>.`,
    });
  }
  return value;
}

/** Reads up to MAX_SECRET_BYTES + 1 bytes: enough to tell a value that is too long, never a whole big file. */
async function readCapped(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    chunks.push(buf);
    size += buf.length;
    if (size > MAX_SECRET_BYTES) break;
  }
  return Buffer.concat(chunks);
}

export async function readFromFile(path: string): Promise<Buffer> {
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(path, 'r');
  } catch (error) {
    throw new FerryError(
      'FERRY_FILE_NOT_FOUND',
      `cannot read --from-file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  try {
    return await readCapped(file.createReadStream({ end: MAX_SECRET_BYTES }));
  } finally {
    await file.close();
  }
}

export async function readFromStdin(stdin: Readable & { isTTY?: boolean }): Promise<Buffer> {
  // Typing a secret into a terminal would show it on the screen and keep it in the scrollback.
  if (stdin.isTTY) {
    throw new UsageError(
      `ferry secrets set reads the value from stdin or --from-file, and stdin is a terminal; e.g. printf '%s' "$VALUE" | ${cliCommand()} secrets set <name>`,
    );
  }
  return readCapped(stdin);
}

export function registerSecrets(program: Command): void {
  const secrets = program
    .command('secrets')
    .alias('secret')
    .description(
      'secrets that deployments get (as files read into the environment): set, list, rm, rotate-key (values never shown)',
    );

  withOutput(
    secrets
      .command('set')
      .description(
        'create or replace a secret; the value comes from stdin or --from-file, never the command line',
      )
      .argument('<name>', 'letters, digits, ".", "_" and "-" (hf-token reaches replicas as HF_TOKEN)')
      .option('--from-file <path>', 'read the value from this file instead of stdin'),
  ).action(
    run(async (name: string, opts: OutputFlags & { fromFile?: string }) => {
      const bytes =
        opts.fromFile === undefined ? await readFromStdin(process.stdin) : await readFromFile(opts.fromFile);
      const value = secretValue(
        bytes,
        opts.fromFile === undefined ? 'stdin' : `--from-file ${opts.fromFile}`,
      );
      const record = await connect(opts).setSecret(name, value);
      if (opts.output === 'json') return printJson(record);
      out(
        `secret ${record.name} ${record.version === 1 ? 'created' : 'replaced'} (version ${record.version})`,
      );
      for (const r of record.rolledOut)
        say(
          `${r.deployment} rolls out revision r${r.revision} with it (ferry rollout status ${r.deployment})`,
        );
      if (record.rolledOut.length === 0 && record.version > 1)
        say(
          'No deployment uses an older version of it; deployments that name it get this version from now on.',
        );
    }),
  );

  withOutput(secrets.command('list').description('list secrets: names and dates, never values')).action(
    run(async (opts: OutputFlags) => {
      const list = await connect(opts).listSecrets();
      if (opts.output === 'json') return printJson(list);
      out(list.length === 0 ? 'No secrets.' : secretsTable(list, Date.now()));
    }),
  );

  withOutput(
    secrets
      .command('rotate-key')
      .description(
        'seal every secret again under a new key and forget the old one (platform admins); nothing stops or restarts',
      ),
  ).action(
    run(async (opts: OutputFlags) => {
      const rotation = await connect(opts).rotateSecretKey();
      if (opts.output === 'json') return printJson(rotation);
      out(
        `sealing key rotated: new key ${rotation.keyId}, ${rotation.resealed} sealed value(s) sealed again`,
      );
    }),
  );

  withConnection(
    secrets
      .command('rm')
      .description('delete a secret (running replicas keep the value they started with)')
      .argument('<name>'),
  ).action(
    run(async (name: string, opts: ConnectionFlags) => {
      await connect(opts).deleteSecret(name);
      out(`removed secret ${name}`);
    }),
  );
}
