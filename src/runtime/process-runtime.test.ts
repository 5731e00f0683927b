import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runRuntimeContract } from './contract.ts';
import { ProcessRuntime } from './process-runtime.ts';

runRuntimeContract('process', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-process-runtime-'));
  const runtime = new ProcessRuntime({ stateDir });
  return {
    runtime,
    replicaSource: join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'iris'),
    reopen: () => new ProcessRuntime({ stateDir }),
    crash: async (replica) => {
      const pid = await runtime.pidOf(replica.id);
      if (pid === undefined) throw new Error(`no pid for ${replica.id}`);
      process.kill(pid, 'SIGKILL');
    },
    cleanup: async () => rmSync(stateDir, { recursive: true, force: true }),
  };
});
