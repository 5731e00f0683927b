/**
 * CLI start: how long a `ferry` call takes from the shell's point of view (process start to exit), side by
 * side in one run: `node -e 0` (the floor: no Node program starts faster), `ferry --help`, `ferry --version`,
 * `ferry get` against an API where nothing listens and against a running platform (`ferry up --foreground`,
 * process runtime, in a temporary home), and `ferry --help` with the same sources run through tsx instead of
 * the compiled build (what bin/ferry.js falls back to when dist/ cannot be written).
 * Commands take turns (floor, help, version, ... floor, help, ...), so drift of the machine hits all alike.
 * Goal: `ferry --help` and `ferry get` in <= 150 ms (medians).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildCli, isFresh } from '../scripts/build-cli.mjs';
import { log } from './lib/measure.ts';
import { numberFlag, parseOptions, REPO_ROOT } from './lib/options.ts';
import { freePort, withProcess } from './lib/process.ts';
import { printGoals, printTable, ratio, saveResults } from './lib/report.ts';

const USAGE = `CLI start: ferry --help, --version and get vs node -e 0, and the compiled CLI vs tsx.
usage: node --import tsx bench/cli-start.ts [options]
  --runs <n>          timed runs of each command, default 20 (after 2 untimed ones)
  --no-platform       leave out ferry get against a running platform (ferry up --foreground)
  (of the common options only --ferry applies)`;

const { common, values } = parseOptions(USAGE, {
  runs: { type: 'string' },
  'no-platform': { type: 'boolean' },
});
const runs = Math.round(numberFlag(values, 'runs', 20, 1, 500));
const GOAL_MS = 150;
const node = process.execPath;
const bin = common.ferryBin;

if (!isFresh()) {
  log('building the CLI first (dist/cli is missing or stale), so that no timed run pays for it');
  await buildCli();
}

interface Case {
  name: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Exit code a correct run ends with, and text its output must contain. */
  code: number;
  expect: RegExp;
  goal?: boolean;
}

const work = mkdtempSync(join(tmpdir(), 'ferry-bench-cli-'));
const nobody = `http://127.0.0.1:${await freePort()}`;
const quiet: NodeJS.ProcessEnv = { ...process.env, FERRY_HOME: join(work, 'none') };
delete quiet.FERRY_API_URL;
delete quiet.FERRY_TOKEN;

const cases: Case[] = [
  { name: 'node -e 0 (floor)', args: ['-e', '0'], code: 0, expect: /^$/ },
  { name: 'ferry --help', args: [bin, '--help'], code: 0, expect: /Usage: ferry/, goal: true },
  { name: 'ferry --version', args: [bin, '--version'], code: 0, expect: /^\d+\.\d+\.\d+/ },
  {
    name: 'ferry get (nothing listens)',
    args: [bin, 'get', '--api', nobody],
    env: quiet,
    code: 1,
    expect: /FERRY_CONNECTION_FAILED/,
    goal: true,
  },
  {
    name: 'ferry --help, sources through tsx',
    args: ['--import', 'tsx', join(dirname(bin), '..', 'src', 'cli', 'main.ts'), '--help'],
    code: 0,
    expect: /Usage: ferry/,
  },
];

function once(c: Case): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(node, c.args, { cwd: REPO_ROOT, env: c.env ?? process.env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const output = `${r.stdout}${r.stderr}`;
  if (r.status !== c.code || !c.expect.test(output)) {
    throw new Error(
      `${c.name}: exit ${r.status ?? r.signal} (expected ${c.code}), output:\n${output.slice(0, 2000)}`,
    );
  }
  return ms;
}

/** Each case runs 2 times untimed, then `runs` times, taking turns with the others. */
function timeAll(list: Case[]): Map<string, number[]> {
  const times = new Map(list.map((c) => [c.name, [] as number[]]));
  for (let i = 0; i < 2; i++) for (const c of list) once(c);
  for (let i = 0; i < runs; i++) for (const c of list) times.get(c.name)?.push(once(c));
  return times;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))] ?? NaN;

let times: Map<string, number[]>;
const failures: Record<string, string> = {};
try {
  log(`CLI start: ${cases.length} commands x ${runs} runs, taking turns (${bin})`);
  if (values['no-platform']) {
    times = timeAll(cases);
  } else {
    const home = join(work, 'platform');
    const [apiPort, gatewayPort] = [await freePort(), await freePort()];
    const withPlatform: Case = {
      name: 'ferry get (running platform)',
      args: [bin, 'get'],
      env: { ...quiet, FERRY_HOME: home },
      code: 0,
      expect: /No deployments/,
      goal: true,
    };
    try {
      times = await withProcess(
        {
          name: 'platform',
          command: node,
          args: [
            bin,
            ...['up', '--foreground', '--runtime', 'process', '--home', home],
            ...['--api-port', String(apiPort), '--gateway-port', String(gatewayPort)],
          ],
          env: { ...quiet, FERRY_LOG_LEVEL: 'warn' },
          readyUrl: `http://127.0.0.1:${apiPort}/healthz`,
          readyTimeoutMs: common.readyTimeoutS * 1000,
        },
        async () => {
          // The context (API URL and token) is written just after the API answers.
          const deadline = Date.now() + 10_000;
          while (!existsSync(join(home, 'context.json')) && Date.now() < deadline)
            await new Promise((r) => setTimeout(r, 50));
          return timeAll([...cases.slice(0, 4), withPlatform, ...cases.slice(4)]);
        },
      );
      cases.splice(4, 0, withPlatform);
    } catch (e) {
      failures.platform = (e as Error).message;
      log(`  platform: FAILED, measuring without it\n${(e as Error).message.replace(/^/gm, '    ')}`);
      times = timeAll(cases);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const stats = new Map(
  cases.map((c) => {
    const sorted = [...(times.get(c.name) ?? [])].sort((a, b) => a - b);
    return [c.name, { min: sorted[0], p50: pct(sorted, 0.5), p90: pct(sorted, 0.9), max: sorted.at(-1) }];
  }),
);
const floor = stats.get(cases[0]!.name)?.p50;

printTable(
  `CLI start: whole process, ${runs} runs each, ms`,
  [
    { key: 'command', title: 'command' },
    { key: 'p50', title: 'median', digits: 1 },
    { key: 'min', title: 'min', digits: 1 },
    { key: 'p90', title: 'p90', digits: 1 },
    { key: 'max', title: 'max', digits: 1 },
    { key: 'above', title: 'above floor', digits: 1 },
    { key: 'ratio', title: 'x floor', digits: 2 },
  ],
  cases.map((c) => {
    const s = stats.get(c.name);
    return {
      command: c.name,
      ...s,
      above: s?.p50 !== undefined && floor !== undefined ? s.p50 - floor : null,
      ratio: ratio(s?.p50, floor),
    };
  }),
);

const goals = printGoals([
  ...cases
    .filter((c) => c.goal)
    .map((c) => ({
      name: `${c.name} median`,
      value: stats.get(c.name)?.p50 ?? null,
      op: '<=' as const,
      target: GOAL_MS,
      unit: ' ms',
    })),
  {
    name: 'help: tsx / compiled',
    value: ratio(stats.get('ferry --help, sources through tsx')?.p50, stats.get('ferry --help')?.p50),
    op: 'info',
    detail: 'the compiled build vs the same sources through tsx',
  },
]);

saveResults('cli-start', {
  options: { runs, ferryBin: bin },
  failures,
  runs: Object.fromEntries(times),
  stats: Object.fromEntries(stats),
  goals,
});
