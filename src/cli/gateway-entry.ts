/**
 * The process entry of the gateway image (bundled to /app/gateway.mjs by src/image/bundle.ts bundleGateway;
 * `ferry gateway-image`): a command line with the one command `ferry gateway` (gateway.ts, the same code and
 * options), so the container takes the arguments the Kubernetes renderer writes,
 * `gateway --routes /etc/ferry/routes.json --host 0.0.0.0 --port 8080`, unchanged. Nothing else of the CLI is
 * in it: no platform, no image builder, no model server.
 */
import { registerGateway } from './gateway.ts';
import { rootCommand } from './root-command.ts';

const program = rootCommand().description(
  "Ferry's gateway image: `gateway --routes <file>` runs the gateway",
);
registerGateway(program);
await program.parseAsync(process.argv);
