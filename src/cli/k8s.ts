/**
 * `ferry k8s render <dir>`: a model directory -> the Kubernetes objects that run it (src/k8s/render.ts), as one YAML
 * stream on stdout or as files plus a kustomization.yaml in a directory, for `kubectl apply -k`, Argo CD or Flux.
 * The commands that talk to a cluster: k8s-cluster.ts (apply, status, promote, undo), k8s-access.ts (secrets, tokens).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { FerryError } from '../core/errors.ts';
import { DEFAULT_GATEWAY_IMAGE } from '../core/gateway-image.ts';
import { registerK8sAccess } from './k8s-access.ts';
import { inputFromDir, registerK8sCluster } from './k8s-cluster.ts';
import { intOption } from './output.ts';
import { run } from './platform.ts';

interface RenderCliOptions {
  image: string;
  gatewayImage: string;
  name?: string;
  tenant: string;
  namespace?: string;
  replicas: number;
  public?: boolean;
  kedaPrometheus?: string;
  output: string;
}

export function registerK8s(program: Command): void {
  const k8s = program
    .command('k8s')
    .description(
      'the Kubernetes target: render the objects that run a model, apply them, follow and undo rollouts',
    );
  k8s
    .command('render')
    .description(
      'write the objects that run a model directory on a cluster (YAML; with -o <dir>, files and a kustomization.yaml)',
    )
    .argument('[dir]', 'the model directory (with its ferry.yaml)', '.')
    .requiredOption(
      '--image <ref>',
      'the model image the cluster pulls (ferry push prints it; by digest preferably)',
    )
    .option(
      '--gateway-image <ref>',
      `the gateway's image (ferry gateway-image builds it)`,
      DEFAULT_GATEWAY_IMAGE,
    )
    .option('--name <name>', "the deployment's name (default: the model's)")
    .option('--tenant <tenant>', 'the tenant (namespace ferry-<tenant>)', 'default')
    .option('--namespace <ns>', 'the namespace (default: ferry-<tenant>)')
    .option(
      '--replicas <n>',
      'replicas when ferry.yaml has no scaling: block',
      intOption('--replicas', 1, 1000),
      1,
    )
    .option('--public', 'callable through the gateway without a token (default: private)')
    .option(
      '--keda-prometheus <url>',
      'scale to zero with KEDA on the gateway metrics in this Prometheus (when scaling.minReplicas is 0)',
    )
    .option('-o, --output <dir|->', 'a directory for the files and kustomization.yaml, or - for stdout', '-')
    .action(
      run(async (dir: string, options: RenderCliOptions) => {
        const { render, toYaml, kustomization, objectFileName } = await import('../k8s/render.ts');
        const input = await inputFromDir(dir, options);
        const rendered = render([input], {
          gatewayImage: options.gatewayImage,
          ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
          ...(options.kedaPrometheus === undefined ? {} : { kedaPrometheus: options.kedaPrometheus }),
        });
        // Checked offline before anything is written (the official schemas and Ferry's rules, validate.ts).
        const { assertRenderedValid } = await import('../k8s/validate.ts');
        assertRenderedValid(rendered);
        const objects = rendered;
        if (options.output === '-') {
          process.stdout.write(toYaml(objects));
          return;
        }
        const out = resolve(options.output);
        try {
          mkdirSync(out, { recursive: true });
          const files = objects.map((o) => {
            const file = objectFileName(o);
            writeFileSync(join(out, file), toYaml([o]));
            return file;
          });
          writeFileSync(join(out, 'kustomization.yaml'), kustomization(files));
          process.stdout.write(
            `wrote ${files.length} objects and kustomization.yaml to ${options.output}\n` +
              `  kubectl apply --server-side -k ${options.output}\n`,
          );
        } catch (error) {
          throw new FerryError('FERRY_INTERNAL', `cannot write to ${out}: ${(error as Error).message}`);
        }
      }),
    );
  registerK8sCluster(k8s);
  registerK8sAccess(k8s);
}
