/**
 * `ferry gateway --routes <file>`: Ferry's gateway on its own, with file + DNS discovery (src/gateway/discovery.ts)
 * instead of a control plane: the process a cluster runs in front of its replicas (issue 12: Kubernetes; Swarm
 * next). The route file names a DNS service per revision; the gateway resolves them every few seconds and applies
 * the same split, pin, shadow, retry and ejection logic as on one machine. It needs no cluster API access.
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { parseDurationFlag } from './format.ts';
import { action, intOption } from './output.ts';
import { flag } from './platform.ts';

interface GatewayCliOptions {
  routes: string;
  host: string;
  port: number;
  dnsServer?: string[];
  /** ms */
  resolveEvery: number;
  /** ms */
  fileCheckEvery: number;
}

export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description(
      "run Ferry's gateway alone: routes from a file, replicas found by DNS (in a cluster: a ConfigMap and headless Services)",
    )
    .requiredOption(
      '--routes <file>',
      'the route file (JSON; docs/kubernetes.md): revisions name a DNS service',
    )
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('-p, --port <port>', 'port to listen on (0 = any free port)', intOption('--port', 0, 65535), 8080)
    .option(
      '--dns-server <ip[:port]>',
      "a DNS server to ask (repeat for more; default: the system's)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .addOption(
      new Option('--resolve-every <duration>', 'how often the services are looked up again')
        .argParser(flag((v: string) => parseDurationFlag('--resolve-every', v)))
        .default(5000, '5s'),
    )
    .addOption(
      new Option('--file-check-every <duration>', 'how often the route file is read for changes')
        .argParser(flag((v: string) => parseDurationFlag('--file-check-every', v)))
        .default(2000, '2s'),
    )
    .action(
      action(async (options: GatewayCliOptions) => {
        const { default: pino } = await import('pino');
        const { createGateway } = await import('../gateway/index.ts');
        const { FileDnsDiscovery, dnsResolver } = await import('../gateway/discovery.ts');
        const logger = pino({
          level: process.env.FERRY_LOG_LEVEL ?? 'info',
          base: { service: 'ferry-gateway' },
        });
        // A request held for a deployment at zero (the route file gives it an activator): its replicas are
        // being started (KEDA), so look them up again at once rather than at the next round.
        let discovery: InstanceType<typeof FileDnsDiscovery> | undefined;
        const gateway = createGateway({ logger, onHeld: () => discovery?.soon() });
        discovery = new FileDnsDiscovery({
          file: resolve(options.routes),
          setRoutes: (table) => gateway.setRoutes(table),
          resolve: dnsResolver(options.dnsServer),
          resolveMs: options.resolveEvery,
          fileCheckMs: options.fileCheckEvery,
          logger,
        });
        await discovery.start();
        const url = await gateway.listen(options.port, options.host);
        logger.info({ url, routes: resolve(options.routes) }, 'gateway ready');
        process.stdout.write(`Ferry gateway at ${url} (routes from ${options.routes}; replicas by DNS)\n`);
        let signals = 0;
        const stop = () => {
          if (++signals > 1) process.exit(130);
          discovery.stop();
          void gateway.close().then(() => process.exit(0));
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      }),
    );
}
