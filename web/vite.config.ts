/**
 * The dashboard's build (docs/architecture.md, "The dashboard"): Preact + TSX, bundled by Vite into dist/web,
 * served by the control plane at /ui/ (src/control/api/ui.ts). Hashed file names under assets/ (cached for a
 * year, immutable); index.html is revalidated on every load. No inline script or style, so the strict
 * Content-Security-Policy the API sends holds; no CDN, nothing fetched from elsewhere at run time.
 * scripts/build-web.mjs runs it (from ensure-deps, bin/ferry.js `up`/`ui` and scripts/test.mjs when web/ changed).
 */
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/ui/',
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  build: {
    outDir: process.env.FERRY_WEB_OUT_DIR ?? '../dist/web',
    emptyOutDir: true,
    assetsDir: 'assets',
    // No inline assets (data: URLs would need a looser CSP), no modulepreload polyfill (an inline helper).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
    reportCompressedSize: false,
  },
  logLevel: 'warn',
});
