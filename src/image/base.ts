/**
 * `ferry base`: a minimal base image built locally, without pulling anything, from the host's Node.js
 * runtime and the shared libraries it (and onnxruntime-node) needs. For air-gapped sites and for the tests,
 * which never pull from a public registry.
 *
 * Two halves: gatherHostRuntime() looks at the host (impure: ldd, lstat, readlink); planBaseImage() turns
 * that description into layer entries and an image config (pure, so the same host files always give the
 * same layers, config and image ID).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, posix } from 'node:path';
import { FerryError } from '../core/errors.ts';
import { loadIntoEngine } from './engine/load.ts';
import type { Engine } from './engine/types.ts';
import { assembleImage } from './oci/image.ts';
import { buildLayer, epochToCreated, sourceDateEpoch } from './oci/layer.ts';
import { writeOciLayout } from './oci/layout.ts';
import type { Image, ImageConfig, Layer, LayerEntry } from './oci/types.ts';

/** The non-root user images run as (the distroless "nonroot" convention). */
export const FERRY_UID = 65532;
export const FERRY_GID = 65532;
export const BASE_PATH_ENV = 'PATH=/usr/local/bin:/usr/bin:/bin';
/** Where node lives in the image, whatever its host path. */
export const NODE_IN_IMAGE = 'usr/local/bin/node';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** One thing on the host the image needs: a regular file or a symlink (absolute host paths). */
export type HostEntry =
  | { kind: 'file'; path: string; mode: number; size: number }
  | { kind: 'symlink'; path: string; target: string };

/** What gatherHostRuntime() found: everything planBaseImage() needs, and nothing else. */
export interface HostRuntime {
  /** process.version of the node binary, e.g. "v20.20.2". */
  nodeVersion: string;
  /** The node binary (a regular file, after symlinks). */
  node: { path: string; mode: number; size: number };
  /** The dynamic loader, the shared libraries, and every symlink on the way to them; sorted by path. */
  libraries: HostEntry[];
  /** The CA bundle, when the host has one. */
  caBundle?: { path: string; size: number };
}

export interface BaseLayerPlan {
  /** Shown in progress and in the image history. */
  comment: string;
  entries: LayerEntry[];
}

export interface BasePlan {
  layers: BaseLayerPlan[];
  /** The config fields of the base image (the assembler adds rootfs, history and created). */
  config: Pick<ImageConfig, 'architecture' | 'os'> & { config: ImageConfig['config'] };
  /** Default image reference: ferry-base:node<version without v>. */
  tag: string;
}

export function defaultBaseTag(nodeVersion: string): string {
  return `ferry-base:node${nodeVersion.replace(/^v/, '')}`;
}

// ---------------------------------------------------------------------------------------------------------
// Pure: host description -> layers and config

const PASSWD = `root:x:0:0:root:/root:/sbin/nologin
ferry:x:${FERRY_UID}:${FERRY_GID}:ferry:/home/ferry:/sbin/nologin
`;
const GROUP = `root:x:0:
ferry:x:${FERRY_GID}:
`;
// glibc >= 2.34 has the files and dns modules built in: no libnss_* files needed.
const NSSWITCH = `passwd: files
group: files
hosts: files dns
`;
// Docker bind-mounts its own /etc/hosts, /etc/resolv.conf and /etc/hostname over these; they exist so that
// the mount points need not be created in a read-only root filesystem, and so other runtimes get sane ones.
const HOSTS = `127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
`;

const text = (s: string) => new TextEncoder().encode(s);

function rel(path: string): string {
  return path.replace(/^\/+/, '');
}

/** Every ancestor directory of the given relative paths, as dir entries (0755, root). */
function parentDirs(paths: Iterable<string>, except: Set<string> = new Set()): LayerEntry[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    let d = posix.dirname(p);
    while (d !== '.' && d !== '/' && d !== '') {
      dirs.add(d);
      d = posix.dirname(d);
    }
  }
  return [...dirs]
    .filter((d) => !except.has(d))
    .map((d): LayerEntry => ({ type: 'dir', path: d, mode: 0o755, uid: 0, gid: 0 }));
}

function byPath(a: LayerEntry, b: LayerEntry): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** Turns a description of the host runtime into the base image's layers and config. Pure. */
export function planBaseImage(host: HostRuntime): BasePlan {
  // Layer 1: users, groups, name service, /tmp, a home for the non-root user, CA certificates.
  const system: LayerEntry[] = [
    { type: 'dir', path: 'etc', mode: 0o755, uid: 0, gid: 0 },
    { type: 'file', path: 'etc/group', mode: 0o644, uid: 0, gid: 0, source: text(GROUP) },
    { type: 'file', path: 'etc/hostname', mode: 0o644, uid: 0, gid: 0, source: new Uint8Array() },
    { type: 'file', path: 'etc/hosts', mode: 0o644, uid: 0, gid: 0, source: text(HOSTS) },
    { type: 'file', path: 'etc/nsswitch.conf', mode: 0o644, uid: 0, gid: 0, source: text(NSSWITCH) },
    { type: 'file', path: 'etc/passwd', mode: 0o644, uid: 0, gid: 0, source: text(PASSWD) },
    { type: 'file', path: 'etc/resolv.conf', mode: 0o644, uid: 0, gid: 0, source: new Uint8Array() },
    { type: 'dir', path: 'home', mode: 0o755, uid: 0, gid: 0 },
    { type: 'dir', path: 'home/ferry', mode: 0o755, uid: FERRY_UID, gid: FERRY_GID },
    { type: 'dir', path: 'root', mode: 0o700, uid: 0, gid: 0 },
    { type: 'dir', path: 'tmp', mode: 0o1777, uid: 0, gid: 0 },
  ];
  if (host.caBundle) {
    const path = rel(CA_BUNDLE);
    system.push(...parentDirs([path], new Set(['etc'])), {
      type: 'file',
      path,
      mode: 0o644,
      uid: 0,
      gid: 0,
      source: { file: host.caBundle.path },
    });
  }
  system.sort(byPath);

  // Layer 2: the loader and shared libraries, with the host's symlinks (merged /usr: lib -> usr/lib).
  const libEntries: LayerEntry[] = host.libraries.map((e): LayerEntry => {
    const path = rel(e.path);
    return e.kind === 'symlink'
      ? { type: 'symlink', path, target: e.target, uid: 0, gid: 0 }
      : { type: 'file', path, mode: e.mode & 0o7777, uid: 0, gid: 0, source: { file: e.path } };
  });
  const symlinked = new Set(libEntries.filter((e) => e.type === 'symlink').map((e) => e.path));
  const libraries = [
    ...parentDirs(
      libEntries.map((e) => e.path),
      symlinked,
    ),
    ...libEntries,
  ];
  dedupe(libraries);
  libraries.sort(byPath);

  // Layer 3: node itself (the largest and the most often changed part of the base).
  const node: LayerEntry[] = [
    ...parentDirs([NODE_IN_IMAGE]),
    { type: 'file', path: NODE_IN_IMAGE, mode: 0o755, uid: 0, gid: 0, source: { file: host.node.path } },
  ];
  node.sort(byPath);

  const version = host.nodeVersion;
  return {
    layers: [
      { comment: 'ferry base: system files (users, /tmp, certificates)', entries: system },
      { comment: 'ferry base: shared libraries', entries: libraries },
      { comment: `ferry base: node ${version}`, entries: node },
    ],
    config: {
      architecture: 'amd64',
      os: 'linux',
      config: {
        User: `${FERRY_UID}:${FERRY_GID}`,
        Env: [BASE_PATH_ENV, `NODE_VERSION=${version.replace(/^v/, '')}`],
        Cmd: ['node'],
        WorkingDir: '/',
        Labels: {
          'org.opencontainers.image.title': 'ferry-base',
          'org.opencontainers.image.description': `Minimal Node.js ${version} runtime built by 'ferry base' from the host's files`,
          'dev.ferry.base.node-version': version,
        },
      },
    },
    tag: defaultBaseTag(version),
  };
}

/** Removes repeated entries for the same path (the same directory reached twice), keeping the first. */
function dedupe(entries: LayerEntry[]): void {
  const seen = new Set<string>();
  let w = 0;
  for (const e of entries) {
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    entries[w++] = e;
  }
  entries.length = w;
}

// ---------------------------------------------------------------------------------------------------------
// Impure: look at the host

/** The Linux x64 onnxruntime-node native files installed with Ferry (their libraries must be in the base). */
export function onnxruntimeNativeFiles(): string[] {
  try {
    const require = createRequire(import.meta.url);
    const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
    const bin = join(pkg, 'bin');
    if (!existsSync(bin)) return [];
    const found: string[] = [];
    for (const napi of readdirSync(bin).sort()) {
      const dir = join(bin, napi, 'linux', 'x64');
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).sort()) {
        if (f.endsWith('.node') || /\.so(\.\d+)*$/.test(f)) found.push(join(dir, f));
      }
    }
    return found;
  } catch {
    return [];
  }
}

/** Parses `ldd` output into the absolute paths of what the binary needs (loader included, vdso left out). */
export function parseLdd(output: string, binary: string): string[] {
  const paths: string[] = [];
  const missing: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('linux-vdso') || line.startsWith('linux-gate')) continue;
    if (line.includes('not a dynamic executable') || line.includes('statically linked')) continue;
    const arrow = /^(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$/.exec(line);
    if (arrow) {
      if (arrow[2] === 'not found') missing.push(arrow[1]!);
      else if (isAbsolute(arrow[2]!)) paths.push(arrow[2]!);
      continue;
    }
    const loader = /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    if (loader) paths.push(loader[1]!);
  }
  if (missing.length > 0) {
    throw new FerryError(
      'FERRY_FILE_NOT_FOUND',
      `${binary} needs shared libraries the host does not have: ${missing.join(', ')}.`,
      { hint: 'Install them on the host (apt-get), or use a base image that has them (build.base).' },
    );
  }
  return paths;
}

/**
 * Follows a path component by component, recording every symlink met and the final regular file.
 * Entries are keyed by path in `into`.
 */
function collectPath(path: string, into: Map<string, HostEntry>, depth = 0): void {
  if (depth > 40) {
    throw new FerryError('FERRY_FILE_NOT_FOUND', `Too many levels of symbolic links resolving ${path}.`);
  }
  const parts = path.split('/').filter((p) => p !== '');
  let prefix = '';
  for (let i = 0; i < parts.length; i++) {
    prefix = `${prefix}/${parts[i]}`;
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(prefix);
    } catch (err) {
      throw new FerryError('FERRY_FILE_NOT_FOUND', `Cannot read ${prefix} (needed for ${path}).`, {
        cause: err,
      });
    }
    if (st.isSymbolicLink()) {
      const target = readlinkSync(prefix);
      into.set(prefix, { kind: 'symlink', path: prefix, target });
      const resolved = posix.resolve(posix.dirname(prefix), target);
      collectPath(posix.join(resolved, ...parts.slice(i + 1)), into, depth + 1);
      return;
    }
    if (i === parts.length - 1) {
      if (!st.isFile()) throw new FerryError('FERRY_FILE_NOT_FOUND', `${prefix} is not a regular file.`);
      into.set(prefix, { kind: 'file', path: prefix, mode: st.mode & 0o7777, size: st.size });
    }
  }
}

export interface GatherOptions {
  /** The node binary (default: the one running Ferry). */
  nodePath?: string;
  /** Its version (default: process.version; asked from the binary when nodePath is another one). */
  nodeVersion?: string;
  /** Other binaries whose libraries must be in the image (default: onnxruntime-node's Linux x64 files). */
  extraBinaries?: string[];
}

/** Looks at the host: the node binary, the libraries it and the extra binaries need, the CA bundle. */
export function gatherHostRuntime(opts: GatherOptions = {}): HostRuntime {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      `'ferry base' builds linux/amd64 images from the host's runtime; this host is ${process.platform}/${process.arch}.`,
      { hint: 'Run it on a Linux x64 machine, or use a published base image (build.base).' },
    );
  }
  const nodePath = opts.nodePath ?? process.execPath;
  const nodeVersion =
    opts.nodeVersion ??
    (opts.nodePath === undefined
      ? process.version
      : execFileSync(nodePath, ['-p', 'process.version'], { encoding: 'utf8' }).trim());
  const entries = new Map<string, HostEntry>();
  const binaries = [nodePath, ...(opts.extraBinaries ?? onnxruntimeNativeFiles())];
  for (const binary of binaries) {
    let output: string;
    try {
      output = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const stdout = (err as { stdout?: string }).stdout ?? '';
      // ldd exits 1 for static binaries; anything else is a real failure.
      if (stdout.includes('not a dynamic executable')) continue;
      throw new FerryError(
        'FERRY_FILE_NOT_FOUND',
        `Cannot list the shared libraries of ${binary} (ldd failed).`,
        {
          cause: err,
          hint: 'ldd comes with libc-bin on Debian.',
        },
      );
    }
    for (const lib of parseLdd(output, binary)) {
      // Libraries shipped next to the binaries (onnxruntime's own) belong to the server layer, not the base.
      if (lib.includes('/node_modules/')) continue;
      collectPath(lib, entries);
    }
  }
  const realNode = new Map<string, HostEntry>();
  collectPath(nodePath, realNode);
  const nodeFile = [...realNode.values()].find((e) => e.kind === 'file') as Extract<
    HostEntry,
    { kind: 'file' }
  >;
  const libraries = [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const runtime: HostRuntime = {
    nodeVersion,
    node: { path: nodeFile.path, mode: nodeFile.mode, size: nodeFile.size },
    libraries,
  };
  if (existsSync(CA_BUNDLE)) runtime.caBundle = { path: CA_BUNDLE, size: statSync(CA_BUNDLE).size };
  return runtime;
}

// ---------------------------------------------------------------------------------------------------------
// Build: plan -> layers -> image

export interface BuildBaseOptions {
  /** The host description (default: gatherHostRuntime()). */
  host?: HostRuntime;
  /** Progress lines ("layer 2/3 ferry base: shared libraries: 1.6 MB"). */
  onProgress?: (line: string) => void;
}

export interface BaseImage {
  image: Image;
  /** Default reference, ferry-base:node<version>. */
  tag: string;
  host: HostRuntime;
  /** Sum of the compressed layer sizes (what a registry stores). */
  compressedSize: number;
  /** Sum of the file sizes in the image (about what the engine reports as its size). */
  contentSize: number;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Builds the base image in memory (layers are gzip blobs). Same host files -> same image ID. */
export async function buildBaseImage(opts: BuildBaseOptions = {}): Promise<BaseImage> {
  const host = opts.host ?? gatherHostRuntime();
  const plan = planBaseImage(host);
  const layers: Layer[] = [];
  for (const [i, step] of plan.layers.entries()) {
    const layer = await buildLayer(step.entries, step.comment);
    layers.push(layer);
    opts.onProgress?.(`layer ${i + 1}/${plan.layers.length} ${step.comment}: ${mb(layer.size)} compressed`);
  }
  const image = assembleImage({
    layers,
    config: { ...plan.config, created: epochToCreated(sourceDateEpoch()) },
    createdBy: 'ferry base',
  });
  const contentSize =
    host.node.size +
    (host.caBundle?.size ?? 0) +
    host.libraries.reduce((n, e) => n + (e.kind === 'file' ? e.size : 0), 0);
  return {
    image,
    tag: plan.tag,
    host,
    compressedSize: layers.reduce((n, l) => n + l.size, 0),
    contentSize,
  };
}

export interface FerryBaseOptions extends BuildBaseOptions {
  /** Load into this engine (default when no ociDir is given). */
  engine?: Engine;
  /** Reference to load as (default ferry-base:node<version>). */
  tag?: string;
  /** Write an OCI image layout to this directory (for `ferry build --base oci:<dir>`); with `engine`, both. */
  ociDir?: string;
}

export interface FerryBaseResult {
  tag: string;
  /** Image ID (config digest), "sha256:<hex>". */
  id: string;
  /** Manifest digest. */
  digest: string;
  compressedSize: number;
  contentSize: number;
  /** Size the engine reports, when loaded into one. */
  engineSize?: number;
  nodeVersion: string;
  /** Where it went: the OCI layout directory and/or "engine". */
  output: string;
}

/** `ferry base`: builds the base image once and loads it into the engine and/or writes an OCI layout. */
export async function ferryBase(opts: FerryBaseOptions): Promise<FerryBaseResult> {
  const base = await buildBaseImage(opts);
  const tag = opts.tag ?? base.tag;
  const result: FerryBaseResult = {
    tag,
    id: base.image.configDigest,
    digest: base.image.manifestDigest,
    compressedSize: base.compressedSize,
    contentSize: base.contentSize,
    nodeVersion: base.host.nodeVersion,
    output: [opts.ociDir, opts.engine ? 'engine' : undefined].filter(Boolean).join(' and '),
  };
  if (opts.ociDir === undefined && opts.engine === undefined) {
    throw new FerryError(
      'FERRY_BAD_REQUEST',
      "'ferry base' needs an engine to load into or an OCI layout directory.",
    );
  }
  // Built once, written to every output asked for.
  if (opts.ociDir !== undefined) {
    await writeOciLayout(opts.ociDir, base.image, tag);
    opts.onProgress?.(`wrote OCI layout ${opts.ociDir} (${tag})`);
  }
  if (opts.engine === undefined) return result;
  const info = await loadIntoEngine(opts.engine, base.image, tag);
  result.engineSize = info.size;
  opts.onProgress?.(`loaded ${tag} (${info.id.slice(7, 19)}) into the engine: ${mb(info.size)}`);
  return result;
}
