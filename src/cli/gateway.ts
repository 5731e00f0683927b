/**
 * `ferry gateway --routes <file> | --routes-url <url> --token-file <file>`: Ferry's gateway on its own, with route
 * file + DNS discovery (src/gateway/discovery.ts): the process a cluster runs in front of its replicas. The route
 * file (a mounted ConfigMap on Kubernetes; on Swarm, the control plane's URL polled with a token) names a DNS
 * service per revision; the gateway resolves them every few seconds and applies the same split, pin, shadow, retry
 * and ejection logic as on one machine. It needs no cluster API access.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { parseDurationFlag, UsageError } from './format.ts';
import { intOption } from './output.ts';
import { flag, run } from './platform.ts';

interface GatewayCliOptions {
  routes?: string;
  routesUrl?: string;
  tokenFile?: string;
  host: string;
  port: number;
  dnsServer?: string[];
  /** ms */
  resolveEvery: number;
  /** ms */
  checkEvery: number;
}

export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description(
      "run Ferry's gateway alone: routes from a file, replicas found by DNS (in a cluster: a ConfigMap and headless Services)",
    )
    .option('--routes <file>', 'the route file (JSON; docs/kubernetes.md): revisions name a DNS service')
    .option(
      '--routes-url <url>',
      'or the route file from this URL, polled (the control plane on Swarm: docs/swarm.md)',
    )
    .option('--token-file <file>', 'with --routes-url: a file holding the bearer token to ask with')
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
      new Option('--check-every <duration>', 'how often the route file (or URL) is read for changes')
        .argParser(flag((v: string) => parseDurationFlag('--check-every', v)))
        .default(2000, '2s'),
    )
    .action(
      run(async (options: GatewayCliOptions) => {
        const { default: pino } = await import('pino');
        const { createGateway } = await import('../gateway/index.ts');
        const { DnsDiscovery, dnsResolver, fileSource, urlSource } = await import('../gateway/discovery.ts');
        const { LoadReporter } = await import('../gateway/load-report.ts');
        if ((options.routes === undefined) === (options.routesUrl === undefined))
          throw new UsageError('give the route file with --routes <file> or --routes-url <url>, one of them');
        if (options.tokenFile !== undefined && options.routesUrl === undefined)
          throw new UsageError('--token-file goes with --routes-url');
        const token = readToken(options.tokenFile);
        const source =
          options.routes !== undefined
            ? fileSource(resolve(options.routes))
            : urlSource(options.routesUrl!, token);
        const logger = pino({
          level: process.env.FERRY_LOG_LEVEL ?? 'info',
          base: { service: 'ferry-gateway' },
        });
        // A request held for a deployment at zero (the route file gives it an activator): its replicas are
        // being started (KEDA), so look them up again at once rather than at the next round.
        let discovery: InstanceType<typeof DnsDiscovery> | undefined;
        let reporter: InstanceType<typeof LoadReporter> | undefined;
        // Tracing (docs/tracing.md): on when the OTEL_* variables say so; OpenTelemetry is loaded only then.
        const { startTracing } = await import('../core/tracing.ts');
        const tracing = await startTracing(process.env, 'ferry-gateway');
        const gateway = createGateway({
          logger,
          tracing,
          onHeld: () => {
            discovery?.soon();
            reporter?.soon();
          },
        });
        // A gateway that pulls its routes from a control plane also tells it its load (the autoscaler's input).
        if (options.routesUrl !== undefined)
          reporter = new LoadReporter({
            url: new URL('load', options.routesUrl).toString(),
            token,
            gateway: hostname(),
            source: gateway,
            everyMs: 1000,
            logger,
          });
        discovery = new DnsDiscovery({
          source,
          setRoutes: (table) => gateway.setRoutes(table),
          resolve: dnsResolver(options.dnsServer),
          resolveMs: options.resolveEvery,
          checkMs: options.checkEvery,
          // A URL is the control plane, which may come up after the gateway: wait for it, alive meanwhile (a
          // health check passes; requests get 503 + Retry-After until the table comes). A file is there or it is a
          // mistake.
          waitForSource: options.routesUrl !== undefined,
          logger,
        });
        let url: string;
        if (options.routesUrl !== undefined) {
          url = await gateway.listen(options.port, options.host);
          await discovery.start();
          reporter?.start();
        } else {
          await discovery.start();
          url = await gateway.listen(options.port, options.host);
        }
        logger.info({ url, routes: source.name }, 'gateway ready');
        process.stdout.write(`Ferry gateway at ${url} (routes from ${source.name}; replicas by DNS)\n`);
        let signals = 0;
        const stop = () => {
          if (++signals > 1) process.exit(130);
          discovery.stop();
          reporter?.stop();
          void gateway.close().then(() => process.exit(0));
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      }),
    );
}

/** The token in a file (a Swarm secret), trimmed; a missing or empty file is a usage error naming it. */
function readToken(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new UsageError(`--token-file ${file}: ${(error as Error).message}`);
  }
  if (token === '') throw new UsageError(`--token-file ${file} is empty`);
  return token;
}
