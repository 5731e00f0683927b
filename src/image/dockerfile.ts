/**
 * `ferry build --eject`: the image plan as a Dockerfile and a build context, for teams that build with their
 * own tooling. Pure: returns the text and the list of context entries; the caller writes them.
 *
 * Same layers in the same order as `ferry build`, one COPY per plan layer, so the cache behaves alike. The
 * result passes the same `ferry test`, but is not byte-identical: Docker's builders stamp creation times.
 *
 * File modes: Docker 20.10's classic builder has no `COPY --chmod` (BuildKit only, and Debian 12's docker.io
 * ships no buildx), and the base image may have no shell for a `RUN chmod`. Both builders keep the modes the
 * files have in the build context, so the context carries them (files 0444, directories 0555) and COPY only
 * sets the owner (`--chown=0:0`, numeric: no /etc/passwd lookup). Whoever writes the context must apply the
 * modes (directories last, after their contents are written).
 */
import { FerryError } from '../core/errors.ts';
import type { EntrySource, ImagePlan } from './plan.ts';

export type ContextEntry =
  | { type: 'dir'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; source: EntrySource };

export interface EjectedBuild {
  dockerfile: string;
  /** Entries of the build context, relative to it ('/'-separated), sorted by path; the Dockerfile not included. */
  context: ContextEntry[];
}

const SECOND_NS = 1_000_000_000;

export function renderDockerfile(plan: ImagePlan, options: { base: string }): EjectedBuild {
  if (!/^[^\s]+$/.test(options.base))
    throw new FerryError('FERRY_BAD_REQUEST', `base image "${options.base}" is not an image reference`, {
      hint: 'give a reference such as node:20-bookworm-slim or localhost:5000/ferry-base:20',
    });
  const { config } = plan;
  const context: ContextEntry[] = [];
  const lines = [
    '# Written by `ferry build --eject`: the same layers, in the same order, as `ferry build`.',
    '#   docker build -t IMAGE .',
    '# Works with the classic builder (Docker 20.10) and BuildKit. COPY keeps the file modes of this context',
    '# (files 0444, directories 0555: read-only for the non-root user); keep them when copying it (cp -a, tar -p).',
    `FROM ${options.base}`,
  ];

  plan.layers.forEach((layer, i) => {
    const dir = `layers/${i + 1}-${layer.name}`;
    // `COPY dir/ /` copies the contents; the classic builder also gives "/" the mode of `dir`, so these two
    // keep the usual 0755 of a root directory.
    context.push({ type: 'dir', path: 'layers', mode: 0o755 }, { type: 'dir', path: dir, mode: 0o755 });
    for (const e of layer.entries) {
      const path = `${dir}/${e.path}`;
      if (e.type === 'dir') context.push({ type: 'dir', path, mode: e.mode ?? 0o555 });
      else if (e.type === 'file')
        context.push({ type: 'file', path, mode: e.mode ?? 0o444, source: e.source });
      else
        throw new FerryError(
          'FERRY_INTERNAL',
          `layer ${layer.name}: symlink ${e.path} has no Dockerfile form`,
        );
    }
    lines.push('', `# ${i + 1}. ${layer.name}: ${layer.why}`, `COPY --chown=0:0 ${dir}/ /`);
  });

  lines.push('', `WORKDIR ${config.WorkingDir}`);
  if (config.Env.length > 0) {
    const pairs = config.Env.map((kv) => {
      const eq = kv.indexOf('=');
      const name = kv.slice(0, eq);
      return `${name}=${quote(kv.slice(eq + 1), `env.${name}`)}`;
    });
    lines.push(`ENV ${pairs.join(' \\\n    ')}`);
  }
  const labels = Object.entries(config.Labels).map(
    ([k, v]) => `${quote(k, 'label')}=${quote(v, `label ${k}`)}`,
  );
  if (labels.length > 0) lines.push(`LABEL ${labels.join(' \\\n      ')}`);
  for (const port of Object.keys(config.ExposedPorts)) lines.push(`EXPOSE ${port}`);
  lines.push(`STOPSIGNAL ${config.StopSignal}`);
  const hc = config.Healthcheck;
  const [kind, ...command] = hc.Test;
  if (kind !== 'CMD')
    throw new FerryError(
      'FERRY_INTERNAL',
      `healthcheck kind ${kind} is not supported by the Dockerfile writer`,
    );
  lines.push(
    `HEALTHCHECK --interval=${duration(hc.Interval)} --timeout=${duration(hc.Timeout)} ` +
      `--start-period=${duration(hc.StartPeriod)} --retries=${hc.Retries} CMD ${JSON.stringify(command)}`,
  );
  lines.push(`USER ${config.User}`, `ENTRYPOINT ${JSON.stringify(config.Entrypoint)}`);
  // ENTRYPOINT already resets a base image's CMD; written out so the intent is visible.
  lines.push(`CMD ${JSON.stringify(config.Cmd)}`, '');

  const unique = new Map<string, ContextEntry>();
  for (const e of context) unique.set(e.path, e);
  return {
    dockerfile: lines.join('\n'),
    context: [...unique.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}

/** A double-quoted Dockerfile word: `\`, `"` and `$` escaped (ENV and LABEL substitute variables). */
function quote(value: string, what: string): string {
  if (/[\r\n]/.test(value))
    throw new FerryError(
      'FERRY_SPEC_INVALID',
      `${what} contains a line break, which a Dockerfile cannot express`,
      {
        hint: 'use a value without line breaks, or build with `ferry build` instead of --eject',
      },
    );
  return `"${value.replace(/[\\"$]/g, '\\$&')}"`;
}

function duration(ns: number): string {
  return ns % SECOND_NS === 0 ? `${ns / SECOND_NS}s` : `${Math.round(ns / 1_000_000)}ms`;
}
