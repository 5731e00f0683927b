/**
 * `ferry tenant list|create|get|set-quota|delete`: tenants and their quotas, through the control-plane API.
 * Platform admins only, but `ferry tenant get` with no name shows the tenant the caller acts in (any role).
 */
import type { Command } from 'commander';
import type { Quotas, TenantView } from '../control/index.ts';
import { connect } from './context.ts';
import { parseCpuFlag, parseIntFlag, parseSizeFlag, table, UsageError } from './format.ts';
import {
  type ConnectionFlags,
  flag,
  type OutputFlags,
  out,
  printJson,
  run,
  withConnection,
  withOutput,
} from './platform.ts';

interface QuotaFlags {
  unlimited?: boolean;
  maxDeployments?: number;
  maxReplicas?: number;
  maxCpu?: number;
  maxMemory?: number;
}

function withQuotas(command: Command): Command {
  return command
    .option(
      '--max-deployments <n>',
      'deployments at most',
      flag((v) => parseIntFlag('--max-deployments', v, 0, 1_000_000)),
    )
    .option(
      '--max-replicas <n>',
      'desired replicas over all deployments',
      flag((v) => parseIntFlag('--max-replicas', v, 0, 1_000_000)),
    )
    .option(
      '--max-cpu <cores>',
      'CPU over all replicas, e.g. 8 or 500m',
      flag((v) => parseCpuFlag('--max-cpu', v)),
    )
    .option(
      '--max-memory <size>',
      'memory over all replicas, e.g. 16Gi',
      flag((v) => parseSizeFlag('--max-memory', v)),
    )
    .option('--unlimited', 'set-quota: remove every limit');
}

function quotasOf(flags: QuotaFlags): Quotas {
  return {
    ...(flags.maxDeployments === undefined ? {} : { deployments: flags.maxDeployments }),
    ...(flags.maxReplicas === undefined ? {} : { replicas: flags.maxReplicas }),
    ...(flags.maxCpu === undefined ? {} : { cpu: flags.maxCpu }),
    ...(flags.maxMemory === undefined ? {} : { memoryBytes: flags.maxMemory }),
  };
}

const GIB = 1024 ** 3;
const gib = (bytes: number) => `${Number((bytes / GIB).toFixed(2))}Gi`;

/** "used/limit" per quota, or "used" when there is no limit. */
export function tenantsTable(tenants: readonly TenantView[]): string {
  const cell = (used: string, limit: string | undefined) => (limit === undefined ? used : `${used}/${limit}`);
  return table(
    ['TENANT', 'DEPLOYMENTS', 'REPLICAS', 'CPU', 'MEMORY'],
    tenants.map((t) => [
      t.name,
      cell(String(t.usage.deployments), t.quotas.deployments?.toString()),
      cell(String(t.usage.replicas), t.quotas.replicas?.toString()),
      cell(String(t.usage.cpu), t.quotas.cpu?.toString()),
      cell(
        gib(t.usage.memoryBytes),
        t.quotas.memoryBytes === undefined ? undefined : gib(t.quotas.memoryBytes),
      ),
    ]),
  );
}

export function registerTenants(program: Command): void {
  const tenant = program
    .command('tenant')
    .description('tenants (teams) and their quotas: list, create, get, set-quota, delete (platform admins)');

  withOutput(tenant.command('list').description('every tenant with what it uses against its quotas')).action(
    run(async (opts: OutputFlags) => {
      const list = await connect(opts).listTenants();
      if (opts.output === 'json') return printJson(list);
      out(tenantsTable(list));
    }),
  );

  withOutput(withQuotas(tenant.command('create').description('create a tenant').argument('<name>'))).action(
    run(async (name: string, opts: OutputFlags & QuotaFlags) => {
      const created = await connect(opts).createTenant(name, quotasOf(opts));
      if (opts.output === 'json') return printJson(created);
      out(
        `tenant ${created.name} created; make its first token with: ferry token create <name> --role admin --tenant ${created.name}`,
      );
    }),
  );

  withOutput(
    tenant
      .command('get')
      .description('one tenant with its quotas and use (no name: the tenant you act in)')
      .argument('[name]'),
  ).action(
    run(async (name: string | undefined, opts: OutputFlags) => {
      const client = connect(opts);
      const view = name === undefined ? await client.currentTenant() : await client.getTenant(name);
      if (opts.output === 'json') return printJson(view);
      out(tenantsTable([view]));
    }),
  );

  withOutput(
    withQuotas(
      tenant
        .command('set-quota')
        .description("replace a tenant's quotas (flags left out: no limit); what runs keeps running")
        .argument('<name>'),
    ),
  ).action(
    run(async (name: string, opts: OutputFlags & QuotaFlags) => {
      const quotas = quotasOf(opts);
      if (Object.keys(quotas).length === 0 && !opts.unlimited)
        throw new UsageError('give at least one --max-* flag, or --unlimited to remove every limit');
      if (Object.keys(quotas).length > 0 && opts.unlimited)
        throw new UsageError('--unlimited removes every limit: leave the --max-* flags out');
      const view = await connect(opts).setQuotas(name, quotas);
      if (opts.output === 'json') return printJson(view);
      out(tenantsTable([view]));
    }),
  );

  withConnection(tenant.command('delete').description('delete an empty tenant').argument('<name>')).action(
    run(async (name: string, opts: ConnectionFlags) => {
      await connect(opts).deleteTenant(name);
      out(`deleted tenant ${name}`);
    }),
  );
}
