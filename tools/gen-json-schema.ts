/**
 * Writes schema/ferry.schema.json (JSON Schema for ferry.yaml, for editors) from the zod schema.
 *   npm run schema            write the file
 *   npm run schema -- --check exit 1 when the committed file is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { RawSpecSchema } from '../src/spec/schema.ts';

export const SCHEMA_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'ferry.schema.json');
export const SCHEMA_ID = 'https://ferry.dev/schema/ferry.schema.json';

/** The JSON Schema text, exactly as committed. */
export function renderJsonSchema(): string {
  const schema = z.toJSONSchema(RawSpecSchema, {
    io: 'input',
    target: 'draft-7',
    unrepresentable: 'throw',
    // zod drops `default`/`examples` from fields that transform (durations, sizes); ours are written in
    // input form (e.g. "30s"), so put them back for editors.
    override: (ctx) => {
      const meta = z.globalRegistry.get(ctx.zodSchema);
      if (meta === undefined) return;
      const json = ctx.jsonSchema as Record<string, unknown>;
      if (meta.default !== undefined && json.default === undefined) json.default = meta.default;
      if (meta.examples !== undefined && json.examples === undefined) json.examples = meta.examples;
    },
  });
  return `${JSON.stringify({ $schema: schema.$schema, $id: SCHEMA_ID, ...schema }, null, 2)}\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = renderJsonSchema();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(SCHEMA_PATH, 'utf8');
    } catch {}
    if (current !== text) {
      console.error(`${SCHEMA_PATH} is stale; run "npm run schema" and commit it`);
      process.exit(1);
    }
    console.log(`${SCHEMA_PATH} is up to date`);
  } else {
    writeFileSync(SCHEMA_PATH, text);
    console.log(`wrote ${SCHEMA_PATH}`);
  }
}
