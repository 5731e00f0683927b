/**
 * The platform commands end to end as a user runs them: `node bin/ferry.js ...` child processes against the
 * control-plane API listening in this process (real Fastify app, real SQLite store). Behind the API is the
 * API's small recording ControlPlane (src/control/api/testing.ts): replicas and rollouts are what the test
 * sets, so these tests check what the CLI sends, prints and exits with, not the controller.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { buildControlApi } from '../control/api/app.ts';
import { type RecordingControl, recordingControl } from '../control/api/testing.ts';
import { ArtifactStore } from '../control/artifacts.ts';
import { SecretBox, Secrets } from '../control/secrets.ts';
import { openStore, type Store } from '../control/store/store.ts';
import type { ReplicaView, RolloutView } from '../control/views.ts';
import { writeContext } from './context.ts';
import { age } from './format.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ferry.js');
const GATEWAY = 'http://127.0.0.1:18080';
/**
 * An AGE column as format.ts's age() writes it: "45s", "1m15s", "2h", "3d". The test does not know how
 * long the machine took to get here, so it accepts any age.
 */
const AGE = String.raw`(?:\d+[smhd])+`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

test('the AGE pattern accepts every age the CLI can print, however long the machine took', () => {
  const now = 1_700_000_000_000;
  for (const seconds of [0, 7, 59, 60, 75, 599, 600, 3599, 3600, 3660, 86_399, 172_800, 10 * 86_400]) {
    assert.match(age(now - seconds * 1000, now), new RegExp(`^${AGE}$`), `${seconds} s`);
  }
});

describe('ferry platform commands against a live control-plane API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cli-platform-'));
  const home = join(dir, 'home');
  const model = join(dir, 'iris');
  let store: Store;
  let secrets: Secrets;
  let control: RecordingControl;
  let app: FastifyInstance;
  let url: string;
  let admin: string;

  /** Runs the CLI; the API answers meanwhile (async spawn, this event loop stays free). */
  function ferry(
    args: string[],
    opts: { env?: Record<string, string>; onStdout?: (text: string) => void; input?: string } = {},
  ) {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: dir, FERRY_HOME: home, ...opts.env },
    });
    child.stdin.end(opts.input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      opts.onStdout?.(stdout);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const done = new Promise<Run>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
    return Object.assign(done, { child });
  }
  const api = () => ['--api', url, '--token', admin];

  before(async () => {
    cpSync(join(ROOT, 'examples', 'iris'), model, { recursive: true });
    store = openStore(join(dir, 'state.db'));
    control = recordingControl(store, GATEWAY);
    secrets = new Secrets(store, SecretBox.open(join(dir, 'secret.key')));
    app = buildControlApi({
      store,
      control,
      secrets,
      info: { version: '0.0.0-test', runtime: 'process', gatewayUrl: GATEWAY },
      versions: { store, artifacts: new ArtifactStore(join(dir, 'artifacts')) },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    admin = store.createToken('root', 'admin').token;
  });
  after(async () => {
    await app.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ready = (revision: number, index = 0): ReplicaView => ({
    id: `iris-${revision}-${index}`,
    name: `iris-${revision}-${index}`,
    revision,
    index,
    state: 'ready',
    url: `http://127.0.0.1:${19000 + index}`,
    startedAt: Date.now(),
    restarts: 0,
  });

  test('deploy a directory: uploads it as an artifact, registers a version named by its content, creates the deployment, prints a curl', async () => {
    const r = await ferry(['deploy', model, ...api()]);
    assert.equal(r.code, 0, r.stderr);
    const m = store.getModel('iris');
    assert.equal(m?.versions.length, 1);
    const version = m?.versions[0];
    assert.match(version?.artifact ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(version?.version, version?.artifact?.slice(7, 19), 'the version is named after the content');
    assert.equal(version?.artifactDir, join(dir, 'artifacts', 'sha256', version?.artifact?.slice(7) ?? ''));
    assert.equal(version?.image, null);
    assert.equal(store.getDeployment('iris')?.revision, 1);
    assert.match(
      r.stdout,
      new RegExp(`version +${version?.version} \\(new\\): artifact sha256:[0-9a-f]{12} \\(\\d+ file`),
    );
    assert.match(r.stdout, /the model reports model_version "1" \(ferry\.yaml\)/);
    assert.match(r.stdout, /deployment +iris created: revision r1/);
    assert.match(
      r.stdout,
      new RegExp(`curl -s -X POST ${GATEWAY}/v2/models/iris/infer .* -d @${model}/requests/setosa\\.json`),
    );
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(admin));
  });

  test('deploy again unchanged: same version reused, no new revision', async () => {
    const r = await ferry(['deploy', model, ...api()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(store.getModel('iris')?.versions.length, 1);
    assert.equal(store.getDeployment('iris')?.revision, 1);
    assert.match(r.stdout, /\(already registered\)/);
    assert.match(r.stdout, /iris unchanged: revision r1 already serves this spec \(r1 100%; 0\/1 ready\)/);
  });

  test('deploy a change with flags: a new version and revision, with canary, env and limits', async () => {
    // A file that is not part of the model (not in ferry.yaml) changes nothing that runs: same version.
    writeFileSync(join(model, 'NOTES.md'), 'changed\n');
    const same = await ferry(['deploy', model, ...api()]);
    assert.match(same.stdout, /\(already registered\)/);
    appendFileSync(join(model, 'ferry.yaml'), '# changed\n');
    control.replicas.set('iris', [ready(1)]);
    const r = await ferry([
      'deploy',
      model,
      ...api(),
      '--canary',
      '10,50,100',
      '--pause',
      '30s',
      '--env',
      'MODE=fast',
      '--env',
      'X=a=b',
      '--memory',
      '512m',
      '--cpus',
      '500m',
      '--serving',
      '{"batching":{"maxBatchSize":8}}',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(store.getModel('iris')?.versions.length, 2);
    const d = store.getDeployment('iris');
    assert.equal(d?.revision, 2);
    assert.deepEqual(d?.env, { MODE: 'fast', X: 'a=b' });
    assert.deepEqual(d?.resources, { cpu: 0.5, memoryBytes: 512 * 1024 * 1024, gpu: 0 });
    assert.deepEqual(d?.serving, { batching: { maxBatchSize: 8 } });
    const update = control.calls.filter((c) => c.method === 'update').at(-1);
    assert.ok(update, 'deploy updated the existing deployment');
    assert.deepEqual((update.args[1] as { strategy: unknown }).strategy, {
      kind: 'canary',
      steps: [
        { percent: 10, pauseMs: 30_000 },
        { percent: 50, pauseMs: 30_000 },
        { percent: 100, pauseMs: 30_000 },
      ],
    });
    assert.match(r.stdout, /deployment +iris updated: revision r2/);
  });

  test('bad flag values exit 2 naming the flag, before calling the API', async () => {
    const calls = control.calls.length;
    const cases: Array<[string[], RegExp]> = [
      [['deploy', model, '--memory', '512x'], /--memory: "512x" is not a size/],
      [['deploy', model, '--pause', '30'], /--pause: "30" has no unit/],
      [['deploy', model, '--canary', '10,5'], /--canary "10,5": steps must rise/],
      [['deploy', model, '--env', 'NOPE'], /--env "NOPE"/],
      [
        ['deploy', model, '--serving', '{"batching":{"maxBatchSize":"lots"}}'],
        /--serving: .*batching\.maxBatchSize/,
      ],
      [['deploy', model, '--serving', '{not json'], /--serving is not JSON/],
      [['deploy', model, '--canary', '10,100', '--rolling'], /--canary and --rolling do not go together/],
      [['scale', 'iris', 'lots'], /<replicas> must be a whole number from 0 to 1000, got "lots"/],
      [['traffic', 'iris', 'r1=90', 'x'], /traffic "x" is not <revision>=<percent>/],
      [['get', 'gadgets'], /unknown kind "gadgets"/],
      [['models', 'add-version', 'iris', '9'], /exactly one of --image <ref> or --dir <dir>/],
    ];
    const runs = await Promise.all(cases.map(([args]) => ferry([...args, ...api()])));
    runs.forEach((r, i) => {
      assert.equal(r.code, 2, `${cases[i]![0].join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, cases[i]![1]);
    });
    assert.equal(control.calls.length, calls, 'nothing was sent');
  });

  test('get, describe and events read the API; -o json prints it as is; the context token is used, never shown', async () => {
    writeContext(home, { apiUrl: url, gatewayUrl: GATEWAY, token: admin, runtime: 'process' });
    control.replicas.set('iris', [ready(1), ready(2)]);
    store.addEvent({
      deployment: 'iris',
      type: 'Normal',
      reason: 'RevisionCreated',
      message: 'r2 made',
      at: Date.now(),
    });
    store.addEvent({ type: 'Warning', reason: 'Elsewhere', message: 'not about iris', at: Date.now() });
    const [get, json, models, revisions, describeRun, events] = await Promise.all([
      ferry(['get']),
      ferry(['get', 'deployments', '-o', 'json']),
      ferry(['get', 'models']),
      ferry(['get', 'revisions', 'iris']),
      ferry(['describe', 'iris']),
      ferry(['events', '--deployment', 'iris']),
    ]);
    for (const r of [get, json, models, revisions, describeRun, events]) {
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(admin), 'the token is never printed');
    }
    assert.match(get.stdout, /^NAME +MODEL +VERSION +REVISION +READY +TRAFFIC +ACCESS +STATUS +AGE$/m);
    assert.match(
      get.stdout,
      new RegExp(`^iris +iris +[0-9a-f]{12} +r2 +2/1 +r1 100% +private +- +${AGE}$`, 'm'),
    );
    const list = JSON.parse(json.stdout) as Array<{ name: string; revision: number; endpoint: string }>;
    assert.deepEqual(
      list.map((d) => [d.name, d.revision, d.endpoint]),
      [['iris', 2, `${GATEWAY}/v2/models/iris/infer`]],
    );
    assert.match(models.stdout, new RegExp(`^iris +2 +[0-9a-f]{12} +- +${AGE}$`, 'm'));
    assert.match(revisions.stdout, /^r2 +[0-9a-f]{12} +[0-9a-f]{12} +- +artifact sha256:[0-9a-f]{12} /m);
    assert.match(
      revisions.stdout,
      /^r1 +[0-9a-f]{12} +[0-9a-f]{12} +r1 100% +artifact sha256:[0-9a-f]{12} /m,
    );
    for (const section of [
      /^Name: +iris$/m,
      /^Env: +MODE=fast X=a=b$/m,
      /^Traffic: r1 100%$/m,
      /^Replicas:$/m,
      /^Events:$/m,
    ]) {
      assert.match(describeRun.stdout, section);
    }
    assert.match(
      events.stdout,
      new RegExp(
        String.raw`^AGE +TYPE +REASON +DEPLOYMENT +MESSAGE\n${AGE} +Normal +RevisionCreated +iris +r2 made\n$`,
      ),
    );
    assert.match(describeRun.stdout, new RegExp(`^ {2}${AGE} +Normal +RevisionCreated +iris +r2 made$`, 'm'));
  });

  test('traffic: set a split with a shadow, then print it; the server refuses a bad sum', async () => {
    const set = await ferry(['traffic', 'iris', 'r1=90', 'r2=10', '--shadow', 'r2=5', ...api()]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /traffic of iris: r1 90% r2 10% r2 shadow 5%/);
    assert.deepEqual(store.getTraffic('iris'), [
      { revision: 1, percent: 90 },
      { revision: 2, percent: 10, shadow: 5 },
    ]);
    const [show, bad] = await Promise.all([
      ferry(['traffic', 'iris', ...api()]),
      ferry(['traffic', 'iris', 'r1=50', 'r2=10', ...api()]),
    ]);
    assert.match(show.stdout, /^r2 +10% +5%$/m);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error FERRY_BAD_REQUEST: .*sum to 60/m);
  });

  test('rollout status, promote, abort, undo --to', async () => {
    const rollout: RolloutView = {
      deployment: 'iris',
      from: 1,
      to: 2,
      phase: 'paused',
      percent: 10,
      strategy: { kind: 'canary', steps: [{ percent: 10 }, { percent: 100 }] },
      step: 0,
      startedAt: Date.now(),
      updatedAt: Date.now(),
      message: 'Paused at 10% on revision 2; ferry rollout promote iris continues',
    };
    control.rollouts.set('iris', rollout);
    const status = await ferry(['rollout', 'status', 'iris', ...api()]);
    assert.equal(status.code, 0, status.stderr);
    // The platform's message names `ferry rollout promote`; it is printed as this CLI was run, so it works.
    assert.equal(
      status.stdout,
      `rollout r1 -> r2 (canary 10,100, step 1/2): paused at 10%\n  Paused at 10% on revision 2; node ${BIN} rollout promote iris continues\n`,
    );
    const promote = await ferry(['rollout', 'promote', 'iris', ...api()]);
    assert.match(promote.stdout, /^promoted: rollout r1 -> r2 .*progressing at 10%/);
    const abort = await ferry(['rollout', 'abort', 'iris', ...api()]);
    assert.match(abort.stdout, /^aborting: /);
    control.rollouts.delete('iris');
    const undo = await ferry(['rollout', 'undo', 'iris', '--to', 'r1', ...api()]);
    assert.equal(undo.code, 0, undo.stderr);
    assert.deepEqual(control.calls.at(-1), { method: 'undo', args: ['iris', 1] });
    control.rollouts.delete('iris');
    const none = await ferry(['rollout', 'status', 'iris', ...api()]);
    assert.match(none.stdout, /^no rollout: r1 90% r2 10%/);
  });

  test('deploy --wait: exit 0 once the revision serves, exit 1 when its rollout is aborted', async () => {
    control.replicas.set('web', [{ ...ready(1), name: 'web-1-0' }]);
    const ok = await ferry(['deploy', model, '--name', 'web', '--wait', '--timeout', '20s', ...api()]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /r1: 1\/1 ready/);
    assert.match(ok.stdout, /web r1 serves all traffic/);

    appendFileSync(join(model, 'ferry.yaml'), '# changed again\n');
    control.rollouts.set('web', {
      deployment: 'web',
      from: 1,
      to: 2,
      phase: 'aborted',
      percent: 0,
      strategy: { kind: 'rolling', maxSurge: 1 },
      step: 0,
      startedAt: Date.now(),
      updatedAt: Date.now(),
      message: 'Aborted: revision 1 serves all traffic',
    });
    const failed = await ferry(['deploy', model, '--name', 'web', '--wait', '--timeout', '20s', ...api()]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /error FERRY_CONFLICT: The rollout of web to revision 2 failed: Aborted/);
  });

  test('scale, logs (and -f until Ctrl+C), delete', async () => {
    const scale = await ferry(['scale', 'iris', '3', ...api()]);
    assert.equal(scale.code, 0, scale.stderr);
    assert.equal(store.getDeployment('iris')?.replicas, 3);
    assert.match(
      scale.stdout,
      /iris scaled to 3 replica\(s\) per serving revision \(r1 90% r2 10% r2 shadow 5%\)/,
    );
    assert.doesNotMatch(scale.stderr, /warning/);
    const zero = await ferry(['scale', 'web', '0', ...api()]);
    assert.equal(zero.code, 0, zero.stderr);
    assert.match(
      zero.stderr,
      /warning: requests to web now get 503 FERRY_NO_READY_REPLICA until it is scaled up/,
    );

    control.lines.push(
      { at: 1, replica: 'iris-1-0', revision: 1, stream: 'stdout', line: 'listening' },
      { at: 2, replica: 'iris-2-0', revision: 2, stream: 'stderr', line: 'warning: slow' },
    );
    const logs = await ferry(['logs', 'iris', ...api()]);
    assert.equal(logs.stdout, '[r1 iris-1-0] listening\n[r2 iris-2-0 stderr] warning: slow\n');
    const onlyR2 = await ferry(['logs', 'iris', '--revision', '2', '--tail', '5', ...api()]);
    assert.equal(onlyR2.stdout, '[r2 iris-2-0 stderr] warning: slow\n');

    const followers = control.followSignals.length;
    let seen: () => void = () => {};
    const sawLine = new Promise<void>((res) => {
      seen = res;
    });
    const follow = ferry(['logs', 'iris', '-f', ...api()], {
      onStdout: (text) => {
        if (text.includes('fresh line')) seen();
      },
    });
    await control.followerStarted(followers + 1);
    control.emit({ at: 3, replica: 'iris-2-0', revision: 2, stream: 'stdout', line: 'fresh line' });
    await sawLine;
    follow.child.kill('SIGINT');
    const followed = await follow;
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /^\[r2 iris-2-0\] fresh line$/m);

    const del = await ferry(['delete', 'iris', ...api()]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(store.getDeployment('iris'), undefined);
    const gone = await ferry(['describe', 'iris', ...api()]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error FERRY_NOT_FOUND: /m);
  });

  test('models add-version and alias; tokens: created token shown once, roles enforced, revoked', async () => {
    const add = await ferry([
      'models',
      'add-version',
      'bert',
      '1',
      '--image',
      `reg:5000/bert@sha256:${'ab'.repeat(32)}`,
      ...api(),
    ]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(store.getModel('bert')?.versions[0]?.image, `reg:5000/bert@sha256:${'ab'.repeat(32)}`);
    const alias = await ferry(['models', 'alias', 'bert', 'stable', '1', ...api()]);
    assert.equal(alias.code, 0, alias.stderr);
    assert.deepEqual(store.getModel('bert')?.aliases, { stable: '1' });

    const created = await ferry(['token', 'create', 'ci', '--role', 'viewer', ...api()]);
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    assert.ok(token.length > 16 && !token.includes(' '), 'stdout is the token alone');
    const [list, write] = await Promise.all([
      ferry(['token', 'list', '--api', url, '--token', token]),
      ferry(['scale', 'web', '2', '--api', url, '--token', token]),
    ]);
    assert.equal(list.code, 1, 'listing tokens is for admins');
    assert.match(list.stderr, /FERRY_FORBIDDEN/);
    assert.equal(write.code, 1);
    assert.match(write.stderr, /FERRY_FORBIDDEN/);
    const adminList = await ferry(['token', 'list', ...api()]);
    assert.match(adminList.stdout, new RegExp(`^ci +viewer +- +never +${AGE}$`, 'm'));
    assert.doesNotMatch(adminList.stdout, new RegExp(token));
    const revoke = await ferry(['token', 'revoke', 'ci', ...api()]);
    assert.equal(revoke.code, 0, revoke.stderr);
    const after = await ferry(['get', '--api', url, '--token', token]);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /FERRY_UNAUTHORIZED/);
  });

  test('deploy --version <alias>: the deployment follows the alias when it points at this content', async () => {
    const current = store.getModel('iris')!.versions.at(-1)!;
    assert.equal(
      current.artifact?.slice(7, 19),
      current.version,
      'the newest version is the model dir as it is',
    );
    store.setAlias('iris', 'stable', current.version);
    const follow = await ferry(['deploy', model, '--name', 'follower', '--version', 'stable', ...api()]);
    assert.equal(follow.code, 0, follow.stderr);
    assert.match(
      follow.stderr,
      new RegExp(`iris version ${current.version} \\(alias stable\\) is already registered`),
    );
    assert.equal(store.getDeployment('follower')?.versionRef, 'stable', 'it follows the alias');
    appendFileSync(join(model, 'ferry.yaml'), '# other content\n');
    const other = await ferry(['deploy', model, '--name', 'follower', '--version', 'stable', ...api()]);
    assert.equal(other.code, 1);
    assert.match(
      other.stderr,
      /FERRY_CONFLICT: iris version \S+ \(alias stable\) already exists with other content/,
    );
    assert.match(other.stderr, /models alias iris stable <new name>/);
  });

  test('no API known: FERRY_CONNECTION_FAILED with a hint to run ferry up', async () => {
    // No `ferry` on the PATH (an `npm link` on this machine would make the hint say `ferry up`).
    const env = { FERRY_HOME: join(dir, 'empty'), PATH: dirname(process.execPath) };
    const r = await ferry(['get'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error FERRY_CONNECTION_FAILED: /m);
    // Run from another directory than the clone: the hint names bin/ferry.js by its absolute path.
    assert.ok(r.stderr.includes(`hint: Run 'node ${BIN} up'`), r.stderr);
  });

  test('deploy --version d1 registers version d1 (not the program -V/--version)', async () => {
    const before = control.calls.length;
    const r = await ferry(['deploy', model, '--name', 'pinned', '--version', 'd1', ...api()]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /^\d+\.\d+\.\d+\n$/, 'not the CLI version');
    assert.ok(
      store.getModel('iris')?.versions.some((v) => v.version === 'd1'),
      'version d1 is registered',
    );
    assert.equal(store.getDeployment('pinned')?.versionRef, 'd1');
    assert.ok(control.calls.length > before, 'the deployment was made');
    assert.match(r.stdout, /^version +d1 \(new\)/m);
  });

  test('secrets set (stdin, --from-file), list, rm: the value reaches the store, never the output or argv', async () => {
    const value = 'hf_s3cr3t-value-4711';
    const args = ['secrets', 'set', 'hf-token', ...api()];
    const set = await ferry(args, { input: `${value}\n` });
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, 'secret hf-token created (version 1)\n');
    assert.deepEqual(
      secrets.env(['hf-token']),
      { env: { HF_TOKEN: value }, missing: [] },
      'one trailing newline dropped',
    );

    const file = join(dir, 'db-password');
    writeFileSync(file, 'pa ss\nword\n', { mode: 0o600 });
    const fromFile = await ferry(['secret', 'set', 'db-password', '--from-file', file, ...api()]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.deepEqual(secrets.env(['db-password']).env, { DB_PASSWORD: 'pa ss\nword' });
    const replaced = await ferry(args, { input: 'second' });
    assert.equal(replaced.stdout, 'secret hf-token replaced (version 2)\n');
    assert.deepEqual(secrets.env(['hf-token']).env, { HF_TOKEN: 'second' });

    const [list, json] = await Promise.all([
      ferry(['secrets', 'list', ...api()]),
      ferry(['secrets', 'list', '-o', 'json', ...api()]),
    ]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /^NAME +VERSION +CREATED +UPDATED\ndb-password +1 +\d+s +\d+s\nhf-token +2 +\d+s +\d+s\n$/,
    );
    assert.deepEqual(
      (JSON.parse(json.stdout) as Array<Record<string, unknown>>).map((s) => Object.keys(s).sort()),
      [
        ['createdAt', 'name', 'updatedAt', 'version'],
        ['createdAt', 'name', 'updatedAt', 'version'],
      ],
    );
    for (const r of [set, fromFile, replaced, list, json]) {
      assert.equal(`${r.stdout}${r.stderr}`.includes(value), false, 'the value is never printed');
      assert.equal(`${r.stdout}${r.stderr}`.includes('pa ss'), false);
    }
    assert.equal(args.join(' ').includes(value), false, 'the value was never on the command line');

    const rm = await ferry(['secrets', 'rm', 'hf-token', ...api()]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout, 'removed secret hf-token\n');
    assert.deepEqual(secrets.env(['hf-token']).missing, ['hf-token']);
    const again = await ferry(['secrets', 'rm', 'hf-token', ...api()]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error FERRY_NOT_FOUND: No secret named "hf-token"/m);
  });

  test('secrets set refuses a value on the command line, an empty stdin and a missing file', async () => {
    const value = 'on-the-command-line';
    const [argv, empty, missing, badName] = await Promise.all([
      ferry(['secrets', 'set', 'api-key', value, ...api()]),
      ferry(['secrets', 'set', 'api-key', ...api()], { input: '\n' }),
      ferry(['secrets', 'set', 'api-key', '--from-file', join(dir, 'nope'), ...api()]),
      ferry(['secrets', 'set', '../x', ...api()], { input: 'v' }),
    ]);
    assert.equal(argv.code, 2, argv.stderr);
    assert.match(argv.stderr, /too many arguments/);
    assert.equal(argv.stderr.includes(value), false, 'the refused value is not echoed');
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /^error FERRY_BAD_REQUEST: The secret from stdin is empty/m);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error FERRY_FILE_NOT_FOUND: cannot read --from-file .*nope: ENOENT/m);
    assert.equal(badName.code, 1);
    assert.match(
      badName.stderr,
      /^error FERRY_BAD_REQUEST: "..\/x" is not a name: names cannot contain "\/"/m,
    );
    assert.deepEqual(secrets.env(['api-key']).missing, ['api-key']);
  });
});
