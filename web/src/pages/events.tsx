/** The tenant's events, newest first, live; filtered by deployment and type. */
import { useState } from 'preact/hooks';
import { Title } from '../app.tsx';
import { ErrorBox } from '../components.tsx';
import { useLive } from '../live.ts';
import { EventList } from './deployment.tsx';

export function EventsPage() {
  const { events, error } = useLive();
  const [deployment, setDeployment] = useState('');
  const [warnings, setWarnings] = useState(false);
  const names = [...new Set(events.map((e) => e.deployment ?? ''))].filter((n) => n !== '').sort();
  const shown = events.filter(
    (e) => (deployment === '' || e.deployment === deployment) && (!warnings || e.type === 'Warning'),
  );
  return (
    <section aria-labelledby="page-title">
      <Title>Events</Title>
      <ErrorBox error={error} title="Could not read the events" />
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label for="event-deployment">Deployment</label>
        <select
          id="event-deployment"
          value={deployment}
          onChange={(e) => setDeployment((e.target as HTMLSelectElement).value)}
        >
          <option value="">All</option>
          {names.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
        <label class="check">
          <input
            type="checkbox"
            checked={warnings}
            onChange={(e) => setWarnings((e.target as HTMLInputElement).checked)}
          />{' '}
          Warnings only
        </label>
        <span class="muted">{shown.length} events</span>
      </form>
      <div data-testid="events">
        <EventList events={shown} />
      </div>
    </section>
  );
}
