/**
 * A client for the OCI distribution API (what `docker push/pull` speak), over fetch. Just what Ferry needs:
 * check and upload blobs, put and get manifests, get blobs; push an image skipping the blobs the registry
 * already has, so a code-only change uploads only the small top layers, the config and the manifest.
 *
 * Auth: on a 401 the client answers the registry's challenge: `Basic` -> the username/password;
 * `Bearer realm=...,service=...,scope=...` -> fetches a token from the realm (with the username/password when
 * there are some, anonymously otherwise) and retries. Credentials of the form { token } are sent as a bearer
 * token as they are. Errors name the registry and repository only, never a credential.
 */
import { FerryError } from '../../core/errors.ts';
import {
  type ImageIndex,
  type ImageManifest,
  imageFromParts,
  parseJson,
  pickPlatform,
  sha256Digest,
  verifyDigest,
} from '../oci/image.ts';
import { type Image, MEDIA_TYPES } from '../oci/types.ts';
import type { Credentials } from './credentials.ts';
import { DOCKER_HUB, DOCKER_HUB_API } from './ref.ts';

export type PushProgress =
  | {
      type: 'blob';
      /** "exists": the registry has it, skipped; "uploading" then "uploaded" otherwise. */
      status: 'exists' | 'uploading' | 'uploaded';
      digest: string;
      size: number;
      /** The layer's comment, or "config". */
      what: string;
    }
  | { type: 'manifest'; digest: string; tag: string };

export interface RegistryClientOptions {
  /** Plain HTTP instead of HTTPS. Default: true for localhost / 127.0.0.1 / [::1], false elsewhere. */
  insecure?: boolean;
  credentials?: Credentials;
  /** Added to authentication errors (e.g. "the Docker config uses a credential helper Ferry does not run"). */
  credentialsHint?: string;
  onProgress?: (event: PushProgress) => void;
  /** The fetch to use; default the global one. The platform passes guardedFetch for references API callers name. */
  fetch?: typeof fetch;
}

export interface PushResult {
  /** The manifest digest ("sha256:..."): pull by `repo@digest`. */
  digest: string;
  pushedBytes: number;
  skippedBytes: number;
  pushedBlobs: number;
  skippedBlobs: number;
}

export interface ManifestResponse {
  mediaType: string;
  bytes: Uint8Array;
  digest: string;
}

const MANIFEST_ACCEPT = [
  MEDIA_TYPES.manifest,
  MEDIA_TYPES.index,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
].join(', ');

type Reason = 'network' | 'auth' | 'denied' | 'not_found' | 'registry';

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '');
  return h === 'localhost' || h === '127.0.0.1' || h === '[::1]' || h.startsWith('127.');
}

/** Parses `Bearer realm="...",service="...",scope="..."` (values quoted or not). */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  const scheme = (m?.[1] ?? '').toLowerCase();
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p = re.exec(m?.[2] ?? ''); p; p = re.exec(m?.[2] ?? '')) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme, params };
}

export class RegistryClient {
  readonly registry: string;
  private readonly base: string;
  private readonly options: RegistryClientOptions;
  /** Authorization header values by scope ("repository:team/iris:pull,push"); "*" for Basic. */
  private readonly auth = new Map<string, string>();

  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    this.options = options;
    const host = registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
    const insecure = options.insecure ?? isLoopback(host);
    this.base = `${insecure ? 'http' : 'https'}://${host}`;
    if (options.credentials && 'token' in options.credentials) {
      this.auth.set('*', `Bearer ${options.credentials.token}`);
    }
  }

  /** True when the registry has the blob. */
  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, repo, 'pull');
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await this.failure(res, repo, `checking blob ${digest}`);
  }

  /** Uploads one blob (POST to open an upload, then one PUT with the bytes and the digest). */
  async pushBlob(repo: string, digest: string, bytes: Uint8Array): Promise<void> {
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, repo, 'push', {
      headers: { 'content-length': '0' },
    });
    if (start.status !== 202) throw await this.failure(start, repo, `starting the upload of ${digest}`);
    await start.body?.cancel();
    const location = start.headers.get('location');
    if (!location) {
      throw this.error(
        'registry',
        repo,
        `the registry did not say where to upload ${digest} (no Location header).`,
      );
    }
    const url = new URL(location, this.base);
    url.searchParams.set('digest', digest);
    const put = await this.request('PUT', url.toString(), repo, 'push', {
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    if (put.status !== 201) throw await this.failure(put, repo, `uploading blob ${digest}`);
    await put.body?.cancel();
  }

  /** Puts a manifest under a tag (or digest); returns the digest the registry computed. */
  async putManifest(repo: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, repo, 'push', {
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    if (res.status !== 201) throw await this.failure(res, repo, `putting the manifest for "${reference}"`);
    await res.body?.cancel();
    const digest = sha256Digest(bytes);
    const said = res.headers.get('docker-content-digest');
    if (said && said !== digest) {
      throw this.error(
        'registry',
        repo,
        `the registry stored the manifest as ${said}, but its sha256 is ${digest}.`,
      );
    }
    return digest;
  }

  /**
   * Pushes an image: each blob (layers, then config) is checked with HEAD and uploaded only when missing;
   * then the manifest is put under `tag`.
   */
  async pushImage(
    repo: string,
    tag: string,
    image: Image,
    onProgress: ((e: PushProgress) => void) | undefined = this.options.onProgress,
  ): Promise<PushResult> {
    const blobs = new Map<string, { bytes: Uint8Array; what: string }>();
    for (const l of image.layers)
      if (!blobs.has(l.digest)) blobs.set(l.digest, { bytes: l.blob, what: l.comment });
    blobs.set(image.configDigest, { bytes: image.configBlob, what: 'config' });
    const result: PushResult = {
      digest: image.manifestDigest,
      pushedBytes: 0,
      skippedBytes: 0,
      pushedBlobs: 0,
      skippedBlobs: 0,
    };
    for (const [digest, { bytes, what }] of blobs) {
      const size = bytes.byteLength;
      if (await this.hasBlob(repo, digest)) {
        result.skippedBytes += size;
        result.skippedBlobs++;
        onProgress?.({ type: 'blob', status: 'exists', digest, size, what });
        continue;
      }
      onProgress?.({ type: 'blob', status: 'uploading', digest, size, what });
      await this.pushBlob(repo, digest, bytes);
      result.pushedBytes += size;
      result.pushedBlobs++;
      onProgress?.({ type: 'blob', status: 'uploaded', digest, size, what });
    }
    const mediaType = (parseJson(image.manifestBlob, 'manifest') as { mediaType?: string }).mediaType;
    result.digest = await this.putManifest(repo, tag, image.manifestBlob, mediaType ?? MEDIA_TYPES.manifest);
    onProgress?.({ type: 'manifest', digest: result.digest, tag });
    return result;
  }

  /** Gets a manifest (image manifest or index) by tag or digest, checking the digest when one was asked. */
  async getManifest(repo: string, reference: string): Promise<ManifestResponse> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${reference}`, repo, 'pull', {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new FerryError(
        'FERRY_FILE_NOT_FOUND',
        `Registry ${this.registry} has no image ${repo}:${reference}.`,
        {
          hint: 'Check the name and tag (or push the image first).',
          details: { registry: this.registry, repository: repo, status: 404, reason: 'not_found' },
        },
      );
    }
    if (res.status !== 200) throw await this.failure(res, repo, `getting the manifest "${reference}"`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:')) verifyDigest(bytes, reference, `Manifest ${repo}@${reference}`);
    const mediaType =
      res.headers.get('content-type')?.split(';')[0]?.trim() ||
      ((parseJson(bytes, 'manifest') as { mediaType?: string }).mediaType ?? MEDIA_TYPES.manifest);
    return { mediaType, bytes, digest };
  }

  /** Gets a blob and checks its digest. */
  async getBlob(repo: string, digest: string): Promise<Uint8Array> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, repo, 'pull');
    if (res.status !== 200) throw await this.failure(res, repo, `getting blob ${digest}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    verifyDigest(bytes, digest, `Blob ${digest} from ${this.registry}/${repo}`);
    return bytes;
  }

  /** Pulls an image (linux/amd64 from a multi-platform index) with all its blobs, e.g. to use as a base. */
  async pullImage(repo: string, reference: string): Promise<Image & { manifest: ImageManifest }> {
    let m = await this.getManifest(repo, reference);
    const where = `${this.registry}/${repo}:${reference}`;
    let json = parseJson(m.bytes, `${where}: manifest`) as ImageManifest | ImageIndex;
    if ('manifests' in json) {
      m = await this.getManifest(repo, pickPlatform(json, where).digest);
      json = parseJson(m.bytes, `${where}: manifest`) as ImageManifest;
    }
    const manifest = json as ImageManifest;
    if (!manifest.config || !Array.isArray(manifest.layers)) {
      throw new FerryError(
        'FERRY_BAD_REQUEST',
        `${where} is not an image manifest (schema 1 is not supported).`,
      );
    }
    const configBlob = await this.getBlob(repo, manifest.config.digest);
    const layers: Uint8Array[] = [];
    for (const l of manifest.layers) layers.push(await this.getBlob(repo, l.digest));
    return { ...imageFromParts(m.bytes, configBlob, layers, where), manifest };
  }

  // --- plumbing -------------------------------------------------------------------------------------

  private async request(
    method: string,
    pathOrUrl: string,
    repo: string,
    action: 'pull' | 'push',
    init: { headers?: Record<string, string>; body?: Uint8Array } = {},
  ): Promise<Response> {
    const url = pathOrUrl.startsWith('/') ? `${this.base}${pathOrUrl}` : pathOrUrl;
    const scope = `repository:${repo}:${action === 'push' ? 'pull,push' : 'pull'}`;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...init.headers };
      const authorization = this.auth.get(scope) ?? this.auth.get('*');
      if (authorization) headers.authorization = authorization;
      let res: Response;
      try {
        res = await (this.options.fetch ?? fetch)(url, {
          method,
          headers,
          body: init.body,
          redirect: 'follow',
        });
      } catch (err) {
        throw this.networkError(err, repo);
      }
      if (res.status !== 401 || attempt > 0) {
        if (res.status === 401) {
          await res.body?.cancel();
          throw this.error(
            'auth',
            repo,
            this.options.credentials
              ? 'the registry rejected the credentials (401 Unauthorized).'
              : 'authentication is required and no credentials were found (401 Unauthorized).',
          );
        }
        if (res.status === 403) {
          await res.body?.cancel();
          throw this.error('denied', repo, `${action} access denied (403 Forbidden).`);
        }
        return res;
      }
      const challenge = res.headers.get('www-authenticate') ?? '';
      await res.body?.cancel();
      await this.answerChallenge(challenge, scope, repo);
    }
  }

  private async answerChallenge(header: string, scope: string, repo: string): Promise<void> {
    const { scheme, params } = parseChallenge(header);
    const creds = this.options.credentials;
    const basic =
      creds && 'username' in creds
        ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
        : undefined;
    if (scheme === 'basic') {
      if (!basic) {
        throw this.error(
          'auth',
          repo,
          'a username and password are required (401 Unauthorized) and none were found.',
        );
      }
      this.auth.set('*', basic);
      return;
    }
    if (scheme !== 'bearer' || !params.realm) {
      throw this.error(
        'auth',
        repo,
        `the registry asks for an authentication scheme Ferry does not support ("${scheme}").`,
      );
    }
    let realm: URL;
    try {
      realm = new URL(params.realm);
    } catch {
      throw this.error('auth', repo, 'the token realm the registry sent is not a URL.');
    }
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', params.scope ?? scope);
    let res: Response;
    try {
      res = await (this.options.fetch ?? fetch)(realm, { headers: basic ? { authorization: basic } : {} });
    } catch (err) {
      throw this.networkError(err, repo, `its token service ${realm.host}`);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.error(
        'auth',
        repo,
        `the token service refused ${basic ? 'the credentials' : 'anonymous access'} (${res.status}).`,
      );
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw this.error('registry', repo, `the token service answered ${res.status}.`);
    }
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw this.error('registry', repo, 'the token service answered without a token.');
    this.auth.set(scope, `Bearer ${token}`);
  }

  private error(reason: Reason, repo: string, what: string): FerryError {
    let hint: string | undefined;
    if (reason === 'auth' || reason === 'denied') {
      hint =
        this.options.credentialsHint ??
        'Set FERRY_REGISTRY_USERNAME and FERRY_REGISTRY_PASSWORD (or FERRY_REGISTRY_TOKEN), or run `docker login`.';
    }
    return new FerryError(
      reason === 'registry' ? 'FERRY_INTERNAL' : 'FERRY_CONNECTION_FAILED',
      `Registry ${this.registry}, repository ${repo}: ${what}`,
      { ...(hint ? { hint } : {}), details: { registry: this.registry, repository: repo, reason } },
    );
  }

  private networkError(err: unknown, repo: string, what = ''): FerryError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? cause?.message ?? (err as Error).message;
    const tlsHint = this.base.startsWith('https:')
      ? ' If the registry speaks plain HTTP, mark it insecure (http).'
      : '';
    return new FerryError(
      'FERRY_CONNECTION_FAILED',
      `Cannot reach registry ${this.registry}${what ? ` (${what})` : ''} at ${this.base} for repository ${repo}: ${code}.`,
      {
        hint: `Check the registry address and that it is running.${tlsHint}`,
        details: { registry: this.registry, repository: repo, reason: 'network' },
      },
    );
  }

  private async failure(res: Response, repo: string, doing: string): Promise<FerryError> {
    let detail = '';
    try {
      const body = (await res.json()) as { errors?: Array<{ code?: string; message?: string }> };
      detail = (body.errors ?? [])
        .map((e) => [e.code, e.message].filter(Boolean).join(': '))
        .filter(Boolean)
        .join('; ');
    } catch {
      // not JSON
    }
    const err = this.error(
      res.status === 404 ? 'not_found' : 'registry',
      repo,
      `the registry answered ${res.status} while ${doing}${detail ? ` (${detail})` : ''}.`,
    );
    (err.details as Record<string, unknown>).status = res.status;
    return err;
  }
}
