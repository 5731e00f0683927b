/**
 * The Ferry gateway as its own process for bench/gateway.ts (so it is measured like nginx: a
 * separate process with its own CPU), routing one deployment to one replica.
 *
 *   node --import tsx bench/lib/gateway-process.ts --port <p> --deployment <name> \
 *     --served <model name> --upstream http://127.0.0.1:<port> [--balancer least-outstanding|power-of-two]
 *     [--token <token>]
 *
 * With --token the deployment is private (in tenant `bench`, reached at /t/bench/...) and the table has one
 * caller with that token's hash: every request is hashed and looked up. Without, it is public.
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createGateway } from '../../src/gateway/index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    deployment: { type: 'string' },
    served: { type: 'string' },
    upstream: { type: 'string', multiple: true },
    balancer: { type: 'string', default: 'least-outstanding' },
    token: { type: 'string' },
  },
});
if (!values.port || !values.deployment || !values.served || !values.upstream?.length) {
  process.stderr.write('gateway-process: --port, --deployment, --served and --upstream are required\n');
  process.exit(2);
}
const gateway = createGateway({
  balancer: values.balancer === 'power-of-two' ? 'power-of-two' : 'least-outstanding',
});
gateway.setRoutes({
  deployments: [
    {
      name: values.deployment,
      ...(values.token === undefined ? { public: true } : { tenant: 'bench', public: false }),
      revisions: [
        {
          revision: 1,
          percent: 100,
          shadow: 0,
          servedName: values.served,
          replicas: values.upstream.map((url, i) => ({ id: `r${i}`, url, ready: true })),
        },
      ],
    },
  ],
  callers:
    values.token === undefined
      ? []
      : [{ id: 'bench', hash: createHash('sha256').update(values.token).digest('hex'), tenant: 'bench' }],
});
const url = await gateway.listen(Number(values.port), values.host);
process.stdout.write(`gateway listening on ${url}\n`);
const stop = () => void gateway.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
