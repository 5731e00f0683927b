/**
 * `ferry gateway-image`: the image that runs Ferry's gateway alone (`ferry gateway --routes <file>`, file + DNS
 * discovery) in a cluster, assembled as model images are (build.ts), without a daemon: the base's layers, one
 * reproducible layer, a config Ferry writes.
 *
 * Image layout:
 *   /app/gateway.mjs   `ferry gateway` and every package it uses in one ES module (bundle.ts bundleGateway);
 *                      root-owned, read-only (0444 in a 0555 /app), like a model image's files
 *   the base           node, the libraries it loads, /etc/passwd with the user 65532, /tmp (`ferry base`)
 *
 * Config: Entrypoint ["node", "/app/gateway.mjs"]; Cmd GATEWAY_ARGS, the arguments the Kubernetes renderer gives
 * the container (args replace Cmd, so a cluster's args and a plain `docker run` alike run the gateway); user
 * 65532:65532; port 8080; SIGTERM (the gateway closes and exits 0); a HEALTHCHECK on /v2/health/live. The gateway
 * writes no file, so a read-only root file system works. No shell, no npm, no onnxruntime, no model server.
 *
 * Reproducible: the bundle is (bundle.ts), the layer has fixed owners, modes and times (SOURCE_DATE_EPOCH, else
 * the epoch), and `created` is SOURCE_DATE_EPOCH, else the time of the Ferry checkout's last commit, else the
 * epoch: the same sources and base give the same image ID and digest.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_GATEWAY_IMAGE, GATEWAY_IMAGE_NAME } from '../core/gateway-image.ts';
import { FERRY_VERSION } from '../core/version.ts';
import {
  type BuiltImage,
  chooseBase,
  formatBytes,
  gitFacts,
  imageTimes,
  localHostBase,
  mergeEnv,
  resolveBase,
} from './build.ts';
import { bundleGateway } from './bundle.ts';
import { assembleImage, buildLayer, epochToCreated, sourceDateEpoch } from './oci/index.ts';
import { APP_DIR, IMAGE_USER, type ImagePlan, layer, type PlanFile } from './plan.ts';

export { DEFAULT_GATEWAY_IMAGE };

/** The port the gateway listens on in its container (the renderer's SERVER_PORT). */
export const GATEWAY_PORT = 8080;
/** Where the route file is expected (the renderer mounts its ConfigMap at /etc/ferry). */
export const GATEWAY_ROUTES_FILE = '/etc/ferry/routes.json';
/** The image's Cmd: what src/k8s/render.ts gives the gateway container as args. */
export const GATEWAY_ARGS: readonly string[] = [
  'gateway',
  '--routes',
  GATEWAY_ROUTES_FILE,
  '--host',
  '0.0.0.0',
  '--port',
  String(GATEWAY_PORT),
];

const SECOND_NS = 1_000_000_000;

/** The liveness check: base images have node but no curl; the gateway answers /v2/health/live once it listens. */
export const GATEWAY_HEALTHCHECK_SCRIPT = `fetch('http://127.0.0.1:${GATEWAY_PORT}/v2/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`;

export interface GatewayPlanInput {
  /** The bundle (bundleGateway): path relative to /app. */
  bundle: PlanFile;
  ferryVersion: string;
  /** RFC 3339, fixed (never the clock). */
  created: string;
  /** The base image reference (recorded as org.opencontainers.image.base.name). */
  baseRef: string;
  /** Where Ferry's source lives (its git remote). */
  source?: string;
  /** Ferry's source revision (a git commit). */
  revision?: string;
}

/** The gateway image's plan (pure): one layer with the bundle, and the config. */
export function planGatewayImage(input: GatewayPlanInput): ImagePlan {
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': GATEWAY_IMAGE_NAME,
    'org.opencontainers.image.description':
      "Ferry's gateway alone: routes from a file, replicas found by DNS (ferry gateway --routes <file>)",
    'org.opencontainers.image.version': input.ferryVersion,
    'org.opencontainers.image.created': input.created,
    'org.opencontainers.image.base.name': input.baseRef,
    'dev.ferry.component': 'gateway',
    'dev.ferry.version': input.ferryVersion,
  };
  if (input.source !== undefined) labels['org.opencontainers.image.source'] = input.source;
  if (input.revision !== undefined) labels['org.opencontainers.image.revision'] = input.revision;
  return {
    layers: [
      layer(
        'gateway',
        '`ferry gateway` bundled with every package it uses into one ES module; nothing else of Ferry',
        [{ path: `${APP_DIR}/${input.bundle.path}`, source: { file: input.bundle.file } }],
      ),
    ],
    config: {
      User: IMAGE_USER,
      Env: ['NODE_ENV=production'],
      Entrypoint: ['node', `/${APP_DIR}/${input.bundle.path}`],
      Cmd: [...GATEWAY_ARGS],
      WorkingDir: `/${APP_DIR}`,
      ExposedPorts: { [`${GATEWAY_PORT}/tcp`]: {} },
      Labels: Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      StopSignal: 'SIGTERM',
      Healthcheck: {
        Test: ['CMD', 'node', '-e', GATEWAY_HEALTHCHECK_SCRIPT],
        Interval: 10 * SECOND_NS,
        Timeout: 5 * SECOND_NS,
        StartPeriod: 5 * SECOND_NS,
        Retries: 3,
      },
    },
  };
}

export interface BuildGatewayImageOptions {
  /** Base image: `oci:<dir>`, a name `ferry base` made, or a registry reference; default as `ferry build`'s. */
  base?: string;
  onProgress?: (line: string) => void;
}

export interface GatewayImageResult extends BuiltImage {
  plan: ImagePlan;
}

/** Ferry's checkout (for git facts: the commit and its time). */
const FERRY_DIR = fileURLToPath(new URL('../../', import.meta.url));

/** Builds the gateway image (nothing is written but a temporary bundle, removed at the end). */
export async function buildGatewayImage(options: BuildGatewayImageOptions = {}): Promise<GatewayImageResult> {
  const log = options.onProgress ?? (() => undefined);
  const chosen = chooseBase({ option: options.base, spec: null, localBase: localHostBase() });
  const git = gitFacts(FERRY_DIR, { sourceFromEnv: false });
  const times = imageTimes(process.env.SOURCE_DATE_EPOCH ? sourceDateEpoch() : undefined, git.commitTime);
  const staging = await mkdtemp(join(tmpdir(), 'ferry-gateway-image-'));
  try {
    log(chosen.note);
    const base = await resolveBase(chosen.ref, chosen.source);
    log('bundling the gateway');
    const bundle = await bundleGateway({ outDir: staging });
    const plan = planGatewayImage({
      bundle,
      ferryVersion: FERRY_VERSION,
      created: epochToCreated(times.created),
      baseRef: chosen.ref,
      ...(git.source ? { source: git.source } : {}),
      ...(git.revision ? { revision: git.revision } : {}),
    });
    const layers = [];
    for (const [i, step] of plan.layers.entries()) {
      const built = await buildLayer(step.entries, step.name, { mtime: times.mtime });
      layers.push(built);
      log(
        `layer ${i + 1}/${plan.layers.length} ${step.name}: ${formatBytes(built.size)} compressed (${built.digest.slice(7, 19)})`,
      );
    }
    const image = assembleImage({
      base,
      layers,
      createdBy: 'ferry gateway-image',
      config: {
        architecture: 'amd64',
        os: 'linux',
        created: epochToCreated(times.created),
        config: { ...plan.config, Env: mergeEnv(base.config.config.Env ?? [], plan.config.Env) },
      },
    });
    return {
      image,
      plan,
      tag: DEFAULT_GATEWAY_IMAGE,
      baseRef: chosen.ref,
      baseLayers: base.layers.length,
      addedBytes: layers.reduce((n, l) => n + l.size, 0),
      layerSizes: layers.map((l, i) => ({ name: plan.layers[i]!.name, compressed: l.size })),
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
