/** Every deployment of the tenant, live: state, replicas ready, revision, split, rollout. */
import { Title } from '../app.tsx';
import { Badge, ErrorBox, Loading } from '../components.tsx';
import { ago, health, readyOf, split } from '../format.ts';
import { useLive } from '../live.ts';
import { Link } from '../router.tsx';

export function DeploymentsPage() {
  const { deployments, error } = useLive();
  return (
    <section aria-labelledby="page-title">
      <Title>Deployments</Title>
      <ErrorBox error={error} title="Could not read the deployments" />
      {deployments === null ? (
        <Loading what="deployments" />
      ) : deployments.length === 0 ? (
        <p>
          No deployments yet. <code>ferry deploy &lt;dir&gt;</code> makes one (<code>npm start</code> deploys
          the iris example).
        </p>
      ) : (
        <table class="list" data-testid="deployments">
          <caption class="sr-only">Deployments, with their state and traffic</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Ready</th>
              <th scope="col">Model</th>
              <th scope="col">Revision</th>
              <th scope="col">Traffic</th>
              <th scope="col">Rollout</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {deployments.map((d) => {
              const h = health(d);
              return (
                <tr key={d.name}>
                  <th scope="row">
                    <Link href={`/deployments/${encodeURIComponent(d.name)}`}>{d.name}</Link>
                  </th>
                  <td>
                    <Badge tone={h.tone}>{h.text}</Badge>
                  </td>
                  <td>{readyOf(d)}</td>
                  <td>
                    {d.model}@{d.versionRef}
                  </td>
                  <td>r{d.revision}</td>
                  <td>{split(d.traffic)}</td>
                  <td>{d.rollout ? `${d.rollout.phase} ${d.rollout.percent}% to r${d.rollout.to}` : '—'}</td>
                  <td>{ago(d.updatedAt)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
