/**
 * Secrets arrive as files, not environment variables: the runtime writes one file per secret (named as the
 * variable, e.g. HF_TOKEN) into a directory of the replica's own and names it in FERRY_SECRETS_DIR. The server
 * reads them into its own environment before any model loads (worker threads copy it when they start, so
 * handlers read `process.env.HF_TOKEN` as before) and removes the files. So a value is in no container
 * configuration (`docker inspect`), no process's initial environment (`/proc/<pid>/environ`, `ps e`) and, once
 * the server runs, on no disk.
 */
import { readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../core/errors.ts';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Sets each file's content as an environment variable; returns the names (never the values). */
export function loadSecretFiles(dir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (error) {
    throw new FerryError(
      'FERRY_FILE_NOT_FOUND',
      `The secrets directory ${dir} cannot be read: ${(error as Error).message}`,
    );
  }
  const names: string[] = [];
  for (const file of files.sort()) {
    if (!NAME_RE.test(file)) continue;
    env[file] = readFileSync(join(dir, file), 'utf8');
    names.push(file);
    // Removing may be refused (a directory the replica's user does not own, a read-only Kubernetes Secret
    // volume): the runtime removes it with the replica then.
    try {
      rmSync(join(dir, file), { force: true });
    } catch {}
  }
  try {
    rmdirSync(dir);
  } catch {}
  return names;
}
