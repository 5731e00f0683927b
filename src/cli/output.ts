/** How the CLI reports results and errors. Errors name the code, what went wrong and what to do. */
import { basename, relative } from 'node:path';
import { isFerryError } from '../core/errors.ts';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function printError(error: unknown): number {
  if (isFerryError(error)) {
    process.stderr.write(`error ${error.code}: ${error.message}\n`);
    if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
    return error.code === 'FERRY_SPEC_INVALID' || error.code === 'FERRY_SPEC_NOT_FOUND'
      ? EXIT_USAGE
      : EXIT_FAILURE;
  }
  process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return EXIT_FAILURE;
}

/** Runs a command action and turns its failure into a printed error and an exit code. */
export function action<A extends unknown[]>(
  run: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await run(...args);
    } catch (error) {
      process.exitCode = printError(error);
    }
  };
}

/** Parses a CLI integer option, naming the option when it is wrong. */
export function intOption(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      process.stderr.write(`error: ${name} must be an integer from ${min} to ${max}, got "${value}"\n`);
      process.exit(EXIT_USAGE);
    }
    return n;
  };
}

/**
 * How the user runs this CLI, for the commands we suggest: `ferry` when it is on the PATH under that name
 * (npm link, a global install), else `node <path to bin/ferry.js>` as given on this command line.
 */
export function cliCommand(argv1: string | undefined = process.argv[1]): string {
  if (argv1 === undefined || basename(argv1) === 'ferry') return 'ferry';
  const shown = relative(process.cwd(), argv1);
  return `node ${shown.startsWith('..') || shown === '' ? argv1 : shown}`;
}
