/** Pieces shared by the pages: a status badge, an error box that quotes the API, a loading line. */
import type { ComponentChildren } from 'preact';

export function Badge({
  tone,
  children,
}: {
  tone: 'ok' | 'warn' | 'bad' | 'info';
  children: ComponentChildren;
}) {
  return <span class={`badge badge-${tone}`}>{children}</span>;
}

export function ErrorBox({ error, title = 'The API refused' }: { error: string | null; title?: string }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <strong>{title}:</strong> {error}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" aria-busy="true">
      Loading {what}…
    </p>
  );
}
