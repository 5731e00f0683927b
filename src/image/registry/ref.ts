/**
 * Image references ("[host[:port]/]path[:tag][@sha256:...]"), following Docker's reference grammar:
 * the first component is a registry host when it has a "." or ":" or is "localhost"; otherwise the image
 * is on Docker Hub (docker.io), where one-component names live under "library/".
 */
import { FerryError } from '../../core/errors.ts';

export const DOCKER_HUB = 'docker.io';
/** The host Docker Hub's registry API answers on. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface ImageRef {
  /** "host[:port]", or "docker.io". */
  registry: string;
  /** Repository path in the registry ("library/node", "team/iris"). */
  repository: string;
  /** The tag; "latest" when neither a tag nor a digest was given. Undefined for digest-only refs. */
  tag: string | undefined;
  /** "sha256:<hex>" when the ref pins a digest. */
  digest: string | undefined;
  /** What to ask the registry for: the digest if any, else the tag. */
  reference: string;
  /** The normalised full name: registry/repository[:tag][@digest]. */
  name: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/;

function bad(ref: string, why: string): FerryError {
  return new FerryError('FERRY_BAD_REQUEST', `Invalid image reference "${ref}": ${why}.`, {
    hint: 'Use [registry-host[:port]/]name[:tag] or name@sha256:<64 hex>, e.g. 127.0.0.1:5000/team/iris:1.0',
  });
}

export function parseImageRef(ref: string): ImageRef {
  if (ref.length === 0 || ref.length > 512 || /\s/.test(ref)) throw bad(ref, 'empty, too long or has spaces');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest))
      throw bad(ref, 'the digest must be sha256: followed by 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      throw bad(ref, `tag "${tag}" must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!HOST.test(first)) throw bad(ref, `"${first}" is not a valid registry host[:port]`);
    registry = first;
    parts.shift();
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    throw bad(
      ref,
      'name components must be lowercase letters and digits, separated by ".", "_", "__" or "-"',
    );
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (tag === undefined && digest === undefined) tag = 'latest';
  const name = `${registry}/${repository}${tag !== undefined ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  return { registry, repository, tag, digest, reference: digest ?? (tag as string), name };
}
