/**
 * `ferry k8s apply | status | promote | undo`: a model on a cluster, with the same revisions, splits and canary
 * steps as `ferry deploy` on one machine (src/k8s/rollout-run.ts does the work; docs/kubernetes.md). The cluster
 * is the kubeconfig's, as kubectl finds it; Ferry's namespace is `ferry-<tenant>` unless --namespace names one.
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { DEFAULT_GATEWAY_IMAGE } from '../core/gateway-image.ts';
import { inputProblems, pinned } from '../k8s/from-spec.ts';
import type { Kube } from '../k8s/kube-client.ts';
import type { RenderInput } from '../k8s/render.ts';
import type { RunContext } from '../k8s/rollout-run.ts';
import type { RolloutStatus } from '../k8s/rollout-status.ts';
import { parseCanary, parseDurationFlag, UsageError } from './format.ts';
import { intOption } from './output.ts';
import { flag, out, run, say } from './platform.ts';

export interface ClusterFlags {
  kubeconfig?: string;
  context?: string;
  tenant: string;
  namespace?: string;
  /** ms */
  timeout: number;
  forceConflicts?: boolean;
}

/** The flags every cluster command takes. */
export function withCluster(command: Command): Command {
  return command
    .option('--kubeconfig <file>', 'the kubeconfig (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', "the kubeconfig's context (default: its current one)")
    .option('--tenant <tenant>', 'the tenant (namespace ferry-<tenant>)', 'default')
    .option('--namespace <ns>', 'the namespace (default: ferry-<tenant>)')
    .addOption(
      new Option('--timeout <duration>', 'how long to wait for a step to roll out')
        .argParser(flag((v: string) => parseDurationFlag('--timeout', v)))
        .default(600_000, '10m'),
    )
    .option('--force-conflicts', 'take over fields another manager (kubectl edit, a controller) owns');
}

export function namespaceOf(flags: ClusterFlags): string {
  return flags.namespace ?? `ferry-${flags.tenant}`;
}

/** Runs `body` with a context on the flags' cluster; a cluster out of reach is named. */
export async function onCluster<T>(
  flags: ClusterFlags,
  body: (ctx: RunContext, kube: Kube) => Promise<T>,
): Promise<T> {
  const { kubeClient, reachError } = await import('../k8s/kube-client.ts');
  const kube = await kubeClient(flags);
  const ctx: RunContext = {
    api: kube.api,
    namespace: namespaceOf(flags),
    force: flags.forceConflicts === true,
    timeoutMs: flags.timeout,
    onProgress: (line) => say(line),
    now: () => new Date(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  try {
    return await body(ctx, kube);
  } catch (error) {
    throw reachError(error, kube);
  }
}

interface ApplyFlags extends ClusterFlags {
  image: string;
  gatewayImage?: string;
  name?: string;
  replicas: number;
  public?: boolean;
  kedaPrometheus?: string;
  canary?: string;
  pause?: number;
  dryRun?: boolean;
}

/**
 * Names and the image checked before anything reaches the cluster (a usage error, exit 2); an image not pinned by
 * digest is allowed, with a warning.
 */
export function checkInput(input: RenderInput, image: string, namespace: string | undefined): void {
  const problems = inputProblems({ name: input.name, tenant: input.tenant, image }, namespace);
  if (problems.length > 0) throw new UsageError(problems.join('\n  '));
  if (!pinned(image))
    say(
      `warning: --image ${image} is not pinned by digest: the cluster pulls whatever the tag names when a pod starts (ferry push prints the digest)`,
    );
}

/** A model directory's ferry.yaml as the renderer's input, with the flags' name, tenant and image, checked. */
export async function inputFromDir(
  dir: string,
  flags: {
    image: string;
    tenant: string;
    replicas: number;
    public?: boolean;
    name?: string;
    namespace?: string;
  },
): Promise<RenderInput> {
  const { loadSpec } = await import('../spec/index.ts');
  const { inputFromSpec } = await import('../k8s/from-spec.ts');
  const { spec } = await loadSpec(resolve(dir));
  const input = inputFromSpec(spec, {
    image: flags.image,
    tenant: flags.tenant,
    replicas: flags.replicas,
    public: flags.public === true,
    ...(flags.name === undefined ? {} : { name: flags.name }),
  });
  checkInput(input, flags.image, flags.namespace);
  return input;
}

function rolloutLines(rollouts: readonly RolloutStatus[]): string[] {
  return rollouts.map(
    (r) => `  ${r.state === 'complete' ? 'ok  ' : r.state === 'failed' ? 'FAIL' : '... '} ${r.message}`,
  );
}

export function registerK8sCluster(k8s: Command): void {
  withCluster(
    k8s
      .command('apply')
      .description(
        'deploy a model directory on the cluster: its revision starts, traffic moves to it (by canary steps with --canary), the old revision goes; server-side apply, fieldManager ferry',
      )
      .argument('[dir]', 'the model directory (with its ferry.yaml)', '.')
      .requiredOption(
        '--image <ref>',
        'the model image the cluster pulls (ferry push prints it; by digest preferably)',
      )
      .option(
        '--gateway-image <ref>',
        `the gateway's image (ferry gateway-image; default: the namespace's, else ${DEFAULT_GATEWAY_IMAGE})`,
      )
      .option('--name <name>', "the deployment's name (default: the model's)")
      .option(
        '--replicas <n>',
        'replicas when ferry.yaml has no scaling: block',
        intOption('--replicas', 1, 1000),
        1,
      )
      .option(
        '--public',
        'callable through the gateway without a token (default: private; ferry k8s token create)',
      )
      .option(
        '--keda-prometheus <url>',
        'scale to zero with KEDA on the gateway metrics in this Prometheus (scaling.minReplicas 0)',
      )
      .option(
        '--canary <steps>',
        'move traffic by these percents, e.g. 10,50,100 (stops at the first until ferry k8s promote, unless --pause)',
      )
      .addOption(
        new Option('--pause <duration>', 'with --canary: hold each step this long, then go on').argParser(
          flag((v: string) => parseDurationFlag('--pause', v)),
        ),
      )
      .option('--dry-run', 'have the cluster check what it would end at (dryRun=All); change nothing'),
  ).action(
    run(async (dir: string, flags: ApplyFlags) => {
      const strategy = flags.canary === undefined ? null : parseCanary('--canary', flags.canary);
      const canary = strategy?.kind === 'canary' ? strategy.steps.map((step) => step.percent) : [];
      if (flags.pause !== undefined && canary.length === 0)
        throw new UsageError(
          '--pause is the hold at each canary step; give --canary too (e.g. --canary 10,50,100)',
        );
      const { applyDeployment } = await import('../k8s/rollout-run.ts');
      const fromSpec = await inputFromDir(dir, flags);
      await onCluster(flags, async (ctx, kube) => {
        say(
          `${flags.dryRun ? 'checking' : 'applying'} ${fromSpec.name} in namespace ${ctx.namespace} (context ${kube.context}, ${kube.server})`,
        );
        const result = await applyDeployment(ctx, {
          fromSpec,
          ...(flags.gatewayImage === undefined ? {} : { gatewayImage: flags.gatewayImage }),
          ...(flags.kedaPrometheus === undefined ? {} : { kedaPrometheus: flags.kedaPrometheus }),
          defaultGatewayImage: DEFAULT_GATEWAY_IMAGE,
          canary,
          pauseMs: flags.pause ?? null,
          dryRun: flags.dryRun === true,
        });
        const name = fromSpec.name;
        if (flags.dryRun) {
          out(
            `the cluster accepts ${name} r${result.revision}${result.isNew ? ' (new)' : ''}; the steps would be:\n${result.steps.map((s, i) => `  ${i + 1}. ${s}`).join('\n')}`,
          );
          return;
        }
        if (result.outcome.kind === 'paused')
          out(
            `${name}: canary at ${result.outcome.at}% to r${result.revision}\n` +
              `  ferry k8s promote ${name}   next step\n  ferry k8s undo ${name}      back to before it`,
          );
        else
          out(
            `${name}: r${result.revision} serves ${result.outcome.input.traffic.map((t) => `r${t.revision} ${t.percent}%`).join(', ')} in ${ctx.namespace}` +
              `${result.isNew ? '' : ' (revision unchanged)'}\n  ferry k8s status ${name}${flags.namespace ? ` --namespace ${flags.namespace}` : flags.tenant === 'default' ? '' : ` --tenant ${flags.tenant}`}`,
          );
      });
    }),
  );

  withCluster(
    k8s
      .command('status')
      .description(
        "where each deployment's rollout stands (its revisions' Deployments and the gateway); waits until done, exit 1 on a failed rollout",
      )
      .argument('[name]', 'one deployment (default: every one of the namespace)')
      .option('--no-wait', 'print once and return (exit 1 only when a rollout failed)'),
  ).action(
    run(async (name: string | undefined, flags: ClusterFlags & { wait: boolean }) => {
      const { statusOf } = await import('../k8s/rollout-run.ts');
      const { overallStatus } = await import('../k8s/rollout-status.ts');
      const { FerryError } = await import('../core/errors.ts');
      await onCluster(flags, async (ctx) => {
        const deadline = Date.now() + flags.timeout;
        let printed = '';
        for (;;) {
          const reports = await statusOf(ctx.api, ctx.namespace, name);
          if (reports.length === 0) {
            out(`no Ferry deployment in namespace ${ctx.namespace}`);
            return;
          }
          const text = reports
            .map((r) =>
              [
                `${r.name}: ${r.traffic}${r.canary === null ? '' : ` (${r.canary})`}`,
                ...rolloutLines(r.rollouts),
              ].join('\n'),
            )
            .join('\n');
          if (text !== printed) out(text);
          printed = text;
          const state = overallStatus(reports.flatMap((r) => r.rollouts));
          if (state === 'failed')
            throw new FerryError('FERRY_DEADLINE_EXCEEDED', 'a rollout failed (above)', {
              hint: 'kubectl describe the Deployment and its pods for why; ferry k8s undo <name> goes back.',
            });
          if (state === 'complete' || !flags.wait) return;
          if (Date.now() >= deadline)
            throw new FerryError(
              'FERRY_DEADLINE_EXCEEDED',
              `still rolling out after ${Math.round(flags.timeout / 1000)} s`,
            );
          await ctx.sleep(1000);
        }
      });
    }),
  );

  withCluster(
    k8s
      .command('promote')
      .description('a canary waiting at a step goes to the next (the last: the old revision goes)')
      .argument('<name>', 'the deployment')
      .addOption(
        new Option(
          '--pause <duration>',
          'hold each further step this long and go on to the end (default: stop at the next)',
        ).argParser(flag((v: string) => parseDurationFlag('--pause', v))),
      ),
  ).action(
    run(async (name: string, flags: ClusterFlags & { pause?: number }) => {
      const { promoteDeployment } = await import('../k8s/rollout-run.ts');
      await onCluster(flags, async (ctx) => {
        const outcome = await promoteDeployment(ctx, name, flags.pause ?? null);
        out(
          outcome.kind === 'paused'
            ? `${name}: canary at ${outcome.at}% (ferry k8s promote ${name} goes on)`
            : `${name}: promoted; serves ${outcome.input.traffic.map((t) => `r${t.revision} ${t.percent}%`).join(', ')}`,
        );
      });
    }),
  );

  withCluster(
    k8s
      .command('undo')
      .description(
        'back to the state before the last change (an unfinished canary: to before it), or to a revision',
      )
      .argument('<name>', 'the deployment')
      .option(
        '--to-revision <n>',
        'the newest earlier state in which this revision served',
        intOption('--to-revision', 1, 1_000_000),
      ),
  ).action(
    run(async (name: string, flags: ClusterFlags & { toRevision?: number }) => {
      const { undoDeployment } = await import('../k8s/rollout-run.ts');
      await onCluster(flags, async (ctx) => {
        const { target } = await undoDeployment(ctx, name, flags.toRevision);
        out(`${name}: back; serves ${target.traffic.map((t) => `r${t.revision} ${t.percent}%`).join(', ')}`);
      });
    }),
  );

  withCluster(
    k8s
      .command('delete')
      .description(
        'remove a deployment from the cluster: the gateway stops routing to it, then its objects go (its Secret stays)',
      )
      .argument('<name>', 'the deployment'),
  ).action(
    run(async (name: string, flags: ClusterFlags) => {
      const { deleteDeployment } = await import('../k8s/rollout-run.ts');
      await onCluster(flags, async (ctx) => {
        await deleteDeployment(ctx, name);
        out(`${name}: deleted from ${ctx.namespace}`);
      });
    }),
  );
}
