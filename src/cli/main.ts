/** The `ferry` command line: parses arguments and calls modules; no logic of its own. */
import { Command } from 'commander';
import { FERRY_VERSION } from '../core/version.ts';
import { registerDeploy } from './deploy.ts';
import { registerImage } from './image.ts';
import { registerInit } from './init.ts';
import { registerPlatform } from './platform.ts';
import { registerPredict } from './predict.ts';
import { registerServe } from './serve.ts';
import { registerTest } from './test.ts';
import { registerUp } from './up.ts';

const program = new Command()
  .name('ferry')
  .description(
    'Ship a machine-learning model into production: describe it in ferry.yaml, serve it, deploy it.',
  )
  .version(FERRY_VERSION)
  .showHelpAfterError()
  // Usage errors (unknown command or option, missing argument) exit 2, as docs/cli.md says.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

registerInit(program);
registerServe(program);
registerPredict(program);
registerTest(program);
registerUp(program);
registerImage(program);
registerDeploy(program);
registerPlatform(program);

await program.parseAsync(process.argv);
