/**
 * The real `ferry` program (program.ts), walked command by command: every option of every command reaches
 * that command. None may be taken by a program-level option (-V/--version: `ferry deploy dir --version d1`
 * once printed Ferry's version and exited 0 without deploying) or by help (-h/--help).
 * Commands added later are walked too. Actions are replaced by a recorder: nothing runs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Command, CommanderError, type Option } from 'commander';
import { FERRY_VERSION } from '../core/version.ts';
import { buildProgram } from './program.ts';

interface Walked {
  path: string[];
  command: Command;
}

function walk(command: Command, path: string[] = []): Walked[] {
  return command.commands.flatMap((sub) => {
    const here = [...path, sub.name()];
    return [{ path: here, command: sub }, ...walk(sub, here)];
  });
}

const flagsOf = (option: Option): string[] => [option.short, option.long].filter((f) => f !== undefined);

/** The program with every command throwing instead of exiting, output captured, actions recording. */
function recordingProgram() {
  const program = buildProgram();
  const output = { out: '', err: '' };
  let received: { path: string; opts: Record<string, unknown> } | undefined;
  for (const c of [program, ...walk(program).map((w) => w.command)]) {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => {
        output.out += s;
      },
      writeErr: (s) => {
        output.err += s;
      },
    });
    if (c.commands.length === 0)
      c.action((...args: unknown[]) => {
        const self = args.at(-1) as Command;
        received = { path: self.name(), opts: self.opts() };
      });
  }
  return { program, output, received: () => received };
}

describe('the ferry program', () => {
  const program = buildProgram();
  const commands = walk(program);
  const programFlags = new Set(program.options.flatMap(flagsOf));

  test('the walk sees every command, nested ones included', () => {
    const names = commands.map((c) => c.path.join(' '));
    for (const expected of ['deploy', 'serve', 'rollout status', 'models add-version', 'secrets set'])
      assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
    assert.ok(programFlags.has('--version') && programFlags.has('-V'), [...programFlags].join(' '));
  });

  test('no option of any command is -h or --help', () => {
    const clashes = commands.flatMap(({ path, command }) =>
      command.options
        .filter((o) => flagsOf(o).some((f) => f === '-h' || f === '--help'))
        .map((o) => `ferry ${path.join(' ')} ${o.flags}`),
    );
    assert.deepEqual(clashes, []);
  });

  test('an option that shares a flag with a program option still reaches its command', async () => {
    let checked = 0;
    for (const { path, command } of commands) {
      for (const option of command.options) {
        for (const flag of flagsOf(option).filter((f) => programFlags.has(f))) {
          const { program: p, output, received } = recordingProgram();
          const operands = command.registeredArguments.filter((a) => a.required).map(() => 'x');
          const value = option.argChoices?.[0] ?? 'd1';
          const argv = [...path, ...operands, flag, ...(option.required || option.optional ? [value] : [])];
          try {
            await p.parseAsync(argv, { from: 'user' });
          } catch (error) {
            assert.fail(
              `ferry ${argv.join(' ')}: ${error instanceof CommanderError ? error.code : error} ${output.out}${output.err}`,
            );
          }
          const got = received();
          assert.equal(got?.path, command.name(), `ferry ${argv.join(' ')} ran ${got?.path}`);
          assert.equal(
            got?.opts[option.attributeName()],
            option.required || option.optional ? value : true,
            `ferry ${argv.join(' ')}: ${option.long ?? option.short} did not reach ${path.join(' ')}`,
          );
          checked++;
        }
      }
    }
    assert.ok(checked > 0, 'deploy --version shares its name with the program option: it is checked here');
  });

  test('deploy --version d1 and --version=d1 give deploy its version', async () => {
    for (const argv of [
      ['deploy', 'dir', '--version', 'd1'],
      ['deploy', 'dir', '--version=d1'],
    ]) {
      const { program: p, output, received } = recordingProgram();
      await p.parseAsync(argv, { from: 'user' });
      assert.equal(output.out, '', 'Ferry did not print its own version');
      assert.equal(received()?.opts.version, 'd1');
    }
  });

  test('ferry --version and ferry -V still print the version', async () => {
    for (const flag of ['--version', '-V']) {
      const { program: p, output } = recordingProgram();
      await assert.rejects(p.parseAsync([flag], { from: 'user' }), { code: 'commander.version' });
      assert.equal(output.out, `${FERRY_VERSION}\n`);
    }
  });
});
