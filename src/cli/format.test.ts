import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_SETTINGS } from '../autoscaler/settings.ts';
import type { StoredRevision } from '../control/index.ts';
import type { DeploymentView, DescribeView, ReplicaView, RolloutView } from '../control/views.ts';
import {
  age,
  deploymentsTable,
  describeText,
  eventsTable,
  formatLogLine,
  formatMs,
  formatSize,
  parseCanary,
  parseCpuFlag,
  parseDurationFlag,
  parseEnvPairs,
  parseIntFlag,
  parseSizeFlag,
  parseTrafficArgs,
  progressLine,
  rolloutCell,
  rolloutLine,
  rolloutOutcome,
  shortImage,
  table,
  trafficSummary,
  UsageError,
} from './format.ts';

const usage = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `not a UsageError: ${e}`);
    assert.match(e.message, pattern);
    return true;
  });

describe('flag parsing', () => {
  test('durations to milliseconds, naming the flag when wrong', () => {
    assert.equal(parseDurationFlag('--pause', '30s'), 30_000);
    assert.equal(parseDurationFlag('--pause', '5m'), 300_000);
    assert.equal(parseDurationFlag('--pause', '500ms'), 500);
    assert.equal(parseDurationFlag('--pause', '1m30s'), 90_000);
    assert.equal(parseDurationFlag('--pause', '0', true), 0);
    usage(() => parseDurationFlag('--timeout', '0'), /^--timeout: must be longer than 0/);
    usage(() => parseDurationFlag('--timeout', '30'), /^--timeout: "30" has no unit/);
    usage(() => parseDurationFlag('--pause', '3 weeks'), /^--pause: .*3 weeks/);
    usage(() => parseDurationFlag('--pause', '-1s'), /^--pause: .*negative/);
  });

  test('sizes the docker way (1024s, any case)', () => {
    assert.equal(parseSizeFlag('--memory', '512m'), 512 * 1024 ** 2);
    assert.equal(parseSizeFlag('--memory', '2g'), 2 * 1024 ** 3);
    assert.equal(parseSizeFlag('--memory', '2G'), 2 * 1024 ** 3);
    assert.equal(parseSizeFlag('--memory', '1.5g'), 1.5 * 1024 ** 3);
    assert.equal(parseSizeFlag('--memory', '64Mi'), 64 * 1024 ** 2);
    assert.equal(parseSizeFlag('--memory', '64MiB'), 64 * 1024 ** 2);
    assert.equal(parseSizeFlag('--memory', '100k'), 102_400);
    assert.equal(parseSizeFlag('--memory', '4096'), 4096);
    usage(() => parseSizeFlag('--memory', '512x'), /^--memory: "512x" is not a size.*512m or 2g/);
    usage(() => parseSizeFlag('--memory', 'lots'), /^--memory: "lots"/);
    usage(() => parseSizeFlag('--memory', '-5m'), /^--memory: "-5m"/);
    usage(() => parseSizeFlag('--memory', '0'), /^--memory: "0" must be more than 0/);
  });

  test('CPU quantities', () => {
    assert.equal(parseCpuFlag('--cpus', '2'), 2);
    assert.equal(parseCpuFlag('--cpus', '0.5'), 0.5);
    assert.equal(parseCpuFlag('--cpus', '250m'), 0.25);
    usage(() => parseCpuFlag('--cpus', 'two'), /^--cpus: "two" is not a CPU quantity/);
    usage(() => parseCpuFlag('--cpus', '0'), /^--cpus: .*less than 1 millicore/);
  });

  test('integers within a range', () => {
    assert.equal(parseIntFlag('--replicas', '3', 0, 1000), 3);
    assert.equal(parseIntFlag('--replicas', '0', 0, 1000), 0);
    usage(
      () => parseIntFlag('--replicas', '1001', 0, 1000),
      /--replicas must be a whole number from 0 to 1000, got "1001"/,
    );
    usage(() => parseIntFlag('--replicas', '1.5', 0, 1000), /got "1.5"/);
    usage(() => parseIntFlag('--replicas', 'x', 0, 1000), /got "x"/);
    usage(() => parseIntFlag('--tail', '', 0, 10), /got ""/);
  });

  test('env pairs: value may hold "=" or be empty; bad names are refused', () => {
    assert.deepEqual(parseEnvPairs('--env', ['A=1', 'B=x=y', 'C=', 'A=2']), { A: '2', B: 'x=y', C: '' });
    usage(() => parseEnvPairs('--env', ['NOVALUE']), /--env "NOVALUE": write NAME=value/);
    usage(() => parseEnvPairs('--env', ['1A=x']), /--env "1A=x"/);
    usage(() => parseEnvPairs('--env', ['=x']), /--env "=x"/);
  });

  test('canary steps rise from 1 to 100, with an optional pause on each', () => {
    assert.deepEqual(parseCanary('--canary', '10,50,100'), {
      kind: 'canary',
      steps: [{ percent: 10 }, { percent: 50 }, { percent: 100 }],
    });
    assert.deepEqual(parseCanary('--canary', '25, 100', 30_000), {
      kind: 'canary',
      steps: [
        { percent: 25, pauseMs: 30_000 },
        { percent: 100, pauseMs: 30_000 },
      ],
    });
    usage(() => parseCanary('--canary', '10,abc'), /--canary "10,abc": step "abc" is not a whole percent/);
    usage(() => parseCanary('--canary', '50,10'), /steps must rise \(10 follows 50\)/);
    usage(() => parseCanary('--canary', '0,100'), /step "0"/);
    usage(() => parseCanary('--canary', '10,150'), /step "150"/);
    usage(() => parseCanary('--canary', ''), /step ""/);
  });

  test('traffic: r2=90 r3=10 and --shadow, naming the bad token', () => {
    assert.deepEqual(parseTrafficArgs(['r2=90', '3=10']), [
      { revision: 2, percent: 90 },
      { revision: 3, percent: 10 },
    ]);
    assert.deepEqual(parseTrafficArgs(['r2=100'], ['r3=20']), [
      { revision: 2, percent: 100 },
      { revision: 3, percent: 0, shadow: 20 },
    ]);
    assert.deepEqual(parseTrafficArgs(['r2=50%', 'r3=50%'], ['r3=5']), [
      { revision: 2, percent: 50 },
      { revision: 3, percent: 50, shadow: 5 },
    ]);
    usage(() => parseTrafficArgs(['r2=90', 'r3:10']), /traffic "r3:10" is not <revision>=<percent>/);
    usage(() => parseTrafficArgs(['r2']), /traffic "r2" is not/);
    usage(() => parseTrafficArgs(['r2=101']), /traffic "r2=101": the percent must be from 0 to 100/);
    usage(() => parseTrafficArgs(['r0=100']), /revisions start at 1/);
    usage(() => parseTrafficArgs(['r2=50', 'r2=50']), /revision 2 is given twice/);
    usage(() => parseTrafficArgs(['r2=100'], ['x=1']), /--shadow "x=1" is not/);
  });
});

// ---------------------------------------------------------------------------------------------- formatting

const NOW = 1_700_000_000_000;

function replica(over: Partial<ReplicaView> = {}): ReplicaView {
  return {
    id: 'id',
    name: 'iris-2-0',
    revision: 2,
    index: 0,
    state: 'ready',
    url: 'http://127.0.0.1:9001',
    startedAt: NOW - 65_000,
    restarts: 0,
    ...over,
  };
}

function rollout(over: Partial<RolloutView> = {}): RolloutView {
  return {
    deployment: 'iris',
    from: 1,
    to: 2,
    phase: 'paused',
    percent: 50,
    strategy: {
      kind: 'canary',
      steps: [{ percent: 10, pauseMs: 30_000 }, { percent: 50 }, { percent: 100 }],
    },
    step: 1,
    startedAt: NOW - 120_000,
    updatedAt: NOW - 5_000,
    message: 'Paused at 50% on revision 2; ferry rollout promote iris continues',
    ...over,
  };
}

function view(over: Partial<DeploymentView> = {}): DeploymentView {
  return {
    name: 'iris',
    tenant: 'default',
    public: false,
    scaling: null,
    model: 'iris',
    versionRef: 'abc123',
    replicas: 2,
    resources: { cpu: 1, memoryBytes: 512 * 1024 ** 2, gpu: 0 },
    env: { LOG: 'debug' },
    secretRefs: [],
    serving: {},
    revision: 2,
    createdAt: NOW - 3 * 3600_000,
    updatedAt: NOW - 60_000,
    strategy: { kind: 'rolling', maxSurge: 1 },
    traffic: [
      { revision: 1, percent: 90 },
      { revision: 2, percent: 10 },
    ],
    trafficTarget: null,
    revisionStatus: [],
    runtime: 'docker',
    rollout: null,
    replicaStatus: [replica(), replica({ name: 'iris-1-0', revision: 1, state: 'starting' })],
    conditions: [],
    lastCrash: null,
    lastColdStart: null,
    endpoint: 'http://127.0.0.1:8080/v2/models/iris/infer',
    ...over,
  };
}

describe('formatting', () => {
  test('table pads columns to the widest cell, without trailing spaces', () => {
    assert.equal(
      table(
        ['NAME', 'N', 'X'],
        [
          ['a', '10', ''],
          ['long-name', '2', 'z'],
        ],
      ),
      'NAME       N   X\na          10\nlong-name  2   z\n',
    );
    assert.equal(table(['A', 'B'], []), 'A  B\n');
  });

  test('ages the kubectl way', () => {
    assert.equal(age(NOW, NOW), '0s');
    assert.equal(age(NOW + 5000, NOW), '0s', 'a clock skew into the future is 0s, not negative');
    assert.equal(age(NOW - 59_999, NOW), '59s');
    assert.equal(age(NOW - 60_000, NOW), '1m');
    assert.equal(age(NOW - 150_000, NOW), '2m30s');
    assert.equal(age(NOW - 15 * 60_000, NOW), '15m');
    assert.equal(age(NOW - 3 * 3600_000, NOW), '3h');
    assert.equal(age(NOW - (5 * 3600_000 + 12 * 60_000), NOW), '5h12m');
    assert.equal(age(NOW - 30 * 3600_000, NOW), '30h');
    assert.equal(age(NOW - 5 * 86_400_000, NOW), '5d');
  });

  test('traffic summary: largest first, shadows last, "-" when empty', () => {
    assert.equal(
      trafficSummary([
        { revision: 3, percent: 10 },
        { revision: 2, percent: 90 },
      ]),
      'r2 90% r3 10%',
    );
    assert.equal(
      trafficSummary([
        { revision: 2, percent: 100 },
        { revision: 3, percent: 0, shadow: 20 },
      ]),
      'r2 100% r3 shadow 20%',
    );
    assert.equal(trafficSummary([]), '-');
  });

  test('rollouts: a cell for tables, a line for status', () => {
    assert.equal(rolloutCell(null), '-');
    assert.equal(rolloutCell(rollout()), 'r1->r2 50% paused');
    assert.equal(rolloutCell(rollout({ phase: 'succeeded', percent: 100 })), '-');
    assert.equal(rolloutLine(rollout()), 'rollout r1 -> r2 (canary 10,50,100, step 2/3): paused at 50%');
    assert.equal(
      rolloutLine(rollout({ strategy: { kind: 'rolling', maxSurge: 2 }, phase: 'succeeded', percent: 100 })),
      'rollout r1 -> r2 (rolling (max surge 2)): succeeded',
    );
  });

  test('deployments table', () => {
    assert.equal(
      deploymentsTable(
        [
          view(),
          view({
            name: 'sentiment-analysis',
            model: 'sent',
            versionRef: 'stable',
            rollout: rollout(),
            traffic: [{ revision: 1, percent: 100 }],
            replicaStatus: [],
            revision: 1,
            public: true,
          }),
        ],
        NOW,
      ),
      [
        'NAME                MODEL  VERSION  REVISION  READY  TRAFFIC        ACCESS   STATUS             AGE',
        'iris                iris   abc123   r2        1/2    r1 90% r2 10%  private  -                  3h',
        'sentiment-analysis  sent   stable   r1        0/2    r1 100%        public   r1->r2 50% paused  3h',
        '',
      ].join('\n'),
    );
    // What the STATUS column says when no rollout runs: a failed revision, or an aborted rollout to the newest.
    const status = (v: DeploymentView) => deploymentsTable([v], NOW).split('\n')[1]!.split(/ {2,}/)[7];
    assert.equal(status(view({ rollout: rollout({ phase: 'aborted', to: 2 }) })), 'r2 aborted');
    assert.equal(
      status(
        view({
          revisionStatus: [
            {
              revision: 2,
              desired: 0,
              ready: 0,
              percent: 0,
              problem: { reason: 'ModelLoadFailed', message: 'x', fatal: true, since: 0 },
              replicaLimit: null,
            },
          ],
        }),
      ),
      'r2 failed: ModelLoadFailed',
    );
  });

  test('events and log lines', () => {
    assert.equal(
      eventsTable(
        [
          {
            id: 2,
            at: NOW - 1000,
            type: 'Warning',
            reason: 'RolloutAborted',
            deployment: 'iris',
            message: 'Aborted',
          },
          { id: 1, at: NOW - 60_000, type: 'Normal', reason: 'RevisionCreated', message: 'made r2' },
        ],
        NOW,
      ),
      [
        'AGE  TYPE     REASON           DEPLOYMENT  MESSAGE',
        '1m   Normal   RevisionCreated  -           made r2',
        '1s   Warning  RolloutAborted   iris        Aborted',
        '',
      ].join('\n'),
    );
    const line = { at: NOW, replica: 'iris-2-0', revision: 2, stream: 'stdout' as const, line: 'hello' };
    assert.equal(formatLogLine(line), '[r2 iris-2-0] hello');
    assert.equal(formatLogLine({ ...line, stream: 'stderr' }), '[r2 iris-2-0 stderr] hello');
  });

  test('image IDs and digests are shortened for tables', () => {
    const hex = 'a'.repeat(12) + 'b'.repeat(52);
    assert.equal(shortImage(`sha256:${hex}`), 'sha256:aaaaaaaaaaaa');
    assert.equal(shortImage(`reg:5000/iris@sha256:${hex}`), 'reg:5000/iris@sha256:aaaaaaaaaaaa');
    assert.equal(shortImage('iris:1'), 'iris:1');
  });

  test('durations and sizes for humans', () => {
    assert.equal(formatMs(500), '500ms');
    assert.equal(formatMs(30_000), '30s');
    assert.equal(formatMs(90_000), '1m30s');
    assert.equal(formatMs(120_000), '2m');
    assert.equal(formatSize(512 * 1024 ** 2), '512Mi');
    assert.equal(formatSize(1536 * 1024 ** 2), '1.5Gi');
    assert.equal(formatSize(100), '100B');
    assert.equal(formatSize(null), 'unlimited');
  });
});

describe('waiting for a revision', () => {
  test('a first revision is done when its replicas are ready and it takes all traffic', () => {
    const first = view({ revision: 1, traffic: [{ revision: 1, percent: 100 }], replicas: 1 });
    assert.equal(
      rolloutOutcome({ ...first, replicaStatus: [replica({ revision: 1, state: 'starting' })] }, 1),
      'waiting',
    );
    assert.equal(rolloutOutcome({ ...first, replicaStatus: [replica({ revision: 1 })] }, 1), 'done');
  });

  test('a rolled-out revision is done when its rollout succeeded, failed when aborted', () => {
    const v = view({ replicas: 1, replicaStatus: [replica()] });
    assert.equal(rolloutOutcome({ ...v, rollout: rollout() }, 2), 'waiting');
    assert.equal(rolloutOutcome({ ...v, rollout: rollout({ phase: 'aborted', percent: 0 }) }, 2), 'failed');
    assert.equal(
      rolloutOutcome(
        {
          ...v,
          rollout: rollout({ phase: 'succeeded', percent: 100 }),
          traffic: [{ revision: 2, percent: 100 }],
        },
        2,
      ),
      'done',
    );
    // An old rollout (to r2) says nothing about r3.
    assert.equal(rolloutOutcome({ ...v, revision: 3, rollout: rollout({ phase: 'aborted' }) }, 3), 'waiting');
  });

  test('progress line shows ready replicas of the revision, the rollout and a crash loop', () => {
    const v = view({
      rollout: rollout({ phase: 'progressing', percent: 10, step: 0 }),
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'CrashLoopBackOff',
          message: 'revision 2 crashed 3 time(s)',
          since: NOW,
        },
      ],
    });
    assert.equal(
      progressLine(v, 2),
      'r2: 1/2 ready; rollout r1 -> r2 (canary 10,50,100, step 1/3): progressing at 10%; revision 2 crashed 3 time(s)',
    );
  });
});

describe('describe', () => {
  test('shows spec, traffic incl. shadow, rollout, revisions, replicas, conditions, crash and events', () => {
    const revision = (n: number, image: string | null, artifactDir: string | null): StoredRevision => ({
      deployment: 'iris',
      number: n,
      specHash: `${n}`.repeat(64),
      image: image ?? '',
      replicas: 2,
      createdAt: NOW - n * 1000,
      versionRef: n === 2 ? 'stable' : 'v1',
      spec: {
        model: 'iris',
        version: `v${n}`,
        image,
        artifactDir,
        resources: { cpu: n === 2 ? 0.5 : 1, memoryBytes: 256 * 1024 ** 2, gpu: 0 },
        env: n === 2 ? { LOG: 'debug', FROM_YAML: '1' } : {},
        secretRefs: n === 2 ? ['HF_TOKEN', 'db-password'] : [],
        serving: {},
      },
      settings: {
        resources: { cpu: null, memoryBytes: null, gpu: 0 },
        env: n === 2 ? { LOG: 'debug' } : {},
        secretRefs: n === 2 ? ['db-password'] : [],
        serving: {},
      },
    });
    const d: DescribeView = {
      ...view({
        versionRef: 'stable',
        secretRefs: ['db-password'],
        traffic: [
          { revision: 1, percent: 90 },
          { revision: 2, percent: 10, shadow: 20 },
        ],
        rollout: rollout(),
        revisionStatus: [
          {
            revision: 2,
            desired: 1,
            ready: 0,
            percent: 10,
            problem: {
              reason: 'ModelLoadFailed',
              message: 'Protobuf parsing failed',
              fatal: true,
              since: NOW - 4000,
            },
            replicaLimit: null,
          },
        ],
        trafficTarget: { entries: [{ revision: 1, percent: 100 }], requestedAt: NOW - 3000 },
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'AllReplicasReady',
            message: '2 of 2 ready',
            since: NOW - 5000,
          },
        ],
        lastCrash: {
          replica: 'iris-2-1',
          revision: 2,
          exitCode: 137,
          at: NOW - 30_000,
          logTail: ['oom', 'killed'],
        },
      }),
      revisions: [revision(1, null, '/models/iris'), revision(2, 'sha256:abcd', null)],
      events: [
        {
          id: 1,
          at: NOW - 2000,
          type: 'Normal',
          reason: 'RolloutPaused',
          deployment: 'iris',
          message: 'paused',
        },
      ],
    };
    const text = describeText(d, NOW);
    assert.match(
      describeText({ ...d, runtime: 'process' }, NOW),
      /^Resources: +cpu 0.5, memory 256Mi per replica \(process runtime: not enforced; threads follow the cpu limit\)$/m,
    );
    for (const expected of [
      /^Name: +iris$/m,
      /^Version: +stable \(now v2\)$/m,
      /^Revision: +r2 \(spec 222222222222\)$/m,
      /^Artifact: +sha256:abcd$/m,
      /^Replicas: +2 desired, 1 ready, 2 running$/m,
      // What the newest revision's replicas get (its ferry.yaml under the deployment's flags), and who enforces it.
      /^Resources: +cpu 0.5, memory 256Mi per replica \(enforced by the Docker engine\)$/m,
      /^Env: +FROM_YAML=1 LOG=debug$/m,
      /^Secrets: +HF_TOKEN, db-password$/m,
      /^ {2}r2 FAILED \(ModelLoadFailed, 4s ago\): Protobuf parsing failed$/m,
      /^ {2}asked for 3s ago: r1 100%; it moves once those revisions have ready replicas$/m,
      /^Strategy: +rolling \(max surge 1\)$/m,
      /^Endpoint: +http:\/\/127\.0\.0\.1:8080\/v2\/models\/iris\/infer$/m,
      /^Traffic: r1 90% r2 10% r2 shadow 20%$/m,
      /^Rollout: r1 -> r2 \(canary 10,50,100, step 2\/3\): paused at 50%$/m,
      /^ {2}Paused at 50% on revision 2; ferry rollout promote iris continues$/m,
      /^ {2}r2 +v2 \(stable\) +222222222222 +r2 10% r2 shadow 20% +sha256:abcd/m,
      /^ {2}r1 +v1 +111111111111 +r1 90% +dir:\/models\/iris/m,
      /^ {2}iris-2-0 +r2 +ready +0 +- +http:\/\/127\.0\.0\.1:9001 +1m5s$/m,
      /^ {2}Ready +True +AllReplicasReady +5s +2 of 2 ready$/m,
      /^Last crash: iris-2-1 \(r2\) exited with code 137 30s ago$/m,
      /^ {2}\| oom$/m,
      /^ {2}2s +Normal +RolloutPaused +iris +paused$/m,
    ]) {
      assert.match(text, expected);
    }
    assert.doesNotMatch(text, /Last cold start/, 'none yet');
  });

  test('describe of an autoscaled deployment: its settings, and the replica limit of each serving revision known', () => {
    const status = (revision: number, percent: number, replicaLimit: number | null) => ({
      revision,
      desired: 1,
      ready: 1,
      percent,
      problem: null,
      replicaLimit,
    });
    const text = describeText(
      {
        ...view(),
        revisions: [],
        events: [],
        scaling: { ...DEFAULT_SETTINGS, minReplicas: 0, maxReplicas: 6, target: 8 },
        revisionStatus: [status(3, 90, 44), status(2, 10, null), status(1, 0, 12)],
      },
      NOW,
    );
    assert.match(
      text,
      /^Autoscaling: +0-6 replicas on concurrency, target 8 at 70%, to zero after 30 s idle; holds up to 1000 requests 30 s/m,
    );
    assert.match(
      text,
      /^Replica limit: +r3 44 requests at once \(as its replicas report; the gateway holds more/m,
    );
    const fixed = describeText(
      { ...view(), revisions: [], events: [], revisionStatus: [status(3, 100, 44)] },
      NOW,
    );
    assert.doesNotMatch(fixed, /Replica limit|Autoscaling/, 'not autoscaled');
  });

  test('describe shows the last cold start in phases, or its event after a restart of the control plane', () => {
    const base: DescribeView = { ...view(), revisions: [], events: [] };
    const withCold = describeText(
      {
        ...base,
        lastColdStart: {
          revision: 2,
          replica: 'iris-2-0-abcde',
          at: NOW - 90_000,
          totalMs: 402,
          phases: { image: null, start: 20, boot: 180, load: 60, warmup: 11, ready: 129, release: 2 },
          held: 3,
        },
      },
      NOW,
    );
    assert.match(
      withCold,
      /^Last cold start: r2 \(iris-2-0-abcde\) 1m30s ago: held requests released 0\.40 s after the decision to start it from zero \(3 held\)\n {2}start 0\.02 s, boot 0\.18 s, load 0\.06 s, warmup 0\.01 s, ready 0\.13 s, release 0\.00 s$/m,
    );
    const fromEvent = describeText(
      {
        ...base,
        events: [
          {
            id: 7,
            at: NOW - 5000,
            type: 'Normal',
            reason: 'ColdStart',
            deployment: 'iris',
            message: 'cold start of iris: ...',
          },
        ],
      },
      NOW,
    );
    assert.match(fromEvent, /^Last cold start: 5s ago: cold start of iris: \.\.\.$/m);
  });
});
