/**
 * The root of a `ferry` command line, shared by the full CLI (program.ts) and the gateway image's entry
 * (gateway-entry.ts), so both parse and fail alike: usage errors (unknown command or option, missing argument)
 * exit 2, as docs/cli.md says, with the help shown after the error.
 */
import { Command } from 'commander';
import { FERRY_VERSION } from '../core/version.ts';

export function rootCommand(): Command {
  return (
    new Command()
      .name('ferry')
      .version(FERRY_VERSION)
      // Program options (-V/--version) count only before the command: `ferry deploy dir --version d1` gives
      // deploy its --version, it does not print Ferry's.
      .enablePositionalOptions()
      .showHelpAfterError()
      .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
  );
}
