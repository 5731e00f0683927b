/** The `ferry` command line: parses arguments and calls modules; no logic of its own (see program.ts). */
import { buildProgram } from './program.ts';

await buildProgram().parseAsync(process.argv);
