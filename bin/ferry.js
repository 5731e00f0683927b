#!/usr/bin/env node
// Entry point: runs the CLI compiled to plain JavaScript in dist/cli (scripts/build-cli.mjs), which starts
// in a few tens of milliseconds. When dist/cli is missing or a source file changed since it was built, it is
// rebuilt first (about a second, said on stderr), so an edit under src/ is never run stale. When the build
// cannot be made (dist/ not writable, say a read-only install), the CLI runs from source through tsx, slower.
import { pathToFileURL } from 'node:url';
import { buildCli, ENTRY, isFresh } from '../scripts/build-cli.mjs';

let entry = pathToFileURL(ENTRY).href;
if (!isFresh()) {
  process.stderr.write('building the CLI (once)...\n');
  try {
    await buildCli();
  } catch (error) {
    if (Array.isArray(error?.errors) && error.errors.length > 0) {
      // esbuild's own report: the sources do not compile.
      const where = (e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : '');
      process.stderr.write(
        `error FERRY_INTERNAL: the CLI does not compile:\n${error.errors.map((e) => `  ${where(e)}${e.text}`).join('\n')}\n`,
      );
      process.exit(1);
    }
    process.stderr.write(
      `could not build the CLI into dist/cli (${error?.message ?? error}); running it from source through tsx (slower)\n`,
    );
    const { register } = await import('tsx/esm/api');
    register();
    entry = new URL('../src/cli/main.ts', import.meta.url).href;
  }
}
// `ferry up` serves the dashboard (dist/web) and `ferry ui` points at it: build it when web/ changed. Other
// commands never need it (and do not pay the check).
if (process.argv[2] === 'up' || process.argv[2] === 'ui') {
  const { buildWeb, isWebFresh } = await import('../scripts/build-web.mjs');
  if (!isWebFresh()) {
    process.stderr.write('building the dashboard (once)...\n');
    try {
      await buildWeb();
    } catch (error) {
      // The platform still runs; /ui/ then says the dashboard is not built and how to build it.
      process.stderr.write(
        `could not build the dashboard into dist/web (${error?.message ?? error}); the API and the CLI work without it\n`,
      );
    }
  }
}
await import(entry);
