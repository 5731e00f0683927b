/** Sign in with an API token; it stays in this tab's sessionStorage only. */
import { useState } from 'preact/hooks';
import { session } from '../api.ts';
import { Title } from '../app.tsx';

export function SignInPage(props: { busy: boolean; error: string | null; onSignIn: () => void }) {
  const [token, setToken] = useState('');
  return (
    <section class="sign-in" aria-labelledby="page-title">
      <Title>Sign in to Ferry</Title>
      <p>
        Paste an API token. <code>ferry up</code> printed the admin token on its first start; an admin makes
        others with <code>ferry token create &lt;name&gt; --role viewer</code>. <code>ferry ui --open</code>{' '}
        signs a browser in without pasting.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim() === '') return;
          session.set(token.trim());
          setToken('');
          props.onSignIn();
        }}
      >
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          aria-describedby="token-help"
          aria-invalid={props.error ? true : undefined}
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <p id="token-help" class="muted">
          Kept in this tab only (sessionStorage), sent as <code>Authorization: Bearer</code> to this control
          plane.
        </p>
        {props.error && (
          <div class="error" role="alert">
            <strong>Not signed in:</strong> {props.error}
          </div>
        )}
        <button type="submit" disabled={props.busy}>
          {props.busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </section>
  );
}
