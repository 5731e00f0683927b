/**
 * `ferry ui`: the dashboard's URL (the control plane serves it at /ui/), for the control plane the CLI talks to
 * (--api, FERRY_API_URL or the context `ferry up` saved). `--with-token` prints a URL that also signs the browser
 * in: the token rides in the fragment (`#token=...`), which browsers never send to a server, and the page moves
 * it into the tab's sessionStorage and out of the address bar. `--open` opens that URL with xdg-open when a
 * display is there, and prints it otherwise.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { FerryError } from '../core/errors.ts';
import { resolveConnection } from './context.ts';
import { action, cliCommand } from './output.ts';

/** The dashboard's URL on a control plane; with a token, one that signs the browser in. */
export function dashboardUrl(apiUrl: string, token?: string): string {
  const base = `${apiUrl.replace(/\/+$/, '')}/ui/`;
  return token === undefined ? base : `${base}#token=${encodeURIComponent(token)}`;
}

export function registerUi(program: Command): void {
  program
    .command('ui')
    .description("print the web dashboard's URL (served by the control plane at /ui/); --open opens it")
    .option('--api <url>', 'control-plane URL (FERRY_API_URL; default: the one ferry up started)')
    .option('--token <token>', 'token to sign in with (FERRY_TOKEN; default: the CLI context)')
    .option('--with-token', 'print a URL that signs the browser in (the token in its #fragment)')
    .option('--open', 'open it in a browser (xdg-open) when a display is there, signed in')
    .action(
      action(async (opts: { api?: string; token?: string; withToken?: boolean; open?: boolean }) => {
        const connection = resolveConnection(opts);
        const plain = dashboardUrl(connection.apiUrl);
        const signedIn =
          connection.token === undefined ? plain : dashboardUrl(connection.apiUrl, connection.token);
        if ((opts.withToken || opts.open) && connection.token === undefined)
          throw new FerryError('FERRY_UNAUTHORIZED', `No token is known for ${connection.apiUrl}`, {
            hint: `Pass --token (or FERRY_TOKEN), or leave --with-token out and paste a token on the sign-in page of ${plain}.`,
          });
        if (opts.open) {
          if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
            process.stdout.write(
              `No display to open a browser on (DISPLAY and WAYLAND_DISPLAY are unset). Open this URL where a browser runs (it signs in; keep it to yourself):\n  ${signedIn}\n`,
            );
            return;
          }
          const opened = await openInBrowser(signedIn);
          if (opened) {
            process.stdout.write(`Opened the dashboard: ${plain}\n`);
            return;
          }
          process.stdout.write(
            `Could not run xdg-open; open this URL yourself (it signs in):\n  ${signedIn}\n`,
          );
          return;
        }
        if (opts.withToken) {
          process.stdout.write(`${signedIn}\n`);
          return;
        }
        process.stdout.write(
          `Dashboard: ${plain}\n  Sign in with a token, or run '${cliCommand()} ui --with-token' for a URL that signs in (the token in its #fragment, never sent to a server).\n`,
        );
      }),
    );
}

/** xdg-open, detached; false when it cannot be run or fails at once. */
function openInBrowser(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
    child.unref();
  });
}
