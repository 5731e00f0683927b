/** How the CLI reports results and errors. Errors name the code, what went wrong and what to do. */
import { accessSync, constants, realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join, relative } from 'node:path';
import { isFerryError } from '../core/errors.ts';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function printError(error: unknown): number {
  if (isFerryError(error)) {
    process.stderr.write(`error ${error.code}: ${asRun(error.message)}\n`);
    if (error.hint) process.stderr.write(`hint: ${asRun(error.hint)}\n`);
    return error.code === 'FERRY_SPEC_INVALID' || error.code === 'FERRY_SPEC_NOT_FOUND'
      ? EXIT_USAGE
      : EXIT_FAILURE;
  }
  process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return EXIT_FAILURE;
}

/** `ferry <command>` at the start of a word, for the commands this CLI has. */
const FERRY_COMMAND =
  /(^|[\s(`'"])ferry (?=(?:init|serve|predict|test|base|build|push|run|up|down|deploy|get|describe|rollout|traffic|scale|delete|logs|events|models|token|secrets?|audit)\b)/g;

/**
 * A message from elsewhere (the control plane, the spec loader) names commands as `ferry <command>`; say them
 * the way this user runs the CLI (`npx ferry`, `node bin/ferry.js`), so that they work as printed.
 */
export function asRun(text: string, command: string = cliCommand()): string {
  if (command === 'ferry') return text;
  // A message this CLI wrote itself says it already (`npx ferry up`): no `npx npx ferry up`.
  const already = command.endsWith(' ferry') ? command.slice(0, -'ferry'.length) : undefined;
  return text.replace(FERRY_COMMAND, (match: string, before: string, at: number) =>
    already !== undefined && text.slice(0, at + before.length).endsWith(already)
      ? match
      : `${before}${command} `,
  );
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

/** The facts `cliCommand` decides from (see invocation()). */
export interface Invocation {
  /** process.argv[1]: the script node runs, as the user or a launcher named it. */
  script: string | undefined;
  /** The script with symbolic links resolved (undefined when it cannot be). */
  realScript: string | undefined;
  /** The first `ferry` on the PATH, symbolic links resolved (undefined when there is none). */
  ferryOnPath: string | undefined;
  /** npm's npm_command: 'exec' under `npx ferry` / `npm exec ferry`, 'run-script' under `npm run ferry`. */
  npmCommand: string | undefined;
  cwd: string;
}

/**
 * The command to show the user in hints and suggestions, the one that works for them:
 * - `npx ferry` when they ran it through npx or npm (`npx ferry`, `npm exec ferry`, `npm run ferry`): from a
 *   clone `ferry` is not on the PATH, and npx finds the project's own bin;
 * - `ferry` when the `ferry` on the PATH is this very script (npm link, a global install);
 * - else `node <script>`, relative to the current directory when the script is below it.
 */
export function chooseCliCommand(inv: Invocation): string {
  if (inv.npmCommand === 'exec' || inv.npmCommand === 'run-script') return 'npx ferry';
  if (inv.script === undefined) return 'ferry';
  if (inv.ferryOnPath !== undefined && inv.ferryOnPath === inv.realScript) return 'ferry';
  const shown = relative(inv.cwd, inv.script);
  return `node ${shown === '' || shown.startsWith('..') || isAbsolute(shown) ? inv.script : shown}`;
}

/** The facts of this process, read when a hint is printed (a stat or two per PATH entry). */
export function invocation(env: NodeJS.ProcessEnv = process.env): Invocation {
  const script = process.argv[1];
  return {
    script,
    realScript: script === undefined ? undefined : realpathOrUndefined(script),
    ferryOnPath: findOnPath('ferry', env.PATH),
    npmCommand: env.npm_command,
    cwd: process.cwd(),
  };
}

let cached: string | undefined;

/** `chooseCliCommand` for this process (worked out once). */
export function cliCommand(): string {
  cached ??= chooseCliCommand(invocation());
  return cached;
}

function findOnPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    return realpathOrUndefined(candidate);
  }
  return undefined;
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
