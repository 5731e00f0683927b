/**
 * Secrets end to end, on both runtimes: a model gets its tenant's secret (it answers the value's sha256, never the
 * value), a changed secret rolls out a new revision with the new value, and then every place a value could leak is
 * read and searched for both values: every control-plane API answer of the test (through a recording fetch), the
 * events, the audit records, the platform's log, the replicas' logs, the state database, `docker inspect` of every
 * container of the platform, the layers of the image a replica runs (`docker save`), and the initial environment
 * (`/proc/<pid>/environ`) of every process on the machine. 0 hits.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { addVersionFromDir } from '../../src/cli/upload.ts';
import { ControlClient } from '../../src/control/index.ts';
import { type Platform, platformId, startPlatform } from '../../src/platform/index.ts';
import { requireDocker } from '../docker-env.ts';
import { fixtureModel } from '../fixtures/models.ts';
import { tempDir, until } from '../helpers.ts';

const sha = (v: string) => createHash('sha256').update(v).digest('hex');

/** Every process's initial environment on this machine (as root, all are readable). */
function allEnvirons(): string {
  let out = '';
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      out += readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {}
  }
  return out;
}

for (const runtime of ['process', 'docker'] as const) {
  describe(`secrets on the ${runtime} runtime`, () => {
    const home = tempDir(`ferry-secrets-${runtime}-`);
    const first = `s3cr3t-first-${runtime}-${Date.now().toString(36)}`;
    const second = `s3cr3t-second-${runtime}-${Date.now().toString(36)}`;
    const answers: string[] = [];
    let platform: Platform | undefined;
    let logFile: ReturnType<typeof createWriteStream> | undefined;

    after(async () => {
      await platform?.stop({ removeReplicas: true });
      logFile?.end();
      home.remove();
    });

    test('the model gets its value; a change rolls out; no value anywhere it could leak', async () => {
      const engine = runtime === 'docker' ? requireDocker() : undefined;
      logFile = createWriteStream(join(home.path, 'platform.log'));
      platform = await startPlatform({
        home: home.path,
        runtime,
        apiPort: 0,
        gatewayPort: 0,
        resyncMs: 300,
        logger: pino({ level: 'debug' }, logFile),
      });
      const recording: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        answers.push(await res.clone().text());
        return res;
      };
      const root = new ControlClient({ url: platform.apiUrl, token: platform.adminToken!, fetch: recording });
      await root.createTenant('tenant-a');
      const asA = new ControlClient({
        url: platform.apiUrl,
        token: platform.adminToken!,
        tenant: 'tenant-a',
        fetch: recording,
      });
      const dir = fixtureModel(home.path, 'echo', 'secret-echo', 'secrets: [API_KEY]');
      await asA.setSecret('API_KEY', first);
      await asA.createModel('echo');
      await addVersionFromDir(asA, 'echo', '1', dir);
      await asA.deploy({ name: 'echo', model: 'echo', version: '1', replicas: 1, public: true });
      const digest = async () => {
        const res = await fetch(`${platform!.gatewayUrl}/t/tenant-a/v2/models/echo/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }),
        });
        const text = await res.text();
        answers.push(text);
        return res.status === 200 ? (JSON.parse(text).outputs[0].data[0] as string) : undefined;
      };
      await until('the model answers with the first value', async () => (await digest()) === sha(first));
      // Another tenant's secret of the same name is not this one's.
      await new ControlClient({
        url: platform.apiUrl,
        token: platform.adminToken!,
        fetch: recording,
      }).setSecret('API_KEY', 'the-default-tenants-own');
      const changed = await asA.setSecret('API_KEY', second);
      assert.equal(changed.version, 2);
      assert.deepEqual(
        changed.rolledOut.map((r) => r.deployment),
        ['echo'],
      );
      await until('the new revision serves the second value', async () => (await digest()) === sha(second));
      assert.ok((await asA.revisions('echo')).length >= 2, 'a new revision rolled out');

      // Read back every place a value could land.
      const places: Record<string, string> = {};
      places['api answers'] = answers.join('\n');
      places.events = JSON.stringify(await asA.events({ limit: 1000 }));
      places.audit = JSON.stringify(await root.listAudit({ limit: 1000 }));
      places['platform log'] = readFileSync(join(home.path, 'platform.log'), 'utf8');
      places['replica logs'] = JSON.stringify(await asA.logs('echo', { tail: 10_000 }));
      places['state database'] = ['state.db', 'state.db-wal']
        .map((f) => {
          try {
            return readFileSync(join(home.path, f), 'latin1');
          } catch {
            return '';
          }
        })
        .join('');
      places.environs = allEnvirons();
      if (engine) {
        const containers = await engine.listByLabel({ 'ferry.dev/platform': platformId(home.path) });
        assert.ok(containers.length > 0);
        let inspected = '';
        let layers = '';
        for (const c of containers) {
          // One of the old revision's may be gone meanwhile (drained after the rollout).
          const info = await engine.docker
            .getContainer(c.id)
            .inspect()
            .catch(() => undefined);
          if (info === undefined) continue;
          inspected += JSON.stringify(info);
          const saved = await engine.docker.getImage(info.Image).get();
          const chunks: Buffer[] = [];
          for await (const chunk of saved) chunks.push(chunk as Buffer);
          layers += Buffer.concat(chunks).toString('latin1');
        }
        places['docker inspect'] = inspected;
        places['image layers'] = layers;
      }
      const hits: string[] = [];
      for (const [where, text] of Object.entries(places))
        for (const value of [first, second]) if (text.includes(value)) hits.push(`${value} in ${where}`);
      console.log(
        `# secrets (${runtime}): searched ${Object.keys(places).join(', ')} (${Object.values(places)
          .reduce((n, t) => n + t.length, 0)
          .toLocaleString('en')} characters): ${hits.length} hits`,
      );
      assert.deepEqual(hits, []);
      assert.ok(places['api answers'].includes(sha(second)), 'the search covers what the model answered');
    });
  });
}
