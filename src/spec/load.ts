/**
 * Loading ferry.yaml: parse (yaml, keeping node positions) -> validate (every problem at once) -> complete.
 * parseSpec is pure; loadSpec adds the file system: finding the file, checking that the model's files exist
 * and inlining example request/response files.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import {
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
} from 'yaml';
import { FerryError } from '../core/errors.ts';
import { completeSpec } from './complete.ts';
import { SERVING_OVERRIDES_ENV, SPEC_FILE_NAME } from './defaults.ts';
import {
  ExampleRequestSchema,
  ExampleResponseSchema,
  joinPath,
  type PathSegment,
  type SpecIssue,
  STRINGISH_PATHS,
  validateDocument,
} from './schema.ts';
import { closest } from './suggest.ts';
import { API_VERSION, type LoadedSpec, type ModelSpec, type SpecProblem } from './types.ts';
import { showValue } from './value-error.ts';

/** An example whose request or response is in a file, to be read by loadSpec. */
export interface ExampleFileRef {
  example: number;
  field: 'request' | 'response';
  /** As written in ferry.yaml (relative to dir). */
  file: string;
}

export interface ParseResult {
  /** Present when there are no problems. */
  spec?: ModelSpec;
  problems: SpecProblem[];
  warnings: SpecProblem[];
  /** Example files named by requestFile/responseFile (their content is not in `spec` until loadSpec reads them). */
  exampleFiles: ExampleFileRef[];
  /** Where a field is in the text, for problems found after parsing (missing files). */
  locate(path: readonly PathSegment[]): { line: number; column: number } | undefined;
}

const MAX_ALIASES = 100;

/** Parses, validates and completes ferry.yaml text. Pure; never throws for any input. */
export interface SpecOverrides {
  /**
   * Merged over the file's `serving` section before validation (objects merge key by key; other values
   * replace): a deployment's serving options (batching, timeouts, ...) without editing ferry.yaml.
   */
  serving?: Record<string, unknown>;
}

export function parseSpec(
  text: string,
  file: string,
  dir: string,
  overrides: SpecOverrides = {},
): ParseResult {
  void dir; // Paths stay relative in the spec; dir is where loadSpec resolves them.
  const lineCounter = new LineCounter();
  const noLocation = () => undefined;
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(source, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true });
  } catch (error) {
    const problem: SpecProblem = { file, path: '', message: `cannot be read as YAML: ${firstLine(error)}` };
    return { problems: [problem], warnings: [], exampleFiles: [], locate: noLocation };
  }
  const position = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line: Math.max(line, 1), column: Math.max(col, 1) };
  };
  const yamlProblem = (error: { message: string; pos: [number, number] }): SpecProblem => ({
    file,
    path: '',
    message: `YAML: ${firstLine(error)}`,
    hint: yamlHint(error.message),
    ...position(error.pos[0]),
  });
  const warnings = doc.warnings.map(yamlProblem);
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map(yamlProblem), warnings, exampleFiles: [], locate: noLocation };
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (error) {
    const problem: SpecProblem = { file, path: '', message: `YAML: ${firstLine(error)}` };
    return { problems: [problem], warnings, exampleFiles: [], locate: noLocation };
  }

  const find = (path: readonly PathSegment[], atKey = false) => findNode(doc.contents, path, atKey);
  keepNumbersAsWritten(raw, find);
  if (overrides.serving !== undefined && isPlainObject(raw)) {
    raw.serving = deepMerge(raw.serving, overrides.serving);
  }

  const toProblem = (issue: SpecIssue): SpecProblem => {
    const problem: SpecProblem = { file, path: joinPath(issue.path), message: issue.message };
    const found = find(issue.path, issue.atKey === true);
    if (found.exact && issue.hideFound !== true) {
      const shown = showNode(found.node, source);
      if (shown !== undefined) problem.found = shown;
    }
    if (issue.hint !== undefined) problem.hint = issue.hint;
    const range = found.node?.range;
    if (range) Object.assign(problem, position(range[0]));
    return problem;
  };

  const result = validateDocument(raw);
  const locate = (path: readonly PathSegment[]) => {
    const range = find(path).node?.range;
    return range ? position(range[0]) : undefined;
  };
  const problems = sortByPosition(result.problems.map(toProblem));
  warnings.push(...sortByPosition(result.warnings.map(toProblem)));
  if (result.value === undefined || problems.length > 0)
    return { problems, warnings, exampleFiles: [], locate };

  const exampleFiles: ExampleFileRef[] = [];
  result.value.examples?.forEach((example, i) => {
    if (example.requestFile !== undefined)
      exampleFiles.push({ example: i, field: 'request', file: example.requestFile });
    if (example.responseFile !== undefined) {
      exampleFiles.push({ example: i, field: 'response', file: example.responseFile });
    }
  });
  return { spec: completeSpec(result.value), problems, warnings, exampleFiles, locate };
}

/**
 * Loads and validates `pathOrDir` (a ferry.yaml, or a directory that holds one), checks that the model's
 * files exist and inlines example files. Throws FerryError FERRY_SPEC_NOT_FOUND or FERRY_SPEC_INVALID
 * (details: the SpecProblem list).
 */
export async function loadSpec(pathOrDir: string, overrides: SpecOverrides = {}): Promise<LoadedSpec> {
  const target = resolve(pathOrDir);
  const file = await findSpecFile(target, pathOrDir);
  const dir = dirname(file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FerryError('FERRY_SPEC_NOT_FOUND', `cannot read ${file}: ${firstLine(error)}`, {
      hint: 'check the file permissions',
      cause: error,
    });
  }
  const shown = displayPath(file);
  const parsed = parseSpec(text, shown, dir, overrides);
  if (parsed.spec === undefined) throw invalid(shown, parsed.problems);
  const spec = parsed.spec;

  const problems: SpecProblem[] = [];
  const at = (path: PathSegment[], message: string, hint?: string): SpecProblem => {
    const problem: SpecProblem = { file: shown, path: joinPath(path), message, ...parsed.locate(path) };
    if (hint !== undefined) problem.hint = hint;
    return problem;
  };

  const checks: Promise<void>[] = [];
  const requireFile = async (path: PathSegment[], relativePath: string) => {
    const problem = await missingFileProblem(dir, relativePath);
    if (problem !== undefined) problems.push(at(path, problem.message, problem.hint));
  };
  checks.push(requireFile(['model', 'file'], spec.model.file));
  spec.model.files.forEach((f, i) => {
    checks.push(requireFile(['model', 'files', i], f));
  });
  for (const ref of parsed.exampleFiles) {
    const path: PathSegment[] = [
      'examples',
      ref.example,
      ref.field === 'request' ? 'requestFile' : 'responseFile',
    ];
    checks.push(
      (async () => {
        const missing = await missingFileProblem(dir, ref.file);
        if (missing !== undefined) {
          problems.push(at(path, missing.message, missing.hint));
          return;
        }
        const loaded = await readExampleFile(join(dir, ref.file), ref.field);
        if ('problem' in loaded)
          problems.push(at(path, `${showValue(ref.file)}: ${loaded.problem}`, loaded.hint));
        else {
          const example = spec.examples[ref.example]!;
          if (ref.field === 'request') example.request = loaded.value;
          else example.response = loaded.value;
        }
      })(),
    );
  }
  await Promise.all(checks);
  if (problems.length > 0) throw invalid(shown, sortByPosition(problems));
  return { spec, file, dir, warnings: parsed.warnings };
}

/** Renders problems one a line: `ferry.yaml:12:5 serving.batching.maxQueueDelay: "5 parsecs" is ...; hint`. */
export function formatSpecProblems(problems: readonly SpecProblem[]): string {
  return problems
    .map((p) => {
      const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
      const path = p.path === '' ? '' : `${p.path}: `;
      const hint = p.hint === undefined ? '' : `; ${p.hint}`;
      return `${where} ${path}${p.message}${hint}`;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------------------

function invalid(file: string, problems: SpecProblem[]): FerryError {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new FerryError('FERRY_SPEC_INVALID', `${file} has ${count}:\n${formatSpecProblems(problems)}`, {
    details: problems,
    hint: 'fix the fields named above; docs/spec.md describes every field',
  });
}

async function findSpecFile(target: string, asGiven: string): Promise<string> {
  const info = await stat(target).catch(() => undefined);
  if (info === undefined) {
    throw new FerryError('FERRY_SPEC_NOT_FOUND', `${asGiven} does not exist`, {
      hint: `give a model directory with a ${SPEC_FILE_NAME}, or run "ferry init" in the model directory to write one`,
    });
  }
  if (!info.isDirectory()) return target;
  const file = join(target, SPEC_FILE_NAME);
  const fileInfo = await stat(file).catch(() => undefined);
  if (fileInfo?.isFile()) return file;
  const alternative = join(target, 'ferry.yml');
  const hasYml = (await stat(alternative).catch(() => undefined))?.isFile() === true;
  throw new FerryError('FERRY_SPEC_NOT_FOUND', `${displayPath(target)} has no ${SPEC_FILE_NAME}`, {
    hint: hasYml
      ? `rename ferry.yml to ${SPEC_FILE_NAME}, or give its path`
      : `run "ferry init" in ${displayPath(target)} to write one from the model file`,
  });
}

async function missingFileProblem(
  dir: string,
  relativePath: string,
): Promise<{ message: string; hint: string } | undefined> {
  const full = join(dir, relativePath);
  const info = await stat(full).catch(() => undefined);
  if (info?.isFile()) return undefined;
  if (info?.isDirectory()) {
    return {
      message: `${showValue(relativePath)} is a directory`,
      hint: 'name a file; list each file of the model',
    };
  }
  const parent = dirname(full);
  const siblings = await readdir(parent).catch(() => [] as string[]);
  const guess = closest(basename(relativePath), siblings);
  const where = displayPath(dir);
  return {
    message: `${showValue(relativePath)} does not exist in ${where === '' ? '.' : where}`,
    hint:
      guess === undefined
        ? 'paths are relative to the directory of ferry.yaml'
        : `did you mean "${relative(dir, join(parent, guess))}"?`,
  };
}

async function readExampleFile(
  full: string,
  field: 'request' | 'response',
): Promise<{ value: unknown } | { problem: string; hint?: string }> {
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (error) {
    return { problem: `cannot be read: ${firstLine(error)}` };
  }
  let value: unknown;
  const ext = extname(full).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') {
    const doc = parseDocument(text, { prettyErrors: false });
    if (doc.errors.length > 0) return { problem: `is not valid YAML: ${firstLine(doc.errors[0])}` };
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (error) {
      return { problem: `is not valid YAML: ${firstLine(error)}` };
    }
  } else {
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { problem: `is not valid JSON: ${firstLine(error)}` };
    }
  }
  const schema = field === 'request' ? ExampleRequestSchema : ExampleResponseSchema;
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length === 0 ? '' : ` at ${joinPath(issue.path as PathSegment[])}`;
    return {
      problem: `is not an Open Inference Protocol ${field}${where}: ${issue.message}`,
      hint:
        field === 'request'
          ? 'e.g. {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}'
          : 'e.g. {"outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]}',
    };
  }
  return { value };
}

function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.trim();
}

function yamlHint(message: string): string {
  if (/tab/i.test(message)) return 'indent with spaces, not tabs';
  if (/unique/i.test(message)) return 'each key may appear once in a mapping';
  if (/multiple documents/i.test(message)) return 'ferry.yaml holds one document; remove the extra "---"';
  return 'check the indentation and the quoting near this line';
}

function sortByPosition(problems: SpecProblem[]): SpecProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

interface Found {
  node: Node | undefined;
  /** The node is the one at the full path (not an ancestor). */
  exact: boolean;
}

/** The YAML node at a path, or the nearest ancestor that exists. `atKey`: the key node of the last step. */
function findNode(root: unknown, path: readonly PathSegment[], atKey: boolean): Found {
  let node = root as Node | null | undefined;
  if (node === null || node === undefined) return { node: undefined, exact: false };
  // A missing field is reported at the key of its mapping ("model:"), which reads better than its first entry.
  let ownerKey: Node | undefined;
  const nearest = () => ({ node: ownerKey ?? node ?? undefined, exact: false });
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]!;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(segment));
      if (pair === undefined) return nearest();
      const key = pair.key !== null && typeof pair.key === 'object' ? (pair.key as Node) : undefined;
      if (last && atKey && key !== undefined) return { node: key, exact: true };
      const value = pair.value as Node | null;
      if (value === null || isAlias(value)) return { node: key ?? node, exact: false };
      ownerKey = key;
      node = value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as Node | undefined;
      if (item === undefined || item === null || isAlias(item)) return nearest();
      ownerKey = undefined;
      node = item;
    } else return nearest();
  }
  return { node, exact: true };
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' ? key : undefined;
}

/** The value as written: strings quoted, numbers as in the source, collections cut short. */
function showNode(node: Node | undefined, source: string): string | undefined {
  if (node === undefined) return undefined;
  if (isScalar(node)) {
    if (typeof node.value === 'string') return showValue(node.value);
    return node.source ?? showValue(node.value);
  }
  if (isCollection(node) && node.range) {
    const text = source.slice(node.range[0], node.range[1]).replace(/\s+/g, ' ').trim();
    return text.length > 60 ? `${text.slice(0, 59)}…` : text;
  }
  return undefined;
}

/** Numbers (and, for env, booleans) where strings are expected keep the text as written: 1.10 stays "1.10". */
function keepNumbersAsWritten(raw: unknown, find: (path: readonly PathSegment[]) => Found): void {
  const child = (value: unknown, key: PathSegment): unknown =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<PathSegment, unknown>)[key]
      : undefined;
  for (const pattern of STRINGISH_PATHS) {
    // ['model', 'version'] names one field; ['env', '*'] every value of a mapping.
    const all = pattern[pattern.length - 1] === '*';
    const parentPath = pattern.slice(0, -1);
    const parent = parentPath.reduce<unknown>(child, raw);
    if (parent === null || typeof parent !== 'object' || Array.isArray(parent)) continue;
    const record = parent as Record<string, unknown>;
    const allowBoolean = pattern[0] === 'env';
    for (const key of all ? Object.keys(record) : [String(pattern[pattern.length - 1])]) {
      const value = record[key];
      if (typeof value !== 'number' && !(allowBoolean && typeof value === 'boolean')) continue;
      const found = find([...parentPath, key]);
      const written = found.exact && isScalar(found.node) ? found.node.source : undefined;
      record[key] = written ?? String(value);
    }
  }
}

/**
 * Problems of a `serving` override on its own, as `serving.<path>: message (hint)` lines: checked when a
 * deployment is created or changed, so a typo is refused there rather than at replica start.
 */
export function servingOverrideProblems(serving: unknown): string[] {
  const doc = `apiVersion: ${API_VERSION}\nkind: Model\nmodel:\n  name: check\n  format: onnx\n  file: model.onnx\n`;
  if (!isPlainObject(serving)) return ['serving: must be an object'];
  const parsed = parseSpec(doc, 'serving', '.', { serving });
  return parsed.problems.map((p) => `${p.path || 'serving'}: ${p.message}${p.hint ? ` (${p.hint})` : ''}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

export { SERVING_OVERRIDES_ENV };

/** Reads serving options given as JSON text (flag or environment); a problem is a sentence, never a throw. */
export function parseServingOverrides(
  text: string,
  source = SERVING_OVERRIDES_ENV,
): { value: Record<string, unknown> } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problem: `${source} is not JSON: ${firstLine(error)}` };
  }
  const problems = servingOverrideProblems(value);
  if (problems.length > 0) return { problem: `${source}: ${problems.join('; ')}` };
  return { value: value as Record<string, unknown> };
}
