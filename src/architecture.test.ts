/**
 * Keeps the dependency direction of docs/architecture.md: reads every import under src/ and checks
 * which module may import which. A module's folder is the first path segment under src/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = dirname(fileURLToPath(import.meta.url));

const ALLOWED: Record<string, string[]> = {
  core: [],
  spec: ['core', 'protocol', 'autoscaler'],
  protocol: ['core'],
  client: ['core', 'protocol'],
  server: ['core', 'spec', 'protocol'],
  image: ['core', 'spec', 'protocol'],
  autoscaler: ['core'],
  control: ['core', 'spec', 'protocol', 'image', 'runtime', 'autoscaler'],
  gateway: ['core', 'protocol'],
  k8s: ['core', 'spec', 'gateway'],
  runtime: ['core', 'spec', 'image'],
  platform: ['core', 'spec', 'protocol', 'image', 'runtime', 'control', 'gateway', 'autoscaler'],
  cli: [
    'core',
    'spec',
    'protocol',
    'client',
    'server',
    'image',
    'runtime',
    'control',
    'gateway',
    'platform',
    'autoscaler',
    'k8s',
  ],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return /\.(ts|mjs)$/.test(e.name) && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

function moduleOf(path: string): string {
  return relative(src, path).split('/')[0]!;
}

test('modules import only what docs/architecture.md allows', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(src)) {
    const from = moduleOf(file);
    if (!(from in ALLOWED)) continue;
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
      const target = resolve(dirname(file), match[1]!);
      // package.json is the one file outside src/ a module may read (Ferry's version, in src/core/version.ts).
      if (target === join(src, '..', 'package.json')) continue;
      if (!target.startsWith(src)) {
        violations.push(`${relative(src, file)} imports ${match[1]} outside src/`);
        continue;
      }
      const to = moduleOf(target);
      if (to !== from && !ALLOWED[from]!.includes(to))
        violations.push(`${relative(src, file)}: ${from} -> ${to}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('every module folder under src/ has a rule', () => {
  const folders = readdirSync(src, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  for (const folder of folders)
    assert.ok(folder in ALLOWED, `src/${folder} has no rule in architecture.test.ts`);
});

test('web/ (the dashboard) imports nothing outside web/: it talks to the control plane over HTTP only', () => {
  const web = join(src, '..', 'web');
  const files = (function walk(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const path = join(dir, e.name);
      if (e.isDirectory()) return e.name === 'node_modules' ? [] : walk(path);
      return /\.(ts|tsx|mjs|js)$/.test(e.name) ? [path] : [];
    });
  })(web);
  assert.ok(files.length > 0, 'web/ has sources');
  const violations: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
      const target = resolve(dirname(file), match[1]!);
      if (!target.startsWith(`${web}/`)) violations.push(`${relative(web, file)} imports ${match[1]}`);
    }
  }
  assert.deepEqual(violations, []);
});
