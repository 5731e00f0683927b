/**
 * The model's own npm dependencies (handler models): installed into a staging directory from the model's
 * package.json and package-lock.json (`npm ci`, exact versions, no install scripts), then listed file by
 * file for the npm-dependencies layer. Without a package.json, `build.dependencies` from ferry.yaml is used
 * and the result is not pinned (a warning says so).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { FerryError } from '../core/errors.ts';
import type { ModelSpec } from '../spec/types.ts';
import { cacheRoot } from './layer-cache.ts';
import type { PlanFile } from './plan.ts';

/** Marks a cached install as finished (an interrupted one is redone). */
const COMPLETE = '.ferry-complete';

export interface NpmDepsResult {
  files: PlanFile[];
  /** False when versions came from ranges in ferry.yaml rather than a lockfile. */
  pinned: boolean;
}

export async function installModelDependencies(
  spec: ModelSpec,
  modelDir: string,
  staging: string,
  log: (line: string) => void,
  useCache = true,
): Promise<NpmDepsResult | null> {
  let stagingDir = staging;
  const hasPackageJson = existsSync(join(modelDir, 'package.json'));
  if (!hasPackageJson && Object.keys(spec.build.dependencies).length === 0) return null;
  const pinned = hasPackageJson && existsSync(join(modelDir, 'package-lock.json'));
  const cached = pinned && useCache;
  if (cached) {
    // Pinned dependencies are installed once per lockfile and reused: $FERRY_HOME/cache/npm/<sha256>.
    const manifest = await readFile(join(modelDir, 'package.json'));
    const lock = await readFile(join(modelDir, 'package-lock.json'));
    const key = createHash('sha256').update(manifest).update('\0').update(lock).digest('hex');
    stagingDir = join(cacheRoot(), 'npm', key);
    if (existsSync(join(stagingDir, COMPLETE))) {
      log(`npm dependencies from the cache (lockfile ${key.slice(0, 12)})`);
      return { files: await listFiles(join(stagingDir, 'node_modules'), stagingDir), pinned };
    }
    await rm(stagingDir, { recursive: true, force: true });
  }
  await mkdir(stagingDir, { recursive: true });
  if (hasPackageJson) {
    await copyFile(join(modelDir, 'package.json'), join(stagingDir, 'package.json'));
    if (pinned) await copyFile(join(modelDir, 'package-lock.json'), join(stagingDir, 'package-lock.json'));
  } else {
    const manifest = {
      name: `${spec.model.name}-dependencies`,
      private: true,
      dependencies: spec.build.dependencies,
    };
    await writeFile(join(stagingDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  }
  if (!pinned) {
    log(
      `warning: ${hasPackageJson ? 'no package-lock.json' : 'no package.json'} next to ferry.yaml: npm dependency versions are not pinned, so builds may differ; commit a package.json and package-lock.json (npm install --package-lock-only)`,
    );
  }
  const common = ['--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'];
  const args = pinned ? ['ci', ...common] : ['install', ...common, '--no-package-lock'];
  log(`npm ${args.join(' ')} (model dependencies)`);
  await runNpm(args, stagingDir);
  if (cached) await writeFile(join(stagingDir, COMPLETE), '');
  const files = await listFiles(join(stagingDir, 'node_modules'), stagingDir);
  return { files, pinned };
}

function runNpm(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { cwd, env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (error) =>
      reject(new FerryError('FERRY_INTERNAL', `cannot run npm: ${error.message}`)),
    );
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new FerryError(
            'FERRY_INTERNAL',
            `installing the model's npm dependencies failed (npm ${args[0]} exit ${code})`,
            {
              hint: output.trim().split('\n').slice(-15).join('\n'),
            },
          ),
        );
    });
  });
}

/** The node_modules already installed in a prepared model directory (an artifact), for the npm layer. */
export function installedDependencies(modelDir: string): Promise<PlanFile[]> {
  return listFiles(join(modelDir, 'node_modules'), modelDir);
}

/** Every regular file under dir, sorted, as { path relative to root, file }. Links and .bin are skipped. */
async function listFiles(dir: string, root: string): Promise<PlanFile[]> {
  const out: PlanFile[] = [];
  async function walk(current: string): Promise<void> {
    const entries = await readdir(current, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== '.bin') await walk(path);
      } else if (entry.isFile() && entry.name !== '.package-lock.json') {
        out.push({ path: relative(root, path), file: path });
      }
    }
  }
  if (existsSync(dir)) await walk(dir);
  return out;
}
