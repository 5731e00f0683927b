/** The audit log (admins): every change and every denied request, newest first. */
import { useEffect, useState } from 'preact/hooks';
import { describeError, get } from '../api.ts';
import { Title } from '../app.tsx';
import { Badge, ErrorBox, Loading } from '../components.tsx';
import { dateTime } from '../format.ts';
import type { AuditEntry } from '../types.ts';

export function AuditPage({ allowed }: { allowed: boolean }) {
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [outcome, setOutcome] = useState('');
  useEffect(() => {
    setEntries(null);
    get<AuditEntry[]>(`/v1/audit?limit=200${outcome ? `&outcome=${outcome}` : ''}`).then(setEntries, (e) =>
      setError(describeError(e)),
    );
  }, [outcome]);
  return (
    <section aria-labelledby="page-title">
      <Title>Audit log</Title>
      {!allowed && <p class="notice">The audit log is for admins; the API will refuse this token.</p>}
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label for="outcome">Outcome</label>
        <select
          id="outcome"
          value={outcome}
          onChange={(e) => setOutcome((e.target as HTMLSelectElement).value)}
        >
          <option value="">All</option>
          <option value="allowed">Allowed</option>
          <option value="denied">Denied</option>
          <option value="failed">Failed</option>
        </select>
      </form>
      <ErrorBox error={error} title="Could not read the audit log" />
      {entries === null && !error && <Loading what="the audit log" />}
      {entries && (
        <table class="list" data-testid="audit">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Object</th>
              <th scope="col">Outcome</th>
              <th scope="col">From</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.seq}>
                <td>{e.seq}</td>
                <td>{dateTime(e.at)}</td>
                <td>
                  {e.actor}
                  {e.role ? ` (${e.role})` : ''}
                  {e.tenant !== 'default' ? ` · ${e.tenant}` : ''}
                </td>
                <td>{e.action}</td>
                <td>{e.object}</td>
                <td>
                  <Badge tone={e.outcome === 'allowed' ? 'ok' : e.outcome === 'denied' ? 'bad' : 'warn'}>
                    {e.outcome}
                  </Badge>{' '}
                  {e.status}
                  {e.code ? ` ${e.code}` : ''}
                </td>
                <td>{e.source}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
