#!/usr/bin/env node
// Installs what Ferry needs on a fresh clone, and nothing when it is already there.
// - npm packages (the locked versions), with onnxruntime-node's GPU download skipped (it targets a host we cannot reach);
// - the CLI compiled to dist/cli (scripts/build-cli.mjs; bin/ferry.js would otherwise build it on its first start);
// - the dashboard built into dist/web (scripts/build-web.mjs; bin/ferry.js builds it for `up` and `ui` when stale);
// - with --test: what the test suite needs from the system: Debian's docker.io, docker-registry (the tests
//   start their own on 127.0.0.1), apache2-utils (htpasswd), strace (test/hot-path-budget.test.ts), and for the
//   swarm tests (as root) iproute2 and busybox-static's binary (downloaded into .ferry/cache, not installed);
//   Debian's chromium for the dashboard's end-to-end test (test/dashboard.test.ts drives /usr/bin/chromium
//   with playwright-core; no browser is downloaded).
//   Debian's prometheus (test/prometheus.test.ts starts it itself, on a free loopback port; as root).
//   scripts/test.mjs then makes sure an engine answers (starting one when needed).
// Plain JavaScript on purpose: it must run before any dependency is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall } from './apt.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function run(command, args, env = {}) {
  console.error(`[ferry setup] ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.status !== 0) {
    console.error(
      `[ferry setup] '${command} ${args.join(' ')}' failed (exit ${result.status ?? result.signal}).`,
    );
    process.exit(result.status ?? 1);
  }
}

function npmPackagesStale() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(marker)) return true;
  return statSync(join(root, 'package-lock.json')).mtimeMs > statSync(marker).mtimeMs;
}

if (npmPackagesStale()) {
  // `npm install` rather than `npm ci`: it installs the locked versions all the same, and npm 11 `ci`
  // rejects lockfiles that lack other platforms' optional packages (npm/cli#8805, #9846).
  run('npm', ['install', '--no-audit', '--no-fund'], { ONNXRUNTIME_NODE_INSTALL: 'skip' });
}

// better-sqlite3 is a native addon: npm builds it from source here (no prebuilt download can be reached).
// Should an npm version skip its install script, build it explicitly.
const sqliteCheck = spawnSync(process.execPath, ['-e', "require('better-sqlite3')(':memory:').close()"], {
  cwd: root,
});
if (sqliteCheck.status !== 0) run('npm', ['rebuild', 'better-sqlite3'], { ONNXRUNTIME_NODE_INSTALL: 'skip' });

// After the packages: the build needs esbuild. isFresh() itself needs nothing installed.
const { isFresh } = await import('./build-cli.mjs');
if (!isFresh()) run(process.execPath, [join(root, 'scripts', 'build-cli.mjs')]);
// The dashboard (web/ -> dist/web, served by the control plane at /ui/), built with vite.
const { isWebFresh } = await import('./build-web.mjs');
if (!isWebFresh()) run(process.execPath, [join(root, 'scripts', 'build-web.mjs')]);

if (process.argv.includes('--test')) {
  run(process.execPath, [join(root, 'scripts', 'ensure-docker.mjs'), '--install-only']);
  // test/hot-path-budget.test.ts counts the server's system calls with strace.
  if (spawnSync('strace', ['-V']).error)
    await aptInstall((l) => console.error(`[ferry setup] ${l}`), ['strace']);
  // test/dashboard.test.ts drives Debian's Chromium (playwright-core, executablePath /usr/bin/chromium).
  if (!existsSync('/usr/bin/chromium')) {
    if (process.getuid?.() === 0) await aptInstall((l) => console.error(`[ferry setup] ${l}`), ['chromium']);
    else
      console.error(
        '[ferry setup] /usr/bin/chromium is missing and this is not root: test/dashboard.test.ts will be skipped (apt-get install chromium)',
      );
  }
  // test/prometheus.test.ts scrapes a running platform with Debian's Prometheus (/usr/bin/prometheus), which it
  // starts and stops itself: the package's service is not used (and policy-rc.d keeps it from starting).
  if (!existsSync('/usr/bin/prometheus')) {
    if (process.getuid?.() === 0)
      await aptInstall((l) => console.error(`[ferry setup] ${l}`), ['prometheus']);
    else
      console.error(
        '[ferry setup] /usr/bin/prometheus is missing and this is not root: test/prometheus.test.ts will fail (apt-get install prometheus)',
      );
  }
  // test/swarm/harness.test.ts builds a 3-node swarm in network namespaces (iproute2's `ip`, as root) and runs
  // a tiny image made from Debian's busybox-static, downloaded (not installed) into .ferry/cache.
  if (process.getuid?.() === 0) {
    if (spawnSync('ip', ['-V']).error)
      await aptInstall((l) => console.error(`[ferry setup] ${l}`), ['iproute2']);
    const { ensureBusyboxStatic } = await import('../test/swarm/busybox.mjs');
    try {
      await ensureBusyboxStatic((l) => console.error(`[ferry setup] ${l}`));
    } catch (err) {
      console.error(`[ferry setup] ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    }
  }
}
