import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import { HttpProblem } from './problem.js';

/** The folder of the dashboard's hand-written page, styles and ES modules; they are served as they are. */
export const DASHBOARD_FOLDER = fileURLToPath(new URL('./dashboard/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Scripts, styles and connections only from this server, no inline script, no framing: the page renders data it
 * fetches (run outputs, SQL results), and a policy this strict keeps any of it from running as code.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The servable files under the folder, by their path in URLs (`views/runs.js`); nothing else can be asked for. */
function listAssets(folder: string): Map<string, string> {
  const assets = new Map<string, string>();
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && CONTENT_TYPES[extname(entry.name)] !== undefined)
        assets.set(relative(folder, path).split(sep).join('/'), path);
    }
  };
  walk(folder);
  return assets;
}

/**
 * The dashboard: `GET /` and `GET /dashboard` lead to `/dashboard/`, which serves `index.html`, and `/dashboard/<file>`
 * serves the page's styles and modules. None of them holds data: every number on the page comes from the JSON API,
 * with the API's token when the server has one, so these routes are registered before the token check and load
 * without it. Only files present in the folder when the app was built are served (no path from the URL reaches the
 * file system); they are read on each request, so an edited page shows on reload.
 */
export function registerDashboard(app: Hono): void {
  const assets = listAssets(DASHBOARD_FOLDER);
  const send = async (name: string): Promise<Response> => {
    const path = assets.get(name);
    if (path === undefined)
      throw new HttpProblem(404, 'Not Found', `The dashboard has no file ${name}: open /dashboard/ for the page.`);
    return new Response(await readFile(path), {
      headers: {
        'Content-Type': CONTENT_TYPES[extname(name)] ?? 'application/octet-stream',
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
        'Content-Security-Policy': CONTENT_SECURITY_POLICY,
        'Referrer-Policy': 'no-referrer',
      },
    });
  };
  app.get('/', (context) => context.redirect('/dashboard/'));
  // One route for the folder (it also matches `/dashboard` itself), as the OpenAPI document lists it.
  app.get('/dashboard/*', (context) => {
    const path = context.req.path;
    if (path === '/dashboard') return context.redirect('/dashboard/');
    return send(path === '/dashboard/' ? 'index.html' : path.slice('/dashboard/'.length));
  });
}
