/**
 * `ferry up --demo`: deploys examples/iris through the API (as `ferry deploy examples/iris` would), makes a key
 * for it (the deployment is private, as every new one), waits until the gateway answers an inference with 200,
 * and prints the curl that just worked, key included.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ControlClient } from '../control/index.ts';
import { FerryError } from '../core/errors.ts';
import type { FerryContext } from './context.ts';
import { deploy } from './deploy.ts';
import { cliCommand } from './output.ts';

const IRIS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'iris');
const READY_TIMEOUT_MS = 180_000;

export async function deployDemo(
  client: ControlClient,
  ctx: Pick<FerryContext, 'gatewayUrl'>,
  say: (line: string) => void,
): Promise<void> {
  say('Deploying the iris example (examples/iris)...');
  const progress = (line: string) => say(`  ${line}`);
  // On docker the platform builds the image on a base made from this host's Node: nothing to download.
  await deploy(client, IRIS, { name: 'iris' }, progress);
  const key = await demoKey(client);
  const requestFile = join(IRIS, 'requests', 'setosa.json');
  const body = readFileSync(requestFile);
  const endpoint = `${ctx.gatewayUrl}/v2/models/iris/infer`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  for (;;) {
    const view = await client.getDeployment('iris');
    const ready = view.replicaStatus.filter((r) => r.state === 'ready').length;
    const problem = view.revisionStatus.find((r) => r.revision === view.revision)?.problem;
    const status = `${ready}/${view.replicas} replica(s) ready${view.rollout && view.rollout.phase !== 'succeeded' ? `, rollout ${view.rollout.phase} at ${view.rollout.percent}%` : ''}${problem ? `; ${problem.message}` : ''}`;
    if (problem?.fatal)
      throw new FerryError('FERRY_NO_READY_REPLICA', `The iris demo cannot start: ${problem.message}`, {
        hint: `${cliCommand()} describe iris and ${cliCommand()} events show what happened.`,
      });
    if (status !== last) say(`  ${status}`);
    last = status;
    if (ready > 0) {
      const res = await fetch(endpoint, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      }).catch(() => undefined);
      if (res?.status === 200) {
        const answer = (await res.json()) as { outputs?: Array<{ name: string; data: unknown[] }> };
        const label = answer.outputs?.find((o) => o.name === 'label')?.data;
        say('');
        say(
          `iris is serving (revision ${view.revision}; the gateway answered label ${JSON.stringify(label)} for a setosa). Try:`,
        );
        say('');
        say(
          `  curl -s ${endpoint} -H 'content-type: application/json' -H 'authorization: Bearer ${key}' -d @${requestFile}`,
        );
        say('');
        say(
          `The endpoint is private: that key (an invoker token for iris only; ${cliCommand()} token list shows it) is what lets the curl in.`,
        );
        say('');
        const ferry = cliCommand();
        say(
          `Then: ${['get', 'describe iris', 'logs iris', 'events', 'down'].map((c) => `${ferry} ${c}`).join(' · ')}`,
        );
        return;
      }
      await res?.body?.cancel();
    }
    if (Date.now() > deadline) {
      const crash = view.lastCrash
        ? ` Last crash: exit ${view.lastCrash.exitCode}: ${view.lastCrash.logTail.slice(-3).join(' | ')}`
        : '';
      throw new FerryError(
        'FERRY_NO_READY_REPLICA',
        `The iris demo did not become ready within ${READY_TIMEOUT_MS / 1000} s (${status}).${crash}`,
        {
          hint: `${cliCommand()} describe iris and ${cliCommand()} events show what happened.`,
        },
      );
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

const DEMO_KEY = 'iris-demo-key';

/** A fresh key for the demo deployment (a key is shown once: one left by an earlier demo is replaced). */
async function demoKey(client: ControlClient): Promise<string> {
  await client.deleteToken(DEMO_KEY).catch((error: unknown) => {
    if (!(error instanceof FerryError && error.code === 'FERRY_NOT_FOUND')) throw error;
  });
  return (await client.createToken(DEMO_KEY, 'invoker', { deployment: 'iris' })).token;
}
