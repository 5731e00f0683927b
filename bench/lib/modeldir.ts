/** Model directories for Ferry: ferry.yaml + model.onnx in a fresh temp dir. */
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ModelDirOptions {
  name: string;
  version?: string;
  bytes: Uint8Array;
  /**
   * Dynamic batching: an object writes `serving.batching: { maxBatchSize, maxQueueDelay }` (on); false writes
   * `serving.batching: false` (off, whatever the server's default); null or omitted writes no batching
   * section, so the server's default applies (on for a model with a dynamic first dimension, since issue 9).
   */
  batching?: { maxBatchSize: number; maxQueueDelayMs: number } | false | null;
  /** Inference workers. Default 1. */
  concurrency?: number;
  /** Intra-op threads per worker. Default 1. */
  threads?: number;
}

export interface ModelDir {
  dir: string;
  yaml: string;
  /** Remove the directory. */
  cleanup(): Promise<void>;
}

/** The ferry.yaml text for these options (exported for the results file and for tests). */
export function ferryYaml(o: ModelDirOptions): string {
  const lines = [
    'apiVersion: ferry.dev/v1alpha1',
    'kind: Model',
    `model: { name: ${o.name}, version: "${o.version ?? '1'}", format: onnx, file: model.onnx }`,
    'serving:',
  ];
  if (o.batching === false) lines.push('  batching: false');
  else if (o.batching) {
    lines.push(
      `  batching: { maxBatchSize: ${o.batching.maxBatchSize}, maxQueueDelay: ${o.batching.maxQueueDelayMs}ms }`,
    );
  }
  lines.push(`  concurrency: ${o.concurrency ?? 1}`, `  threads: ${o.threads ?? 1}`, '');
  return lines.join('\n');
}

// Directories not yet cleaned up are removed at exit too (also after SIGINT, which exits the process).
const pending = new Set<string>();
let exitHook = false;

/** Write ferry.yaml + model.onnx into a new directory under the OS temp dir. */
export async function writeModelDir(o: ModelDirOptions): Promise<ModelDir> {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const d of pending) rmSync(d, { recursive: true, force: true });
    });
  }
  const dir = await mkdtemp(join(tmpdir(), `ferry-bench-${o.name}-`));
  pending.add(dir);
  const yaml = ferryYaml(o);
  await writeFile(join(dir, 'ferry.yaml'), yaml);
  await writeFile(join(dir, 'model.onnx'), o.bytes);
  return {
    dir,
    yaml,
    cleanup: async () => {
      pending.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
