/**
 * The dashboard's files at /ui/ (web/, built into dist/web by scripts/build-web.mjs). They hold no data, so they
 * need no token; every /v1 call the page makes carries the token the user signed in with.
 *
 *   GET /ui            301 to /ui/
 *   GET /ui/assets/*   a built file (content-hashed name): Cache-Control public, max-age one year, immutable;
 *                      a missing one is 404 (never index.html: a stale page must fail, not run HTML as script)
 *   GET /ui/<file>     a file of web/public (favicon.svg): revalidated (no-cache)
 *   GET /ui/anything   index.html, no-cache: the page routes by path (/ui/deployments/iris)
 *
 * Every answer carries a strict Content-Security-Policy (scripts, styles, fetches from this origin only; no
 * inline script; no frames), nosniff and no-referrer. When dist/web is missing the answer says how to build it.
 */
import { existsSync, statSync } from 'node:fs';
import { join, normalize } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { FerryError } from '../../core/errors.ts';

export const UI_PATH = '/ui/';

/** The dashboard's policy: everything from this origin, nothing inline, no frames, no plugins. */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Registers the /ui routes on the API; `dir` is the built dashboard (dist/web). */
export async function registerUi(app: FastifyInstance, dir: string): Promise<void> {
  await app.register(fastifyStatic, { root: dir, serve: false, etag: true, lastModified: true });
  const setHeaders = (reply: FastifyReply, cache: string) =>
    reply
      .header('content-security-policy', UI_CSP)
      .header('cache-control', cache)
      .header('x-content-type-options', 'nosniff');
  const requireBuilt = () => {
    if (!existsSync(join(dir, 'index.html')))
      throw new FerryError(
        'FERRY_ROUTE_NOT_FOUND',
        `The dashboard is not built (no ${join(dir, 'index.html')})`,
        {
          hint: 'Build it with: node scripts/build-web.mjs (npm start and bin/ferry.js up do it when web/ changed).',
        },
      );
  };
  app.get('/ui', (_request, reply) => reply.redirect(UI_PATH, 301));
  app.get('/ui/*', (request, reply) => {
    requireBuilt();
    const rest = (request.params as { '*': string })['*'] ?? '';
    const path = normalize(rest).replace(/^(\.\.(\/|$))+/, '');
    if (path.startsWith('assets/')) {
      setHeaders(reply, IMMUTABLE);
      return reply.sendFile(path, { cacheControl: false });
    }
    if (path !== '' && path !== 'index.html' && !path.includes('/') && isFile(join(dir, path))) {
      setHeaders(reply, 'no-cache');
      return reply.sendFile(path, { cacheControl: false });
    }
    setHeaders(reply, 'no-cache');
    return reply.sendFile('index.html', { cacheControl: false });
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
