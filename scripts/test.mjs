#!/usr/bin/env node
// Runs the whole suite: type-check, lint, then every *.test.ts with Node's test runner (through tsx).
//   node scripts/test.mjs            everything
//   node scripts/test.mjs --unit     only tests beside the code in src/ (fast, no servers)
//   node scripts/test.mjs path ...   only the given test files
// The tests talk to a real Docker engine: the machine's (DOCKER_HOST, else /var/run/docker.sock), or, when
// none answers there but a dockerd that is not Ferry's runs elsewhere, Ferry's own test engine, started
// for the run and stopped by PID when it ends (scripts/ensure-docker.mjs, engineForTestRun).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineForTestRun } from './ensure-docker.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const explicit = args.filter((a) => !a.startsWith('--'));

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(path));
    else if (entry.name.endsWith('.test.ts')) found.push(relative(root, path));
  }
  return found;
}

function step(label, command, commandArgs) {
  console.log(`\n== ${label}`);
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`${label} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}

// Tests run bin/ferry.js: build the CLI now (when a source changed) rather than in the first test that runs it.
const { isFresh } = await import('./build-cli.mjs');
if (!isFresh()) step('build the CLI', process.execPath, [join(root, 'scripts', 'build-cli.mjs')]);
// The platform tests serve the dashboard (dist/web) and test/dashboard.test.ts drives it.
const { isWebFresh } = await import('./build-web.mjs');
if (!isWebFresh()) step('build the dashboard', process.execPath, [join(root, 'scripts', 'build-web.mjs')]);

const files =
  explicit.length > 0
    ? explicit
    : (unitOnly ? ['src'] : ['src', 'test', 'tools', 'examples', 'bench']).flatMap((d) =>
        findTests(join(root, d)),
      );

if (explicit.length === 0 && !unitOnly) {
  step('type-check', 'npx', ['tsc', '-p', 'tsconfig.json']);
  step('type-check the dashboard', 'npx', ['tsc', '-p', 'web/tsconfig.json']);
  step('lint', 'npx', ['biome', 'check', '.']);
}

// From here on a SIGINT/SIGTERM does not end this script at once: it is passed on to the test runner, and
// the engine started for the run is still stopped.
let interrupted = null;
let running = null;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = signal;
    running?.kill(signal);
  });
}

function runTests(label, env, commandArgs) {
  console.log(`\n== ${label}`);
  return new Promise((resolve) => {
    running = spawn(process.execPath, commandArgs, {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    running.on('close', (code, signal) => {
      running = null;
      if (code !== 0) console.error(`${label} failed (exit ${code ?? signal})`);
      resolve(code ?? 1);
    });
  });
}

const log = (line) => console.error(`[ferry docker] ${line}`);
let engine = { env: {}, release: async () => {} };
try {
  engine = await engineForTestRun({ log });
  log(`tests use the engine ${engine.version} on ${engine.where}`);
} catch (err) {
  // The tests that need Docker fail with this reason (test/docker-env.ts); the others still run.
  log(`no Docker engine for this run: ${err instanceof Error ? err.message : String(err)}`);
}
let code = 1;
try {
  if (interrupted === null)
    code = await runTests(`tests (${files.length} files)`, engine.env, [
      '--import',
      'tsx',
      '--test',
      '--test-reporter=spec',
      `--test-concurrency=${process.env.FERRY_TEST_CONCURRENCY ?? 2}`,
      ...files,
    ]);
} finally {
  await engine.release();
}
process.exit(code);
