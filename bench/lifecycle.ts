/**
 * Lifecycle latencies of `ferry serve` as a child process, the bounds the tests used to assert and no
 * longer do (tests assert behaviour; these are speeds):
 * - CLI exit on an invalid ferry.yaml (test/cli.test.ts killed it after 6 s);
 * - exit after SIGTERM with a 1.5 s request in flight (test/lifecycle.test.ts wanted < 10 s);
 * - exit after SIGTERM with --shutdown-timeout 1 and an 8 s request in flight (it wanted 0.9 s to 4 s).
 * Each is run --repeat times (default 3); the median is reported.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from './lib/measure.ts';
import { parseOptions, REPO_ROOT } from './lib/options.ts';
import { freePort } from './lib/process.ts';
import { printGoals, printTable, saveResults } from './lib/report.ts';

const USAGE = `Lifecycle: how long ferry serve takes to exit on a bad spec and after SIGTERM.
usage: node --import tsx bench/lifecycle.ts [options]
  (--repeat <n> runs each measurement n times, default 3; --ferry picks bin/ferry.js)`;
const { common, values } = parseOptions(USAGE, {});
const repeat = values.repeat === undefined && process.env.BENCH_REPEAT === undefined ? 3 : common.repeat;

const work = mkdtempSync(join(tmpdir(), 'ferry-bench-lifecycle-'));
const SLOW = join(REPO_ROOT, 'test', 'fixtures', 'lifecycle', 'slow');
const invalid = join(work, 'invalid');
cpSync(SLOW, invalid, { recursive: true });
writeFileSync(
  join(invalid, 'ferry.yaml'),
  readFileSync(join(SLOW, 'ferry.yaml'), 'utf8').replace('format: handler', 'format: onnnx'),
);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const exitOf = (child: ChildProcess) =>
  new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => resolve({ code, at: performance.now() })),
  );

function serve(args: string[]) {
  const child = spawn(process.execPath, [common.ferryBin, 'serve', ...args], {
    env: { ...process.env, FERRY_LOG_LEVEL: 'info' },
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return { child, output: () => output, exited: exitOf(child) };
}

/** ms from spawn to exit of `ferry serve` on an invalid ferry.yaml. */
async function invalidSpecExit(): Promise<number> {
  const t0 = performance.now();
  const s = serve([invalid, '--port', '0']);
  const { code } = await s.exited;
  if (code !== 2) throw new Error(`ferry serve on an invalid spec exited ${code}:\n${s.output()}`);
  return performance.now() - t0;
}

/** ms from SIGTERM to exit, with one request of `requestMs` in flight. */
async function drainExit(requestMs: number, extra: string[]): Promise<{ ms: number; code: number | null }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const s = serve([SLOW, '--port', String(port), ...extra]);
  for (;;) {
    if (s.child.exitCode !== null) throw new Error(`ferry serve exited early:\n${s.output()}`);
    if (
      (await fetch(`${url}/v2/health/ready`).then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const body = JSON.stringify({ inputs: [{ name: 'ms', datatype: 'INT32', shape: [1], data: [requestMs] }] });
  const inFlight = fetch(`${url}/v2/models/slow/infer`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', connection: 'close' },
  }).then(
    (r) => r.arrayBuffer(),
    () => undefined,
  );
  while (!s.output().includes('"predict-start"')) await new Promise((r) => setTimeout(r, 10));
  const t0 = performance.now();
  s.child.kill('SIGTERM');
  const exit = await s.exited;
  await inFlight;
  return { ms: exit.at - t0, code: exit.code };
}

const rows: Array<Record<string, string | number>> = [];
const runs: Record<string, number[]> = { invalid: [], drain: [], deadline: [] };
try {
  for (let i = 0; i < repeat; i++) {
    runs.invalid!.push(await invalidSpecExit());
    const drain = await drainExit(1500, []);
    if (drain.code !== 0) throw new Error(`a clean drain exited ${drain.code}`);
    runs.drain!.push(drain.ms);
    const deadline = await drainExit(8000, ['--shutdown-timeout', '1']);
    if (deadline.code !== 1) throw new Error(`a shutdown past its deadline exited ${deadline.code}`);
    runs.deadline!.push(deadline.ms);
    log(
      `run ${i + 1}/${repeat}: invalid spec ${runs.invalid!.at(-1)!.toFixed(0)} ms, drain ${drain.ms.toFixed(0)} ms, deadline ${deadline.ms.toFixed(0)} ms`,
    );
  }
  const labels: Record<string, string> = {
    invalid: 'spawn -> exit 2, invalid ferry.yaml',
    drain: 'SIGTERM -> exit 0, 1.5 s request in flight',
    deadline: 'SIGTERM -> exit 1, --shutdown-timeout 1, 8 s request',
  };
  for (const [key, xs] of Object.entries(runs)) {
    rows.push({ measure: labels[key]!, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
  }
  printTable(
    `ferry serve lifecycle (${repeat} runs each, ms)`,
    [
      { key: 'measure', title: 'measure' },
      { key: 'median', title: 'median ms', digits: 0 },
      { key: 'min', title: 'min ms', digits: 0 },
      { key: 'max', title: 'max ms', digits: 0 },
    ],
    rows,
  );
  const goals = printGoals([
    { name: 'invalid spec: exit', value: median(runs.invalid!), op: '<', target: 6000, unit: ' ms' },
    { name: 'drain: exit after SIGTERM', value: median(runs.drain!), op: '<', target: 10_000, unit: ' ms' },
    {
      name: 'deadline: exit after SIGTERM',
      value: median(runs.deadline!),
      op: '<',
      target: 4000,
      unit: ' ms',
    },
  ]);
  saveResults('lifecycle', { options: { repeat }, runs, goals });
} finally {
  rmSync(work, { recursive: true, force: true });
}
