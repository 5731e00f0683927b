/**
 * `ferry k8s secrets set | unset` and `ferry k8s token create | list | revoke`: what a deployment on a cluster reads
 * and who may call it. Secret values go to a Kubernetes Secret (`<dep>-secrets`, read from stdin or a file, never
 * the command line); a token is shown once, and only its sha256 goes to the cluster (the gateway's route file).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { DEFAULT_GATEWAY_IMAGE } from '../core/gateway-image.ts';
import type { RouteCaller } from '../core/route-table.ts';
import { parseDurationFlag, UsageError } from './format.ts';
import { type ClusterFlags, onCluster, withCluster } from './k8s-cluster.ts';
import { out, printJson, run, say } from './platform.ts';
import { readFromFile, readFromStdin, secretValue } from './secrets.ts';

async function secretKey(key: string): Promise<string> {
  // Imported here: the spec's schema (zod) is heavy, and `ferry --help` must not load it.
  const { SECRET_NAME_RE } = await import('../spec/schema.ts');
  if (!SECRET_NAME_RE.test(key))
    throw new UsageError(
      `secret name "${key}" is not an UPPER_SNAKE_CASE name as in ferry.yaml's secrets: (e.g. HF_TOKEN)`,
    );
  return key;
}

/** A new caller token, as the control plane makes them: `ferry_<id>_<32 random bytes>`, and its record. */
export function newCallerToken(
  tenant: string,
  deployment: string | undefined,
  expiresAt: number | undefined,
): { token: string; caller: RouteCaller } {
  const id = randomBytes(8).toString('hex');
  const token = `ferry_${id}_${randomBytes(32).toString('base64url')}`;
  return {
    token,
    caller: {
      id,
      hash: createHash('sha256').update(token).digest('hex'),
      tenant,
      ...(deployment === undefined ? {} : { deployment }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    },
  };
}

export function registerK8sAccess(k8s: Command): void {
  const secrets = k8s
    .command('secrets')
    .description("a deployment's secrets on the cluster (the Secret <name>-secrets; values never shown)");
  withCluster(
    secrets
      .command('set')
      .description(
        'set one secret of a deployment; the value from stdin or --from-file, never the command line',
      )
      .argument('<deployment>', 'the deployment')
      .argument('<name>', "the secret's name, as in ferry.yaml's secrets: (e.g. HF_TOKEN)")
      .option('--from-file <path>', 'read the value from this file instead of stdin'),
  ).action(
    run(async (deployment: string, name: string, flags: ClusterFlags & { fromFile?: string }) => {
      const key = await secretKey(name);
      const bytes =
        flags.fromFile === undefined
          ? await readFromStdin(process.stdin)
          : await readFromFile(flags.fromFile);
      const value = secretValue(
        bytes,
        flags.fromFile === undefined ? 'stdin' : `--from-file ${flags.fromFile}`,
      );
      const { setSecretKey } = await import('../k8s/rollout-run.ts');
      await onCluster(flags, async (ctx) => {
        await setSecretKey(ctx, deployment, key, value);
        out(`secret ${key} of ${deployment} set (Secret ${ctx.namespace}/${deployment}-secrets)`);
        say(
          'Running replicas read secrets at start: the next rollout (ferry k8s apply) gives them the new value.',
        );
      });
    }),
  );
  withCluster(
    secrets
      .command('unset')
      .description('remove one secret of a deployment')
      .argument('<deployment>', 'the deployment')
      .argument('<name>', "the secret's name"),
  ).action(
    run(async (deployment: string, name: string, flags: ClusterFlags) => {
      const key = await secretKey(name);
      const { setSecretKey } = await import('../k8s/rollout-run.ts');
      await onCluster(flags, async (ctx) => {
        await setSecretKey(ctx, deployment, key, null);
        out(`secret ${key} of ${deployment} removed`);
      });
    }),
  );

  const token = k8s
    .command('token')
    .description("who may call private deployments through the cluster's gateway");
  withCluster(
    token
      .command('create')
      .description("a caller token for the tenant's deployments (or one); shown once, only its hash is kept")
      .option('--deployment <name>', 'only this deployment')
      .option('--expires <duration>', 'refused after this long (e.g. 30d)'),
  ).action(
    run(async (flags: ClusterFlags & { deployment?: string; expires?: string }) => {
      const expiresAt =
        flags.expires === undefined ? undefined : Date.now() + parseDurationFlag('--expires', flags.expires);
      const made = newCallerToken(flags.tenant, flags.deployment, expiresAt);
      const { changeCallers } = await import('../k8s/rollout-run.ts');
      await onCluster(flags, async (ctx) => {
        await changeCallers(ctx, DEFAULT_GATEWAY_IMAGE, (callers) => [...callers, made.caller]);
        say(
          `token ${made.caller.id} for ${flags.deployment ?? `every deployment of tenant ${flags.tenant}`}; every gateway has it`,
        );
        say('It is shown once: keep it now. Call with Authorization: Bearer <token>.');
        out(made.token);
      });
    }),
  );
  withCluster(
    token
      .command('list')
      .description('the tokens: ids, scope, expiry (never the tokens)')
      .option('--json', 'as JSON'),
  ).action(
    run(async (flags: ClusterFlags & { json?: boolean }) => {
      const { callersOf } = await import('../k8s/rollout-run.ts');
      await onCluster(flags, async (ctx) => {
        const callers = (await callersOf(ctx.api, ctx.namespace)).map(({ hash: _hash, ...rest }) => rest);
        if (flags.json) return printJson(callers);
        out(
          callers.length === 0
            ? `no tokens in ${ctx.namespace}`
            : callers
                .map(
                  (c) =>
                    `${c.id}  ${c.deployment ?? `tenant ${c.tenant}`}${c.expiresAt === undefined ? '' : `  expires ${new Date(c.expiresAt).toISOString()}`}`,
                )
                .join('\n'),
        );
      });
    }),
  );
  withCluster(
    token
      .command('revoke')
      .description('refuse a token from now on')
      .argument('<id>', 'its id (ferry k8s token list)'),
  ).action(
    run(async (id: string, flags: ClusterFlags) => {
      const { changeCallers, callersOf } = await import('../k8s/rollout-run.ts');
      await onCluster(flags, async (ctx) => {
        if (!(await callersOf(ctx.api, ctx.namespace)).some((c) => c.id === id))
          throw new UsageError(`no token ${id} in ${ctx.namespace} (ferry k8s token list shows them)`);
        await changeCallers(ctx, DEFAULT_GATEWAY_IMAGE, (callers) => callers.filter((c) => c.id !== id));
        out(`token ${id} revoked; every gateway refuses it`);
      });
    }),
  );
}
