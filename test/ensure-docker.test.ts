/**
 * scripts/ensure-docker.mjs and scripts/apt.mjs, the set-up `npm test` runs on a shared machine: which engine to use (the
 * decision table of planEngine), which sockets a dockerd serves, and who holds the apt/dpkg locks it waits
 * for (read from /proc/locks; checked against a real lock held by `flock`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { aptLockHolders, parseProcLocks } from '../scripts/apt.mjs';
import {
  DOCKERD_LOG,
  dockerdHosts,
  type EngineAddress,
  engineAddress,
  planEngine,
  type RunningDockerd,
  TEST_ENGINE,
  testEngineArgs,
} from '../scripts/ensure-docker.mjs';
import { tempDir, until } from './helpers.ts';

const DEFAULT: EngineAddress = engineAddress({});
const same = (p: string) => p.replace(/^\/var\/run\//, '/run/');
const dockerd = (pid: number, hosts: string[], ours = false): RunningDockerd => ({ pid, hosts, ours });

describe('planEngine: which engine a test run uses', () => {
  const rows: Array<[string, Parameters<typeof planEngine>[0], string]> = [
    ['the default socket answers: use it', { address: DEFAULT, answers: true, dockerds: [] }, 'use'],
    [
      'a dockerd serves the default socket but does not answer yet: wait for it',
      { address: DEFAULT, answers: false, dockerds: [dockerd(10, ['unix:///run/docker.sock'])] },
      'wait',
    ],
    [
      'no dockerd at all: start the machine engine',
      { address: DEFAULT, answers: false, dockerds: [] },
      'start',
    ],
    [
      'a dockerd that is not ours serves another socket: our own test engine',
      { address: DEFAULT, answers: false, dockerds: [dockerd(10, ['unix:///tmp/other/docker.sock'])] },
      'private',
    ],
    [
      'only our test engine runs (another run started it): join it',
      { address: DEFAULT, answers: false, dockerds: [dockerd(11, [`unix://${TEST_ENGINE.socket}`], true)] },
      'private',
    ],
    [
      'DOCKER_HOST set on purpose to a socket nobody serves: fail, never swap in another engine',
      {
        address: engineAddress({ DOCKER_HOST: 'unix:///tmp/mine.sock' }),
        answers: false,
        dockerds: [dockerd(10, ['unix:///tmp/other.sock'])],
      },
      'fail',
    ],
    [
      'a TCP engine that does not answer: fail',
      { address: engineAddress({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }), answers: false, dockerds: [] },
      'fail',
    ],
  ];
  for (const [name, state, action] of rows) {
    test(name, () => assert.equal(planEngine({ canonical: same, ...state }).action, action));
  }

  test('private names the dockerds it leaves alone', () => {
    const plan = planEngine({
      address: DEFAULT,
      answers: false,
      dockerds: [
        dockerd(10, ['unix:///tmp/other.sock']),
        dockerd(11, [`unix://${TEST_ENGINE.socket}`], true),
      ],
      canonical: same,
    });
    assert.deepEqual(plan, { action: 'private', foreign: [dockerd(10, ['unix:///tmp/other.sock'])] });
  });
});

describe('dockerdHosts: the sockets a dockerd serves', () => {
  const none = () => undefined;
  test('no -H and no config: the default socket', () => {
    assert.deepEqual(dockerdHosts(['--iptables=false'], none), ['unix:///var/run/docker.sock']);
  });
  test('-H, --host and their = forms, several times', () => {
    assert.deepEqual(
      dockerdHosts(['-H', 'unix:///a.sock', '--host=unix:///b.sock', '--host', 'tcp://127.0.0.1:2375'], none),
      ['unix:///a.sock', 'unix:///b.sock', 'tcp://127.0.0.1:2375'],
    );
    assert.deepEqual(dockerdHosts(['-H=unix:///c.sock'], none), ['unix:///c.sock']);
  });
  test('"hosts" of its config file (--config-file, else /etc/docker/daemon.json)', () => {
    const configs: Record<string, unknown> = { '/etc/x.json': { hosts: ['unix:///x.sock'] } };
    assert.deepEqual(
      dockerdHosts(['--config-file', '/etc/x.json'], (f) => configs[f]),
      ['unix:///x.sock'],
    );
    assert.deepEqual(
      dockerdHosts(['--config-file=/etc/x.json'], (f) => configs[f]),
      ['unix:///x.sock'],
    );
  });
  test("systemd's fd:// is the default socket", () => {
    assert.deepEqual(dockerdHosts(['-H', 'fd://'], none), ['unix:///var/run/docker.sock']);
  });
});

test("the test engine has its own socket, pid file, exec root, data root and config, and today's flags", () => {
  const args = testEngineArgs();
  for (const flag of ['--iptables=false', '--ip6tables=false', '--bridge=none'])
    assert.ok(args.includes(flag));
  assert.deepEqual(args.filter((a) => /^--(host|pidfile|exec-root|data-root|config-file)=/.test(a)).sort(), [
    `--config-file=${TEST_ENGINE.config}`,
    `--data-root=${TEST_ENGINE.dataRoot}`,
    `--exec-root=${TEST_ENGINE.execRoot}`,
    `--host=unix://${TEST_ENGINE.socket}`,
    `--pidfile=${TEST_ENGINE.pidFile}`,
  ]);
  for (const [mine, machine] of [
    [TEST_ENGINE.socket, '/var/run/docker.sock'],
    [TEST_ENGINE.pidFile, '/var/run/docker.pid'],
    [TEST_ENGINE.execRoot, '/var/run/docker'],
    [TEST_ENGINE.dataRoot, '/var/lib/docker'],
    [TEST_ENGINE.log, DOCKERD_LOG],
  ]) {
    assert.notEqual(same(mine!), same(machine!));
  }
});

describe('who holds the apt/dpkg locks', () => {
  test('parseProcLocks reads holders, not waiters', () => {
    const text = [
      '1: POSIX  ADVISORY  WRITE 14414 fe:00:399286 0 EOF',
      '1: -> POSIX  ADVISORY  WRITE 14500 fe:00:399286 0 EOF',
      '2: FLOCK  ADVISORY  WRITE 2880 fe:01:1474768 0 EOF',
      '3: OFDLCK ADVISORY  READ -1 00:06:3 0 EOF',
      '',
    ].join('\n');
    assert.deepEqual(parseProcLocks(text), [
      { kind: 'POSIX', pid: 14414, major: 254, minor: 0, inode: 399286 },
      { kind: 'FLOCK', pid: 2880, major: 254, minor: 1, inode: 1474768 },
      { kind: 'OFDLCK', pid: -1, major: 0, minor: 6, inode: 3 },
    ]);
  });

  const dir = tempDir('ferry-apt-lock-');
  after(() => dir.remove());

  test('a lock another process holds on the file is reported with its pid and command, then not', async () => {
    const file = join(dir.path, 'lock-frontend');
    writeFileSync(file, '');
    assert.deepEqual(aptLockHolders([file]), []);
    // flock holds the lock (-o: its child does not) in its own process group, so both go by its PID.
    const holder = spawn('flock', ['-o', file, 'sleep', '600'], { stdio: 'ignore', detached: true });
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    try {
      const held = await until('flock to hold the lock', () => {
        const list = aptLockHolders([file]);
        return list.length > 0 ? list : undefined;
      });
      assert.equal(held.length, 1);
      assert.equal(held[0]!.path, file);
      assert.equal(held[0]!.pid, holder.pid);
      assert.match(held[0]!.command, /^flock -o \S+lock-frontend sleep 600$/);
    } finally {
      process.kill(-holder.pid!, 'SIGKILL');
      await exited;
    }
    await until('the lock to be free', () => aptLockHolders([file]).length === 0);
  });
});
