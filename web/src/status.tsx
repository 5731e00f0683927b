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
  const [shown, setShown] = useState(true);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    say = (t) => {
      // Cleared first so that the same words said twice are read twice. The toast leaves the screen after a
      // while; the words stay in the region (visually hidden) until the next announcement.
      setText('');
      setShown(true);
      clearTimeout(timer);
      requestAnimationFrame(() => setText(t));
      timer = setTimeout(() => setShown(false), 8000);
    };
    return () => {
      say = null;
      clearTimeout(timer);
    };
  }, []);
  return (
    <div
      class={shown ? 'announcer' : 'announcer sr-only'}
      role="status"
      aria-live="polite"
      data-testid="announcer"
    >
      {text}
    </div>
  );
}
