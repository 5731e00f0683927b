#!/usr/bin/env node
// Runs the whole suite: type-check, lint, then every *.test.ts with Node's test runner (through tsx).
//   node scripts/test.mjs            everything
//   node scripts/test.mjs --unit     only tests beside the code in src/ (fast, no servers)
//   node scripts/test.mjs path ...   only the given test files
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

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

const files =
  explicit.length > 0
    ? explicit
    : (unitOnly ? ['src'] : ['src', 'test', 'tools', 'examples', 'bench']).flatMap((d) =>
        findTests(join(root, d)),
      );

if (explicit.length === 0 && !unitOnly) {
  step('type-check', 'npx', ['tsc', '-p', 'tsconfig.json']);
  step('lint', 'npx', ['biome', 'check', '.']);
}
step(`tests (${files.length} files)`, process.execPath, [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  `--test-concurrency=${process.env.FERRY_TEST_CONCURRENCY ?? 2}`,
  ...files,
]);
