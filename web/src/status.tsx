/**
 * One polite live region for the whole page: what a change did ("Traffic set ...", "Rollout promoted") and
 * errors, read out by screen readers and shown briefly at the bottom.
 */
import { useEffect, useState } from 'preact/hooks';

let say: ((text: string) => void) | null = null;
let queued: string | null = null;

export function announce(text: string): void {
  if (say) say(text);
  else queued = text;
}

export function Announcer() {
  const [text, setText] = useState(queued ?? '');
  useEffect(() => {
    say = (t) => {
      // Cleared first so that the same words said twice are read twice.
      setText('');
      requestAnimationFrame(() => setText(t));
    };
    return () => {
      say = null;
    };
  }, []);
  return (
    <div class="announcer" role="status" aria-live="polite" data-testid="announcer">
      {text}
    </div>
  );
}
