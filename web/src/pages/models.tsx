/** The model registry: each model with its versions (what they hold) and its aliases. */
import { useEffect, useState } from 'preact/hooks';
import { describeError, get } from '../api.ts';
import { Title } from '../app.tsx';
import { ErrorBox, Loading } from '../components.tsx';
import { dateTime } from '../format.ts';
import type { Model } from '../types.ts';

export function ModelsPage() {
  const [models, setModels] = useState<Model[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    get<Model[]>('/v1/models').then(setModels, (e) => setError(describeError(e)));
  }, []);
  return (
    <section aria-labelledby="page-title">
      <Title>Models</Title>
      <ErrorBox error={error} title="Could not read the models" />
      {models === null && !error && <Loading what="models" />}
      {models?.length === 0 && <p>No models yet.</p>}
      {models?.map((m) => {
        const aliasesOf = (v: string) =>
          Object.entries(m.aliases)
            .filter(([, version]) => version === v)
            .map(([alias]) => alias);
        return (
          <section key={m.name} class="panel" aria-labelledby={`model-${m.name}`} data-testid="model">
            <h2 id={`model-${m.name}`}>{m.name}</h2>
            <p>
              Aliases:{' '}
              {Object.keys(m.aliases).length === 0
                ? 'none'
                : Object.entries(m.aliases)
                    .map(([a, v]) => `${a} → ${v}`)
                    .join(', ')}
            </p>
            <table class="list">
              <caption class="sr-only">Versions of {m.name}</caption>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Aliases</th>
                  <th scope="col">Content</th>
                  <th scope="col">Served as</th>
                  <th scope="col">Added</th>
                </tr>
              </thead>
              <tbody>
                {[...m.versions].reverse().map((v) => (
                  <tr key={v.version}>
                    <th scope="row">{v.version}</th>
                    <td>{aliasesOf(v.version).join(', ') || '—'}</td>
                    <td>
                      <code>{v.image ?? (v.artifact ? `artifact ${v.artifact.slice(0, 19)}…` : '—')}</code>
                    </td>
                    <td>
                      {v.spec.servedName ?? '—'}
                      {v.spec.modelVersion ? ` (model.version ${v.spec.modelVersion})` : ''}
                    </td>
                    <td>{dateTime(v.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        );
      })}
    </section>
  );
}
