/**
 * The model repository: every model version the server knows, found from the paths it was started
 * with. A path is a model directory (it holds a ferry.yaml) or a repository directory whose
 * subdirectories are model directories. Several directories may hold versions of one model.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { FerryError, isFerryError } from '../core/errors.ts';
import type { RepositoryIndexEntry } from '../protocol/types.ts';
import { loadSpec, type SpecOverrides } from '../spec/index.ts';
import type { LoadedSpec } from '../spec/types.ts';
import type { ServerMetrics } from './metrics.ts';
import { ModelVersion, type VersionLogger } from './model-version.ts';

const SPEC_FILE = 'ferry.yaml';

/** Model directories under the given paths (pure apart from listing directories). */
export function findModelDirs(paths: string[]): string[] {
  const dirs: string[] = [];
  for (const path of paths.map((p) => resolve(p))) {
    if (!existsSync(path)) {
      throw new FerryError('FERRY_FILE_NOT_FOUND', `model path ${path} does not exist`);
    }
    if (statSync(path).isFile()) {
      dirs.push(resolve(path, '..'));
    } else if (existsSync(join(path, SPEC_FILE))) {
      dirs.push(path);
    } else {
      const children = readdirSync(path, { withFileTypes: true })
        .filter((e) => e.isDirectory() && existsSync(join(path, e.name, SPEC_FILE)))
        .map((e) => join(path, e.name))
        .sort();
      if (children.length === 0) {
        throw new FerryError('FERRY_SPEC_NOT_FOUND', `no ${SPEC_FILE} in ${path} or its subdirectories`, {
          hint: 'Point `ferry serve` at a model directory (with a ferry.yaml) or run `ferry init` to create one.',
        });
      }
      dirs.push(...children);
    }
  }
  return [...new Set(dirs)];
}

/** Orders versions so that numeric ones compare as numbers ("10" after "9"). */
export function compareVersions(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a.localeCompare(b);
}

interface Unloadable {
  dir: string;
  name: string;
  reason: string;
}

export class ModelRepository {
  /** name -> version -> loaded version */
  readonly #models = new Map<string, Map<string, ModelVersion>>();
  /** Directories whose spec could not be read, by directory. */
  readonly #broken = new Map<string, Unloadable>();
  #dirs: string[] = [];

  constructor(
    private readonly paths: string[],
    private readonly metrics: ServerMetrics,
    private readonly log: VersionLogger,
    /** Applied to every ferry.yaml read (a deployment's serving options). */
    private readonly overrides: SpecOverrides = {},
  ) {}

  /** Finds the model directories (again) and loads every version found. */
  /**
   * Finds the model directories and reads every ferry.yaml. Strict, for startup: a missing path or any
   * invalid spec throws (all problems of all specs in one error), before anything is loaded.
   */
  async readAll(): Promise<LoadedSpec[]> {
    this.#dirs = findModelDirs(this.paths);
    const results = await Promise.allSettled(this.#dirs.map((dir) => loadSpec(dir, this.overrides)));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) {
      throw new FerryError('FERRY_SPEC_INVALID', failures.map((e) => e.message).join('\n\n'), {
        details: failures.flatMap((e) => (isFerryError(e) && Array.isArray(e.details) ? e.details : [])),
      });
    }
    return results.map((r) => (r as PromiseFulfilledResult<LoadedSpec>).value);
  }

  /** Loads the versions read by readAll(). A version that fails to load is recorded as FAILED. */
  async loadAll(sources: LoadedSpec[]): Promise<void> {
    await Promise.all(sources.map((source) => this.#loadSource(source)));
  }

  /** Reads and loads one directory; an invalid spec is recorded (index: FAILED) rather than thrown. */
  async #loadDir(dir: string): Promise<ModelVersion | null> {
    let source: LoadedSpec;
    try {
      source = await loadSpec(dir, this.overrides);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#broken.set(dir, { dir, name: basename(dir), reason });
      this.log.error({ dir, reason }, 'cannot read model spec');
      return null;
    }
    return this.#loadSource(source);
  }

  async #loadSource(source: LoadedSpec): Promise<ModelVersion> {
    const dir = source.dir;
    this.#broken.delete(dir);
    const { name, version } = source.spec.model;
    const next = new ModelVersion(source, this.metrics.forModel(name, version), this.log);
    await next.load();
    let versions = this.#models.get(name);
    if (versions === undefined) {
      versions = new Map();
      this.#models.set(name, versions);
    }
    // What this directory served before, whatever its version was (a reload may change the version).
    const previous = this.all().find((v) => v.source.dir === dir);
    const replaced = versions.get(version);
    // The new load takes traffic only once READY; a failed reload keeps the previous load serving.
    if (next.state !== 'READY' && previous?.state === 'READY') {
      this.log.warn(
        { model: name, version, reason: next.reason },
        'reload failed; the previous load keeps serving',
      );
      return next;
    }
    versions.set(version, next);
    for (const old of new Set([previous, replaced])) {
      if (old === undefined || old === next) continue;
      const oldVersions = this.#models.get(old.name);
      if (oldVersions?.get(old.version) === old) oldVersions.delete(old.version);
      if (oldVersions?.size === 0) this.#models.delete(old.name);
      await old.unload();
    }
    return next;
  }

  /** Reloads the model in one directory (used by --watch). */
  async reloadDir(dir: string): Promise<ModelVersion | null> {
    return this.#loadDir(resolve(dir));
  }

  /** (Re)loads every version of a model by name, re-reading its spec from disk. */
  async load(name: string): Promise<void> {
    this.#dirs = findModelDirs(this.paths);
    const dirs: string[] = [];
    for (const dir of this.#dirs) {
      const known = [...(this.#models.get(name)?.values() ?? [])].some((v) => v.source.dir === dir);
      if (known || this.#broken.get(dir)?.name === name || (await specName(dir)) === name) dirs.push(dir);
    }
    if (dirs.length === 0) {
      throw new FerryError(
        'FERRY_MODEL_NOT_FOUND',
        `no model named "${name}" in the repository (${this.paths.join(', ')})`,
      );
    }
    const loaded = await Promise.all(dirs.map((dir) => this.#loadDir(dir)));
    const failed = loaded.filter((v) => v === null || v.state === 'FAILED');
    if (failed.length > 0) {
      const reasons = failed
        .map((v) => v?.reason ?? this.#broken.get(dirs[loaded.indexOf(v)]!)?.reason)
        .join('; ');
      throw new FerryError('FERRY_MODEL_LOAD_FAILED', `model "${name}" failed to load: ${reasons}`);
    }
  }

  async unload(name: string): Promise<void> {
    const versions = this.#models.get(name);
    if (versions === undefined) {
      throw new FerryError('FERRY_MODEL_NOT_FOUND', `no model named "${name}" is loaded`);
    }
    await Promise.all([...versions.values()].map((v) => v.unload()));
  }

  async unloadAll(): Promise<void> {
    await Promise.all(
      [...this.#models.values()].flatMap((versions) => [...versions.values()].map((v) => v.unload())),
    );
  }

  /** The version to serve: the one asked for, else the highest READY version. */
  resolve(name: string, version: string | undefined): ModelVersion {
    const versions = this.#models.get(name);
    if (versions === undefined) {
      throw new FerryError('FERRY_MODEL_NOT_FOUND', `unknown model "${name}"`, {
        hint: `Models here: ${[...this.#models.keys()].join(', ') || 'none'}.`,
      });
    }
    if (version !== undefined) {
      const found = versions.get(version);
      if (found === undefined) {
        throw new FerryError('FERRY_VERSION_NOT_FOUND', `model "${name}" has no version "${version}"`, {
          hint: `Versions: ${[...versions.keys()].sort(compareVersions).join(', ')}.`,
        });
      }
      return found;
    }
    // The newest READY version, else the newest; one pass, no array (this runs for every request).
    let newest: ModelVersion | undefined;
    let newestReady: ModelVersion | undefined;
    for (const v of versions.values()) {
      if (newest === undefined || compareVersions(v.version, newest.version) > 0) newest = v;
      if (
        v.state === 'READY' &&
        (newestReady === undefined || compareVersions(v.version, newestReady.version) > 0)
      )
        newestReady = v;
    }
    return newestReady ?? newest!;
  }

  versionsOf(name: string): string[] {
    return [...(this.#models.get(name)?.keys() ?? [])].sort(compareVersions);
  }

  all(): ModelVersion[] {
    return [...this.#models.values()].flatMap((versions) => [...versions.values()]);
  }

  index(): RepositoryIndexEntry[] {
    const broken = [...this.#broken.values()].map(
      (b): RepositoryIndexEntry => ({ name: b.name, version: '', state: 'FAILED', reason: b.reason }),
    );
    return [...this.all().map((v) => v.entry()), ...broken].sort(
      (a, b) => a.name.localeCompare(b.name) || compareVersions(a.version, b.version),
    );
  }

  get modelDirs(): string[] {
    return this.#dirs;
  }

  get brokenCount(): number {
    return this.#broken.size;
  }
}

async function specName(dir: string): Promise<string | null> {
  try {
    return (await loadSpec(dir)).spec.model.name;
  } catch {
    return null;
  }
}
