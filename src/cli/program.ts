/**
 * The `ferry` program: every command with its options and description, and nothing else. Registering is
 * cheap on purpose (`ferry --help` and `ferry get` start in a few tens of milliseconds): a command module
 * imports its heavy dependencies (the server, the image builder, the platform, onnxruntime, ...) inside its
 * action, with `await import(...)`, never at the top.
 */
import type { Command } from 'commander';
import { registerAudit } from './audit.ts';
import { registerAutoscale } from './autoscale.ts';
import { registerDeploy } from './deploy.ts';
import { registerGateway } from './gateway.ts';
import { registerImage } from './image.ts';
import { registerInit } from './init.ts';
import { registerK8s } from './k8s.ts';
import { registerPlatform } from './platform.ts';
import { registerPredict } from './predict.ts';
import { registerPrometheusConfig } from './prometheus-config.ts';
import { rootCommand } from './root-command.ts';
import { registerSecrets } from './secrets.ts';
import { registerServe } from './serve.ts';
import { registerTenants } from './tenant.ts';
import { registerTest } from './test.ts';
import { registerTop } from './top.ts';
import { registerUi } from './ui.ts';
import { registerUp } from './up.ts';

export function buildProgram(): Command {
  const program = rootCommand().description(
    'Ship a machine-learning model into production: describe it in ferry.yaml, serve it, deploy it.',
  );

  registerInit(program);
  registerServe(program);
  registerPredict(program);
  registerTest(program);
  registerUp(program);
  registerUi(program);
  registerImage(program);
  registerDeploy(program);
  registerPlatform(program);
  registerSecrets(program);
  registerTenants(program);
  registerAutoscale(program);
  registerTop(program);
  registerGateway(program);
  registerK8s(program);
  registerAudit(program);
  registerPrometheusConfig(program);
  return program;
}
