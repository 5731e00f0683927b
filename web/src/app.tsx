/**
 * The dashboard's shell: a skip link, the header (who is signed in, with which role), the navigation, one
 * page at a time in <main>, and a polite live region where changes are announced ("Traffic set: r1 50%, r2 50%").
 * Controls a role may not use are not shown (GET /v1/whoami says which access levels it has); the API still
 * decides, and a refusal it sends is shown as it says it.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError, get, onUnauthorized, session } from './api.ts';
import * as live from './live.ts';
import { AuditPage } from './pages/audit.tsx';
import { ChartsPage } from './pages/charts.tsx';
import { DeploymentPage } from './pages/deployment.tsx';
import { DeploymentsPage } from './pages/deployments.tsx';
import { EventsPage } from './pages/events.tsx';
import { LogsPage } from './pages/logs.tsx';
import { ModelsPage } from './pages/models.tsx';
import { SignInPage } from './pages/sign-in.tsx';
import { Link, navigate, usePath } from './router.tsx';
import { Announcer, announce } from './status.tsx';
import type { WhoAmI } from './types.ts';

export function App() {
  const [who, setWho] = useState<WhoAmI | null>(null);
  const [checking, setChecking] = useState(session.token !== null);
  const [signInError, setSignInError] = useState<string | null>(null);
  const path = usePath();
  const liveState = live.useLive();

  const signIn = async () => {
    setChecking(true);
    try {
      const me = await get<WhoAmI>('/v1/whoami');
      setWho(me);
      setSignInError(null);
      live.start();
      announce(`Signed in as ${me.name} (${me.role})`);
    } catch (error) {
      session.clear();
      setWho(null);
      setSignInError(describeError(error));
    } finally {
      setChecking(false);
    }
  };
  const signOut = (message?: string) => {
    session.clear();
    live.stop();
    setWho(null);
    setSignInError(message ?? null);
    navigate('/', true);
  };

  useEffect(() => {
    if (session.token !== null) void signIn();
    return onUnauthorized(() =>
      signOut('The API no longer accepts this token (expired or revoked): sign in again.'),
    );
  }, []);

  // Without a stream the lists are read again on each navigation.
  useEffect(() => {
    if (who && liveState.mode === 'fetched') void live.refresh();
  }, [path, who]);

  if (!who)
    return (
      <Shell who={null} onSignOut={signOut}>
        <SignInPage busy={checking} error={signInError} onSignIn={signIn} />
      </Shell>
    );
  return (
    <Shell who={who} onSignOut={() => signOut()}>
      <Page path={path} who={who} />
    </Shell>
  );
}

function Page({ path, who }: { path: string; who: WhoAmI }) {
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  const canWrite = who.access.includes('write');
  if (parts.length === 0 || (parts[0] === 'deployments' && parts.length === 1)) return <DeploymentsPage />;
  if (parts[0] === 'deployments' && parts[1] !== undefined) {
    const name = parts[1];
    if (parts[2] === undefined) return <DeploymentPage name={name} canWrite={canWrite} />;
    if (parts[2] === 'charts') return <ChartsPage name={name} />;
    if (parts[2] === 'logs') return <LogsPage name={name} />;
  }
  if (parts[0] === 'events' && parts.length === 1) return <EventsPage />;
  if (parts[0] === 'models' && parts.length === 1) return <ModelsPage />;
  if (parts[0] === 'audit' && parts.length === 1) return <AuditPage allowed={who.access.includes('admin')} />;
  return (
    <section aria-labelledby="page-title">
      <Title>Not found</Title>
      <p>
        There is no page at <code>{path}</code>. <Link href="/">Back to the deployments</Link>.
      </p>
    </section>
  );
}

/** The page's heading; it takes the focus when the page changes (tabIndex -1: focusable, not in the Tab order). */
export function Title({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  const path = usePath();
  useEffect(() => {
    // Not on the first page of a load: the skip link comes first then.
    if (moved.current) ref.current?.focus();
    moved.current = true;
  }, [path]);
  return (
    <h1 id="page-title" tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}
/** Focus moves to the heading after a navigation, not on the first load (the skip link comes first then). */
const moved = { current: false };

function Shell({
  who,
  onSignOut,
  children,
}: {
  who: WhoAmI | null;
  onSignOut: () => void;
  children: ComponentChildren;
}) {
  const path = usePath();
  const state = live.useLive();
  const current = (prefix: string) =>
    (prefix === '/' ? path === '/' || path.startsWith('/deployments') : path.startsWith(prefix))
      ? 'page'
      : undefined;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          <img src="/ui/favicon.svg" alt="" width={28} height={28} />
          <span>Ferry</span>
        </div>
        {who && (
          <nav aria-label="Main">
            <ul>
              <li>
                <Link href="/" aria-current={current('/')}>
                  Deployments
                </Link>
              </li>
              <li>
                <Link href="/events" aria-current={current('/events')}>
                  Events
                </Link>
              </li>
              <li>
                <Link href="/models" aria-current={current('/models')}>
                  Models
                </Link>
              </li>
              {who.access.includes('admin') && (
                <li>
                  <Link href="/audit" aria-current={current('/audit')}>
                    Audit log
                  </Link>
                </li>
              )}
            </ul>
          </nav>
        )}
        {who && (
          <div class="who">
            <span class={`live live-${state.mode}`} title={modeText(state.mode)}>
              <span class="dot" aria-hidden="true" />
              {state.mode === 'live' ? 'Live' : state.mode === 'fetched' ? 'Not live' : 'Connecting'}
            </span>
            <span data-testid="whoami">
              {who.name} · <strong data-testid="role">{who.role}</strong>
              {who.tenant !== 'default' && <> · tenant {who.tenant}</>}
            </span>
            <button type="button" class="secondary" onClick={onSignOut}>
              Sign out
            </button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
      <Announcer />
    </>
  );
}

function modeText(mode: live.LiveState['mode']): string {
  if (mode === 'live') return 'Updates arrive as they happen (GET /v1/stream)';
  if (mode === 'fetched') return 'No live stream: lists are read on each page change';
  return 'Connecting to the live stream';
}
